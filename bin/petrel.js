#!/usr/bin/env -S node --min-semi-space-size=4 --no-allocation-site-pretenuring
// Entry point for `petrel` and `npm start`: the compiled CLI does the work.
// --no-allocation-site-pretenuring: the broker's per-message objects (the Message, the inflight
// entry) live exactly as long as a message is in flight, so V8's allocation sites decide to
// allocate them straight in the old generation in some runs and not in others; in those runs
// the same build spends 40-60% more CPU per message (docs/benchmarks.md, "Pretenuring").
// --min-semi-space-size=4 (MB): starts the young generation large enough that a burst of
// in-flight messages dies young instead of being promoted. Both must be start flags: V8 does
// not resize the young generation when a flag is set at run time.
import('../dist/src/main.js')
  .then((cli) => cli.main(process.argv.slice(2)))
  .then((code) => { if (typeof code === 'number') process.exitCode = code; })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
