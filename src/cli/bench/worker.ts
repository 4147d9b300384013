/**
 * Worker-thread entry of `petrel bench --workers N`: runs one ThreadRunner and answers the
 * coordinator's messages (go, tick, stop) over the parent port.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ThreadRunner, type ThreadSpec } from './runner.js';

export type ToWorker = { t: 'go' } | { t: 'tick' } | { t: 'stop' };

const port = parentPort;
if (port === null) throw new Error('bench worker started outside a worker thread');

const runner = new ThreadRunner(workerData as ThreadSpec, {
  ready: () => port.postMessage({ t: 'ready' }),
  done: () => port.postMessage({ t: 'done' }),
});

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'go':
      runner.go();
      return;
    case 'tick':
      port.postMessage({ t: 'snap', snap: runner.snapshot() });
      return;
    case 'stop':
      runner.stop().then(
        (final) => {
          port.postMessage({ t: 'final', final });
          port.close();
        },
        (err: unknown) => port.postMessage({ t: 'error', message: String(err) }),
      );
      return;
  }
});

runner.start();
