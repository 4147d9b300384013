// `petrel ctl listeners reload_certs` (and POST /api/v5/listeners/reload_certs): certificate
// files re-read without a restart, as SIGHUP does; a bad file keeps the last good certificate
// and makes ctl exit 1 with the reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCertificate } from '../../src/transport/index.js';
import { run, type ExitResult } from '../helpers/clients.js';
import { VIEWER, basic, startApiBroker, type ApiBroker } from '../api/helpers.js';
import { makePki, type Pki } from '../transport/fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

describe('petrel ctl listeners reload_certs', () => {
  let pki: Pki;
  let b: ApiBroker;
  let certfile: string;
  let keyfile: string;
  const ctl = (...args: string[]): Promise<ExitResult> =>
    run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${b.dataDir}`, ...args], { timeoutMs: 15_000 });

  /** The SHA-256 fingerprint of the certificate the ssl listener serves to a new handshake. */
  const served = (): Promise<string> => new Promise((resolve, reject) => {
    const port = b.petrel.listeners.find((l) => l.id === 'ssl:default')!.address.port;
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const f = s.getPeerX509Certificate()!.fingerprint256;
      s.destroy();
      resolve(f);
    });
    s.once('error', reject);
  });

  before(async () => {
    pki = makePki('petrel-ctl-certs-');
    certfile = join(pki.dir, 'live-cert.pem');
    keyfile = join(pki.dir, 'live-key.pem');
    writeFileSync(certfile, pki.server.cert);
    writeFileSync(keyfile, pki.server.key);
    b = await startApiBroker({
      ctl: { enable: true },
      listeners: { ssl: { default: { enable: true, bind: '127.0.0.1:0', ssl_options: { certfile, keyfile } } } },
    });
  });
  after(async () => {
    await b.stop();
    pki.remove();
  });

  test('new handshakes get the renewed certificate; a bad key keeps the old one and exits 1', async () => {
    assert.equal(await served(), new X509Certificate(pki.server.cert).fingerprint256);
    const renewed = createCertificate({ subject: { commonName: 'localhost' }, issuer: pki.ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(certfile, renewed.cert);
    writeFileSync(keyfile, renewed.key);
    const ok = await ctl('listeners', 'reload_certs');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `ssl:default: reloaded ${certfile}\n`);
    assert.equal(await served(), new X509Certificate(renewed.cert).fingerprint256);

    writeFileSync(keyfile, 'not a key');
    const bad = await ctl('listeners', 'reload_certs', '--json');
    assert.equal(bad.code, 1);
    const results = JSON.parse(bad.stdout) as Array<{ listener: string; ok: boolean; error?: string }>;
    assert.deepEqual(results.map((r) => [r.listener, r.ok]), [['ssl:default', false]]);
    assert.match(results[0]!.error ?? '', /ssl:default/);
    assert.equal(await served(), new X509Certificate(renewed.cert).fingerprint256, 'the last good certificate is still served');
  });

  test('over HTTP: POST /api/v5/listeners/reload_certs answers per listener; a viewer may not', async () => {
    writeFileSync(keyfile, pki.server.key);
    writeFileSync(certfile, pki.server.cert);
    const r = await b.json('POST', '/api/v5/listeners/reload_certs');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, [{ listener: 'ssl:default', ok: true, certfile }]);
    const viewer = await b.json('POST', '/api/v5/listeners/reload_certs', { auth: basic(VIEWER.key, VIEWER.secret) });
    assert.equal(viewer.status, 403);
    const extra = await ctl('listeners', 'reload_certs', 'now');
    assert.equal(extra.code, 2, 'a usage error');
  });
});
