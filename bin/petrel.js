#!/usr/bin/env node
// Entry point for `petrel` and `npm start`: the compiled CLI does the work.
import('../dist/src/main.js')
  .then((cli) => cli.main(process.argv.slice(2)))
  .then((code) => { if (typeof code === 'number') process.exitCode = code; })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
