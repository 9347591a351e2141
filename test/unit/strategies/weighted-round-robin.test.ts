import { test } from 'node:test';
import assert from 'node:assert/strict';
import { weightedRoundRobin } from '../../../src/strategies/weighted-round-robin.js';
import { cand, picks, req } from './_candidates.js';

const R = req();

test('smooth WRR with weights 5,1,1 gives exactly a a b a c a a in every cycle of 7', () => {
  const cs = [cand('a', { weight: 5 }), cand('b'), cand('c')];
  const s = weightedRoundRobin();
  for (let cycle = 0; cycle < 10; cycle++) {
    assert.deepEqual(picks(() => s.pick(cs, R), 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a'], `cycle ${cycle}`);
  }
});

test('smooth WRR gives exact proportions in every window of total weight', () => {
  const cs = [cand('a', { weight: 3 }), cand('b', { weight: 2 }), cand('c', { weight: 4 }), cand('d')];
  const s = weightedRoundRobin();
  for (let cycle = 0; cycle < 5; cycle++) {
    const counts = new Map<string, number>();
    for (const id of picks(() => s.pick(cs, R), 10)) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(counts), { a: 3, b: 2, c: 4, d: 1 }, `cycle ${cycle}`);
  }
});

test('smooth WRR keeps state by id across array changes and forgets ids that leave', () => {
  const a = cand('a', { weight: 5 });
  const b = cand('b');
  const c = cand('c');
  const s = weightedRoundRobin();
  // current after: a -2,b 1,c 1 / a -4,b 2,c 2 / a 1,b -4,c 3
  assert.deepEqual(picks(() => s.pick([a, b, c], R), 3), ['a', 'a', 'b']);
  // c leaves, order reversed: a keeps 1 and b keeps -4, keyed by id not slot. A reset would give a a a b a a.
  const ba = [b, a];
  assert.deepEqual(picks(() => s.pick(ba, R), 6), ['a', 'a', 'a', 'a', 'a', 'b']);
  // c comes back and starts from 0 (forgotten); had it kept its 3, the third pick would be c one pick earlier.
  const abc = [a, b, c];
  assert.deepEqual(picks(() => s.pick(abc, R), 3), ['a', 'a', 'c']);
});

test('smooth WRR with equal weights is plain rotation', () => {
  const cs = [cand('a', { weight: 2 }), cand('b', { weight: 2 }), cand('c', { weight: 2 })];
  const s = weightedRoundRobin();
  assert.deepEqual(picks(() => s.pick(cs, R), 6), ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('smooth WRR picks up a weight changed in place on the same array', () => {
  const a = cand('a');
  const b = cand('b');
  const cs = [a, b];
  const s = weightedRoundRobin();
  assert.deepEqual(picks(() => s.pick(cs, R), 2), ['a', 'b']);
  a.weight = 3;
  const counts = { a: 0, b: 0 };
  for (const id of picks(() => s.pick(cs, R), 40)) counts[id as 'a' | 'b']++;
  assert.deepEqual(counts, { a: 30, b: 10 });
});

test('smooth WRR returns undefined for no candidates', () => {
  assert.equal(weightedRoundRobin().pick([], R), undefined);
});
