/**
 * Per-publisher sequence tracking on the subscriber side. One `SeqTrack` per (subscriber,
 * publisher) pair keeps a bitmap of the sequence numbers seen, so a message is classed exactly:
 * - duplicate: its sequence number was seen before by this subscriber;
 * - out of order: a new number lower than the highest seen so far;
 * - lost: a number below the highest seen that never arrived (a gap), counted at the end;
 *   messages after the last one received are invisible here — `expectedPerPublisher` (when the
 *   caller knows it) turns them into losses too.
 * Memory: one bit per message per pair (1 M messages = 125 KB).
 */

export const SEEN_IN_ORDER = 0;
export const SEEN_OUT_OF_ORDER = 1;
export const SEEN_DUPLICATE = 2;

export class SeqTrack {
  private bits = new Uint8Array(1024);
  maxSeq = -1;
  unique = 0;
  duplicates = 0;
  outOfOrder = 0;

  /** Records one arrival: SEEN_IN_ORDER, SEEN_OUT_OF_ORDER or SEEN_DUPLICATE. */
  see(seq: number): number {
    const byte = seq >>> 3;
    if (byte >= this.bits.length) {
      let n = this.bits.length * 2;
      while (n <= byte) n *= 2;
      const grown = new Uint8Array(n);
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (seq & 7);
    const b = this.bits[byte]!;
    if (b & mask) {
      this.duplicates++;
      return SEEN_DUPLICATE;
    }
    this.bits[byte] = b | mask;
    this.unique++;
    if (seq < this.maxSeq) {
      this.outOfOrder++;
      return SEEN_OUT_OF_ORDER;
    }
    this.maxSeq = seq;
    return SEEN_IN_ORDER;
  }

  /** Gaps below the highest number seen (sequence numbers start at 0). */
  gaps(): number {
    return this.maxSeq + 1 - this.unique;
  }
}

export interface SeqTotals {
  /** Distinct (subscriber, publisher) pairs seen. */
  streams: number;
  unique: number;
  duplicates: number;
  outOfOrder: number;
  /** Gaps below the highest sequence number seen, summed over streams. */
  lost: number;
}

/** The trackers of one subscriber connection. */
export class SubscriberTracks {
  readonly byPublisher = new Map<number, SeqTrack>();
  private lastKey = -1;
  private last: SeqTrack | null = null;

  see(key: number, seq: number): number {
    let t: SeqTrack | undefined;
    if (key === this.lastKey) t = this.last!;
    else {
      t = this.byPublisher.get(key);
      if (t === undefined) {
        t = new SeqTrack();
        this.byPublisher.set(key, t);
      }
      this.lastKey = key;
      this.last = t;
    }
    return t.see(seq);
  }

  addTo(totals: SeqTotals): void {
    for (const t of this.byPublisher.values()) {
      totals.streams++;
      totals.unique += t.unique;
      totals.duplicates += t.duplicates;
      totals.outOfOrder += t.outOfOrder;
      totals.lost += t.gaps();
    }
  }
}

export function emptyTotals(): SeqTotals {
  return { streams: 0, unique: 0, duplicates: 0, outOfOrder: 0, lost: 0 };
}
