/**
 * Start-up restore from the durable store: sessions (subscriptions back in the router, queued
 * and in-flight messages, awaiting-PUBREL ids), retained messages, delayed wills and delayed
 * publishes. What expired while the broker was down is dropped here and counted.
 *
 * Called once by the app before any listener accepts; synchronous.
 */
import { makeSubOptions, type Broker, type Message } from '../broker/index.js';
import { MetricName } from '../observability/index.js';
import type { DurableState } from '../store/index.js';
import { Session } from './session.js';

export interface RestoreSummary {
  sessions: number;
  sessionsExpired: number;
  messages: number;
  messagesExpired: number;
  retained: number;
  retainedExpired: number;
  wills: number;
  delayed: number;
}

export function restoreDurableState(broker: Broker, state: DurableState, now: number): RestoreSummary {
  const store = broker.store!;
  const summary: RestoreSummary = { sessions: 0, sessionsExpired: 0, messages: 0, messagesExpired: 0, retained: 0, retainedExpired: 0, wills: 0, delayed: 0 };
  broker.restoreMessageIds(state.maxMessageId);
  const expired = (m: { expiresAt: number }): boolean => m.expiresAt !== 0 && m.expiresAt <= now;

  for (const msg of state.retained) {
    if (expired(msg)) {
      store.deleteRetained(msg.topic);
      summary.retainedExpired++;
    } else {
      broker.restoreRetained(msg);
      summary.retained++;
    }
  }

  // Message bodies are shared by the sessions that reference them.
  const messages = new Map<number, Message>();
  for (const [id, m] of state.messages) messages.set(id, { ...m, refs: 0 });

  const live = new Set<string>();
  for (const ps of state.sessions) {
    // A session whose client was connected when the broker stopped starts its clock now.
    const leftAt = ps.disconnectedAt === 0 ? now : ps.disconnectedAt;
    if (Number.isFinite(ps.expiryInterval) && leftAt + ps.expiryInterval <= now) {
      store.deleteSession(ps.clientId);
      summary.sessionsExpired++;
      broker.metrics.counter(MetricName.sessionExpired).inc();
      broker.logger.info('session_expired', { clientid: ps.clientId, while_down: true, queued: ps.deliveries.length });
      continue;
    }
    const session = new Session(ps.clientId, broker);
    session.expiryInterval = ps.expiryInterval;
    session.persisted = true;
    for (const sub of ps.subscriptions) {
      const opts = makeSubOptions(sub.qos, sub.noLocal, sub.retainAsPublished, sub.retainHandling, sub.subscriptionId);
      const result = broker.subscribe(session, sub.filter, opts);
      if (result.code < 0x80) session.restoreSubscription(sub.filter, opts);
    }
    for (const d of ps.deliveries) {
      const msg = messages.get(d.messageId);
      if (msg === undefined) {
        store.deleteDelivery(ps.clientId, d.seq, d.messageId);
        continue;
      }
      if (d.state === 'queued' && expired(msg)) {
        // Expired while down [MQTT-3.3.2-5]; in-flight ones are still resent (the client may
        // hold half of a QoS 2 exchange).
        store.deleteDelivery(ps.clientId, d.seq, d.messageId);
        summary.messagesExpired++;
        broker.metrics.counter(MetricName.messagesDroppedExpired).inc();
        continue;
      }
      session.restoreDelivery(msg, d.qos, d.retain, d.subscriptionIds, d.seq, d.state, d.packetId);
      summary.messages++;
    }
    for (const id of ps.awaitingRel) session.restoreAwaitingRel(id);
    broker.registerSession(session);
    live.add(ps.clientId);
    session.startExpiryClock(Number.isFinite(ps.expiryInterval) ? leftAt + ps.expiryInterval - now : Infinity);
    summary.sessions++;
  }
  // Bodies no restored delivery references any more.
  for (const m of messages.values()) if (m.refs === 0) store.deleteMessage(m.id);

  for (const w of state.wills) {
    // A will waits for its delay or the end of its session, whichever comes first
    // [MQTT-3.1.3-9]: a session that ended while the broker was down sends it at start.
    broker.restoreWill(w.clientId, w.message, live.has(w.clientId) ? w.dueAt : now, now);
    summary.wills++;
  }
  for (const d of state.delayed) {
    broker.restoreDelayed(d.message, d.dueAt, now);
    summary.delayed++;
  }
  return summary;
}
