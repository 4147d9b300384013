// Each source on its own: TOML file (dotted keys and tables), env variables, --set, values.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envName, loadConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'petrel-config-sources-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
function tomlFile(text: string): string {
  const path = join(dir, `petrel-${++fileCount}.toml`);
  writeFileSync(path, text);
  return path;
}

test('file: dotted keys', () => {
  const file = tomlFile(`
node.name = "a@10.0.0.1"
mqtt.max_inflight = 64
mqtt.idle_timeout = "30s"
mqtt.max_packet_size = "64KB"
listeners.tcp.default.bind = "127.0.0.1:1884"
`);
  const cfg = loadConfig({ file });
  assert.equal(cfg.node.name, 'a@10.0.0.1');
  assert.equal(cfg.mqtt.max_inflight, 64);
  assert.equal(cfg.mqtt.idle_timeout, 30_000);
  assert.equal(cfg.mqtt.max_packet_size, 65_536);
  assert.deepEqual(cfg.listeners.tcp.default.bind, { host: '127.0.0.1', port: 1884 });
  // untouched keys keep their defaults
  assert.equal(cfg.mqtt.max_mqueue_len, 1000);
});

test('file: tables and nested tables', () => {
  const file = tomlFile(`
[mqtt]
max_inflight = 10
retry_interval = "infinity"
server_keepalive = "60s"
shared_subscription_strategy = "sticky"

[listeners.tcp.default]
bind = 1885
max_connections = 5000

[log]
level = "debug"
format = "text"
`);
  const cfg = loadConfig({ file });
  assert.equal(cfg.mqtt.max_inflight, 10);
  assert.equal(cfg.mqtt.retry_interval, Infinity);
  assert.equal(cfg.mqtt.server_keepalive, 60_000);
  assert.equal(cfg.mqtt.shared_subscription_strategy, 'sticky');
  assert.deepEqual(cfg.listeners.tcp.default.bind, { host: '0.0.0.0', port: 1885 });
  assert.equal(cfg.listeners.tcp.default.max_connections, 5000);
  assert.equal(cfg.log.level, 'debug');
  assert.equal(cfg.log.format, 'text');
});

test('file: TOML inf and a bare integer duration', () => {
  const file = tomlFile('mqtt.max_mqueue_len = inf\nmqtt.idle_timeout = 2500\n');
  const cfg = loadConfig({ file });
  assert.equal(cfg.mqtt.max_mqueue_len, Infinity);
  assert.equal(cfg.mqtt.idle_timeout, 2500); // milliseconds, as EMQX reads it
});

test('file: an empty file is all defaults', () => {
  assert.equal(loadConfig({ file: tomlFile('') }).mqtt.max_inflight, 32);
});

test('env: PETREL_ + double underscore maps to a dotted key', () => {
  const cfg = loadConfig({
    env: {
      PETREL_LISTENERS__TCP__DEFAULT__BIND: '127.0.0.1:1883',
      PETREL_MQTT__MAX_INFLIGHT: '64',
      PETREL_MQTT__RETAIN_AVAILABLE: 'false',
      PETREL_MQTT__IDLE_TIMEOUT: '30s',
      PETREL_NODE__NAME: '"quoted@h"',
      PETREL_MQTT__RESPONSE_INFORMATION: '12345',
      PETREL_MQTT__MAX_SUBSCRIPTIONS: 'infinity',
    },
  });
  assert.deepEqual(cfg.listeners.tcp.default.bind, { host: '127.0.0.1', port: 1883 });
  assert.equal(cfg.mqtt.max_inflight, 64);
  assert.equal(cfg.mqtt.retain_available, false);
  assert.equal(cfg.mqtt.idle_timeout, 30_000);
  assert.equal(cfg.node.name, 'quoted@h');
  // A string key keeps the text as typed even when it reads as a TOML number.
  assert.equal(cfg.mqtt.response_information, '12345');
  assert.equal(cfg.mqtt.max_subscriptions, Infinity);
});

test('env: variables without a double underscore, or without the prefix, are ignored', () => {
  const cfg = loadConfig({
    env: { PETREL_HOME: '/opt/petrel', PETREL_MQTT_MAX_INFLIGHT: '5', MQTT__MAX_INFLIGHT: '5', PATH: '/bin', X: undefined },
  });
  assert.equal(cfg.mqtt.max_inflight, 32);
});

test('env: segments are lowercased, single underscores stay inside a segment', () => {
  const cfg = loadConfig({ env: { PETREL_LISTENERS__TCP__INTERNAL__BIND: '127.0.0.1:11883' } });
  assert.deepEqual(cfg.listeners.tcp.internal?.bind, { host: '127.0.0.1', port: 11883 });
  assert.equal(envName('listeners.tcp.default.max_connections'), 'PETREL_LISTENERS__TCP__DEFAULT__MAX_CONNECTIONS');
});

test('env: a value with a newline is a plain string, never extra TOML', () => {
  const cfg = loadConfig({ env: { PETREL_MQTT__RESPONSE_INFORMATION: '"a"\nmqtt.max_inflight = 1' } });
  assert.equal(cfg.mqtt.response_information, '"a"\nmqtt.max_inflight = 1');
  assert.equal(cfg.mqtt.max_inflight, 32);
});

test('--set: values are read as TOML values, else bare strings', () => {
  const cfg = loadConfig({
    set: [
      'mqtt.max_inflight=64',
      'node.name=n1@host',
      'mqtt.idle_timeout=30s',
      'mqtt.upgrade_qos=true',
      'mqtt.keepalive_multiplier=2',
      'listeners.tcp.default.bind=[::1]:1999',
      'mqtt.response_information=a=b',
    ],
  });
  assert.equal(cfg.mqtt.max_inflight, 64);
  assert.equal(cfg.node.name, 'n1@host');
  assert.equal(cfg.mqtt.idle_timeout, 30_000);
  assert.equal(cfg.mqtt.upgrade_qos, true);
  assert.equal(cfg.mqtt.keepalive_multiplier, 2);
  assert.deepEqual(cfg.listeners.tcp.default.bind, { host: '::1', port: 1999 });
  // Only the first = separates key from value.
  assert.equal(cfg.mqtt.response_information, 'a=b');
});

test('--set: quoted and bare strings are the same', () => {
  assert.equal(loadConfig({ set: ['node.name="n1@h"'] }).node.name, 'n1@h');
  assert.equal(loadConfig({ set: ['node.name=n1@h'] }).node.name, 'n1@h');
  assert.equal(loadConfig({ set: ['mqtt.response_information=""'] }).mqtt.response_information, '');
  assert.equal(loadConfig({ set: ['mqtt.response_information=n1'] }).mqtt.response_information, 'n1');
});

test('--set: the last of two settings of one key wins', () => {
  assert.equal(loadConfig({ set: ['mqtt.max_inflight=5', 'mqtt.max_inflight=6'] }).mqtt.max_inflight, 6);
});

test('values: nested object like parsed TOML, and dotted keys inside it', () => {
  const cfg = loadConfig({
    values: {
      mqtt: { max_inflight: 7, session_expiry_interval: '1d' },
      'retainer.max_payload_size': 2048,
      listeners: { tcp: { default: { bind: { host: '127.0.0.1', port: 2883 } } } },
    },
  });
  assert.equal(cfg.mqtt.max_inflight, 7);
  assert.equal(cfg.mqtt.session_expiry_interval, 86_400_000);
  assert.equal(cfg.retainer.max_payload_size, 2048);
  assert.deepEqual(cfg.listeners.tcp.default.bind, { host: '127.0.0.1', port: 2883 });
});

test('server_keepalive: disabled is null, a duration is milliseconds', () => {
  assert.equal(loadConfig({ set: ['mqtt.server_keepalive=disabled'] }).mqtt.server_keepalive, null);
  assert.equal(loadConfig({ set: ['mqtt.server_keepalive=2m'] }).mqtt.server_keepalive, 120_000);
});
