/**
 * AUTH and MQTT 5 enhanced authentication (section 4.12): the exchange a CONNECT with an
 * Authentication Method starts, and re-authentication (AUTH 0x19) once connected.
 *
 *   CONNECT (method, data) -> [AUTH 0x18 <-> AUTH 0x18]* -> CONNACK 0x00 (method, data)
 *   connected: AUTH 0x19 (method, data) -> [AUTH 0x18 <-> AUTH 0x18]* -> AUTH 0x00 (method, data)
 *
 * The exchange itself (SCRAM) belongs to the auth room behind `hooks.connectGate`; this file
 * keeps the packet rules:
 * - an unknown method, or one on a listener with enable_authn = false: CONNACK 0x8C;
 * - until the CONNACK, only AUTH (and DISCONNECT) may come [MQTT-3.1.2-30]; anything else, an
 *   AUTH that is not 0x18 or comes while a step is being decided: CONNACK 0x82;
 * - an AUTH whose method differs from the CONNECT's: CONNACK / DISCONNECT 0x8C (as EMQX);
 *   without a method: 0x82 [MQTT-3.15.2-?];
 * - AUTH from a client that did not use enhanced authentication at CONNECT: DISCONNECT 0x82
 *   [MQTT-4.12.1-1]; failed re-authentication: DISCONNECT 0x87.
 * MQTT 3.1.1 has no AUTH packet: the decoder refuses type 15 before MQTT 5 as malformed.
 */
import { MqttReasonError, PacketType, ReasonCode, type AuthPacket, type ConnectPacket } from '../../codec/index.js';
import type { ConnectGate, EnhancedAuthExchange, EnhancedAuthStep } from '../../hooks/index.js';
import type { Channel } from '../channel.js';
import { completeConnect, refuseConnect } from './connect.js';

/** A channel's enhanced-authentication state (set when its CONNECT carried a method). */
export interface EnhancedAuth {
  readonly method: string;
  /** The exchange under way (CONNECT or re-authentication); null between them. */
  exchange: EnhancedAuthExchange | null;
  /** A step is being decided: the client must wait for the answer. */
  busy: boolean;
  /** The CONNECT waiting for the exchange to end; null once connected. */
  connect: { readonly packet: ConnectPacket; readonly assigned: boolean } | null;
}

/** CONNECT with an Authentication Method: starts the exchange (gate null: no method offered). */
export function startEnhancedAuth(ch: Channel, p: ConnectPacket, assigned: boolean, method: string, gate: ConnectGate | null): void {
  const exchange = gate?.enhancedAuth(method, ch.clientInfo());
  if (exchange === undefined) return refuseConnect(ch, ReasonCode.BadAuthenticationMethod, `authentication method ${method} not supported`);
  ch.auth = { method, exchange, busy: false, connect: { packet: p, assigned } };
  ch.state = 'authenticating';
  runStep(ch, ch.auth, p.properties?.authenticationData);
}

/** An AUTH packet, before the CONNACK (state authenticating) or after it. */
export function handleAuth(ch: Channel, p: AuthPacket): void {
  const a = ch.auth;
  const method = p.properties?.authenticationMethod;
  if (ch.state === 'authenticating') {
    if (a === null) return refuseConnect(ch, ReasonCode.ProtocolError, 'AUTH without an authentication method in CONNECT');
    if (a.busy || p.reasonCode !== ReasonCode.ContinueAuthentication) {
      return refuseConnect(ch, ReasonCode.ProtocolError, a.busy ? 'AUTH before the server answered the previous one' : `AUTH reason code 0x${p.reasonCode.toString(16)} during CONNECT`);
    }
    if (method === undefined) return refuseConnect(ch, ReasonCode.ProtocolError, 'AUTH without an authentication method');
    if (method !== a.method) return refuseConnect(ch, ReasonCode.BadAuthenticationMethod, 'AUTH method differs from the CONNECT\'s');
    return runStep(ch, a, p.properties?.authenticationData);
  }
  // Connected.
  if (a === null) return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, 'AUTH without an authentication method in CONNECT', PacketType.AUTH));
  if (method === undefined) return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, 'AUTH without an authentication method', PacketType.AUTH));
  if (method !== a.method) return ch.fail(new MqttReasonError(ReasonCode.BadAuthenticationMethod, 'AUTH method differs from the CONNECT\'s', PacketType.AUTH));
  if (p.reasonCode === ReasonCode.ReAuthenticate && a.exchange === null) {
    const exchange = ch.broker.hooks.connectGate?.enhancedAuth(method, ch.clientInfo());
    if (exchange === undefined) return ch.fail(new MqttReasonError(ReasonCode.BadAuthenticationMethod, `authentication method ${method} no longer offered`, PacketType.AUTH));
    a.exchange = exchange;
    return runStep(ch, a, p.properties?.authenticationData);
  }
  if (p.reasonCode === ReasonCode.ContinueAuthentication && a.exchange !== null && !a.busy) return runStep(ch, a, p.properties?.authenticationData);
  return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, `unexpected AUTH 0x${p.reasonCode.toString(16)}`, PacketType.AUTH));
}

/**
 * Feeds the client's data to the exchange. Before the CONNACK, reading pauses while the step
 * is decided; a re-authentication does not stop the client's traffic.
 */
function runStep(ch: Channel, a: EnhancedAuth, data: Buffer | undefined): void {
  const connecting = a.connect !== null;
  a.busy = true;
  if (connecting) ch.io.pauseReading();
  a.exchange!.step(data).then(
    (r) => {
      a.busy = false;
      if (ch.state === 'closed' || ch.auth !== a) return;
      if (connecting) ch.io.resumeReading();
      if (connecting) connectStep(ch, a, r);
      else reauthStep(ch, a, r);
    },
    (err: unknown) => {
      a.busy = false;
      if (ch.state === 'closed') return;
      ch.broker.logger.error('hook_failed', { hook: 'enhanced_authentication', clientid: ch.clientId, error: String(err) });
      if (connecting) refuseConnect(ch, ReasonCode.ServerUnavailable, 'authentication failed');
      else ch.fail(new MqttReasonError(ReasonCode.UnspecifiedError, 'authentication failed', PacketType.AUTH));
    },
  );
}

function connectStep(ch: Channel, a: EnhancedAuth, r: EnhancedAuthStep): void {
  if (r.result === 'continue') {
    ch.send({ type: PacketType.AUTH, reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: a.method, authenticationData: r.data } });
    return;
  }
  if (r.result === 'deny') return refuseConnect(ch, r.reasonCode, 'authentication failed');
  const { packet, assigned } = a.connect!;
  a.connect = null;
  a.exchange = null;
  // A client that proved a user without naming one in CONNECT is known by it (ACL ${username}).
  if (ch.username === undefined || ch.username === '') ch.username = r.username;
  completeConnect(ch, packet, assigned, { method: a.method, data: r.data });
}

function reauthStep(ch: Channel, a: EnhancedAuth, r: EnhancedAuthStep): void {
  if (r.result === 'continue') {
    ch.send({ type: PacketType.AUTH, reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: a.method, authenticationData: r.data } });
    return;
  }
  a.exchange = null;
  if (r.result === 'allow') {
    ch.send({ type: PacketType.AUTH, reasonCode: ReasonCode.Success, properties: { authenticationMethod: a.method, authenticationData: r.data } });
    return;
  }
  // [MQTT-4.12.1-2] a failed re-authentication ends the connection.
  ch.broker.logger.warning('reauthentication_failed', { clientid: ch.clientId, username: ch.username, method: a.method });
  ch.send({ type: PacketType.DISCONNECT, reasonCode: r.reasonCode, properties: ch.problem('re-authentication failed') });
  ch.io.stopDecoding();
  ch.terminate('not_authorized');
}
