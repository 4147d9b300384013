/**
 * Conversions between broker values and SQLite column values.
 *
 * MQTT 5 properties are stored as JSON in which every Buffer (correlation data,
 * authentication data) is written as `{"$b":"<base64>"}`; arrays (user properties,
 * subscription identifiers) keep their order. Most messages carry no properties: those
 * store NULL and never touch JSON.
 */
import type { Properties, QoS } from '../../codec/index.js';
import type { StoredMessage } from '../types.js';
import type { PersistedDelivery } from '../durable.js';

export function encodeProperties(p: Properties | undefined): string | null {
  return p === undefined ? null : JSON.stringify(p, bufferReplacer);
}

export function decodeProperties(text: string): Properties {
  return JSON.parse(text, bufferReviver) as Properties;
}

// JSON.stringify hands the replacer the result of Buffer#toJSON; the holder still has the
// Buffer itself.
function bufferReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return Buffer.isBuffer(raw) ? { $b: raw.toString('base64') } : value;
}

function bufferReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const b = (value as { $b?: unknown }).$b;
    if (typeof b === 'string') return Buffer.from(b, 'base64');
  }
  return value;
}

/** deliveries.subscription_ids: NULL, one integer, or "1,2,3". */
export function encodeSubscriptionIds(ids: readonly number[]): number | string | null {
  return ids.length === 0 ? null : ids.length === 1 ? ids[0]! : ids.join(',');
}

export function decodeSubscriptionIds(v: number | string | null): number[] {
  if (v === null) return [];
  if (typeof v === 'number') return [v];
  return v.split(',').map(Number);
}

export const DELIVERY_STATES = ['queued', 'publish', 'pubrel'] as const;

export function stateCode(state: 'queued' | 'publish' | 'pubrel'): number {
  return state === 'queued' ? 0 : state === 'publish' ? 1 : 2;
}

/**
 * messages.d_state (schema 4): an inline delivery's state (bits 0-1), qos (2-3), retain (4)
 * and packet id (5 and up) in one integer, one value to bind instead of four.
 */
export function packInlineState(state: number, qos: number, retain: boolean, packetId: number): number {
  return state | (qos << 2) | (retain ? 16 : 0) | (packetId << 5);
}

/** The bits of d_state a state change keeps (qos and retain). */
export const INLINE_FIXED_BITS = 0b11100;
/** The other bits of d_state after a state change: the new state and packet id. */
export function inlineProgress(state: number, packetId: number): number {
  return state | (packetId << 5);
}

export function unpackInlineState(v: number): { state: number; qos: QoS; retain: boolean; packetId: number } {
  return { state: v & 3, qos: ((v >> 2) & 3) as QoS, retain: (v & 16) !== 0, packetId: v >>> 5 };
}

/** An inline delivery as loaded, from a `messages` row or a log entry. */
export function inlineDelivery(seq: number, messageId: number, dState: number, subscriptionIds: number[]): PersistedDelivery {
  const packed = unpackInlineState(dState);
  return {
    seq,
    messageId,
    qos: packed.qos,
    retain: packed.retain,
    subscriptionIds,
    packetId: packed.packetId,
    state: DELIVERY_STATES[packed.state] ?? 'queued',
  };
}

/** The message columns of a row, as read back. */
export interface MessageRow {
  id: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  sender: string;
  timestamp: number;
  expires_at: number;
  properties: string | null;
}

export function rowToMessage(r: MessageRow): StoredMessage {
  const msg: StoredMessage = {
    id: r.id,
    topic: r.topic,
    payload: r.payload,
    qos: r.qos as QoS,
    retain: r.retain !== 0,
    from: r.sender,
    timestamp: r.timestamp,
    expiresAt: r.expires_at,
  };
  if (r.properties !== null) msg.properties = decodeProperties(r.properties);
  return msg;
}

/**
 * The message columns shared by `messages`, retained, wills and delayed, in their order, for
 * the writes that are rare (unlike deliveries, which bind their values one by one for speed), so one
 * small array per write is fine here.
 */
export function messageColumns(m: StoredMessage): [number, string, Buffer, number, number, string, number, number, string | null] {
  return [
    m.id,
    m.topic,
    m.payload,
    m.qos,
    m.retain ? 1 : 0,
    m.from,
    m.timestamp,
    m.expiresAt,
    m.properties === undefined ? null : encodeProperties(m.properties),
  ];
}
