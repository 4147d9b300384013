/**
 * A log-linear latency histogram in microseconds (the HdrHistogram idea, cut down): values
 * below 2^SUB_BITS are counted exactly; above, each power of two is split into 2^(SUB_BITS-1)
 * equal buckets, so a percentile is within 1/64 (≈ 1.6 %) of the true value. Fixed memory
 * (a Float64Array of a few thousand counts), O(1) record, mergeable across threads.
 */

const SUB_BITS = 7; // 128 exact values, then 64 buckets per doubling
const SUB_COUNT = 1 << SUB_BITS;
const HALF = SUB_COUNT >> 1;
const MAX_EXP = 40; // up to 2^40 µs (12 days): more than enough
const BUCKETS = SUB_COUNT + (MAX_EXP - SUB_BITS + 1) * HALF;

function bucketOf(v: number): number {
  if (v < SUB_COUNT) return v < 0 ? 0 : Math.floor(v);
  const x = Math.floor(v);
  const exp = exponent(x);
  if (exp > MAX_EXP) return BUCKETS - 1;
  // x in [2^exp, 2^(exp+1)): HALF sub-buckets of width 2^(exp - SUB_BITS + 1).
  const shift = exp - SUB_BITS + 1;
  const sub = Math.floor(x / 2 ** shift) - HALF; // 0..HALF-1
  return SUB_COUNT + (exp - SUB_BITS) * HALF + sub;
}

/** floor(log2(x)) for x >= 1, exact beyond 32 bits too. */
function exponent(x: number): number {
  if (x < 0x80000000) return 31 - Math.clz32(x);
  let e = Math.floor(Math.log2(x));
  if (2 ** e > x) e--;
  else if (2 ** (e + 1) <= x) e++;
  return e;
}

/** Lowest value that falls into bucket `i` (the value reported for a percentile). */
function lowOf(i: number): number {
  if (i < SUB_COUNT) return i;
  const k = i - SUB_COUNT;
  const exp = Math.floor(k / HALF) + SUB_BITS;
  const sub = k % HALF;
  return (HALF + sub) * 2 ** (exp - SUB_BITS + 1);
}

function highOf(i: number): number {
  return i + 1 < BUCKETS ? lowOf(i + 1) - 1 : Number.MAX_SAFE_INTEGER;
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  record(valueUs: number): void {
    const v = valueUs < 0 ? 0 : valueUs;
    this.counts[bucketOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Value at percentile `p` (0..100): the middle of the bucket holding it, clamped to min/max. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    const c = this.counts;
    for (let i = 0; i < BUCKETS; i++) {
      seen += c[i]!;
      if (seen >= rank) {
        const mid = (lowOf(i) + highOf(i)) / 2;
        return Math.min(Math.max(mid, this.min), this.max);
      }
    }
    return this.max;
  }

  add(other: Histogram | SerializedHistogram): void {
    const oc = other.counts;
    if (oc.length !== BUCKETS) throw new RangeError('histogram layout mismatch');
    for (let i = 0; i < BUCKETS; i++) {
      const n = oc[i]!;
      if (n !== 0) this.counts[i]! += n;
    }
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      if (other.min < this.min) this.min = other.min;
      if (other.max > this.max) this.max = other.max;
    }
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      min: this.count ? round(this.min) : 0,
      mean: this.count ? round(this.sum / this.count) : 0,
      p50: round(this.percentile(50)),
      p90: round(this.percentile(90)),
      p99: round(this.percentile(99)),
      p999: round(this.percentile(99.9)),
      max: round(this.max),
    };
  }

  /** A plain copy for postMessage (structured clone keeps the typed array). */
  serialize(): SerializedHistogram {
    return { counts: this.counts.slice(), count: this.count, sum: this.sum, min: this.min, max: this.max };
  }

  static from(s: SerializedHistogram): Histogram {
    const h = new Histogram();
    h.add(s);
    return h;
  }
}

export interface SerializedHistogram {
  counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
