/** Process entry (bin/petrel.js): the CLI with the real broker wired in. */
import { createBroker } from './app.js';
import { packageVersion, runCli } from './cli/main.js';

export function main(argv: string[]): Promise<number> {
  return runCli(argv, {
    createFromSources: (sources) => createBroker({}, { sources }),
    version: packageVersion(new URL('../../package.json', import.meta.url)),
  });
}
