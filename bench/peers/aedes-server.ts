/**
 * Aedes as bench:compare runs it, in its own process: `node dist/bench/peers/aedes-server.js PORT`.
 * Default options, in-memory persistence, on net.createServer({ noDelay: true }, aedes.handle).
 */
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: aedes-server.js PORT\n');
  process.exit(2);
}

const aedes = await Aedes.createBroker();
const server = net.createServer({ noDelay: true }, aedes.handle);
server.listen(port, '127.0.0.1', () => process.stdout.write(`aedes listening on 127.0.0.1:${port}\n`));

const stop = (): void => {
  server.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
