// Listeners of each type (tcp, ssl, ws, wss): the default one of each is always there unless
// disabled; more may be named.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { LISTENER_BASE } from './expected-listener.js';

const dir = mkdtempSync(join(tmpdir(), 'petrel-config-listeners-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = LISTENER_BASE;

test('the default listener of each type exists with no config at all, on EMQX ports', () => {
  const { tcp, ssl, ws, wss } = loadConfig().listeners;
  for (const family of [tcp, ssl, ws, wss]) assert.deepEqual(Object.keys(family), ['default']);
  assert.deepEqual(tcp.default, { ...BASE, bind: { host: '0.0.0.0', port: 1883 } });
  assert.deepEqual(ssl.default.bind, { host: '0.0.0.0', port: 8883 });
  assert.deepEqual(ws.default.bind, { host: '0.0.0.0', port: 8083 });
  assert.deepEqual(wss.default.bind, { host: '0.0.0.0', port: 8084 });
  assert.equal(ssl.default.ssl_options.verify, 'verify_none');
  assert.equal(wss.default.ssl_options.reuse_sessions, true);
  assert.equal(ws.default.websocket.mqtt_path, '/mqtt');
  assert.equal(wss.default.websocket.fail_if_no_subprotocol, true);
  assert.ok(!('ssl_options' in tcp.default) && !('ssl_options' in ws.default) && !('websocket' in ssl.default));
});

test('ssl, ws and wss listeners from a file: TLS and WebSocket options, rates, PROXY protocol', () => {
  const file = join(dir, 'tls.toml');
  writeFileSync(file, `
[listeners.ssl.default]
bind = "127.0.0.1:18883"
max_conn_rate = "500/s"
ssl_options.certfile = "/etc/petrel/cert.pem"
ssl_options.keyfile = "/etc/petrel/key.pem"
ssl_options.verify = "verify_peer"
ssl_options.fail_if_no_peer_cert = true
ssl_options.versions = "tlsv1.3"

[listeners.wss.edge]
bind = 9443
proxy_protocol = true
proxy_protocol_timeout = "5s"
websocket.mqtt_path = "/ws"
websocket.proxy_address_header = ""

[listeners.tcp.lb]
bind = "127.0.0.1:11884"
proxy_protocol = true
`);
  const { tcp, ssl, wss } = loadConfig({ file }).listeners;
  assert.deepEqual(ssl.default.max_conn_rate, { amount: 500, periodMs: 1000 });
  assert.equal(ssl.default.ssl_options.certfile, '/etc/petrel/cert.pem');
  assert.equal(ssl.default.ssl_options.fail_if_no_peer_cert, true);
  assert.equal(ssl.default.ssl_options.versions, 'tlsv1.3');
  assert.deepEqual(Object.keys(wss).sort(), ['default', 'edge']);
  assert.equal(wss.edge?.proxy_protocol, true);
  assert.equal(wss.edge?.proxy_protocol_timeout, 5000);
  assert.equal(wss.edge?.websocket.mqtt_path, '/ws');
  assert.equal(wss.edge?.websocket.proxy_address_header, '');
  assert.equal(wss.edge?.ssl_options.certfile, '', 'a named wss listener gets the ssl_options defaults');
  assert.equal(tcp.lb?.proxy_protocol, true);
});

test('bad listener values name the key and what is accepted', () => {
  assert.throws(() => loadConfig({ set: ['listeners.ssl.default.ssl_options.verify=verify_always'] }),
    /listeners\.ssl\.default\.ssl_options\.verify: value "verify_always" .*accepted: one of verify_none, verify_peer/);
  assert.throws(() => loadConfig({ set: ['listeners.wss.default.ssl_options.versions=sslv3'] }),
    /ssl_options\.versions: value "sslv3" .*comma-separated tlsv1\.3, tlsv1\.2/);
  assert.throws(() => loadConfig({ set: ['listeners.ws.default.websocket.mqtt_path=mqtt'] }),
    /websocket\.mqtt_path: value "mqtt" .*a URL path starting with \//);
  assert.throws(() => loadConfig({ set: ['listeners.tcp.default.max_conn_rate=fast'] }),
    /max_conn_rate: value "fast" .*not a valid rate/);
  assert.throws(() => loadConfig({ set: ['listeners.ssl.x.bind=1', 'listeners.ssl.x.websocket.mqtt_path=/x'] }),
    /listeners\.ssl\.x\.websocket\.mqtt_path: unknown key/);
  // a named listener of any type needs its bind
  assert.throws(() => loadConfig({ set: ['listeners.ws.extra.enable=true'] }), /listeners\.ws\.extra\.bind: no value given/);
});

test('default listeners of every type can be turned off from env', () => {
  const { ssl, ws, wss } = loadConfig({
    env: {
      PETREL_LISTENERS__SSL__DEFAULT__ENABLE: 'false',
      PETREL_LISTENERS__WS__DEFAULT__ENABLE: 'false',
      PETREL_LISTENERS__WSS__DEFAULT__ENABLE: 'false',
    },
  }).listeners;
  assert.equal(ssl.default.enable, false);
  assert.equal(ws.default.enable, false);
  assert.equal(wss.default.enable, false);
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
  assert.deepEqual(tcp.internal, { ...BASE, bind: { host: '127.0.0.1', port: 11883 } });
  assert.deepEqual(tcp.public, { ...BASE, bind: { host: '::', port: 2883 }, max_connections: 100_000 });
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
