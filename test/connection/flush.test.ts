/**
 * Group commit (src/connection/flush.ts): which connections are written before the store's
 * commit, which after it, the one-iteration wait of the commit when deliveries went out
 * early, and a failed commit aborting only what waited for it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addCommitter, removeCommitter, scheduleFlush, type Committer, type Flushable } from '../../src/connection/flush.js';

const log: string[] = [];

class FakeConnection implements Flushable {
  constructor(
    readonly name: string,
    public waitsForCommit: boolean,
  ) {}
  flush(): void {
    log.push(`flush ${this.name}`);
  }
  abort(): void {
    log.push(`abort ${this.name}`);
  }
}

class FakeStore implements Committer {
  pending = false;
  fail = false;
  hasPending(): boolean {
    return this.pending;
  }
  commit(): boolean {
    log.push(this.fail ? 'commit failed' : 'commit');
    this.pending = false;
    return !this.fail;
  }
}

/** Runs the check phases scheduled so far (and any they schedule). */
const turns = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

async function withStore(run: (store: FakeStore) => Promise<void>): Promise<void> {
  const store = new FakeStore();
  addCommitter(store);
  log.length = 0;
  try {
    await run(store);
  } finally {
    removeCommitter(store);
  }
}

test('flush: nothing to commit: every connection is written in the turn', async () => {
  await withStore(async () => {
    scheduleFlush(new FakeConnection('ack', true));
    scheduleFlush(new FakeConnection('pub', false));
    await turns();
    assert.deepEqual(log, ['flush ack', 'flush pub']);
  });
});

test('flush: deliveries go before the commit, which waits one iteration; acknowledgements after it', async () => {
  await withStore(async (store) => {
    store.pending = true;
    const ack = new FakeConnection('publisher', true);
    scheduleFlush(ack);
    scheduleFlush(new FakeConnection('subscriber', false));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['flush subscriber'], 'the first check phase writes the delivery only');
    // The subscriber's acknowledgement arrives in between: more for the same batch.
    scheduleFlush(new FakeConnection('subscriber-2', false));
    await turns();
    assert.deepEqual(log, ['flush subscriber', 'flush subscriber-2', 'commit', 'flush publisher']);
  });
});

test('flush: with nothing written early the commit does not wait', async () => {
  await withStore(async (store) => {
    store.pending = true;
    scheduleFlush(new FakeConnection('publisher', true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['commit', 'flush publisher']);
  });
});

test('flush: a failed commit aborts what waited for it, not what already went', async () => {
  await withStore(async (store) => {
    store.pending = true;
    store.fail = true;
    scheduleFlush(new FakeConnection('publisher', true));
    scheduleFlush(new FakeConnection('subscriber', false));
    await turns();
    assert.deepEqual(log, ['flush subscriber', 'commit failed', 'abort publisher']);
  });
});
