/**
 * PUBLISH from the client and the acknowledgements of both directions' QoS 1/2 flows
 * (MQTT 5 sections 3.3-3.7, 4.3). Hot path: handlePublish runs once per inbound message,
 * synchronously, allocating the Message record and nothing else on the QoS 0/1 fast path.
 */
import {
  MqttReasonError,
  PacketType,
  publishFrameHead,
  ReasonCode,
  type PubackPacket,
  type PubcompPacket,
  type PublishPacket,
  type PubrecPacket,
  type PubrelPacket,
} from '../../codec/index.js';
import { PublishOutcome, type Message } from '../../broker/index.js';
import { MetricName } from '../../observability/index.js';
import { exceedsLevels, parseDelayed } from '../../topic/index.js';
import type { Channel } from '../channel.js';
import { holdFor, isHeld, queueIfHeld } from './authorize.js';
import { mountTopic } from '../mountpoint.js';
import { forwardable } from '../properties.js';
import { formIndex } from '../outbound.js';

/** Answers a QoS 1/2 PUBLISH with PUBACK / PUBREC carrying `code`. */
function ack(ch: Channel, p: PublishPacket, code: number, reason?: string): void {
  const v5 = ch.protocolVersion === 5;
  if (!v5 || (code === 0 && reason === undefined)) {
    // The common case, in its short form (packet id only).
    ch.sendAck(p.qos === 1 ? 0x40 : 0x50, p.packetId!);
    return;
  }
  ch.send({
    type: p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC,
    packetId: p.packetId!,
    reasonCode: v5 ? code : 0,
    properties: v5 && reason !== undefined ? ch.problem(reason) : undefined,
  });
}

/**
 * Rejects one PUBLISH without closing: MQTT 5 answers QoS 1/2 with the reason code; QoS 0 and
 * MQTT 3.x have no way to say no, so the message is dropped (3.x QoS 1/2 still acknowledged, as
 * EMQX does with deny_action = ignore, so the client does not resend forever).
 */
function reject(ch: Channel, p: PublishPacket, code: number, reason: string): void {
  ch.broker.metrics.counter(MetricName.messagesDropped).inc();
  if (p.qos > 0) ack(ch, p, code, reason);
}

export function handlePublish(ch: Channel, p: PublishPacket): void {
  // Behind a PUBLISH/SUBSCRIBE still waiting for its authorization: keep the order.
  if (isHeld(ch)) {
    queueIfHeld(ch, () => handlePublish(ch, p));
    return;
  }
  const broker = ch.broker;
  const cfg = broker.config.mqtt;
  const v5 = ch.protocolVersion === 5;

  // [MQTT-3.2.2-11] a QoS above Maximum QoS is a protocol error (0x9B).
  if (p.qos > cfg.max_qos_allowed) {
    return ch.fail(new MqttReasonError(ReasonCode.QoSNotSupported, `QoS ${p.qos} above the maximum ${cfg.max_qos_allowed}`, PacketType.PUBLISH));
  }
  // [MQTT-3.2.2-14] RETAIN when retain is not available is a protocol error (0x9A).
  if (p.retain && !cfg.retain_available) {
    return ch.fail(new MqttReasonError(ReasonCode.RetainNotSupported, 'retain is not available', PacketType.PUBLISH));
  }

  let topic = p.topic;
  const props = p.properties;
  if (props !== undefined) {
    // [MQTT-3.3.4-6] a PUBLISH from a client carries no Subscription Identifier.
    if (props.subscriptionIdentifiers !== undefined) {
      return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, 'subscription identifier in a PUBLISH from a client', PacketType.PUBLISH));
    }
    const alias = props.topicAlias;
    if (alias !== undefined) {
      // [MQTT-3.3.2-9] / [MQTT-3.3.2-10] alias 0 or above our Topic Alias Maximum: 0x94.
      if (alias > cfg.max_topic_alias) {
        return ch.fail(new MqttReasonError(ReasonCode.TopicAliasInvalid, `topic alias ${alias} above the maximum ${cfg.max_topic_alias}`, PacketType.PUBLISH));
      }
      if (topic.length > 0) (ch.inboundAliases ??= new Map()).set(alias, topic);
      else {
        const known = ch.inboundAliases?.get(alias);
        if (known === undefined) {
          return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, `unknown topic alias ${alias}`, PacketType.PUBLISH));
        }
        topic = known;
      }
    }
  }

  if (exceedsLevels(topic, cfg.max_topic_levels)) {
    if (!v5) return ch.fail(new MqttReasonError(ReasonCode.TopicNameInvalid, `topic has more than ${cfg.max_topic_levels} levels`, PacketType.PUBLISH));
    return reject(ch, p, ReasonCode.TopicNameInvalid, `topic has more than ${cfg.max_topic_levels} levels`);
  }
  // The $SYS rule and authorization apply to the topic the message lands on: a delayed
  // publish must not be a way around them.
  const target = landingTopic(topic);
  // Clients may not write into the broker's own topics (MQTT 5 section 4.7.2).
  if (target.startsWith('$SYS/')) {
    return reject(ch, p, ReasonCode.NotAuthorized, '$SYS topics are read-only');
  }
  if (broker.hooks.has('client.authorize')) {
    const d = broker.hooks.authorize(ch.clientInfo(), 'publish', target, { qos: p.qos, retain: p.retain });
    if (d === 'deny') return denyPublish(ch, p, topic);
    if (typeof d === 'object') {
      // An http source is being asked: this client's input waits for the answer (authorize.ts).
      return holdFor(ch, d, 'deny', (r) => (r === 'deny' ? denyPublish(ch, p, topic) : acceptPublish(ch, p, topic)));
    }
  }
  acceptPublish(ch, p, topic);
}

function denyPublish(ch: Channel, p: PublishPacket, topic: string): void {
  const broker = ch.broker;
  broker.logger.info('publish_denied_not_authorized', { clientid: ch.clientId, topic });
  if (broker.config.authorization.deny_action === 'disconnect') {
    return ch.fail(new MqttReasonError(ReasonCode.NotAuthorized, `publish to ${topic} not authorized`, PacketType.PUBLISH));
  }
  reject(ch, p, ReasonCode.NotAuthorized, 'not authorized');
}

/** handlePublish once the PUBLISH is authorized: store health, QoS 2 state, route, acknowledge. */
function acceptPublish(ch: Channel, p: PublishPacket, topic: string): void {
  const broker = ch.broker;
  const cfg = broker.config.mqtt;
  const v5 = ch.protocolVersion === 5;
  const props = p.properties;
  if (p.qos > 0 && !broker.storeHealthy) {
    // The durable store failed its last commit: refuse rather than acknowledge what may not
    // be kept (issue 4). MQTT 3.x has no negative acknowledgement, so the connection closes
    // unacknowledged and the client resends after reconnecting.
    if (v5) {
      broker.metrics.counter(MetricName.messagesDropped).inc();
      return ack(ch, p, ReasonCode.UnspecifiedError, 'storage unavailable');
    }
    return ch.fail(new MqttReasonError(ReasonCode.ServerUnavailable, 'storage unavailable: QoS 1/2 not accepted', PacketType.PUBLISH));
  }

  countReceived(ch, p.qos);

  if (p.qos === 2) {
    const state = ch.session!.beginInboundQoS2(p.packetId!);
    if (state === 'duplicate') {
      // [MQTT-4.3.3-?] a resent PUBLISH for an id awaiting PUBREL is not delivered again.
      return ack(ch, p, 0);
    }
    if (state === 'full') {
      // More unreleased QoS 2 messages than our Receive Maximum (max_awaiting_rel) [MQTT-3.3.4-8].
      return ch.fail(new MqttReasonError(ReasonCode.ReceiveMaximumExceeded, `more than ${cfg.max_awaiting_rel} QoS 2 messages awaiting PUBREL`, PacketType.PUBLISH));
    }
  }

  const now = ch.now();
  let expiresAt = 0;
  const expiry = props?.messageExpiryInterval;
  if (expiry !== undefined) expiresAt = now + expiry * 1000;
  if (Number.isFinite(cfg.message_expiry_interval)) {
    const cap = now + cfg.message_expiry_interval;
    if (expiresAt === 0 || cap < expiresAt) expiresAt = cap;
  }
  const msg: Message = {
    id: broker.newMessageId(),
    topic: ch.mountpoint === null ? topic : mountTopic(ch.mountpoint, topic),
    payload: p.payload,
    qos: p.qos,
    retain: p.retain,
    from: ch.clientId,
    timestamp: now,
    expiresAt,
    properties: v5 ? forwardable(props) : undefined,
    wire: undefined,
    wireForm: undefined,
    wireMore: undefined,
    inbound: -1,
    refs: undefined,
    owned: undefined,
  };
  // The received bytes can be sent on as they are when the topic is the one they carry (no
  // mountpoint, no $delayed, no alias) and MQTT 5 sent no properties (outbound.ts).
  if (msg.topic === p.topic && (!v5 || props === undefined)) {
    const head = publishFrameHead(p);
    if (head >= 0) msg.inbound = (head << 4) | formIndex(v5, p.qos, p.retain);
  }
  // While routing, a congested subscriber may hold this publisher back (backpressure.ts).
  const bp = broker.backpressure;
  bp.current = ch;
  let outcome: number;
  try {
    outcome = broker.publish(msg);
  } finally {
    bp.current = null;
  }
  if (p.qos === 0) return;
  if (p.qos === 2 && outcome < 0 && outcome !== PublishOutcome.Delayed) {
    // A PUBREC >= 0x80 ends the exchange: the packet id is free again (MQTT 5 section 2.2.1).
    ch.session!.release(p.packetId!);
  }
  if (outcome === PublishOutcome.DelayedRejected) return ack(ch, p, ReasonCode.TopicNameInvalid, 'invalid $delayed topic');
  if (outcome === PublishOutcome.DelayedQuotaExceeded) return ack(ch, p, ReasonCode.QuotaExceeded, 'too many delayed messages');
  // 0x10 tells an MQTT 5 publisher nobody received it (EMQX does the same).
  ack(ch, p, outcome === 0 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success);
}

/**
 * The topic a PUBLISH (or a will) is finally routed to: the inner topic of EMQX's
 * `$delayed/<seconds>/<topic>`, otherwise the topic itself. One char test on the hot path.
 */
export function landingTopic(topic: string): string {
  if (topic.charCodeAt(0) !== 0x24 /* $ */) return topic;
  const delayed = parseDelayed(topic);
  return delayed !== null && !('invalid' in delayed) ? delayed.topic : topic;
}

function countReceived(ch: Channel, qos: number): void {
  const c = ch.broker.counters;
  c.messagesReceived.value++;
  c.receivedByQoS[qos]!.value++;
}

export function handlePuback(ch: Channel, p: PubackPacket): void {
  // An unknown id is ignored: the PUBACK may answer a message of a discarded session.
  ch.session!.onPuback(p.packetId);
}

export function handlePubrec(ch: Channel, p: PubrecPacket): void {
  const known = ch.session!.onPubrec(p.packetId, p.reasonCode);
  if (p.reasonCode >= 0x80) return; // the exchange ends here [MQTT-4.3.3-?]
  // [MQTT-4.3.3-?] answer with PUBREL; MQTT 5 says 0x92 when the id is not known.
  if (known || ch.protocolVersion < 5) return ch.sendAck(0x62, p.packetId);
  ch.send({
    type: PacketType.PUBREL,
    packetId: p.packetId,
    reasonCode: known || ch.protocolVersion < 5 ? 0 : ReasonCode.PacketIdentifierNotFound,
  });
}

export function handlePubrel(ch: Channel, p: PubrelPacket): void {
  const known = ch.session!.release(p.packetId);
  if (known || ch.protocolVersion < 5) return ch.sendAck(0x70, p.packetId);
  ch.send({
    type: PacketType.PUBCOMP,
    packetId: p.packetId,
    reasonCode: known || ch.protocolVersion < 5 ? 0 : ReasonCode.PacketIdentifierNotFound,
  });
}

export function handlePubcomp(ch: Channel, p: PubcompPacket): void {
  ch.session!.onPubcomp(p.packetId);
}
