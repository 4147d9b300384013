import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchTopic } from '../../src/topic/match.js';
import { MATCH_CASES } from './cases.js';

test('matchTopic: shared case table', async (t) => {
  for (const c of MATCH_CASES) {
    await t.test(`${c.name}: ${c.filter} vs ${c.topic}`, () => {
      assert.equal(matchTopic(c.filter, c.topic), c.match);
    });
  }
});
