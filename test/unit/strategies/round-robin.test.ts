import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundRobin } from '../../../src/strategies/round-robin.js';
import { cand, picks, req } from './_candidates.js';

const R = req();

test('round-robin gives each candidate exactly k of k*n picks, in order, ignoring weight', () => {
  const cs = [cand('a', { weight: 5 }), cand('b'), cand('c', { weight: 3 })];
  const s = roundRobin();
  const seq = picks(() => s.pick(cs, R), 12);
  assert.deepEqual(seq, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
});

test('round-robin stays in range and keeps cycling when the candidates array shrinks and grows', () => {
  const five = ['a', 'b', 'c', 'd', 'e'].map((id) => cand(id));
  const s = roundRobin();
  assert.deepEqual(picks(() => s.pick(five, R), 4), ['a', 'b', 'c', 'd']);
  const two = five.slice(0, 2);
  // Position 4 is past the end of a 2-array: it wraps (4 % 2 = 0) instead of returning undefined.
  assert.deepEqual(picks(() => s.pick(two, R), 4), ['a', 'b', 'a', 'b']);
  assert.deepEqual(picks(() => s.pick(five, R), 5), ['a', 'b', 'c', 'd', 'e']);
  const one = [cand('z')];
  assert.deepEqual(picks(() => s.pick(one, R), 2), ['z', 'z']);
  assert.deepEqual(picks(() => s.pick(five, R), 5), ['a', 'b', 'c', 'd', 'e']);
});

test('round-robin returns undefined for no candidates', () => {
  assert.equal(roundRobin().pick([], R), undefined);
});
