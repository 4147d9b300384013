#!/usr/bin/env -S node --min-semi-space-size=16
// Entry point for `petrel` and `npm start`: the compiled CLI does the work.
// --min-semi-space-size=16 (MB): keeps V8's young generation from settling small after the
// management API's start-up allocations, which cost the message plane ~1 µs per message
// (docs/benchmarks.md, "A regression found at the end of session 2"). It must be a start flag:
// V8 does not resize the young generation when the flag is set at run time.
import('../dist/src/main.js')
  .then((cli) => cli.main(process.argv.slice(2)))
  .then((code) => { if (typeof code === 'number') process.exitCode = code; })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
