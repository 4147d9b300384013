/**
 * SUBSCRIBE and UNSUBSCRIBE (MQTT 5 sections 3.8-3.11). SUBACK is sent before the retained
 * messages the new subscriptions bring, so the client sees the grant first.
 */
import { MqttReasonError, PacketType, ReasonCode, SUBACK_FAILURE_V3, type QoS, type SubscribePacket, type UnsubscribePacket } from '../../codec/index.js';
import { makeSubOptions, type Message } from '../../broker/index.js';
import type { AuthDecision } from '../../hooks/index.js';
import type { Channel } from '../channel.js';
import { holdFor, isHeld, queueIfHeld } from './authorize.js';
import { mountFilter } from '../mountpoint.js';

export function handleSubscribe(ch: Channel, p: SubscribePacket): void {
  // Behind a PUBLISH/SUBSCRIBE still waiting for its authorization: keep the order.
  if (isHeld(ch)) {
    queueIfHeld(ch, () => handleSubscribe(ch, p));
    return;
  }
  const hooks = ch.broker.hooks;
  if (!hooks.has('client.authorize')) return subscribeAuthorized(ch, p, undefined);
  const info = ch.clientInfo();
  const decisions = p.subscriptions.map((req) => hooks.authorize(info, 'subscribe', req.topicFilter, { qos: req.qos, retain: false }));
  if (decisions.every((d): d is AuthDecision => typeof d === 'string')) return subscribeAuthorized(ch, p, decisions);
  // An http source is being asked: this client's input waits for every answer (authorize.ts).
  holdFor(ch, Promise.all(decisions), decisions.map((): AuthDecision => 'deny'), (ds) => subscribeAuthorized(ch, p, ds));
}

/** SUBSCRIBE with each filter's authorization decided (`decisions[i]`; undefined: no authorization). */
function subscribeAuthorized(ch: Channel, p: SubscribePacket, decisions: readonly AuthDecision[] | undefined): void {
  const broker = ch.broker;
  const cfg = broker.config.mqtt;
  const session = ch.session!;
  const v5 = ch.protocolVersion === 5;
  const subscriptionId = p.properties?.subscriptionIdentifiers?.[0] ?? 0;
  const codes: number[] = [];
  const retainedToSend: Array<{ filter: string; qos: QoS; ids: readonly number[] }> = [];

  for (let i = 0; i < p.subscriptions.length; i++) {
    const req = p.subscriptions[i]!;
    const raw = req.topicFilter;
    if (decisions?.[i] === 'deny') {
      broker.logger.info('subscribe_denied', { clientid: ch.clientId, topic: raw, reason: 'not_authorized' });
      codes.push(v5 ? ReasonCode.NotAuthorized : SUBACK_FAILURE_V3);
      continue;
    }
    // Authorized as the client wrote it; subscribed with the listener's mountpoint (EMQX).
    const filter = ch.mountpoint === null ? raw : mountFilter(ch.mountpoint, raw);
    const existing = session.subscriptions.get(filter);
    if (existing === undefined && session.subscriptions.size >= cfg.max_subscriptions) {
      broker.logger.info('subscribe_denied', { clientid: ch.clientId, topic: raw, reason: 'max_subscriptions' });
      codes.push(v5 ? ReasonCode.QuotaExceeded : SUBACK_FAILURE_V3);
      continue;
    }
    // The server may grant a lower QoS than asked [MQTT-3.9.3-?]; mqtt.max_qos_allowed caps it.
    const qos = (req.qos > cfg.max_qos_allowed ? cfg.max_qos_allowed : req.qos) as QoS;
    const opts = makeSubOptions(qos, req.noLocal, req.retainAsPublished, req.retainHandling, subscriptionId);
    const result = broker.subscribe(session, filter, opts);
    if (result.code >= 0x80) {
      if (result.code === ReasonCode.ProtocolError) {
        // [MQTT-3.8.3-4] No Local on a shared subscription.
        return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, 'No Local set on a shared subscription', PacketType.SUBSCRIBE));
      }
      broker.logger.info('subscribe_denied', { clientid: ch.clientId, topic: raw, reason_code: result.code });
      codes.push(v5 ? result.code : SUBACK_FAILURE_V3);
      continue;
    }
    // [MQTT-3.8.4-3] a repeated filter replaces the existing subscription.
    session.addSubscription(filter, opts);
    codes.push(result.code);
    if (broker.hooks.has('client.subscribe')) broker.hooks.run('client.subscribe', ch.clientInfo(), raw, qos);
    // Retained messages: never for shared subscriptions [MQTT-3.8.4-?]; Retain Handling 0 =
    // always, 1 = only for a new subscription, 2 = never [MQTT-3.3.1-9..11].
    if (result.group === null && (req.retainHandling === 0 || (req.retainHandling === 1 && result.isNew))) {
      retainedToSend.push({ filter: result.filter, qos, ids: opts.subscriptionIds });
    }
  }
  ch.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: codes });
  for (const r of retainedToSend) {
    for (const msg of broker.retainedFor(r.filter)) {
      const granted = (cfg.upgrade_qos ? Math.max(msg.qos, r.qos) : Math.min(msg.qos, r.qos)) as QoS;
      // [MQTT-3.3.1-8] retained messages sent for a new subscription carry RETAIN 1.
      session.deliver(msg as Message, granted, true, r.ids);
    }
  }
}

export function handleUnsubscribe(ch: Channel, p: UnsubscribePacket): void {
  // An UNSUBSCRIBE behind a held SUBSCRIBE must not overtake it.
  if (isHeld(ch)) {
    queueIfHeld(ch, () => handleUnsubscribe(ch, p));
    return;
  }
  const broker = ch.broker;
  const session = ch.session!;
  const codes: number[] = [];
  for (const raw of p.topicFilters) {
    const filter = ch.mountpoint === null ? raw : mountFilter(ch.mountpoint, raw);
    const had = session.removeSubscription(filter);
    if (had) broker.unsubscribe(session, filter);
    codes.push(had ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted);
    if (had && broker.hooks.has('client.unsubscribe')) broker.hooks.run('client.unsubscribe', ch.clientInfo(), raw);
  }
  // [MQTT-3.10.4-4] UNSUBACK even when nothing was removed.
  ch.send({ type: PacketType.UNSUBACK, packetId: p.packetId, reasonCodes: codes });
}
