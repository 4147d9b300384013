// Certificates made with Node's crypto (certs.ts): read back by Node's X509Certificate and,
// when the openssl binary is there, verified by OpenSSL; the self-signed certificate of
// listeners without one is made once and reused.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate, ensureSelfSigned, SELF_SIGNED_CERT, SELF_SIGNED_KEY } from '../../src/transport/index.js';

const dir = mkdtempSync(join(tmpdir(), 'petrel-certs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;

describe('createCertificate', () => {
  const ca = createCertificate({ subject: { commonName: 'Unit CA', organization: 'Petrel' }, ca: true, days: 30 });

  test('a CA certificate: self-issued, CA:TRUE, signature verifies with its own key', () => {
    const x = new X509Certificate(ca.cert);
    assert.equal(x.ca, true);
    assert.equal(x.subject, 'O=Petrel\nCN=Unit CA');
    assert.equal(x.issuer, x.subject);
    assert.ok(x.verify(x.publicKey));
    assert.ok(x.checkPrivateKey(createPrivateKey(ca.key)));
    const days = (Date.parse(x.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30, `valid for 30 days (${days.toFixed(2)})`);
  });

  for (const keyType of ['ec', 'rsa'] as const) {
    test(`a ${keyType} leaf signed by the CA, with host names and IP addresses`, () => {
      const leaf = createCertificate({
        subject: { commonName: 'broker.example' }, issuer: ca, keyType,
        dnsNames: ['broker.example', 'localhost'], ipAddresses: ['127.0.0.1', '::1', '2001:db8::7'],
      });
      const x = new X509Certificate(leaf.cert);
      const caX = new X509Certificate(ca.cert);
      assert.equal(x.ca, false);
      assert.ok(x.checkIssued(caX));
      assert.ok(x.verify(caX.publicKey));
      assert.ok(!x.verify(x.publicKey), 'not self-signed');
      assert.equal(x.subjectAltName, 'DNS:broker.example, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:7');
      assert.equal(x.checkHost('broker.example'), 'broker.example');
      assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
      assert.equal(x.publicKey.asymmetricKeyType, keyType);
      assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
      if (HAS_OPENSSL) {
        const caFile = join(dir, `ca-${keyType}.pem`);
        const leafFile = join(dir, `leaf-${keyType}.pem`);
        writeFileSync(caFile, ca.cert);
        writeFileSync(leafFile, leaf.cert);
        const r = spawnSync('openssl', ['verify', '-CAfile', caFile, '-verify_ip', '127.0.0.1', '-purpose', 'sslserver', leafFile], { encoding: 'utf8' });
        assert.equal(r.status, 0, `openssl verify: ${r.stdout}${r.stderr}`);
      }
    });
  }

  test('serial numbers differ and are positive', () => {
    const a = new X509Certificate(createCertificate({ subject: { commonName: 'a' } }).cert);
    const b = new X509Certificate(createCertificate({ subject: { commonName: 'b' } }).cert);
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.ok(parseInt(a.serialNumber.slice(0, 2), 16) < 0x80);
  });
});

describe('ensureSelfSigned', () => {
  test('made on first use (key readable by its owner only), reused after, remade when unusable', () => {
    const data = join(dir, 'data');
    const first = ensureSelfSigned(data);
    assert.equal(first.generated, true);
    assert.equal(first.certfile, join(data, 'certs', SELF_SIGNED_CERT));
    assert.equal(first.keyfile, join(data, 'certs', SELF_SIGNED_KEY));
    assert.equal(statSync(first.keyfile).mode & 0o777, 0o600);
    const x = new X509Certificate(readFileSync(first.certfile));
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.equal(x.checkHost('localhost'), 'localhost');
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
    assert.ok(x.checkPrivateKey(createPrivateKey(readFileSync(first.keyfile))));

    const second = ensureSelfSigned(data);
    assert.equal(second.generated, false);
    assert.equal(readFileSync(second.certfile, 'utf8'), x.toString());

    writeFileSync(first.certfile, 'garbage');
    assert.equal(ensureSelfSigned(data).generated, true);
    const expired = createCertificate({ subject: { commonName: 'old' }, days: -1 });
    writeFileSync(first.certfile, expired.cert);
    assert.equal(ensureSelfSigned(data).generated, true);
  });
});
