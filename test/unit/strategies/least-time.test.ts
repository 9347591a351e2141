import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leastTime, leastTimeCost } from '../../../src/strategies/least-time.js';
import { cand, picks, req } from './_candidates.js';

const R = req();

test('least-time prefers the lower latency estimate', () => {
  const cs = [cand('a', { ewmaMs: 50 }), cand('b', { ewmaMs: 20 }), cand('c', { ewmaMs: 30 })];
  assert.equal(leastTime().pick(cs, R)?.id, 'b');
});

test('least-time with equal latency prefers fewer in flight', () => {
  const cs = [cand('a', { ewmaMs: 20, inflight: 2 }), cand('b', { ewmaMs: 20, inflight: 1 })];
  assert.equal(leastTime().pick(cs, R)?.id, 'b');
});

test('least-time charges each queued request: cost is ewma * (inflight + 1) / weight', () => {
  assert.equal(leastTimeCost(cand('x', { ewmaMs: 10, inflight: 3, weight: 2 })), 20);
  // a: 10 * 4 = 40, b: 30 * 1 = 30 → b, although a is faster per request.
  assert.equal(leastTime().pick([cand('a', { ewmaMs: 10, inflight: 3 }), cand('b', { ewmaMs: 30 })], R)?.id, 'b');
  // Weight 2 halves a's cost: 40 / 2 = 20 < 30 → a.
  const weighted = [cand('a', { ewmaMs: 10, inflight: 3, weight: 2 }), cand('b', { ewmaMs: 30 })];
  assert.equal(leastTime().pick(weighted, R)?.id, 'a');
});

test('least-time rotates among ties', () => {
  const cs = [cand('a'), cand('b', { ewmaMs: 90 }), cand('c'), cand('d')];
  const s = leastTime();
  assert.deepEqual(picks(() => s.pick(cs, R), 6), ['a', 'c', 'd', 'a', 'c', 'd']);
  assert.equal(s.pick([], R), undefined);
});
