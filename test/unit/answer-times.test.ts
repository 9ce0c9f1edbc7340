import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ANSWER_WINDOW, AnswerTimes, MIN_ANSWERS } from '../../src/client/answer-times.js';

describe('answer times', () => {
  it('answer times - the hedge delay is the floor until a subject has enough answers, then 1.5 x their 95th percentile within [floor, deadline / 2]', () => {
    const t = new AnswerTimes();
    for (let i = 0; i < MIN_ANSWERS - 1; i++) t.record('s.upsert', 1_200);
    assert.equal(t.p95('s.upsert'), undefined);
    assert.equal(t.hedgeDelay('s.upsert', 60_000, 1_000), 1_000);
    t.record('s.upsert', 1_200);
    assert.equal(t.p95('s.upsert'), 1_200);
    assert.equal(t.hedgeDelay('s.upsert', 60_000, 1_000), 1_800);
    // at most half the deadline: the copy must have time to answer
    assert.equal(t.hedgeDelay('s.upsert', 3_000, 750), 1_500);
    // fast answers never bring it under the floor
    for (let i = 0; i < ANSWER_WINDOW; i++) t.record('s.search', 2);
    assert.equal(t.hedgeDelay('s.search', 5_000, 1_000), 1_000);
    // subjects are apart
    assert.equal(t.hedgeDelay('other.search', 5_000, 1_000), 1_000);
  });

  it('answer times - the 95th percentile is of the latest answers only, and ignores a few slow ones', () => {
    const t = new AnswerTimes();
    for (let i = 0; i < ANSWER_WINDOW; i++) t.record('s', i < 2 ? 5_000 : 100); // 2 of 64 slow: under 5%
    assert.equal(t.p95('s'), 100);
    for (let i = 0; i < 4; i++) t.record('s', 5_000); // now 6 of 64 slow
    assert.equal(t.p95('s'), 5_000);
    for (let i = 0; i < ANSWER_WINDOW; i++) t.record('s', 40); // the slow ones leave the window
    assert.equal(t.p95('s'), 40);
    t.record('s', Number.NaN);
    t.record('s', -1);
    assert.equal(t.p95('s'), 40);
  });

  it('answer times - it remembers a bounded number of subjects, forgetting the one heard from longest ago', () => {
    const t = new AnswerTimes();
    for (let i = 0; i < MIN_ANSWERS; i++) t.record('kept', 700); // first heard from
    for (let i = 0; i < MIN_ANSWERS; i++) t.record('old', 500);
    for (let s = 0; s < 997; s++) t.record(`s${s}`, 1); // 999 subjects
    t.record('kept', 700); // heard from again: now the newest
    t.record('one-more', 1); // the 1,000th
    assert.equal(t.p95('old'), 500);
    t.record('past-the-limit', 1); // the 1,001st: 'old' is forgotten, 'kept' is not
    assert.equal(t.p95('old'), undefined);
    assert.equal(t.p95('kept'), 700);
  });
});
