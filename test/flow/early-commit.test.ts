/**
 * connection/flush.ts: a committer whose batch is due is committed between packets, before
 * the turn ends, and the connections that queued bytes so far are flushed then; one that is
 * not due waits for the turn's end. A failed early commit aborts instead of flushing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addCommitter, commitIfDue, removeCommitter, scheduleFlush, type Committer, type Flushable } from '../../src/connection/flush.js';

class Sink implements Flushable {
  flushed = 0;
  aborted = 0;
  flush(): void {
    this.flushed++;
  }
  abort(): void {
    this.aborted++;
  }
}

function committer(due: () => boolean, ok = true): Committer & { commits: number } {
  const c = {
    commits: 0,
    commit: () => {
      c.commits++;
      return ok;
    },
    due,
  };
  return c;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a due batch commits and flushes between packets; the turn end then has nothing left to do', async () => {
  let ops = 0;
  const c = committer(() => ops >= 3);
  addCommitter(c);
  try {
    const a = new Sink();
    scheduleFlush(a);
    ops = 2;
    commitIfDue(); // not due: nothing happens before the turn ends
    assert.equal(c.commits, 0);
    assert.equal(a.flushed, 0);
    ops = 3;
    commitIfDue();
    assert.equal(c.commits, 1, 'committed at once');
    assert.equal(a.flushed, 1, 'flushed at once');
    const b = new Sink();
    ops = 0;
    scheduleFlush(b); // queued after the early commit: goes at the turn's end
    await nextTurn();
    assert.equal(a.flushed, 1, 'not flushed twice');
    assert.equal(b.flushed, 1);
    assert.equal(c.commits, 2);
  } finally {
    removeCommitter(c);
  }
});

test('a due batch whose commit fails aborts the connections instead of flushing them', async () => {
  const c = committer(() => true, false);
  addCommitter(c);
  try {
    const a = new Sink();
    scheduleFlush(a);
    commitIfDue();
    assert.equal(a.aborted, 1);
    assert.equal(a.flushed, 0);
    await nextTurn();
  } finally {
    removeCommitter(c);
  }
});

test('without a due committer commitIfDue does nothing', async () => {
  const c = committer(() => false);
  addCommitter(c);
  try {
    const a = new Sink();
    scheduleFlush(a);
    commitIfDue();
    assert.equal(a.flushed, 0);
    await nextTurn();
    assert.equal(a.flushed, 1);
  } finally {
    removeCommitter(c);
  }
});
