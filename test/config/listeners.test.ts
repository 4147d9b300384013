// TCP listeners: the default one is always there unless disabled; more may be named.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'petrel-config-listeners-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the default listener exists with no config at all', () => {
  const { tcp } = loadConfig().listeners;
  assert.deepEqual(Object.keys(tcp), ['default']);
  assert.deepEqual(tcp.default, { enable: true, bind: { host: '0.0.0.0', port: 1883 }, max_connections: Infinity });
});

test('several named listeners from a file, each with its own defaults', () => {
  const file = join(dir, 'multi.toml');
  writeFileSync(file, `
listeners.tcp.internal.bind = "127.0.0.1:11883"

[listeners.tcp.public]
bind = "[::]:2883"
max_connections = 100000
`);
  const { tcp } = loadConfig({ file }).listeners;
  assert.deepEqual(Object.keys(tcp).sort(), ['default', 'internal', 'public']);
  assert.deepEqual(tcp.default.bind, { host: '0.0.0.0', port: 1883 });
  assert.deepEqual(tcp.internal, { enable: true, bind: { host: '127.0.0.1', port: 11883 }, max_connections: Infinity });
  assert.deepEqual(tcp.public, { enable: true, bind: { host: '::', port: 2883 }, max_connections: 100_000 });
});

test('listeners may come from env and --set as well', () => {
  const { tcp } = loadConfig({
    env: { PETREL_LISTENERS__TCP__A__BIND: '1001' },
    set: ['listeners.tcp.b.bind=127.0.0.1:1002', 'listeners.tcp.b.enable=false'],
  }).listeners;
  assert.deepEqual(tcp.a?.bind, { host: '0.0.0.0', port: 1001 });
  assert.equal(tcp.b?.enable, false);
  assert.equal(tcp.b?.bind.port, 1002);
});

test('the default listener can be disabled', () => {
  const file = join(dir, 'off.toml');
  writeFileSync(file, '[listeners.tcp.default]\nenable = false\n');
  const { tcp } = loadConfig({ file }).listeners;
  assert.equal(tcp.default.enable, false);
  // it stays in the config (so its settings are visible), only not started
  assert.deepEqual(tcp.default.bind, { host: '0.0.0.0', port: 1883 });
  assert.equal(loadConfig({ set: ['listeners.tcp.default.enable=false'] }).listeners.tcp.default.enable, false);
});

test('a named listener without a bind is an error naming the key and where it was declared', () => {
  const file = join(dir, 'nobind.toml');
  writeFileSync(file, '[listeners.tcp.internal]\nmax_connections = 10\n');
  assert.throws(() => loadConfig({ file }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(
      err.message,
      `config key listeners.tcp.internal.bind: no value given (required for "internal", which is declared in file ${file}); ` +
        'accepted: "host:port", "[ipv6]:port" or a port number 0..65535',
    );
    assert.equal(err.key, 'listeners.tcp.internal.bind');
    return true;
  });
});

test('an empty listener table declares the listener, so its bind is required', () => {
  const file = join(dir, 'empty.toml');
  writeFileSync(file, '[listeners.tcp.spare]\n');
  assert.throws(() => loadConfig({ file }), /listeners\.tcp\.spare\.bind: no value given/);
});

test('a bad bind on a named listener is reported once, not also as missing', () => {
  assert.throws(() => loadConfig({ set: ['listeners.tcp.x.bind=nope'] }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.issues.length, 1);
    assert.match(err.message, /listeners\.tcp\.x\.bind: value "nope" \(from --set\) is not a valid bind address/);
    return true;
  });
});

test('listener names must be TOML bare keys', () => {
  assert.throws(() => loadConfig({ values: { listeners: { tcp: { 'bad name': { bind: 1 } } } } }),
    /config key listeners\.tcp\.bad name\.bind: unknown key/);
});

test('listener names that are Object.prototype members stay plain entries', () => {
  const { tcp } = loadConfig({
    set: ['listeners.tcp.constructor.bind=1001', 'listeners.tcp.__proto__.bind=1002'],
  }).listeners;
  assert.deepEqual(Object.keys(tcp).sort(), ['__proto__', 'constructor', 'default']);
  assert.equal(Object.getOwnPropertyDescriptor(tcp, 'constructor')?.value.bind.port, 1001);
  assert.equal(Object.getOwnPropertyDescriptor(tcp, '__proto__')?.value.bind.port, 1002);
  assert.equal(Object.getPrototypeOf(tcp), Object.prototype);
  assert.ok(!Object.isFrozen(Object), 'the real Object constructor was not touched');
});
