// Precedence: --set over env over (file, then values) over defaults, whatever order the
// options are written in.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type LoadConfigOptions } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'petrel-config-precedence-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'petrel.toml');
writeFileSync(file, 'mqtt.max_inflight = 10\n');

// Each layer sets mqtt.max_inflight to its own value; ranks lowest first.
const LAYERS = {
  file: { option: { file }, value: 10 },
  values: { option: { values: { mqtt: { max_inflight: 20 } } }, value: 20 },
  env: { option: { env: { PETREL_MQTT__MAX_INFLIGHT: '30' } }, value: 30 },
  set: { option: { set: ['mqtt.max_inflight=40'] }, value: 40 },
} as const;
type Layer = keyof typeof LAYERS;
const RANK: readonly Layer[] = ['file', 'values', 'env', 'set'];

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

test('the highest layer present wins, for every subset and every option order', () => {
  let checked = 0;
  for (let mask = 0; mask < 1 << RANK.length; mask++) {
    const present = RANK.filter((_, i) => mask & (1 << i));
    const expected = present.length ? LAYERS[present[present.length - 1]!].value : 32;
    for (const order of permutations(present)) {
      const opts: LoadConfigOptions = Object.assign({}, ...order.map((l) => LAYERS[l].option));
      assert.deepEqual(Object.keys(opts), order, 'option keys are in the permuted order');
      assert.equal(loadConfig(opts).mqtt.max_inflight, expected, `layers ${order.join(', ')}`);
      checked++;
    }
  }
  assert.equal(checked, 65); // sum over subsets of k! = 1 + 4 + 12 + 24 + 24
});

test('layers merge per key: each key comes from the highest layer that sets it', () => {
  const f = join(dir, 'merge.toml');
  writeFileSync(f, 'mqtt.max_inflight = 1\nmqtt.max_awaiting_rel = 2\nmqtt.max_mqueue_len = 3\nmqtt.max_topic_levels = 4\n');
  const cfg = loadConfig({
    set: ['mqtt.max_inflight=11'],
    env: { PETREL_MQTT__MAX_INFLIGHT: '21', PETREL_MQTT__MAX_AWAITING_REL: '22' },
    values: { mqtt: { max_inflight: 31, max_awaiting_rel: 32, max_mqueue_len: 33 } },
    file: f,
  });
  assert.equal(cfg.mqtt.max_inflight, 11);
  assert.equal(cfg.mqtt.max_awaiting_rel, 22);
  assert.equal(cfg.mqtt.max_mqueue_len, 33);
  assert.equal(cfg.mqtt.max_topic_levels, 4);
  assert.equal(cfg.mqtt.max_qos_allowed, 2); // default
});

test('a bad value in a lower layer is reported even when a higher layer overrides it', () => {
  assert.throws(
    () => loadConfig({ values: { mqtt: { max_inflight: 0 } }, set: ['mqtt.max_inflight=5'] }),
    /config key mqtt\.max_inflight: value 0 \(from values\) is out of range/,
  );
});
