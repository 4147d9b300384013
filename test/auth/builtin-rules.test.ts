// The built_in_database authorization source: rules per client id, per username and for all
// (EMQX's {permission, action, topic, qos?, retain?}), driven by real clients; a change applies
// to the next PUBLISH (the decision cache is dropped); rules survive a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, withBroker, type TestBroker } from '../helpers/broker.js';
import { BuiltinRuleError } from '../../src/auth/index.js';
import { PacketType } from '../../src/codec/index.js';

const SOURCES = { authorization: { no_match: 'deny', sources: { db: { type: 'built_in_database' } } } };


async function client(b: TestBroker, clientId: string, username?: string): Promise<RawClient> {
  const c = await RawClient.tcp(b.port, 5);
  assert.equal((await c.connect(clientId, { username })).reasonCode, 0);
  return c;
}

/** PUBACK reason code of a QoS 1 PUBLISH. */
async function puback(c: RawClient, topic: string): Promise<number> {
  return (await c.publish(topic, 'x', 1))!.reasonCode;
}

test('rules per username, per client id and for all decide for real clients; client id rules come first', async () => {
  await withBroker(SOURCES, async (b) => {
    const rules = b.petrel.auth.rules;
    rules.set('username', 'alice', [
      { permission: 'allow', action: 'publish', topic: 't/${username}/#' },
      { permission: 'allow', action: 'all', topic: 'eq shared/#' },
    ]);
    rules.set('clientid', 'dev-1', [{ permission: 'deny', action: 'publish', topic: 't/alice/secret' }]);
    rules.setAll([{ permission: 'allow', action: 'subscribe', topic: 't/#' }]);

    const sub = await client(b, 'watcher', 'bob');
    assert.deepEqual((await sub.subscribe(['t/#', 'x/#', 'shared/#'], 1)).reasonCodes, [1, 0x87, 0x87]);
    const alice = await client(b, 'a-1', 'alice');
    assert.deepEqual((await alice.subscribe('shared/#', 0)).reasonCodes, [0], '{eq, shared/#} is that literal filter');
    assert.equal(await puback(alice, 't/alice/1'), 0);
    assert.equal((await sub.next(PacketType.PUBLISH)).topic, 't/alice/1');
    assert.equal(await puback(alice, 't/bob/1'), 0x87, 'no rule: no_match deny');
    // The same user on client id dev-1: the client id's deny comes before the username's allow.
    const dev = await client(b, 'dev-1', 'alice');
    assert.equal(await puback(dev, 't/alice/secret'), 0x87);
    assert.equal(await puback(alice, 't/alice/secret'), 0);
    assert.equal((await sub.next(PacketType.PUBLISH)).topic, 't/alice/secret');
    assert.equal(sub.received.filter((p) => p.type === PacketType.PUBLISH).length, 0, 'denied messages reached no subscriber');
    for (const c of [sub, alice, dev]) c.end();
  });
});

test('a change applies to the next PUBLISH (cached decisions dropped); qos conditions', async () => {
  await withBroker(SOURCES, async (b) => {
    const rules = b.petrel.auth.rules;
    const c = await client(b, 'c1', 'carol');
    assert.equal(await puback(c, 'u/1'), 0x87);
    assert.equal(await puback(c, 'u/1'), 0x87, 'the denial is cached');
    rules.set('username', 'carol', [{ permission: 'allow', action: 'publish', topic: 'u/#', qos: [0, 1] }]);
    // 0x10: accepted, no matching subscribers.
    assert.equal(await puback(c, 'u/1'), 0x10, 'allowed at once');
    assert.equal((await c.publish('u/1', 'x', 2))!.reasonCode, 0x87, 'QoS 2 is outside the rule');
    assert.equal(rules.remove('username', 'carol'), true);
    assert.equal(await puback(c, 'u/1'), 0x87, 'removed at once');
    rules.setAll([{ permission: 'allow', action: 'publish', topic: 'u/#' }]);
    assert.equal(await puback(c, 'u/2'), 0x10);
    rules.clear();
    assert.equal(await puback(c, 'u/2'), 0x87);
    c.end();
  });
});

test('bad rules are refused with the rule number and the reason; nothing changes', async () => {
  await withBroker(SOURCES, async (b) => {
    const rules = b.petrel.auth.rules;
    rules.set('username', 'dave', [{ permission: 'allow', action: 'publish', topic: 'd/#' }]);
    assert.throws(() => rules.set('username', 'dave', [{ permission: 'allow', action: 'publish', topic: 'ok' }, { permission: 'maybe', action: 'publish', topic: 'x' }]),
      (err: Error) => err instanceof BuiltinRuleError && /rule 2: bad permission "maybe"/.test(err.message));
    assert.throws(() => rules.set('username', 'dave', [{ permission: 'allow', action: 'read', topic: 'x' }]), /rule 1: bad action/);
    assert.throws(() => rules.set('username', 'dave', [{ permission: 'allow', action: 'publish' }]), /rule 1: missing topic/);
    assert.throws(() => rules.set('username', 'dave', [{ action: 'publish', topic: 'x' }]), /rule 1: permission missing/);
    assert.throws(() => rules.set('peerhost' as 'username', 'x', [{ permission: 'allow', action: 'publish', topic: 'x' }]), /per clientid or username/);
    assert.deepEqual(rules.get('username', 'dave'), [{ permission: 'allow', action: 'publish', topic: 'd/#' }]);
    assert.deepEqual(rules.list('username'), [{ who: 'dave', rules: [{ permission: 'allow', action: 'publish', topic: 'd/#' }] }]);
  });
  await withBroker({}, async (b) => assert.throws(() => b.petrel.auth.rules, /no built_in_database authorization source/));
});

test('rules survive a restart on the same data directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-rules-'));
  const cfg = { ...SOURCES, durable_storage: { mode: 'durable' }, node: { data_dir: dir } };
  await withBroker(cfg, async (b) => {
    b.petrel.auth.rules.set('clientid', 'kept', [{ permission: 'allow', action: 'publish', topic: 'k/#', retain: false }]);
    b.petrel.auth.rules.setAll([{ permission: 'deny', action: 'subscribe', topic: 'eq #' }]);
  });
  await withBroker(cfg, async (b) => {
    assert.deepEqual(b.petrel.auth.rules.get('clientid', 'kept'), [{ permission: 'allow', action: 'publish', topic: 'k/#', retain: false }]);
    assert.deepEqual(b.petrel.auth.rules.getAll(), [{ permission: 'deny', action: 'subscribe', topic: 'eq #' }]);
    const c = await client(b, 'kept');
    assert.equal(await puback(c, 'k/1'), 0x10);
    assert.equal((await c.publish('k/1', 'x', 1, { retain: true }))!.reasonCode, 0x87, 'the rule is for retain false');
    c.end();
  });
});
