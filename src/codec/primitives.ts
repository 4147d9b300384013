/**
 * Readers for MQTT data representations (section 1.5): two-byte integers, Variable Byte
 * Integers, UTF-8 strings, binary data. They work on a Cursor over one packet body and throw
 * MqttReasonError on malformed data; the decoder catches it (nothing escapes the codec).
 */
import { isUtf8 } from 'node:buffer';
import { ReasonCode } from './constants.js';
import { MqttReasonError } from './errors.js';

export interface Cursor {
  buf: Buffer;
  pos: number;
  /** Exclusive end of the readable region (end of packet, or of a property block). */
  end: number;
  /**
   * Where the packet's fixed header starts in `buf` when the whole packet, header included,
   * lies there (the decoder's common case); -1 when not (see publishFrameHead).
   */
  frameStart: number;
}

export function malformed(reason: string, packetType: number): MqttReasonError {
  return new MqttReasonError(ReasonCode.MalformedPacket, reason, packetType);
}
export function protocolError(reason: string, packetType: number): MqttReasonError {
  return new MqttReasonError(ReasonCode.ProtocolError, reason, packetType);
}

export function readU8(c: Cursor, packetType: number, what: string): number {
  if (c.pos >= c.end) throw malformed(`truncated ${what}`, packetType);
  return c.buf[c.pos++]!;
}

export function readU16(c: Cursor, packetType: number, what: string): number {
  if (c.pos + 2 > c.end) throw malformed(`truncated ${what}`, packetType);
  const v = (c.buf[c.pos]! << 8) | c.buf[c.pos + 1]!;
  c.pos += 2;
  return v;
}

/**
 * [MQTT-1.5.5-1] at most four bytes, the fourth without a continuation bit, and the fewest
 * bytes for the value: a last byte of 0 after a continuation (`80 00`, `81 00`) is an overlong
 * form. Same rule as the decoder applies to the Remaining Length.
 */
export function readVarInt(c: Cursor, packetType: number): number {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    if (c.pos >= c.end) throw malformed('truncated variable byte integer', packetType);
    const b = c.buf[c.pos++]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) throw malformed('variable byte integer not in its shortest form', packetType);
      return value;
    }
    mul *= 128;
  }
  throw malformed('variable byte integer longer than 4 bytes', packetType);
}

/**
 * A UTF-8 Encoded String: well-formed UTF-8 [MQTT-1.5.4-1] (which excludes the UTF-16
 * surrogates U+D800..U+DFFF) and no U+0000 [MQTT-1.5.4-2]. ASCII strings, the common case for
 * topics and client ids, are checked by one byte scan; others also go through isUtf8.
 */
export function readUtf8(c: Cursor, packetType: number, what: string): string {
  if (c.pos + 2 > c.end) throw malformed(`truncated ${what}`, packetType);
  const buf = c.buf;
  const start = c.pos + 2;
  const stop = start + ((buf[c.pos]! << 8) | buf[c.pos + 1]!);
  if (stop > c.end) throw malformed(`${what} longer than the packet`, packetType);
  let ascii = true;
  for (let i = start; i < stop; i++) {
    const b = buf[i]!;
    if (b === 0) throw malformed(`${what} contains U+0000`, packetType);
    if (b >= 0x80) ascii = false;
  }
  c.pos = stop;
  if (ascii) return buf.toString('latin1', start, stop);
  if (!isUtf8(buf.subarray(start, stop))) throw malformed(`${what} is not well-formed UTF-8`, packetType);
  return buf.toString('utf8', start, stop);
}

/** Slots of the topic-name cache (a power of two). */
const TOPIC_CACHE_SLOTS = 1024;
/** Longest topic name the cache keeps. */
const TOPIC_CACHE_MAX_LENGTH = 128;
const topicCache: string[] = new Array<string>(TOPIC_CACHE_SLOTS).fill('');

/**
 * A PUBLISH topic name: readUtf8, plus a direct-mapped cache of ASCII names. Publishers
 * repeat a handful of topics, and comparing a short name's bytes with the cached string
 * costs less than making a new string (a call into C++ and an allocation) for every
 * message; the routing caches keyed by the topic then see the same string too. A slot
 * collision only costs a miss: a name is returned from the cache only when every byte matches.
 */
export function readTopicName(c: Cursor, packetType: number): string {
  if (c.pos + 2 > c.end) throw malformed('truncated topic name', packetType);
  const buf = c.buf;
  const start = c.pos + 2;
  const len = (buf[c.pos]! << 8) | buf[c.pos + 1]!;
  const stop = start + len;
  if (stop > c.end) throw malformed('topic name longer than the packet', packetType);
  let ascii = true;
  let hash = len;
  for (let i = start; i < stop; i++) {
    const b = buf[i]!;
    if (b === 0) throw malformed('topic name contains U+0000', packetType);
    if (b >= 0x80) ascii = false;
    hash = (Math.imul(hash, 31) + b) | 0;
  }
  c.pos = stop;
  if (!ascii) {
    if (!isUtf8(buf.subarray(start, stop))) throw malformed('topic name is not well-formed UTF-8', packetType);
    return buf.toString('utf8', start, stop);
  }
  const slot = hash & (TOPIC_CACHE_SLOTS - 1);
  const cached = topicCache[slot]!;
  if (cached.length === len) {
    let i = 0;
    while (i < len && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === len) return cached;
  }
  const topic = buf.toString('latin1', start, stop);
  if (len <= TOPIC_CACHE_MAX_LENGTH) topicCache[slot] = topic;
  return topic;
}

/** Binary Data: two-byte length then bytes; returned as a view, not a copy. */
export function readBinary(c: Cursor, packetType: number, what: string): Buffer {
  const len = readU16(c, packetType, what);
  if (c.pos + len > c.end) throw malformed(`${what} longer than the packet`, packetType);
  const out = c.buf.subarray(c.pos, c.pos + len);
  c.pos += len;
  return out;
}
