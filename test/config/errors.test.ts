// Bad config: every class of mistake gets a ConfigError naming the key, the value, where it
// came from and what is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { configError, tomlFiles } from './helpers.js';

const tomlFile = tomlFiles('bad');

test('out of range: the exact message', () => {
  const err = configError({ set: ['mqtt.max_inflight=0'] });
  assert.equal(err.message, 'config key mqtt.max_inflight: value 0 (from --set) is out of range; accepted: integer 1..65535');
  assert.equal(err.name, 'ConfigError');
  assert.equal(err.key, 'mqtt.max_inflight');
  assert.equal(err.origin, '--set');
  assert.equal(err.issues.length, 1);
  assert.equal(err.issues[0]?.value, 0);
  assert.equal(err.issues[0]?.accepted, 'integer 1..65535');
});

test('out of range: clientid length below 23 and QoS above 2', () => {
  assert.match(configError({ set: ['mqtt.max_clientid_len=22'] }).message, /value 22 .* out of range; accepted: integer 23\.\.65535/);
  assert.match(configError({ set: ['mqtt.max_qos_allowed=3'] }).message, /accepted: integer 0\.\.2$/);
  assert.match(configError({ set: ['mqtt.max_packet_size=257MB'] }).message,
    /mqtt\.max_packet_size: value "257MB" \(from --set\) is out of range; accepted: size 2\.\.256MB/);
});

test('wrong type: a string for an integer, a string for a boolean, a number for an enum', () => {
  const file = tomlFile('mqtt.max_inflight = "64"\nmqtt.retain_available = "yes"\nlog.level = 3\nmqtt.keepalive_multiplier = "x"\n');
  const err = configError({ file });
  assert.equal(err.issues.length, 4);
  assert.match(err.message, new RegExp(`^4 config errors:`));
  assert.ok(err.message.includes(
    `config key mqtt.max_inflight: value "64" (from file ${file}) is a string, not an integer; accepted: integer 1..65535`));
  assert.ok(err.message.includes(
    `config key mqtt.retain_available: value "yes" (from file ${file}) is a string, not true or false; accepted: true or false`));
  assert.ok(err.message.includes(`config key log.level: value 3 (from file ${file}) is an integer, not one of the accepted words`));
  assert.match(err.message, /mqtt\.keepalive_multiplier: value "x" .* is a string, not a number; accepted: number >= 1/);
});

test('wrong type: a float for an integer, a table for a scalar, a string key given a number in a file', () => {
  const err = configError({ values: { mqtt: { max_inflight: 1.5, max_awaiting_rel: { a: 1 } }, node: { name: 5 } } });
  assert.match(err.message, /mqtt\.max_inflight: value 1\.5 \(from values\) is not a whole number/);
  assert.match(err.message, /mqtt\.max_awaiting_rel: value \{"a":1\} \(from values\) is a table, not an integer/);
  assert.match(err.message, /node\.name: value 5 \(from values\) is an integer, not a string/);
});

test('bad enum: the message lists the accepted values', () => {
  const err = configError({ env: { PETREL_MQTT__SHARED_SUBSCRIPTION_STRATEGY: 'local' } });
  assert.equal(
    err.message,
    'config key mqtt.shared_subscription_strategy: value "local" (from env PETREL_MQTT__SHARED_SUBSCRIPTION_STRATEGY) ' +
      'is not one of the accepted values; accepted: one of random, round_robin, round_robin_per_group, sticky, ' +
      'hash_clientid, hash_topic',
  );
  assert.match(configError({ set: ['log.level=warn'] }).message, /accepted: one of debug, info, notice, warning, error$/);
});

test('bad duration', () => {
  const err = configError({ set: ['mqtt.idle_timeout=15x'] });
  assert.match(err.message, /^config key mqtt\.idle_timeout: value "15x" \(from --set\) is not a valid duration \(unknown unit "x"\); accepted: duration written like 500ms, 15s/);
  assert.match(err.message, /a bare integer is milliseconds\), or infinity$/);
  assert.match(configError({ set: ['mqtt.idle_timeout=-1s'] }).message, /is not a valid duration/);
});

test('infinity where the key does not allow it', () => {
  const err = configError({ set: ['mqtt.await_rel_timeout=infinity'] });
  assert.match(err.message, /mqtt\.await_rel_timeout: value "infinity" \(from --set\) is infinite, which this key does not accept/);
  assert.match(configError({ set: ['mqtt.max_inflight=infinity'] }).message, /value "infinity" \(from --set\) is infinite/);
  assert.match(configError({ set: ['mqtt.max_inflight=inf'] }).message, /value inf \(from --set\) is infinite/);
});

test('disabled only where the key allows it; server_keepalive below 1s', () => {
  assert.match(configError({ set: ['mqtt.idle_timeout=disabled'] }).message, /is not a valid duration/);
  assert.match(configError({ set: ['mqtt.server_keepalive=500ms'] }).message,
    /server_keepalive: value "500ms" .* out of range; accepted: duration 1s\.\.65535s .*, or disabled$/);
});

test('bad size', () => {
  const err = configError({ set: ['retainer.max_payload_size=1TB'] });
  assert.match(err.message, /retainer\.max_payload_size: value "1TB" \(from --set\) is not a valid size \(unknown unit "TB"\); accepted: size 0\.\.256MB written like 1024, 64KB, 1MB, 1GB \(KB = 1024 bytes\)$/);
});

test('bad bind', () => {
  const err = configError({ set: ['listeners.tcp.default.bind=0.0.0.0:70000'] });
  assert.equal(
    err.message,
    'config key listeners.tcp.default.bind: value "0.0.0.0:70000" (from --set) is not a valid bind address ' +
      '(port 70000 is out of range 0..65535); accepted: "host:port", "[ipv6]:port" or a port number 0..65535',
  );
  assert.match(configError({ set: ['listeners.tcp.default.bind=::1:1883'] }).message, /brackets/);
  assert.match(configError({ set: ['listeners.tcp.default.bind=true'] }).message, /value true .* not a valid bind address/);
});

test('bad string form: node.name must be name@host', () => {
  assert.match(configError({ set: ['node.name=petrel'] }).message,
    /node\.name: value "petrel" \(from --set\) is not of the form name@host; accepted: string \(name@host\)/);
});

test('unknown key: a near miss gets a suggestion', () => {
  assert.equal(
    configError({ set: ['mqtt.max_inflights=64'] }).message,
    'config key mqtt.max_inflights: unknown key (value 64, from --set); did you mean mqtt.max_inflight?',
  );
  // right name, wrong section
  assert.match(configError({ set: ['listeners.tcp.default.max_inflight=4'] }).message, /did you mean mqtt\.max_inflight\?$/);
  // the wildcard name is kept in the suggestion
  assert.match(configError({ set: ['listeners.tcp.internal.bnid=1'] }).message, /did you mean listeners\.tcp\.internal\.bind\?$/);
});

test('unknown key: nothing near, no guess', () => {
  assert.match(configError({ set: ['zzz.qqq=1'] }).message, /unknown key \(value 1, from --set\); see docs\/config\.md for the known keys$/);
});

test('unknown key: the origin says file, env or --set', () => {
  const file = tomlFile('[mqtt]\nmax_inflght = 5\n');
  assert.equal(
    configError({ file }).message,
    `config key mqtt.max_inflght: unknown key (value 5, from file ${file}); did you mean mqtt.max_inflight?`,
  );
  assert.equal(
    configError({ env: { PETREL_MQTT__MAX_INFLGHT: '5' } }).message,
    'config key mqtt.max_inflght: unknown key (value 5, from env PETREL_MQTT__MAX_INFLGHT); ' +
      'did you mean mqtt.max_inflight (PETREL_MQTT__MAX_INFLIGHT)?',
  );
  assert.equal(
    configError({ set: ['mqtt.max_inflght=5'] }).message,
    'config key mqtt.max_inflght: unknown key (value 5, from --set); did you mean mqtt.max_inflight?',
  );
  assert.match(configError({ values: { mqtt: { max_inflght: 5 } } }).message, /from values\); did you mean/);
});

test('unknown key: a whole unknown section and a key with a literal <name> segment', () => {
  assert.match(configError({ file: tomlFile('[bogus]\n') }).message, /config key bogus: unknown key/);
  assert.match(configError({ set: ['listeners.tcp.<name>.bind=1'] }).message, /listeners\.tcp\.<name>\.bind: unknown key/);
});

test('TOML syntax error names the file, line and column', () => {
  const file = tomlFile('mqtt.max_inflight = 5\n\nmqtt.idle_timeout = \n');
  const err = configError({ file });
  assert.match(err.message, new RegExp(`^config file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: TOML syntax error at line 3, column \\d+: invalid value`));
  assert.equal(err.origin, `file ${file}`);
  assert.equal(err.key, undefined);
});

test('TOML redefinition is a syntax error with its line', () => {
  const err = configError({ file: tomlFile('[mqtt]\nmax_inflight = 1\n[log]\n[mqtt]\n') });
  assert.match(err.message, /TOML syntax error at line 4, column \d+: .*redefine/);
});

test('missing file and a directory given as the file', () => {
  const dir = dirname(tomlFile(''));
  const missing = join(dir, 'nope.toml');
  assert.equal(configError({ file: missing }).message, `config file ${missing}: cannot read it (no such file)`);
  assert.equal(configError({ file: dir }).message, `config file ${dir}: cannot read it (it is a directory)`);
});

test('--set without key=value', () => {
  assert.equal(configError({ set: ['mqtt.max_inflight'] }).message,
    '--set "mqtt.max_inflight": expected key=value, e.g. --set mqtt.max_inflight=64');
  assert.match(configError({ set: ['=5'] }).message, /expected key=value/);
});

test('values must be an object', () => {
  assert.match(configError({ values: 5 as unknown as object }).message, /config values: expected an object of config keys/);
});

test('all problems are reported together, in source order', () => {
  const file = tomlFile('mqtt.max_inflight = 0\n');
  const err = configError({ file, env: { PETREL_LOG__LEVEL: 'loud' }, set: ['mqtt.idle_timeout=x'] });
  assert.deepEqual(err.issues.map((i) => i.key), ['mqtt.max_inflight', 'log.level', 'mqtt.idle_timeout']);
  assert.deepEqual(err.issues.map((i) => i.origin), [`file ${file}`, 'env PETREL_LOG__LEVEL', '--set']);
  assert.match(err.message, /^3 config errors:\n {2}config key mqtt\.max_inflight/);
});
