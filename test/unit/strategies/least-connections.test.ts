import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leastConnections } from '../../../src/strategies/least-connections.js';
import { cand, picks, req } from './_candidates.js';

const R = req();

test('least-connections picks the lowest inflight / weight', () => {
  const cs = [cand('a', { inflight: 2 }), cand('b', { inflight: 3, weight: 2 }), cand('c', { inflight: 2, weight: 2 })];
  assert.equal(leastConnections().pick(cs, R)?.id, 'c'); // 2, 1.5, 1
});

test('least-connections cycles through all candidates when all are idle', () => {
  const cs = ['a', 'b', 'c', 'd'].map((id) => cand(id));
  const s = leastConnections();
  assert.deepEqual(picks(() => s.pick(cs, R), 8), ['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd']);
});

test('least-connections rotates among the tied minimum and skips the busy one', () => {
  const cs = [cand('a', { inflight: 1 }), cand('b'), cand('c'), cand('d')];
  const s = leastConnections();
  assert.deepEqual(picks(() => s.pick(cs, R), 6), ['b', 'c', 'd', 'b', 'c', 'd']);
});

test('least-connections follows load as it changes', () => {
  const a = cand('a');
  const b = cand('b');
  const cs = [a, b];
  const s = leastConnections();
  a.inflight = 5;
  assert.equal(s.pick(cs, R), b);
  b.inflight = 6;
  assert.equal(s.pick(cs, R), a);
});

test('least-connections stays in range when the array shrinks', () => {
  const five = ['a', 'b', 'c', 'd', 'e'].map((id) => cand(id));
  const s = leastConnections();
  assert.deepEqual(picks(() => s.pick(five, R), 4), ['a', 'b', 'c', 'd']);
  assert.deepEqual(picks(() => s.pick(five.slice(0, 2), R), 3), ['a', 'b', 'a']);
  assert.equal(s.pick([], R), undefined);
});
