/**
 * Outbound PUBLISH encoding for one channel.
 *
 * Hot path (once per delivered message): a message is encoded once per wire form and the
 * template is shared across every subscriber with that form (`msg.wire`), QoS 0 sends the
 * shared buffer itself, QoS 1/2 a copy with the packet id patched in. A form is cacheable when
 * nothing in the packet is specific to the subscriber or the moment: MQTT 3.x always; MQTT 5
 * when there are no subscription identifiers and no message expiry to count down.
 *
 * [MQTT-3.1.2-24/25] a packet larger than the client's Maximum Packet Size is not sent: it is
 * dropped, counted and logged, and the session treats it as delivered.
 *
 * A client with a mountpoint is sent the topic without it, so the shared templates (whose
 * topic is the routed one) are not for it: its templates live in `mountedForms`, shared by
 * the subscribers of one message with the same mountpoint (a dispatch reaches them one after
 * another), and a message outside its mountpoint is dropped as too large ones are.
 */
import { encodePublishTemplate, withPacketId, type Properties, type PublishTemplate, type QoS } from '../codec/index.js';
import type { Broker, Message } from '../broker/index.js';
import { MetricName, type Counter } from '../observability/index.js';
import type { Channel } from './channel.js';
import { unmountTopic } from './mountpoint.js';

/** Cache slot of a wire form: [3.x | 5] x QoS x RETAIN. */
export function formIndex(v5: boolean, qos: QoS, retain: boolean): number {
  return (v5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
}

/**
 * Templates of the last message sent to a mountpointed client, by wire form: one entry for
 * all channels (a dispatch is synchronous), replaced when the message or mountpoint changes.
 */
const mountedForms = {
  msg: null as Message | null,
  mountpoint: '',
  forms: new Array<PublishTemplate | undefined>(12),
};

/**
 * The received frame itself as the template (no copy, no encoding): same protocol family,
 * QoS and RETAIN as it arrived, so its bytes are the receiver's but for the packet id and
 * DUP, which the connection patches per delivery. `head`: the frame's bytes before the
 * payload; the packet id is the last field before it (3.x), or before the empty property
 * block's one length byte (MQTT 5).
 */
function inboundTemplate(payload: Buffer, head: number, qos: QoS, v5: boolean): PublishTemplate {
  return {
    buffer: Buffer.from(payload.buffer, payload.byteOffset - head, head + payload.length),
    packetIdOffset: qos > 0 ? head - (v5 ? 3 : 2) : 0,
  };
}

export class OutboundEncoder {
  private readonly cSent: Counter;
  private readonly cSentByQoS: readonly Counter[];
  private readonly cTooLarge: Counter;
  private readonly cDropped: Counter;

  /** One per broker, shared by its channels (outboundEncoder()): a channel keeps no state here. */
  constructor(broker: Broker) {
    this.cSent = broker.metrics.counter(MetricName.messagesSent);
    this.cSentByQoS = [MetricName.messagesQos0Sent, MetricName.messagesQos1Sent, MetricName.messagesQos2Sent].map((n) => broker.metrics.counter(n));
    this.cTooLarge = broker.metrics.counter(MetricName.messagesDroppedTooLarge);
    this.cDropped = broker.metrics.counter(MetricName.messagesDropped);
  }

  publish(ch: Channel, msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[], packetId: number, dup: boolean): boolean {
    const v5 = ch.protocolVersion === 5;
    let template: PublishTemplate;
    if (ch.mountpoint !== null) {
      const mounted = this.mountedTemplate(ch, msg, ch.mountpoint, v5, qos, retain, subscriptionIds);
      if (mounted === null) return false;
      template = mounted;
    } else if (!v5 || (subscriptionIds.length === 0 && msg.expiresAt === 0)) {
      const slot = formIndex(v5, qos, retain);
      let cached = msg.wireForm === slot ? msg.wire : msg.wireMore?.[slot];
      if (cached === undefined) {
        const inbound = msg.inbound;
        cached = inbound !== undefined && inbound >= 0 && (inbound & 15) === slot
          ? inboundTemplate(msg.payload, inbound >> 4, qos, v5)
          : encodePublishTemplate(
            { type: 3, topic: msg.topic, payload: msg.payload, qos, retain, dup: false, packetId: qos > 0 ? 1 : undefined, properties: v5 ? msg.properties : undefined },
            v5 ? 5 : 4,
          );
        if (msg.wire === undefined) {
          msg.wire = cached;
          msg.wireForm = slot;
        } else {
          (msg.wireMore ??= new Array<PublishTemplate | undefined>(12))[slot] = cached;
        }
      }
      template = cached;
    } else {
      template = encodePublishTemplate(
        { type: 3, topic: msg.topic, payload: msg.payload, qos, retain, dup: false, packetId: qos > 0 ? 1 : undefined, properties: this.perSubscriberProperties(msg, subscriptionIds) },
        5,
      );
    }
    if (template.buffer.length > ch.clientMaxPacketSize) {
      this.cTooLarge.value++;
      ch.broker.logger.info('delivery_dropped_too_large', {
        clientid: ch.clientId,
        topic: msg.topic,
        size: template.buffer.length,
        max: ch.clientMaxPacketSize,
      });
      return false;
    }
    const io = ch.io;
    // QoS 0 and 1 may reach the client before the turn's commit: if the broker dies before
    // it, the publisher (not yet acknowledged) sends again, and a second copy is what QoS 1
    // allows. QoS 2 waits: a second copy is what it forbids.
    const early = qos < 2;
    if (qos === 0) io.send(template.buffer, true);
    else if (io.sendWithPacketId !== undefined) io.sendWithPacketId(template.buffer, template.packetIdOffset, packetId, dup, early);
    else io.send(withPacketId(template, packetId, dup), early);
    this.cSent.value++;
    this.cSentByQoS[qos]!.value++;
    return true;
  }

  private mountedTemplate(
    ch: Channel,
    msg: Message,
    mp: string,
    v5: boolean,
    qos: QoS,
    retain: boolean,
    subscriptionIds: readonly number[],
  ): PublishTemplate | null {
    const topic = unmountTopic(mp, msg.topic);
    if (topic === null) {
      this.cDropped.value++;
      ch.broker.logger.info('delivery_dropped_outside_mountpoint', { clientid: ch.clientId, topic: msg.topic, mountpoint: mp });
      return null;
    }
    const packetId = qos > 0 ? 1 : undefined;
    if (v5 && (subscriptionIds.length > 0 || msg.expiresAt !== 0)) {
      return encodePublishTemplate(
        { type: 3, topic, payload: msg.payload, qos, retain, dup: false, packetId, properties: this.perSubscriberProperties(msg, subscriptionIds) },
        5,
      );
    }
    const cache = mountedForms;
    if (cache.msg !== msg || cache.mountpoint !== mp) {
      cache.msg = msg;
      cache.mountpoint = mp;
      cache.forms.fill(undefined);
    }
    const slot = formIndex(v5, qos, retain);
    return (cache.forms[slot] ??= encodePublishTemplate(
      { type: 3, topic, payload: msg.payload, qos, retain, dup: false, packetId, properties: v5 ? msg.properties : undefined },
      v5 ? 5 : 4,
    ));
  }

  private perSubscriberProperties(msg: Message, subscriptionIds: readonly number[]): Properties {
    const p: Properties = msg.properties === undefined ? {} : { ...msg.properties };
    if (msg.expiresAt !== 0) {
      // [MQTT-3.3.2-6] the interval sent is what remains of it.
      p.messageExpiryInterval = Math.max(0, Math.ceil((msg.expiresAt - Date.now()) / 1000));
    }
    if (subscriptionIds.length > 0) p.subscriptionIdentifiers = subscriptionIds.slice();
    return p;
  }
}

const encoders = new WeakMap<Broker, OutboundEncoder>();

/** The broker's shared encoder (made on first use). */
export function outboundEncoder(broker: Broker): OutboundEncoder {
  let e = encoders.get(broker);
  if (e === undefined) encoders.set(broker, (e = new OutboundEncoder(broker)));
  return e;
}
