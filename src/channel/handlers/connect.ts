/**
 * CONNECT: validate, authenticate, take over or create the session, answer CONNACK.
 * MQTT 5 section 3.1 / 3.2; 3.1.1 sections 3.1 / 3.2.
 */
import { randomBytes } from 'node:crypto';
import {
  ConnackReturnCodeV3,
  PacketType,
  ReasonCode,
  type ConnectPacket,
  type Properties,
} from '../../codec/index.js';
import type { AuthDecision } from '../../hooks/index.js';
import { MetricName } from '../../observability/index.js';
import { Session } from '../../session/index.js';
import type { Channel } from '../channel.js';
import { mountTopic, resolveMountpoint } from '../mountpoint.js';
import { certifiedIdentity } from '../peer-cert.js';
import { landingTopic } from './publish.js';

/** MQTT 5 reason code -> 3.1.1 CONNACK return code, where 3.1.1 has one. */
function v3ReturnCode(code: number): number {
  switch (code) {
    case ReasonCode.UnsupportedProtocolVersion: return ConnackReturnCodeV3.UnacceptableProtocolVersion;
    case ReasonCode.ClientIdentifierNotValid: return ConnackReturnCodeV3.IdentifierRejected;
    case ReasonCode.BadUserNameOrPassword: return ConnackReturnCodeV3.BadUserNameOrPassword;
    case ReasonCode.NotAuthorized:
    case ReasonCode.Banned:
    case ReasonCode.BadAuthenticationMethod: return ConnackReturnCodeV3.NotAuthorized;
    default: return ConnackReturnCodeV3.ServerUnavailable;
  }
}

/** Refuses the CONNECT with a CONNACK carrying `code`, logs it, closes. */
export function refuseConnect(ch: Channel, code: number, why: string): void {
  const v5 = ch.protocolVersion === 5;
  ch.send({
    type: PacketType.CONNACK,
    sessionPresent: false, // [MQTT-3.2.2-6]
    reasonCode: v5 ? code : v3ReturnCode(code),
    properties: v5 ? ch.problem(why) : undefined,
  });
  ch.broker.metrics.counter(MetricName.clientConnackRefused).inc();
  ch.broker.logger.warning('client_connack_refused', {
    clientid: ch.clientId,
    username: ch.username,
    peername: `${ch.io.peerHost}:${ch.io.peerPort}`,
    listener: ch.io.listener,
    reason_code: code,
    reason: why,
  });
  ch.io.stopDecoding();
  ch.terminate(
    code === ReasonCode.NotAuthorized || code === ReasonCode.BadUserNameOrPassword || code === ReasonCode.BadAuthenticationMethod ? 'not_authorized'
      : code === ReasonCode.Banned ? 'banned'
        : code === ReasonCode.ServerBusy ? 'server_busy'
          : 'protocol_error',
  );
}

export function handleConnect(ch: Channel, p: ConnectPacket): void {
  const broker = ch.broker;
  const cfg = broker.config.mqtt;
  ch.protocolVersion = p.protocolVersion;
  ch.username = p.username;
  ch.cleanStart = p.cleanStart;
  const v5 = p.protocolVersion === 5;
  const props = p.properties;

  // Overload protection: new connections are refused while the alarm is raised; connected
  // clients carry on (MQTT 5 0x89 Server Busy; 3.1.1 has only 0x03 Server Unavailable).
  if (ch.io.overloaded === true) {
    ch.clientId = p.clientId;
    return refuseConnect(ch, ReasonCode.ServerBusy, 'server busy: overload protection');
  }

  // peer_cert_as_username / peer_cert_as_clientid: the certificate's word over the CONNECT's.
  const identity = certifiedIdentity(ch.io, p.username, p.clientId);
  ch.username = identity.username;
  let clientId = identity.clientId;
  if (cfg.use_username_as_clientid && ch.username !== undefined && ch.username.length > 0) clientId = ch.username;
  let assigned = false;
  if (clientId.length === 0) {
    // 3.1 requires a client id; 3.1.1 allows an empty one only with Clean Session 1
    // [MQTT-3.1.3-7], [MQTT-3.1.3-8]; MQTT 5 assigns one [MQTT-3.1.3-6].
    if (p.protocolVersion === 3 || (p.protocolVersion === 4 && !p.cleanStart)) {
      ch.clientId = '';
      return refuseConnect(ch, ReasonCode.ClientIdentifierNotValid, 'empty client identifier');
    }
    clientId = `petrel-${randomBytes(8).toString('hex')}`;
    assigned = true;
  }
  ch.clientId = clientId;
  if (Buffer.byteLength(clientId) > cfg.max_clientid_len) {
    return refuseConnect(ch, ReasonCode.ClientIdentifierNotValid, `client identifier longer than ${cfg.max_clientid_len} bytes`);
  }
  const mountpoint = ch.io.clientSettings?.mountpoint;
  if (mountpoint !== undefined && mountpoint !== '') {
    ch.mountpoint = resolveMountpoint(mountpoint, clientId, ch.username);
    if (ch.mountpoint === null) return refuseConnect(ch, ReasonCode.ClientIdentifierNotValid, 'a + or # in the client id or username cannot go into the mountpoint');
  }
  // Banned before anything is authenticated, on the address the PROXY protocol reported.
  const gate = broker.hooks.connectGate;
  if (gate !== null && gate.banned(ch.clientInfo()) !== undefined) return refuseConnect(ch, ReasonCode.Banned, 'banned');
  if (v5) {
    ch.clientMaxPacketSize = props?.maximumPacketSize ?? Infinity;
    ch.clientTopicAliasMax = props?.topicAliasMaximum ?? 0;
    ch.clientReceiveMaximum = props?.receiveMaximum ?? 65535;
    ch.requestProblemInformation = props?.requestProblemInformation !== 0;
  }
  if (p.will !== undefined) {
    if (p.will.qos > cfg.max_qos_allowed) {
      return refuseConnect(ch, ReasonCode.QoSNotSupported, `will QoS ${p.will.qos} above the maximum ${cfg.max_qos_allowed}`);
    }
    if (p.will.retain && !cfg.retain_available) {
      return refuseConnect(ch, ReasonCode.RetainNotSupported, 'retained will but retain is not available');
    }
  }

  const authn = listenerAuthn(ch);
  const method = v5 ? props?.authenticationMethod : undefined;
  if (method !== undefined) return ch.startEnhancedAuth(p, assigned, method, authn === 'false' ? null : gate);
  if (authn === 'quick_deny_anonymous' && (ch.username === undefined || ch.username === '')) {
    return refuseConnect(ch, ReasonCode.NotAuthorized, 'no username (enable_authn = quick_deny_anonymous)');
  }
  if (authn !== 'false' && broker.hooks.has('client.authenticate')) {
    ch.state = 'authenticating';
    ch.io.pauseReading();
    broker.hooks.decide('client.authenticate', ch.clientInfo(), p.password).then(
      (decision) => {
        if (ch.state !== 'authenticating') return; // closed meanwhile (idle timeout, socket gone)
        ch.io.resumeReading();
        if (decision === 'deny') return refuseConnect(ch, ReasonCode.NotAuthorized, 'authentication denied');
        if (typeof decision === 'object') {
          if (decision.result === 'deny') return refuseConnect(ch, decision.reasonCode, 'authentication denied');
          // Credentials that expire (a JWT's exp): the channel closes the connection then.
          ch.authExpiresAt = decision.expiresAt;
        }
        completeConnect(ch, p, assigned);
      },
      (err: unknown) => {
        if (ch.state !== 'authenticating') return;
        broker.logger.error('hook_failed', { hook: 'client.authenticate', clientid: ch.clientId, error: String(err) });
        refuseConnect(ch, ReasonCode.ServerUnavailable, 'authentication failed');
      },
    );
    return;
  }
  completeConnect(ch, p, assigned);
}

/** The listener's enable_authn ('true' for connections outside any listener). */
function listenerAuthn(ch: Channel): 'true' | 'false' | 'quick_deny_anonymous' {
  const id = ch.io.listener;
  const colon = id.indexOf(':');
  if (colon < 0) return 'true';
  const byType = ch.broker.config.listeners[id.slice(0, colon) as 'tcp'] as Record<string, { enable_authn: 'true' | 'false' | 'quick_deny_anonymous' }> | undefined;
  return byType?.[id.slice(colon + 1)]?.enable_authn ?? 'true';
}

/**
 * The will waits for an asynchronous authorization decision: until it allows, the channel has
 * no will (a connection lost meanwhile leaves none behind); a deny drops it.
 */
function armWillWhenAllowed(ch: Channel, decision: Promise<AuthDecision>): void {
  const will = ch.will;
  ch.will = null;
  decision.then((d) => {
    if (d === 'deny') {
      ch.broker.logger.info('publish_denied_not_authorized', { clientid: ch.clientId, topic: will?.topic, will: true });
      return;
    }
    if (ch.state === 'connected' && ch.will === null) ch.will = will;
  }, () => {});
}

/**
 * Accepts an authenticated CONNECT: session, CONNACK, attach. `auth`: the enhanced
 * authentication that let it in, echoed in the CONNACK with its final data.
 */
export function completeConnect(ch: Channel, p: ConnectPacket, assigned: boolean, auth?: { method: string; data: Buffer | undefined }): void {
  const broker = ch.broker;
  const cfg = broker.config.mqtt;
  const v5 = p.protocolVersion === 5;
  const clientId = ch.clientId;

  // Session expiry: MQTT 5 from the property (absent = 0); 3.x: Clean Session 0 keeps the
  // session for mqtt.session_expiry_interval. Both capped by that key.
  const requested = v5 ? (p.properties?.sessionExpiryInterval ?? 0) * 1000 : p.cleanStart ? 0 : Infinity;
  const requestedMs = requested === 0xffffffff * 1000 ? Infinity : requested;
  const expiry = Math.min(requestedMs, cfg.session_expiry_interval);
  ch.connectSessionExpiry = expiry;

  // The will is a publish like any other: no will into $SYS, and the client must be allowed
  // to publish to its topic (checked now, after authentication, as Mosquitto does), so a
  // connection cannot leave behind a message it could not have sent.
  let willDecision: Promise<AuthDecision> | undefined;
  if (p.will !== undefined) {
    const target = landingTopic(p.will.topic);
    if (target.startsWith('$SYS/')) return refuseConnect(ch, ReasonCode.NotAuthorized, '$SYS topics are read-only (will topic)');
    const d = broker.hooks.has('client.authorize') ? broker.hooks.authorize(ch.clientInfo(), 'publish', target, { qos: p.will.qos, retain: p.will.retain }) : 'ignore';
    if (d === 'deny') {
      broker.logger.info('publish_denied_not_authorized', { clientid: clientId, topic: p.will.topic, will: true });
      return refuseConnect(ch, ReasonCode.NotAuthorized, 'not authorized to publish the will');
    }
    // An http source is being asked: the connection goes on, the will is armed once allowed.
    if (typeof d === 'object') willDecision = d;
  }

  // Registry first: this closes an older connection of the same client id (takeover).
  broker.attachConnection(ch, p.cleanStart);

  let session = broker.session(clientId) as Session | undefined;
  let sessionPresent = false;
  if (session !== undefined && (p.cleanStart || session.terminated)) {
    // [MQTT-3.1.2-4] Clean Start discards any existing session.
    broker.logger.info('session_discarded', { clientid: clientId });
    broker.metrics.counter(MetricName.sessionDiscarded).inc();
    session.terminate('discarded');
    session = undefined;
  }
  if (session === undefined) {
    session = new Session(clientId, broker);
    broker.registerSession(session);
    broker.metrics.counter(MetricName.sessionCreated).inc();
    if (broker.hooks.has('session.created')) broker.hooks.run('session.created', clientId);
  } else {
    sessionPresent = true; // [MQTT-3.2.2-2]
    broker.metrics.counter(MetricName.sessionResumed).inc();
    broker.logger.info('session_resumed', { clientid: clientId, inflight: session.inflight.size, queued: session.mqueue.length });
    if (broker.hooks.has('session.resumed')) broker.hooks.run('session.resumed', clientId);
  }
  session.setExpiry(expiry);
  ch.session = session;
  ch.will = p.will === undefined ? null : ch.mountpoint === null ? p.will : { ...p.will, topic: mountTopic(ch.mountpoint, p.will.topic) };
  if (willDecision !== undefined) armWillWhenAllowed(ch, willDecision);

  // Keepalive: MQTT 5 Server Keep Alive overrides the client's [MQTT-3.2.2-21].
  let keepAlive = p.keepAlive;
  const props: Properties = {};
  if (v5) {
    if (cfg.server_keepalive !== null) {
      keepAlive = Math.min(65535, Math.round(cfg.server_keepalive / 1000));
      props.serverKeepAlive = keepAlive;
    }
    if (assigned) props.assignedClientIdentifier = clientId;
    if (Number.isFinite(cfg.max_awaiting_rel) && cfg.max_awaiting_rel < 65535) props.receiveMaximum = Math.max(1, cfg.max_awaiting_rel);
    if (cfg.max_qos_allowed < 2) props.maximumQoS = cfg.max_qos_allowed;
    if (!cfg.retain_available) props.retainAvailable = 0;
    props.maximumPacketSize = cfg.max_packet_size;
    props.topicAliasMaximum = cfg.max_topic_alias;
    if (!cfg.wildcard_subscription) props.wildcardSubscriptionAvailable = 0;
    if (!cfg.shared_subscription) props.sharedSubscriptionAvailable = 0;
    if (expiry !== requestedMs) props.sessionExpiryInterval = Number.isFinite(expiry) ? Math.floor(expiry / 1000) : 0xffffffff;
    if (p.properties?.requestResponseInformation === 1 && cfg.response_information !== '') {
      props.responseInformation = cfg.response_information;
    }
    if (auth !== undefined) {
      props.authenticationMethod = auth.method;
      if (auth.data !== undefined) props.authenticationData = auth.data;
    }
  }
  ch.keepAlive = keepAlive;
  // [MQTT-3.1.2-24] keepalive timeout = multiplier x keepalive (EMQX: 1.5).
  ch.io.setKeepalive(keepAlive > 0 ? keepAlive * 1000 * cfg.keepalive_multiplier : 0);
  ch.connectedAt = Date.now();

  ch.send({
    type: PacketType.CONNACK,
    sessionPresent,
    reasonCode: 0,
    properties: v5 ? props : undefined,
  });

  // Resend unacknowledged messages and drain the queue, after the CONNACK [MQTT-4.4.0-1].
  // MQTT 5 forbids resending at any other time, so retry_interval applies to 3.x only.
  session.attach(ch, ch.clientReceiveMaximum, v5 ? Infinity : cfg.retry_interval);

  broker.metrics.counter(MetricName.clientConnected).inc();
  broker.logger.info('client_connected', {
    clientid: clientId,
    username: ch.username,
    peername: `${ch.io.peerHost}:${ch.io.peerPort}`,
    listener: ch.io.listener,
    proto_ver: p.protocolVersion,
    keepalive: keepAlive,
    clean_start: p.cleanStart,
    session_present: sessionPresent,
  });
  if (broker.hooks.has('client.connected')) broker.hooks.run('client.connected', ch.clientInfo());
  ch.acceptConnect();
}
