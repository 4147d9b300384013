// `map` keys (http headers/body, jwt verify_claims): TOML tables as EMQX users write them, the
// JSON-object text of earlier configs, env and --set; bad values name the key and what is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envName, loadConfig } from '../../src/config/index.js';
import { configError, tomlFiles } from './helpers.js';

const tomlFile = tomlFiles('maps');

test('file: a [section] table, an inline table, and JSON text give the same map', () => {
  const file = tomlFile(`
[authentication.web]
mechanism = "password_based"
backend = "http"
url = "http://127.0.0.1:8080/auth"
body = { username = "\${username}", password = "\${password}", qos = 1, is_bridge = false }

[authentication.web.headers]
"x-api-key" = "k1"
accept = "application/json"

[authentication.tok]
mechanism = "jwt"
secret = "s"
verify_claims = '{"clientid": "\${clientid}"}'

[authorization.sources.api]
type = "http"
url = "http://127.0.0.1:8080/authz"
headers = {}
`);
  const cfg = loadConfig({ file });
  const web = cfg.authentication!['web']!;
  assert.deepEqual(web.headers, { 'x-api-key': 'k1', accept: 'application/json' });
  assert.deepEqual(web.body, { username: '${username}', password: '${password}', qos: '1', is_bridge: 'false' }, 'numbers and booleans become strings');
  assert.deepEqual(cfg.authentication!['tok']!.verify_claims, { clientid: '${clientid}' });
  assert.deepEqual(cfg.authorization.sources!['api']!.headers, {});
  assert.deepEqual(cfg.authorization.sources!['api']!.body, {}, 'default: empty');
  assert.ok(Object.isFrozen(web.headers), 'frozen like the rest of the config');
});

test('env and --set: JSON object text, or a TOML inline table', () => {
  const key = 'authentication.web.headers';
  const fromEnv = loadConfig({ env: { [envName(key)]: '{"x-api-key": "from-env"}' } });
  assert.deepEqual(fromEnv.authentication!['web']!.headers, { 'x-api-key': 'from-env' });
  const fromSet = loadConfig({ set: [`${key}={"a":"b","n":2}`] });
  assert.deepEqual(fromSet.authentication!['web']!.headers, { a: 'b', n: '2' });
  const inline = loadConfig({ set: [`${key}={ a = "b" }`] });
  assert.deepEqual(inline.authentication!['web']!.headers, { a: 'b' });
  // --set wins over the file's table, as for any key.
  const file = tomlFile('[authentication.web.headers]\na = "file"\n');
  assert.deepEqual(loadConfig({ file, set: [`${key}={"a":"set"}`] }).authentication!['web']!.headers, { a: 'set' });
  // `values` (library users) take objects and JSON text alike.
  assert.deepEqual(loadConfig({ values: { authentication: { web: { headers: { a: 'v' } } } } }).authentication!['web']!.headers, { a: 'v' });
  assert.deepEqual(loadConfig({ values: { authentication: { web: { headers: '' } } } }).authentication!['web']!.headers, {}, 'empty text: empty map');
});

test('a __proto__ entry stays an entry', () => {
  const cfg = loadConfig({ set: ['authentication.web.headers={"__proto__": "x", "constructor": "y"}'] });
  const headers = cfg.authentication!['web']!.headers;
  assert.deepEqual(Object.entries(headers), [['__proto__', 'x'], ['constructor', 'y']]);
  assert.equal(Object.getPrototypeOf(headers), Object.prototype);
});

test('bad maps: the key, the value, the origin and what is accepted', () => {
  const accepted = /accepted: a table of strings, like name = \{ "x-api-key" = "k", user = "\$\{username\}" \} or a \[<key>\] section, or the same as JSON object text \{"x-api-key": "k"\} \(env, --set\)$/;
  const bad = configError({ set: ['authentication.web.headers={bad'] });
  assert.equal(bad.key, 'authentication.web.headers');
  assert.match(bad.message, /^config key authentication\.web\.headers: value "\{bad" \(from --set\) is text that is not a JSON object \(/);
  assert.match(bad.message, accepted);
  assert.match(configError({ set: ['authentication.web.body=[1, 2]'] }).message,
    /authentication\.web\.body: value \[1,2\] \(from --set\) is an array, not a table; accepted: a table of strings/);
  assert.match(configError({ set: ['authentication.web.body="[1, 2]"'] }).message,
    /authentication\.web\.body: value "\[1, 2\]" \(from --set\) is text holding an array, not a JSON object/);
  assert.match(configError({ set: ['authentication.tok.verify_claims=7'] }).message, /verify_claims: value 7 \(from --set\) is an integer, not a table/);
  const file = tomlFile('[authentication.web.headers]\nnested = { a = "b" }\nlist = ["x"]\n');
  const nested = configError({ file });
  assert.match(nested.message, new RegExp(`authentication\\.web\\.headers: value .* \\(from file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\) has "nested" = a table; entries must be strings, numbers or booleans`));
  assert.match(configError({ set: ['authentication.web.headers={"a": null}'] }).message, /has "a" = null; entries must be strings, numbers or booleans/);
});
