/**
 * The bench payload header, 20 bytes at the start of every generated PUBLISH payload:
 *
 *   0..1   magic "Pb"
 *   2..3   run id (u16, random per `petrel bench pub` run, so two runs do not mix)
 *   4..7   publisher index (u32, the client index of the publisher)
 *   8..11  sequence number (u32, from 0, per publisher)
 *   12..19 send time, µs on the monotonic clock (float64 LE) — CLOCK_MONOTONIC is shared by
 *          every process on the host, so a subscriber in another process can subtract it
 *
 * The rest of the payload (up to `-s` bytes) is filler. A payload without the magic is
 * counted as "foreign" and not tracked.
 */

export const HEADER_SIZE = 20;
const MAGIC0 = 0x50; // 'P'
const MAGIC1 = 0x62; // 'b'

/** Microseconds on the monotonic clock (the same clock in every process of the host). */
export function nowUs(): number {
  const t = process.hrtime();
  return t[0] * 1e6 + t[1] / 1e3;
}

/** Writes a full header at `off`. */
export function writeHeader(buf: Buffer, off: number, runId: number, pubId: number, seq: number, timeUs: number): void {
  buf[off] = MAGIC0;
  buf[off + 1] = MAGIC1;
  buf.writeUInt16BE(runId, off + 2);
  buf.writeUInt32BE(pubId, off + 4);
  buf.writeUInt32BE(seq >>> 0, off + 8);
  buf.writeDoubleLE(timeUs, off + 12);
}

/** Patches sequence number and time of a header already written at `off`. */
export function patchHeader(buf: Buffer, off: number, seq: number, timeUs: number): void {
  buf.writeUInt32BE(seq >>> 0, off + 8);
  buf.writeDoubleLE(timeUs, off + 12);
}

export function hasHeader(payload: Buffer): boolean {
  return payload.length >= HEADER_SIZE && payload[0] === MAGIC0 && payload[1] === MAGIC1;
}

/** Publisher key: run id and publisher index in one safe integer. */
export function publisherKey(payload: Buffer): number {
  return payload.readUInt16BE(2) * 0x100000000 + payload.readUInt32BE(4);
}

export function sequenceOf(payload: Buffer): number {
  return payload.readUInt32BE(8);
}

export function sendTimeOf(payload: Buffer): number {
  return payload.readDoubleLE(12);
}
