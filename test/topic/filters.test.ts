import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseSubscription,
  parseDelayed,
  topicLevelCount,
  exceedsLevels,
  MAX_DELAY_SECONDS,
} from '../../src/topic/filters.js';

test('parseSubscription: normal filters', () => {
  assert.deepEqual(parseSubscription('a/b'), { kind: 'normal', filter: 'a/b' });
  assert.deepEqual(parseSubscription('#'), { kind: 'normal', filter: '#' });
  assert.deepEqual(parseSubscription('$SYS/#'), { kind: 'normal', filter: '$SYS/#' });
  // Without the slash the words are ordinary topic levels.
  assert.deepEqual(parseSubscription('$share'), { kind: 'normal', filter: '$share' });
  assert.deepEqual(parseSubscription('$queue'), { kind: 'normal', filter: '$queue' });
  assert.deepEqual(parseSubscription('$exclusive'), { kind: 'normal', filter: '$exclusive' });
  assert.deepEqual(parseSubscription('$SHARE/g/t'), { kind: 'normal', filter: '$SHARE/g/t' }, 'prefixes are case sensitive');
});

test('parseSubscription: $share', () => {
  assert.deepEqual(parseSubscription('$share/g/a/b'), { kind: 'shared', group: 'g', filter: 'a/b' });
  assert.deepEqual(parseSubscription('$share/g/#'), { kind: 'shared', group: 'g', filter: '#' });
  assert.deepEqual(parseSubscription('$share/g/+/x/#'), { kind: 'shared', group: 'g', filter: '+/x/#' });
  assert.deepEqual(parseSubscription('$share/g//'), { kind: 'shared', group: 'g', filter: '/' }, 'empty levels are fine');
  assert.deepEqual(parseSubscription('$share/$g/t'), { kind: 'shared', group: '$g', filter: 't' });
  assert.deepEqual(parseSubscription('$share/g/$SYS/#'), { kind: 'shared', group: 'g', filter: '$SYS/#' });
});

test('parseSubscription: [MQTT-4.8.2-1] [MQTT-4.8.2-2] bad $share filters', () => {
  const bad = [
    '$share/', // no group, no filter
    '$share//t', // empty group
    '$share/g', // no filter
    '$share/g/', // empty filter
    '$share/+/t', // wildcard in group
    '$share/g+/t',
    '$share/#/t',
    '$share/g#/t',
    '$share/g/a/#/b', // malformed filter
    '$share/g/a+',
    '$share/g/$share/h/t', // nested prefix
    '$share/g/$queue/t',
    '$share/g/$exclusive/t',
  ];
  for (const raw of bad) {
    const r = parseSubscription(raw);
    assert.equal(r.kind, 'invalid', raw);
    if (r.kind === 'invalid') assert.ok(r.reason.length > 0);
  }
});

test('parseSubscription: $queue is $share with group $queue', () => {
  assert.deepEqual(parseSubscription('$queue/a/+'), { kind: 'shared', group: '$queue', filter: 'a/+' });
  assert.deepEqual(parseSubscription('$queue//'), { kind: 'shared', group: '$queue', filter: '/' });
  for (const raw of ['$queue/', '$queue/a/#/b', '$queue/$share/g/t', '$queue/$queue/t']) {
    assert.equal(parseSubscription(raw).kind, 'invalid', raw);
  }
});

test('parseSubscription: $exclusive', () => {
  assert.deepEqual(parseSubscription('$exclusive/a/b'), { kind: 'exclusive', filter: 'a/b' });
  assert.deepEqual(parseSubscription('$exclusive/#'), { kind: 'exclusive', filter: '#' });
  for (const raw of ['$exclusive/', '$exclusive/a#', '$exclusive/$share/g/t']) {
    assert.equal(parseSubscription(raw).kind, 'invalid', raw);
  }
});

test('parseSubscription: malformed normal filters', () => {
  for (const raw of ['', 'a/#/b', 'a+', 'a/b#', '#/']) {
    assert.equal(parseSubscription(raw).kind, 'invalid', JSON.stringify(raw));
  }
});

test('parseSubscription: never throws, and a shared result rebuilds the input', () => {
  const chars = fc.constantFrom('a', '/', '+', '#', '$', 's', 'h', 'a', 'r', 'e', 'q', 'u', '');
  const prefixes = fc.constantFrom('', '$share/', '$queue/', '$exclusive/', '$share//', '$share/g/');
  fc.assert(
    fc.property(prefixes, fc.array(chars, { maxLength: 12 }), (p, cs) => {
      const raw = p + cs.join('');
      const r = parseSubscription(raw);
      if (r.kind === 'shared' && raw.startsWith('$share/')) assert.equal(`$share/${r.group}/${r.filter}`, raw);
      if (r.kind === 'invalid') assert.equal(typeof r.reason, 'string');
    }),
    { numRuns: 1000 },
  );
});

test('parseDelayed: not a delayed topic', () => {
  assert.equal(parseDelayed('a/b'), null);
  assert.equal(parseDelayed('$delayed'), null);
  assert.equal(parseDelayed('$DELAYED/10/t'), null);
  assert.equal(parseDelayed('x/$delayed/10/t'), null);
});

test('parseDelayed: well formed', () => {
  assert.deepEqual(parseDelayed('$delayed/10/a/b'), { delaySeconds: 10, topic: 'a/b' });
  assert.deepEqual(parseDelayed('$delayed/0/t'), { delaySeconds: 0, topic: 't' });
  assert.deepEqual(parseDelayed('$delayed/007/t'), { delaySeconds: 7, topic: 't' });
  assert.deepEqual(parseDelayed(`$delayed/${MAX_DELAY_SECONDS}/t`), { delaySeconds: 4294967, topic: 't' });
  assert.deepEqual(parseDelayed('$delayed/1//'), { delaySeconds: 1, topic: '/' });
  assert.deepEqual(parseDelayed('$delayed/1/$SYS/x'), { delaySeconds: 1, topic: '$SYS/x' });
});

test('parseDelayed: malformed', () => {
  const bad = [
    '$delayed/', // no interval
    '$delayed//t', // empty interval
    '$delayed/10', // no topic
    '$delayed/10/', // empty topic
    '$delayed/-1/t',
    '$delayed/+1/t',
    '$delayed/1.5/t',
    '$delayed/1e3/t',
    '$delayed/ 1/t',
    '$delayed/0x10/t',
    '$delayed/abc/t',
    '$delayed/4294968/t', // one past the maximum
    '$delayed/99999999999999999999999999/t',
    '$delayed/10/a/+', // wildcard in the real topic
    '$delayed/10/#',
  ];
  for (const raw of bad) {
    const r = parseDelayed(raw);
    assert.ok(r !== null && 'invalid' in r, raw);
  }
});

test('parseDelayed: any in-range integer round-trips', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_DELAY_SECONDS }), (s) => {
      assert.deepEqual(parseDelayed(`$delayed/${s}/t/x`), { delaySeconds: s, topic: 't/x' });
    }),
  );
});

test('topicLevelCount and exceedsLevels', () => {
  const cases: [string, number][] = [
    ['a', 1],
    ['a/b', 2],
    ['/', 2],
    ['a//b', 3],
    ['/a/', 3],
    ['$SYS/#', 2],
    ['///', 4],
  ];
  for (const [s, n] of cases) {
    assert.equal(topicLevelCount(s), n, s);
    assert.equal(exceedsLevels(s, n), false, `${s} has ${n} levels, not more`);
    assert.equal(exceedsLevels(s, n - 1), true, `${s} exceeds ${n - 1}`);
  }
  assert.equal(exceedsLevels('a/b/c', Infinity), false);
  assert.equal(exceedsLevels('/'.repeat(65535), 128), true);
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', '', 'bc'), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 25 }), (levels, max) => {
      const s = levels.join('/');
      assert.equal(topicLevelCount(s), s.split('/').length);
      assert.equal(exceedsLevels(s, max), s.split('/').length > max);
    }),
  );
});
