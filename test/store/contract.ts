/**
 * The DurableStore contract suite: every implementation runs it (memory.test.ts,
 * sqlite.test.ts). "Reopen" closes the store and returns one over the same state: a new
 * SqliteDurableStore on the same file, or the same MemoryDurableStore opened again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  DurableState,
  DurableStore,
  PersistedDelivery,
  PersistedSubscription,
  StoredMessage,
} from '../../src/store/index.js';

export interface StoreHarness {
  /** A new, opened, empty store. */
  create(): DurableStore;
  /** Closes `store` (without committing) and returns an opened store over what it committed. */
  reopen(store: DurableStore): DurableStore;
  /** Removes what create() made (files). */
  dispose(): void;
}

export function message(id: number, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id,
    topic: `t/${id}`,
    payload: Buffer.from(`payload ${id}`),
    qos: 1,
    retain: false,
    from: 'pub',
    timestamp: 1_700_000_000_000 + id,
    expiresAt: 0,
    ...over,
  };
}

export function delivery(seq: number, messageId: number, over: Partial<PersistedDelivery> = {}): PersistedDelivery {
  return { seq, messageId, qos: 1, retain: false, subscriptionIds: [], packetId: 0, state: 'queued', ...over };
}

export function subscription(filter: string, over: Partial<PersistedSubscription> = {}): PersistedSubscription {
  return { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0, ...over };
}

export function runDurableStoreContract(name: string, makeStore: () => StoreHarness): void {
  /** Runs `body` with a fresh store; the harness is disposed afterwards. */
  const withStore = async (body: (h: StoreHarness, s: DurableStore) => void | Promise<void>): Promise<void> => {
    const h = makeStore();
    const s = h.create();
    try {
      await body(h, s);
    } finally {
      h.dispose();
    }
  };
  /** Commit, reopen, load. Returns the reopened store and its state. */
  const roundTrip = (h: StoreHarness, s: DurableStore, now = 0): [DurableStore, DurableState] => {
    s.commit();
    const r = h.reopen(s);
    return [r, r.load(now)];
  };
  const session = (state: DurableState, clientId: string) => state.sessions.find((x) => x.clientId === clientId);

  test(`${name}: an empty store loads empty`, async () => {
    await withStore((h, s) => {
      assert.equal(s.pending, false);
      const [r, st] = roundTrip(h, s);
      assert.deepEqual(st.sessions, []);
      assert.equal(st.messages.size, 0);
      assert.deepEqual(st.retained, []);
      assert.deepEqual(st.wills, []);
      assert.deepEqual(st.delayed, []);
      assert.equal(st.maxMessageId, 0);
      r.close();
    });
  });

  test(`${name}: sessions round-trip (expiry, disconnect time, reconnect resets it)`, async () => {
    await withStore((h, s) => {
      s.putSession('a', 60_000);
      s.putSession('b', 5_000);
      s.sessionDisconnected('b', 1_700_000_123_456);
      s.putSession('c', 10);
      s.sessionDisconnected('c', 99);
      s.putSession('c', 20); // reconnected with a new expiry: connected again
      s.sessionDisconnected('ghost', 5); // no such session: no-op
      let [r, st] = roundTrip(h, s);
      assert.deepEqual(
        st.sessions.map((x) => [x.clientId, x.expiryInterval, x.disconnectedAt]),
        [
          ['a', 60_000, 0],
          ['b', 5_000, 1_700_000_123_456],
          ['c', 20, 0],
        ],
      );
      for (const x of st.sessions) {
        assert.deepEqual(x.subscriptions, []);
        assert.deepEqual(x.deliveries, []);
        assert.deepEqual(x.awaitingRel, []);
      }
      r.sessionDisconnected('a', 7);
      [r, st] = roundTrip(h, r);
      assert.equal(session(st, 'a')!.disconnectedAt, 7);
      r.close();
    });
  });

  test(`${name}: Infinity session expiry round-trips`, async () => {
    await withStore((h, s) => {
      s.putSession('forever', Infinity);
      s.putSession('max', 0xffffffff * 1000);
      s.putSession('zero', 0);
      const [r, st] = roundTrip(h, s);
      assert.equal(session(st, 'forever')!.expiryInterval, Infinity);
      assert.equal(session(st, 'max')!.expiryInterval, 0xffffffff * 1000);
      assert.equal(session(st, 'zero')!.expiryInterval, 0);
      r.close();
    });
  });

  test(`${name}: subscriptions round-trip, are replaced by filter, and deleted`, async () => {
    await withStore((h, s) => {
      s.putSession('c', 1000);
      const a = subscription('a/+/c', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 268_435_455 });
      const b = subscription('b/#', { qos: 0, retainHandling: 1 });
      s.putSubscription('c', a);
      s.putSubscription('c', b);
      s.putSubscription('c', subscription('gone'));
      s.putSubscription('c', subscription('$share/g/x', { qos: 1, subscriptionId: 7 }));
      let [r, st] = roundTrip(h, s);
      assert.deepEqual(
        [...session(st, 'c')!.subscriptions].sort((x, y) => (x.filter < y.filter ? -1 : 1)),
        [subscription('$share/g/x', { qos: 1, subscriptionId: 7 }), a, b, subscription('gone')],
      );
      r.deleteSubscription('c', 'gone');
      r.deleteSubscription('c', 'never-there');
      r.putSubscription('c', { ...b, qos: 2 });
      [r, st] = roundTrip(h, r);
      const subs = session(st, 'c')!.subscriptions;
      assert.equal(subs.length, 3);
      assert.equal(subs.find((x) => x.filter === 'b/#')!.qos, 2);
      assert.equal(subs.find((x) => x.filter === 'gone'), undefined);
      r.close();
    });
  });

  test(`${name}: messages and deliveries round-trip, deliveries in seq order`, async () => {
    await withStore((h, s) => {
      s.putSession('c', 1000);
      for (const id of [1, 2, 3]) s.putMessage(message(id));
      // Recorded out of order: load returns them by seq.
      s.putDelivery('c', delivery(30, 3, { qos: 2, subscriptionIds: [1, 2, 300_000] }));
      s.putDelivery('c', delivery(10, 1, { retain: true, subscriptionIds: [5] }));
      s.putDelivery('c', delivery(20, 2, { qos: 0 }));
      let [r, st] = roundTrip(h, s);
      const c = session(st, 'c')!;
      assert.deepEqual(c.deliveries, [
        delivery(10, 1, { retain: true, subscriptionIds: [5] }),
        delivery(20, 2, { qos: 0 }),
        delivery(30, 3, { qos: 2, subscriptionIds: [1, 2, 300_000] }),
      ]);
      assert.deepEqual([...st.messages.keys()].sort(), [1, 2, 3]);
      for (const id of [1, 2, 3]) assert.deepEqual(st.messages.get(id), message(id));

      r.updateDelivery('c', 10, 'publish', 17, 1);
      r.updateDelivery('c', 30, 'publish', 18, 3);
      r.updateDelivery('c', 999, 'publish', 19, 999); // no such delivery: no-op
      [r, st] = roundTrip(h, r);
      assert.deepEqual(
        session(st, 'c')!.deliveries.map((d) => [d.seq, d.state, d.packetId]),
        [
          [10, 'publish', 17],
          [20, 'queued', 0],
          [30, 'publish', 18],
        ],
      );
      r.updateDelivery('c', 30, 'pubrel', 18, 3);
      r.deleteDelivery('c', 10, 1);
      r.deleteMessage(1);
      [r, st] = roundTrip(h, r);
      assert.deepEqual(
        session(st, 'c')!.deliveries.map((d) => [d.seq, d.state, d.packetId]),
        [
          [20, 'queued', 0],
          [30, 'pubrel', 18],
        ],
      );
      assert.deepEqual([...st.messages.keys()].sort(), [2, 3]);
      r.close();
    });
  });

  test(`${name}: one message body serves several sessions`, async () => {
    await withStore((h, s) => {
      s.putMessage(message(1));
      for (const c of ['a', 'b', 'c']) {
        s.putSession(c, 1000);
        s.putDelivery(c, delivery(1, 1));
      }
      let [r, st] = roundTrip(h, s);
      assert.equal(st.messages.size, 1);
      assert.deepEqual(
        st.sessions.map((x) => x.deliveries.length),
        [1, 1, 1],
      );
      r.deleteDelivery('a', 1, 1);
      r.deleteDelivery('b', 1, 1);
      [r, st] = roundTrip(h, r);
      assert.equal(st.messages.size, 1, 'still referenced by c');
      r.close();
    });
  });

  test(`${name}: message fields and MQTT 5 properties round-trip losslessly`, async () => {
    await withStore((h, s) => {
      const rich = message(1, {
        topic: 'ünïcødé/🚀/$x',
        payload: Buffer.from([0, 1, 2, 255, 0, 128]),
        qos: 2,
        retain: true,
        from: 'publisher-ü',
        timestamp: 1_712_345_678_901,
        expiresAt: 1_712_345_999_999,
        properties: {
          payloadFormatIndicator: 1,
          contentType: 'application/json; charset=utf-8',
          responseTopic: 'reply/here',
          correlationData: Buffer.from([0, 0xff, 0x10, 0x80]),
          userProperties: [
            ['z', 'last-name-first'],
            ['a', '1'],
            ['a', '2'],
            ['', ''],
            ['a', '1'],
            ['ключ', 'значение'],
          ],
        },
      });
      const auth = message(2, { properties: { authenticationMethod: 'SCRAM', authenticationData: Buffer.from('secret\0bytes') } });
      const empty = message(3, { payload: Buffer.alloc(0) });
      const emptyProps = message(4, { properties: {} });
      const emptyCorrelation = message(5, { properties: { correlationData: Buffer.alloc(0) } });
      const all = [rich, auth, empty, emptyProps, emptyCorrelation];
      s.putSession('c', 1000);
      all.forEach((m, i) => {
        s.putMessage(m);
        s.putDelivery('c', delivery(i, m.id));
      });
      s.putRetained(rich);
      s.putWill({ clientId: 'w', message: auth, dueAt: 5 });
      s.putDelayed({ message: emptyCorrelation, dueAt: 6 });
      const [r, st] = roundTrip(h, s);
      for (const m of all) {
        const got = st.messages.get(m.id)!;
        assert.deepEqual(got, m);
        assert.ok(Buffer.isBuffer(got.payload));
        if (m.properties === undefined) assert.equal('properties' in got, false, 'no properties key when none');
      }
      assert.ok(Buffer.isBuffer(st.messages.get(1)!.properties!.correlationData));
      assert.ok(Buffer.isBuffer(st.messages.get(2)!.properties!.authenticationData));
      assert.deepEqual(st.retained, [rich]);
      assert.deepEqual(st.wills, [{ clientId: 'w', message: auth, dueAt: 5 }]);
      assert.deepEqual(st.delayed, [{ message: emptyCorrelation, dueAt: 6 }]);
      r.close();
    });
  });

  test(`${name}: awaiting-PUBREL ids round-trip`, async () => {
    await withStore((h, s) => {
      s.putSession('c', 1000);
      s.putAwaitingRel('c', 65535);
      s.putAwaitingRel('c', 1);
      s.putAwaitingRel('c', 300);
      s.putAwaitingRel('c', 300); // idempotent
      let [r, st] = roundTrip(h, s);
      assert.deepEqual([...session(st, 'c')!.awaitingRel].sort((a, b) => a - b), [1, 300, 65535]);
      r.deleteAwaitingRel('c', 300);
      r.deleteAwaitingRel('c', 4);
      [r, st] = roundTrip(h, r);
      assert.deepEqual([...session(st, 'c')!.awaitingRel].sort((a, b) => a - b), [1, 65535]);
      r.close();
    });
  });

  test(`${name}: retained messages round-trip, are replaced by topic, and deleted`, async () => {
    await withStore((h, s) => {
      s.putRetained(message(1, { topic: 'a/b', retain: true }));
      s.putRetained(message(2, { topic: 'a/c', retain: true, properties: { contentType: 'text/plain' } }));
      s.putRetained(message(3, { topic: 'x', retain: true }));
      let [r, st] = roundTrip(h, s);
      assert.deepEqual(
        [...st.retained].sort((a, b) => a.id - b.id),
        [
          message(1, { topic: 'a/b', retain: true }),
          message(2, { topic: 'a/c', retain: true, properties: { contentType: 'text/plain' } }),
          message(3, { topic: 'x', retain: true }),
        ],
      );
      r.putRetained(message(4, { topic: 'a/b', retain: true }));
      r.deleteRetained('x');
      r.deleteRetained('nope');
      [r, st] = roundTrip(h, r);
      assert.deepEqual(
        st.retained.map((m) => [m.topic, m.id]).sort(),
        [
          ['a/b', 4],
          ['a/c', 2],
        ],
      );
      r.close();
    });
  });

  test(`${name}: wills round-trip, are replaced by client id, and deleted`, async () => {
    await withStore((h, s) => {
      s.putWill({ clientId: 'a', message: message(1, { topic: 'will/a', qos: 2, retain: true }), dueAt: 1000 });
      s.putWill({ clientId: 'b', message: message(2, { topic: 'will/b' }), dueAt: 2000 });
      let [r, st] = roundTrip(h, s);
      assert.deepEqual(
        [...st.wills].sort((x, y) => (x.clientId < y.clientId ? -1 : 1)),
        [
          { clientId: 'a', message: message(1, { topic: 'will/a', qos: 2, retain: true }), dueAt: 1000 },
          { clientId: 'b', message: message(2, { topic: 'will/b' }), dueAt: 2000 },
        ],
      );
      r.putWill({ clientId: 'a', message: message(3), dueAt: 3000 });
      r.deleteWill('b');
      [r, st] = roundTrip(h, r);
      assert.deepEqual(st.wills, [{ clientId: 'a', message: message(3), dueAt: 3000 }]);
      r.close();
    });
  });

  test(`${name}: delayed messages round-trip and are deleted by message id`, async () => {
    await withStore((h, s) => {
      s.putDelayed({ message: message(10, { topic: 'd/1' }), dueAt: 500 });
      s.putDelayed({ message: message(11, { topic: 'd/2', properties: { userProperties: [['k', 'v']] } }), dueAt: 400 });
      let [r, st] = roundTrip(h, s);
      assert.deepEqual(
        [...st.delayed].sort((a, b) => a.message.id - b.message.id),
        [
          { message: message(10, { topic: 'd/1' }), dueAt: 500 },
          { message: message(11, { topic: 'd/2', properties: { userProperties: [['k', 'v']] } }), dueAt: 400 },
        ],
      );
      r.deleteDelayed(10);
      r.deleteDelayed(12);
      [r, st] = roundTrip(h, r);
      assert.deepEqual(
        st.delayed.map((d) => d.message.id),
        [11],
      );
      r.close();
    });
  });

  test(`${name}: deleteSession removes its subscriptions, deliveries and awaiting-PUBREL ids`, async () => {
    await withStore((h, s) => {
      s.putMessage(message(1));
      s.putMessage(message(2));
      for (const c of ['gone', 'kept']) {
        s.putSession(c, 1000);
        s.putSubscription(c, subscription('a/#'));
        s.putDelivery(c, delivery(1, 1));
        s.putAwaitingRel(c, 42);
      }
      s.putDelivery('gone', delivery(2, 2));
      s.putWill({ clientId: 'gone', message: message(3), dueAt: 9 });
      let [r, st] = roundTrip(h, s);
      r.deleteSession('gone');
      [r, st] = roundTrip(h, r);
      assert.deepEqual(
        st.sessions.map((x) => x.clientId),
        ['kept'],
      );
      const kept = session(st, 'kept')!;
      assert.equal(kept.subscriptions.length, 1);
      assert.equal(kept.deliveries.length, 1);
      assert.deepEqual(kept.awaitingRel, [42]);
      // Message 2 was only referenced by the deleted session: the next load drops it.
      assert.deepEqual([...st.messages.keys()], [1]);
      // The will is the broker's to delete (a delayed will may outlive the session).
      assert.equal(st.wills.length, 1);
      // A session created again under the same id starts empty.
      r.putSession('gone', 5);
      [r, st] = roundTrip(h, r);
      const again = session(st, 'gone')!;
      assert.deepEqual([again.subscriptions, again.deliveries, again.awaitingRel], [[], [], []]);
      // Deleted and recreated in one batch (a clean start): no load in between to tidy up,
      // so the cascade itself must have removed the old rows.
      r.deleteSession('kept');
      r.putSession('kept', 5);
      [r, st] = roundTrip(h, r);
      const fresh = session(st, 'kept')!;
      assert.deepEqual([fresh.subscriptions, fresh.deliveries, fresh.awaitingRel], [[], [], []]);
      assert.equal(fresh.expiryInterval, 5);
      r.close();
    });
  });

  test(`${name}: a batch is atomic: recorded but uncommitted writes are lost on reopen`, async () => {
    await withStore((h, s) => {
      s.putSession('c', 1000);
      s.putMessage(message(1));
      s.putDelivery('c', delivery(1, 1));
      s.commit();
      assert.equal(s.pending, false);
      s.putMessage(message(2));
      s.putDelivery('c', delivery(2, 2));
      s.deleteDelivery('c', 1, 1);
      s.putRetained(message(3, { topic: 'r' }));
      s.putSession('d', 1);
      s.deleteSession('c');
      assert.equal(s.pending, true);
      const r = h.reopen(s); // no commit
      assert.equal(r.pending, false);
      const st = r.load(0);
      assert.deepEqual(
        st.sessions.map((x) => x.clientId),
        ['c'],
      );
      assert.deepEqual(session(st, 'c')!.deliveries, [delivery(1, 1)]);
      assert.deepEqual([...st.messages.keys()], [1]);
      assert.deepEqual(st.retained, []);
      r.close();
    });
  });

  test(`${name}: control-plane records are durable on return, independent of the batch`, async () => {
    await withStore((h, s) => {
      s.records.put('users:db', 'bob', { hash: 'x', superuser: false });
      s.records.put('users:db', 'alice', { hash: 'y', superuser: true });
      s.records.put('banned', 'clientid:c1', { until: 5 });
      s.putSession('c', 1000); // a batch left uncommitted must not take the records with it
      const r = h.reopen(s);
      r.load(0);
      assert.deepEqual(r.records.list('users:db'), [
        { key: 'alice', value: { hash: 'y', superuser: true } },
        { key: 'bob', value: { hash: 'x', superuser: false } },
      ]);
      assert.deepEqual(r.records.get('banned', 'clientid:c1'), { until: 5 });
      assert.equal(r.records.get('banned', 'nobody'), undefined);
      assert.deepEqual(r.records.list('nothing'), []);
      r.records.put('users:db', 'bob', { hash: 'z', superuser: false }); // replace
      assert.equal(r.records.delete('users:db', 'alice'), true);
      assert.equal(r.records.delete('users:db', 'alice'), false);
      assert.equal(r.records.clear('banned'), 1);
      const again = h.reopen(r);
      again.load(0);
      assert.deepEqual(again.records.list('users:db'), [{ key: 'bob', value: { hash: 'z', superuser: false } }]);
      assert.deepEqual(again.records.list('banned'), []);
      // Values come out as copies: changing one does not change the store.
      (again.records.get<{ hash: string }>('users:db', 'bob')!).hash = 'changed';
      assert.equal(again.records.get<{ hash: string }>('users:db', 'bob')!.hash, 'z');
      again.close();
    });
  });

  test(`${name}: a record value that is not JSON is refused with its kind and key`, async () => {
    await withStore((_h, s) => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      assert.throws(() => s.records.put('api_keys', 'k1', cyclic), (err: Error) => err.name === 'StoreError' && /api_keys\/k1/.test(err.message));
      assert.throws(() => s.records.put('api_keys', 'k2', undefined), /api_keys\/k2: value is undefined/);
      assert.deepEqual(s.records.list('api_keys'), []);
      s.close();
    });
  });

  test(`${name}: ops of a batch apply in the order recorded`, async () => {
    await withStore((h, s) => {
      s.putSession('c', 1000);
      s.putMessage(message(1));
      s.putDelivery('c', delivery(1, 1));
      s.deleteDelivery('c', 1, 1); // put then delete: gone
      s.putDelivery('c', delivery(2, 1));
      s.updateDelivery('c', 2, 'publish', 9, 1);
      s.deleteRetained('r');
      s.putRetained(message(2, { topic: 'r' })); // delete then put: present
      s.deleteSession('x');
      s.putSession('x', 1);
      s.putSubscription('x', subscription('f'));
      const [r, st] = roundTrip(h, s);
      assert.deepEqual(session(st, 'c')!.deliveries, [delivery(2, 1, { state: 'publish', packetId: 9 })]);
      assert.deepEqual(
        st.retained.map((m) => m.id),
        [2],
      );
      assert.deepEqual(session(st, 'x')!.subscriptions, [subscription('f')]);
      r.close();
    });
  });

  test(`${name}: pending, and onDirty once per batch on its first write`, async () => {
    await withStore((h, s) => {
      let dirty = 0;
      let pendingWhenDirty: boolean | undefined;
      s.onDirty = () => {
        dirty++;
        pendingWhenDirty = s.pending;
      };
      assert.equal(s.pending, false);
      s.commit(); // empty: a no-op
      assert.equal(dirty, 0);
      s.putSession('c', 1);
      assert.equal(dirty, 1);
      assert.equal(pendingWhenDirty, true);
      s.putSubscription('c', subscription('a'));
      s.putMessage(message(1));
      s.putDelivery('c', delivery(1, 1));
      assert.equal(dirty, 1);
      assert.equal(s.pending, true);
      s.commit();
      assert.equal(s.pending, false);
      assert.equal(dirty, 1);
      s.deleteSubscription('c', 'a');
      s.deleteDelivery('c', 1, 1);
      assert.equal(dirty, 2);
      s.commit();
      // Every write method counts as a write.
      const writes: Array<() => void> = [
        () => s.putMessage(message(5)),
        () => s.deleteMessage(5),
        () => s.putSession('z', 1),
        () => s.sessionDisconnected('z', 1),
        () => s.deleteSession('z'),
        () => s.putSubscription('z', subscription('q')),
        () => s.deleteSubscription('z', 'q'),
        () => s.putDelivery('z', delivery(1, 5)),
        () => s.updateDelivery('z', 1, 'publish', 1, 5),
        () => s.updateDelivery('z', 1, 'pubrel', 1, 5),
        () => s.deleteDelivery('z', 1, 5),
        () => s.putAwaitingRel('z', 1),
        () => s.deleteAwaitingRel('z', 1),
        () => s.putRetained(message(6)),
        () => s.deleteRetained('t/6'),
        () => s.putWill({ clientId: 'z', message: message(7), dueAt: 1 }),
        () => s.deleteWill('z'),
        () => s.putDelayed({ message: message(8), dueAt: 1 }),
        () => s.deleteDelayed(8),
      ];
      for (const w of writes) {
        const before: number = dirty;
        w();
        assert.equal(dirty, before + 1);
        assert.equal(s.pending, true);
        s.commit();
      }
      const r = h.reopen(s);
      r.close();
    });
  });

  test(`${name}: load drops orphans: unreferenced messages, deliveries without a message, rows without a session`, async () => {
    await withStore((h, s) => {
      s.putSession('c', 1000);
      s.putMessage(message(1)); // referenced
      s.putMessage(message(2)); // never referenced
      s.putMessage(message(3)); // referenced only by a session-less delivery
      s.putDelivery('c', delivery(1, 1));
      s.putDelivery('c', delivery(2, 99)); // message missing
      s.putDelivery('nosession', delivery(1, 3));
      s.putSubscription('nosession', subscription('a'));
      s.putAwaitingRel('nosession', 1);
      let [r, st] = roundTrip(h, s);
      assert.deepEqual([...st.messages.keys()], [1]);
      assert.deepEqual(
        st.sessions.map((x) => x.clientId),
        ['c'],
      );
      assert.deepEqual(session(st, 'c')!.deliveries, [delivery(1, 1)]);
      // The cleanup is permanent: a session created later under that id starts empty.
      r.putSession('nosession', 1);
      [r, st] = roundTrip(h, r);
      const ns = session(st, 'nosession')!;
      assert.deepEqual([ns.subscriptions, ns.deliveries, ns.awaitingRel], [[], [], []]);
      assert.deepEqual([...st.messages.keys()], [1]);
      r.close();
    });
  });

  test(`${name}: maxMessageId is the largest id over messages, retained, wills and delayed`, async () => {
    const cases: Array<[string, (s: DurableStore) => void, number]> = [
      ['message', (s) => s.putMessage(message(50)), 50],
      ['retained', (s) => s.putRetained(message(60, { topic: 'r' })), 60],
      ['will', (s) => s.putWill({ clientId: 'w', message: message(70), dueAt: 1 }), 70],
      ['delayed', (s) => s.putDelayed({ message: message(80), dueAt: 1 }), 80],
    ];
    for (const [what, write, expected] of cases) {
      await withStore((h, s) => {
        s.putSession('c', 1000);
        s.putMessage(message(10));
        s.putDelivery('c', delivery(1, 10));
        s.putRetained(message(5, { topic: 'r0' }));
        write(s);
        const [r, st] = roundTrip(h, s);
        assert.equal(st.maxMessageId, expected, what);
        r.close();
      });
    }
    // Counted before orphan cleanup: an unreferenced message's id is not handed out again
    // by the load that drops it.
    await withStore((h, s) => {
      s.putMessage(message(123));
      const [r, st] = roundTrip(h, s);
      assert.equal(st.messages.size, 0);
      assert.equal(st.maxMessageId, 123);
      r.close();
    });
  });

  test(`${name}: load applies no expiry (the broker counts what expired)`, async () => {
    await withStore((h, s) => {
      const now = 2_000_000_000_000;
      s.putSession('old', 1000);
      s.sessionDisconnected('old', 1);
      s.putMessage(message(1, { expiresAt: 5 }));
      s.putDelivery('old', delivery(1, 1));
      s.putRetained(message(2, { topic: 'r', expiresAt: 5 }));
      s.putWill({ clientId: 'w', message: message(3, { expiresAt: 5 }), dueAt: 5 });
      s.putDelayed({ message: message(4, { expiresAt: 5 }), dueAt: 5 });
      const [r, st] = roundTrip(h, s, now);
      assert.equal(st.sessions.length, 1);
      assert.equal(st.messages.get(1)!.expiresAt, 5);
      assert.equal(st.retained.length, 1);
      assert.equal(st.wills.length, 1);
      assert.equal(st.delayed.length, 1);
      r.close();
    });
  });

  test(`${name}: a large batch commits as one`, async () => {
    await withStore((h, s) => {
      const n = 5000;
      for (let c = 0; c < 10; c++) s.putSession(`c${c}`, 1000);
      for (let i = 1; i <= n; i++) {
        s.putMessage(message(i, { payload: Buffer.alloc(100, i & 0xff) }));
        s.putDelivery(`c${i % 10}`, delivery(i, i));
      }
      const [r, st] = roundTrip(h, s);
      assert.equal(st.messages.size, n);
      assert.deepEqual(
        st.sessions.map((x) => x.deliveries.length),
        Array(10).fill(n / 10),
      );
      for (const x of st.sessions) {
        const seqs = x.deliveries.map((d) => d.seq);
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
      }
      assert.equal(st.maxMessageId, n);
      r.close();
    });
  });

  test(`${name}: the store keeps its own copy of what was committed`, async () => {
    await withStore((h, s) => {
      const m = message(1, { properties: { correlationData: Buffer.from('abc') } });
      const d = delivery(1, 1, { subscriptionIds: [1] });
      s.putSession('c', 1000);
      s.putMessage(m);
      s.putDelivery('c', d);
      s.commit();
      m.payload.fill(0);
      m.properties!.correlationData!.fill(0);
      d.subscriptionIds.push(2);
      const r = h.reopen(s);
      const st = r.load(0);
      assert.deepEqual(st.messages.get(1), message(1, { properties: { correlationData: Buffer.from('abc') } }));
      assert.deepEqual(session(st, 'c')!.deliveries, [delivery(1, 1, { subscriptionIds: [1] })]);
      r.close();
    });
  });
}
