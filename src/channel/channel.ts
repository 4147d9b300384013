/**
 * One client's MQTT state machine: awaiting CONNECT -> connected -> closed.
 *
 * Contract:
 * - The connection calls `handlePacket` for each decoded packet, `handleDecodeError` once on
 *   malformed input, `handleSocketClosed` when the peer goes away, `handleDrain` when the
 *   socket can take more, and `handleKeepaliveTimeout` / `handleIdleTimeout` from the wheel.
 *   All on the event loop, synchronously; only CONNECT authentication may await.
 * - Packet handling lives in handlers/<packet>.ts; this file owns the state, the close path
 *   (will, session detach, logs, counts) and the one mapping from MqttReasonError to what the
 *   client is sent per protocol version (`fail`).
 */
import {
  ConnackReturnCodeV3,
  MqttReasonError,
  PacketType,
  ReasonCode,
  PACKET_NAMES,
  encode,
  type ConnectPacket,
  type Packet,
  type ProtocolVersion,
  type Properties,
  type QoS,
  type WillMessage,
} from '../codec/index.js';
import type { Broker, ClientSummary, ConnectionHandle, HoldablePublisher, Message, TimerEntry, TimerTask } from '../broker/index.js';
import type { ClientInfo, ConnectGate } from '../hooks/index.js';
import { MetricName, type DisconnectReason, type PacketTracer } from '../observability/index.js';
import type { Session, SessionOutlet } from '../session/index.js';
import { handleAuth, startEnhancedAuth, type EnhancedAuth } from './handlers/auth.js';
import { handleConnect, refuseConnect } from './handlers/connect.js';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel, handlePublish } from './handlers/publish.js';
import { handleSubscribe, handleUnsubscribe } from './handlers/subscribe.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { isHeld, queueIfHeld } from './handlers/authorize.js';
import { outboundEncoder, type OutboundEncoder } from './outbound.js';
import { forwardable } from './properties.js';
import type { ChannelIO } from './types.js';

export type ChannelState = 'awaiting_connect' | 'authenticating' | 'connected' | 'closed';

/** Disconnect reasons sent as an MQTT 5 DISCONNECT before the server closes. */
const SERVER_DISCONNECT_CODE: Partial<Record<DisconnectReason, number>> = {
  takenover: ReasonCode.SessionTakenOver,
  discarded: ReasonCode.SessionTakenOver,
  kicked: ReasonCode.AdministrativeAction,
  banned: ReasonCode.AdministrativeAction,
  server_shutdown: ReasonCode.ServerShuttingDown,
  keepalive_timeout: ReasonCode.KeepAliveTimeout,
  mqueue_overflow_shutdown: ReasonCode.QuotaExceeded,
  not_authorized: ReasonCode.NotAuthorized,
};

export class Channel implements ConnectionHandle, SessionOutlet, HoldablePublisher, TimerTask {
  state: ChannelState = 'awaiting_connect';
  protocolVersion: ProtocolVersion = 4;
  clientId = '';
  username: string | undefined = undefined;
  keepAlive = 0;
  cleanStart = true;
  connectedAt = 0;
  session: Session | null = null;
  will: WillMessage | null = null;
  /** Session expiry the client asked for at CONNECT (ms), to police DISCONNECT changes. */
  connectSessionExpiry = 0;
  /** The client's limits (MQTT 5 CONNECT properties). */
  clientMaxPacketSize = Infinity;
  clientTopicAliasMax = 0;
  clientReceiveMaximum = 65535;
  requestProblemInformation = true;
  /** This client's topic prefix (listener mountpoint, placeholders filled in); null: none. */
  mountpoint: string | null = null;
  /** Inbound topic aliases (alias -> topic) [MQTT-3.3.2-?]; made at the first alias. */
  inboundAliases: Map<number, string> | null = null;
  readonly outbound: OutboundEncoder;
  /**
   * Date.now() cached for the socket read being decoded (0: not read yet, or outside a read).
   * The connection clears it after each read; `now` reads the clock at most once per read
   * instead of once per PUBLISH (Date.now() was 2-3% of a fan-in QoS 1 profile).
   */
  readTime = 0;
  /** Congested sessions holding this publisher back (broker/backpressure.ts). */
  heldBy = 0;
  /** MQTT 5 enhanced authentication (CONNECT with an Authentication Method); null: none. */
  auth: EnhancedAuth | null = null;
  /**
   * When the credentials the client connected with expire (ms since epoch; 0: never), set by
   * authentication (a JWT's exp); the connection is closed then, from the broker's wheel.
   */
  authExpiresAt = 0;
  private authExpiry: TimerEntry | null = null;
  /**
   * What hooks are told about this client, built once it is connected: client id, username
   * (peer_cert_as_*, SCRAM) and protocol are settled at the CONNACK, and an authorized
   * PUBLISH must not allocate one per message. Frozen: a hook cannot change it for the next.
   */
  private info: ClientInfo | null = null;
  /** Packets that arrived while CONNECT was being authenticated, handled once accepted. */
  private pending: Packet[] | null = null;
  private closeReason: DisconnectReason | null = null;

  constructor(
    readonly broker: Broker,
    readonly io: ChannelIO,
  ) {
    this.outbound = outboundEncoder(broker);
  }

  // ------------------------------------------------------------------------------------
  // Input from the connection

  handlePacket(packet: Packet): void {
    if (this.state === 'connected') {
      this.dispatch(packet);
    } else if (this.state === 'awaiting_connect') {
      // [MQTT-3.1.0-1] the first packet from the client MUST be CONNECT.
      if (packet.type !== PacketType.CONNECT) {
        this.fail(new MqttReasonError(ReasonCode.ProtocolError, `first packet is ${packetName(packet.type)}, not CONNECT`, packet.type));
        return;
      }
      handleConnect(this, packet);
    } else if (this.state === 'authenticating') {
      // [MQTT-3.1.4-?] data after CONNECT is processed only once the CONNECT is accepted.
      if (packet.type === PacketType.CONNECT) {
        this.fail(new MqttReasonError(ReasonCode.ProtocolError, 'second CONNECT', packet.type));
        return;
      }
      if (this.auth !== null) {
        // [MQTT-3.1.2-30] during enhanced authentication only AUTH or DISCONNECT may come.
        if (packet.type === PacketType.AUTH) handleAuth(this, packet);
        else if (packet.type === PacketType.DISCONNECT) this.terminate('normal');
        else refuseConnect(this, ReasonCode.ProtocolError, `${packetName(packet.type)} during enhanced authentication`);
        return;
      }
      (this.pending ??= []).push(packet);
    }
  }

  private dispatch(packet: Packet): void {
    switch (packet.type) {
      case PacketType.DISCONNECT:
      case PacketType.AUTH:
      case PacketType.CONNECT:
      case PacketType.CONNACK:
      case PacketType.SUBACK:
      case PacketType.UNSUBACK:
      case PacketType.PINGRESP:
        // Behind a PUBLISH/SUBSCRIBE still waiting for its authorization: these end or change
        // the session, so they take effect only after it (packets are processed in order).
        // PUBLISH, SUBSCRIBE and UNSUBSCRIBE queue themselves; acks and PINGREQ need not wait.
        if (isHeld(this)) {
          queueIfHeld(this, () => this.dispatch(packet));
          return;
        }
    }
    switch (packet.type) {
      case PacketType.PUBLISH: return handlePublish(this, packet);
      case PacketType.PUBACK: return handlePuback(this, packet);
      case PacketType.PUBREC: return handlePubrec(this, packet);
      case PacketType.PUBREL: return handlePubrel(this, packet);
      case PacketType.PUBCOMP: return handlePubcomp(this, packet);
      case PacketType.SUBSCRIBE: return handleSubscribe(this, packet);
      case PacketType.UNSUBSCRIBE: return handleUnsubscribe(this, packet);
      case PacketType.PINGREQ:
        this.send({ type: PacketType.PINGRESP });
        return;
      case PacketType.DISCONNECT: return handleDisconnect(this, packet);
      case PacketType.CONNECT:
        // [MQTT-3.1.0-2] a second CONNECT is a Protocol Error.
        return this.fail(new MqttReasonError(ReasonCode.ProtocolError, 'second CONNECT', packet.type));
      case PacketType.AUTH: return handleAuth(this, packet);
      default:
        // CONNACK, SUBACK, UNSUBACK, PINGRESP travel only from server to client.
        return this.fail(new MqttReasonError(ReasonCode.ProtocolError, `${packetName(packet.type)} sent by a client`, packet.type));
    }
  }

  handleDecodeError(err: MqttReasonError): void {
    if (err.packetType === PacketType.AUTH && this.protocolVersion < 5 && err.reasonCode === ReasonCode.MalformedPacket) {
      // The codec refuses type 15 below MQTT 5 as undecodable; for the client it is a reserved
      // packet type, a protocol violation (3.1.1 sections 2.2.1 and 4.8), not a framing error.
      const violation = new MqttReasonError(ReasonCode.ProtocolError, 'AUTH (packet type 15) is reserved before MQTT 5', PacketType.AUTH);
      violation.hex = err.hex;
      err = violation;
    }
    if (this.state === 'connected' && isHeld(this)) {
      // The bad bytes came after the held packets: those are decided first (authorize.ts).
      this.io.stopDecoding();
      queueIfHeld(this, () => this.fail(err));
      return;
    }
    this.fail(err);
  }

  /**
   * `ssl_closed` for a connection that came over TLS (EMQX's name), `tcp_closed` otherwise.
   * A PUBLISH the client sent before going away but still waiting for its authorization is
   * decided and, if allowed, routed before the close takes effect (will included): the close
   * is queued behind it like any later packet. At most request_timeout later.
   */
  handleSocketClosed(reason: 'tcp_closed' | 'ssl_closed' = 'tcp_closed'): void {
    if (this.state === 'connected' && queueIfHeld(this, () => this.terminate(reason))) return;
    this.terminate(reason);
  }

  holdReading(on: boolean): void {
    this.io.holdReading?.(on);
  }

  handleDrain(): void {
    this.session?.drain();
  }

  handleKeepaliveTimeout(): void {
    this.closeByServer('keepalive_timeout');
  }

  /**
   * The wheel: the credentials expired (EMQX connection_auth_expire): DISCONNECT 0x87 on MQTT 5,
   * the will published as for any close that is not a normal DISCONNECT.
   */
  onTimer(): void {
    this.authExpiry = null;
    if (this.state !== 'connected') return;
    this.broker.logger.info('authentication_expired', { clientid: this.clientId, username: this.username, expired_at: new Date(this.authExpiresAt).toISOString() });
    this.closeByServer('not_authorized');
  }

  handleIdleTimeout(): void {
    if (this.state === 'awaiting_connect' || this.state === 'authenticating') this.terminate('idle_timeout');
  }

  /**
   * CONNECT with an Authentication Method (handlers/auth.ts); called by the connect handler,
   * through the channel so that the two handlers do not import each other.
   */
  startEnhancedAuth(p: ConnectPacket, assigned: boolean, method: string, gate: ConnectGate | null): void {
    startEnhancedAuth(this, p, assigned, method, gate);
  }

  /** Called by the connect handler once the session is attached. */
  acceptConnect(): void {
    this.state = 'connected';
    if (this.authExpiresAt > 0) this.authExpiry = this.broker.wheel.schedule(this, Math.max(0, this.authExpiresAt - Date.now()));
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) for (const p of pending) if (this.state === 'connected') this.dispatch(p);
  }

  // ------------------------------------------------------------------------------------
  // Output

  send(packet: Packet): void {
    let bytes = encode(packet, this.protocolVersion);
    if (bytes.length > this.clientMaxPacketSize && 'properties' in packet && packet.properties !== undefined) {
      // [MQTT-3.4.2-2], [MQTT-3.14.2-3] ...: a Reason String or User Property that would make a
      // packet larger than the client's Maximum Packet Size is left out.
      bytes = encode({ ...packet, properties: undefined } as Packet, this.protocolVersion);
    }
    this.io.send(bytes);
  }

  /**
   * PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) in its short form: packet id
   * only (MQTT 3.x, and MQTT 5 Success without properties). The hot-path acknowledgement: no
   * packet object, and no Buffer of its own when the connection gathers it into its write.
   */
  sendAck(first: number, packetId: number): void {
    const io = this.io;
    if (io.sendAck !== undefined) {
      io.sendAck(first, packetId);
      return;
    }
    const b = Buffer.allocUnsafe(4);
    b[0] = first;
    b[1] = 2;
    b[2] = packetId >> 8;
    b[3] = packetId & 0xff;
    io.send(b);
  }

  get writable(): boolean {
    return this.io.writable;
  }

  /** Wall-clock ms for a message received now (see `readTime`). */
  now(): number {
    return this.readTime || (this.readTime = Date.now());
  }

  sendPublish(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[], packetId: number, dup: boolean): boolean {
    return this.outbound.publish(this, msg, qos, retain, subscriptionIds, packetId, dup);
  }

  sendPubrel(packetId: number): void {
    this.sendAck(0x62, packetId);
  }

  /** Reason String only when the client did not opt out (Request Problem Information 0). */
  problem(reason: string): Properties | undefined {
    return this.protocolVersion === 5 && this.requestProblemInformation ? { reasonString: reason } : undefined;
  }

  // ------------------------------------------------------------------------------------
  // Errors and closing

  /**
   * The one place a protocol violation becomes wire packets: before CONNECT is accepted a
   * CONNACK with the reason (MQTT 5) or the 3.x return code where one exists; after it, a
   * DISCONNECT with the reason (MQTT 5 only) [MQTT-4.13.1-1]. Then the connection closes.
   */
  fail(err: MqttReasonError): void {
    if (this.state === 'closed') return;
    this.io.stopDecoding();
    const reason = disconnectReasonFor(err.reasonCode);
    const logFields = {
      clientid: this.clientId || undefined,
      peername: `${this.io.peerHost}:${this.io.peerPort}`,
      listener: this.io.listener,
      reason_code: err.reasonName,
      reason: err.reason,
      hex: err.hex || undefined,
    };
    if (reason === 'frame_error' || reason === 'packet_too_large') {
      this.broker.metrics.counter(MetricName.frameErrors).inc();
      this.broker.logger.warning('frame_error', logFields);
    } else {
      this.broker.logger.warning('protocol_error', logFields);
    }
    if (this.state === 'connected') {
      if (this.protocolVersion === 5) {
        this.send({ type: PacketType.DISCONNECT, reasonCode: err.reasonCode, properties: this.problem(err.reason) });
      }
    } else {
      const version = err.protocolVersion || this.protocolVersion;
      if (err.reasonCode === ReasonCode.UnsupportedProtocolVersion) {
        // [MQTT-3.1.2-2] answer in a form the client can read: the 3.1.1 CONNACK 0x01 for a
        // level below 5, the MQTT 5 one otherwise.
        const v5 = version >= 5;
        this.io.send(encode({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: v5 ? err.reasonCode : ConnackReturnCodeV3.UnacceptableProtocolVersion }, v5 ? 5 : 4));
      } else if (version === 5 && err.packetType === PacketType.CONNECT) {
        this.io.send(encode({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: err.reasonCode, properties: { reasonString: err.reason } }, 5));
      }
    }
    this.terminate(reason);
  }

  /** Closes from the server side (takeover, kick, shutdown, keepalive). */
  closeByServer(reason: DisconnectReason): void {
    if (this.state === 'closed') return;
    const code = SERVER_DISCONNECT_CODE[reason];
    if (this.state === 'connected' && this.protocolVersion === 5 && code !== undefined) {
      this.send({ type: PacketType.DISCONNECT, reasonCode: code });
    }
    this.io.stopDecoding();
    this.terminate(reason);
  }

  /**
   * The single close path: will, session detach, registry, log, counters, socket.
   * `willSuppressed` is set by a normal DISCONNECT [MQTT-3.1.2-10].
   */
  terminate(reason: DisconnectReason): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.closeReason = reason;
    const broker = this.broker;
    if (this.authExpiry !== null) {
      broker.wheel.cancel(this.authExpiry);
      this.authExpiry = null;
    }
    if (wasConnected) {
      broker.detachConnection(this);
      if (this.will !== null) {
        const will = this.will;
        this.will = null;
        broker.scheduleWill(this.clientId, willMessage(broker, this.clientId, will), (will.properties?.willDelayInterval ?? 0) * 1000);
      }
      this.session?.detach(this);
      broker.metrics.counter(MetricName.clientDisconnected).inc();
      broker.logger.log(reason === 'normal' ? 'info' : 'warning', 'client_disconnected', {
        clientid: this.clientId,
        username: this.username,
        peername: `${this.io.peerHost}:${this.io.peerPort}`,
        listener: this.io.listener,
        reason,
      });
      if (broker.hooks.has('client.disconnected')) broker.hooks.run('client.disconnected', this.clientInfo(), reason);
    } else {
      // A connection closed before its CONNECT was accepted (idle_timeout, refused CONNECT,
      // bad first packet) is logged too: every disconnect carries its reason (design.md).
      // A peer that simply goes away before CONNECT is routine (port scans, health checks).
      broker.logger.log(reason === 'tcp_closed' || reason === 'ssl_closed' ? 'debug' : 'warning', 'client_disconnected', {
        clientid: this.clientId || undefined,
        peername: `${this.io.peerHost}:${this.io.peerPort}`,
        listener: this.io.listener,
        reason,
        connected: false,
      });
    }
    this.io.countShutdown(reason);
    this.io.close();
  }

  get disconnectReason(): DisconnectReason | null {
    return this.closeReason;
  }

  clientInfo(): ClientInfo {
    if (this.info !== null) return this.info;
    const info: ClientInfo = {
      clientId: this.clientId,
      username: this.username,
      peerHost: this.io.peerHost,
      peerPort: this.io.peerPort,
      protocolVersion: this.protocolVersion,
      listener: this.io.listener,
      connectedAt: this.connectedAt,
    };
    const cert = this.io.peerCert;
    if (cert !== undefined) {
      info.certCommonName = cert.commonName;
      info.certSubject = cert.subject;
      info.certPem = cert.pem;
    }
    // Before the CONNACK the identity may still change (peer_cert_as_*, an enhanced
    // authentication naming the user): built afresh each time until then.
    if (this.state === 'connected' || this.state === 'closed') this.info = Object.freeze(info);
    return info;
  }

  /** ConnectionHandle: a trace started or stopped while this client is connected. */
  setTracer(tracer: PacketTracer | null): void {
    this.io.setTracer?.(tracer);
  }

  summary(): ClientSummary {
    const s = this.session;
    return {
      ...this.clientInfo(),
      connectedAt: this.connectedAt,
      keepAlive: this.keepAlive,
      cleanStart: this.cleanStart,
      sessionExpiryInterval: s === null ? 0 : s.expiryInterval / 1000,
      subscriptions: s?.subscriptions.size ?? 0,
      inflight: s?.inflight.size ?? 0,
      mqueueLength: s?.mqueue.length ?? 0,
      mqueueDropped: s?.mqueueDropped ?? 0,
    };
  }
}

/** Log / shutdown-count reason for a reason code (design.md names). */
export function disconnectReasonFor(code: number): DisconnectReason {
  switch (code) {
    case ReasonCode.MalformedPacket: return 'frame_error';
    case ReasonCode.PacketTooLarge: return 'packet_too_large';
    case ReasonCode.NotAuthorized:
    case ReasonCode.BadUserNameOrPassword:
    case ReasonCode.BadAuthenticationMethod: return 'not_authorized';
    case ReasonCode.Banned: return 'banned';
    default: return 'protocol_error';
  }
}

function packetName(type: number): string {
  return PACKET_NAMES[type] ?? `type ${type}`;
}

function willMessage(broker: Broker, clientId: string, will: WillMessage): Message {
  const now = Date.now();
  const expiry = will.properties?.messageExpiryInterval;
  return {
    id: broker.newMessageId(),
    topic: will.topic,
    payload: will.payload,
    qos: will.qos,
    retain: will.retain,
    from: clientId,
    timestamp: now,
    expiresAt: expiry !== undefined ? now + expiry * 1000 : 0,
    properties: forwardable(will.properties),
  };
}
