/**
 * How many pooled objects a batch recorder or writer keeps between batches.
 *
 * A fixed cap made a steady load of batches just above it allocate the difference afresh at
 * every batch (100 QoS 1 pairs: ~4,800 ops against a cap of 4,096), and those objects live
 * until the commit, long enough to be copied by a scavenge or two and die in the old
 * generation. So the pool follows what recent batches used: it keeps the largest recent
 * need, which decays slowly, so that a single burst's objects are let go once batches are
 * small again.
 */
export class PoolSize {
  private highWater = 0;

  constructor(private readonly min: number) {}

  /** Called once per batch with how many the batch used; returns how many to keep. */
  keep(used: number): number {
    // 1/64 per batch: a burst's extra entries go after a few hundred smaller batches.
    this.highWater = used >= this.highWater ? used : this.highWater - Math.ceil(this.highWater / 64);
    return this.highWater > this.min ? this.highWater : this.min;
  }
}
