import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { powerOfTwo } from '../../../src/strategies/power-of-two.js';
import { defaultContext } from '../../../src/strategies/strategy.js';
import { cand, draws, req } from './_candidates.js';

const R = req();
const four = () => ['a', 'b', 'c', 'd'].map((id) => cand(id));

test('power-of-two with one candidate returns it without drawing', () => {
  const only = [cand('a')];
  assert.equal(powerOfTwo(defaultContext({ rand: draws() })).pick(only, R), only[0]);
  assert.equal(powerOfTwo(defaultContext({ rand: draws() })).pick([], R), undefined);
});

test('power-of-two on a tie keeps the first sampled', () => {
  // 0.5 * 4 → index 2 (c); 0.0 * 3 → 0 (a).
  assert.equal(powerOfTwo(defaultContext({ rand: draws(0.5, 0) })).pick(four(), R)?.id, 'c');
});

test('power-of-two picks the lower inflight / weight of the two sampled', () => {
  const cs = four();
  cs[2].inflight = 2; // c: 2
  cs[0].inflight = 3;
  cs[0].weight = 2; // a: 1.5
  cs[1].inflight = 0; // b: 0 but not sampled
  assert.equal(powerOfTwo(defaultContext({ rand: draws(0.5, 0) })).pick(cs, R)?.id, 'a');
});

test('power-of-two never samples the same index twice', () => {
  // 0.25 * 4 → 1 (b); 0.34 * 3 → 1, which is taken, so it moves to 2 (c). c is idle, b busy → c.
  const cs = four();
  cs[1].inflight = 1;
  assert.equal(powerOfTwo(defaultContext({ rand: draws(0.25, 0.34) })).pick(cs, R)?.id, 'c');
  // A rand() of exactly 1 stays in range: first → 3 (d), second → 2, d and c compared.
  cs[3].inflight = 4;
  assert.equal(powerOfTwo(defaultContext({ rand: draws(1, 1) })).pick(cs, R)?.id, 'c');
});

test('power-of-two: the second sample is never the first (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 50 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (n, r1, r2) => {
        const cs = Array.from({ length: n }, (_, i) => cand(`b${i}`));
        const first = cs[Math.floor(r1 * n)];
        first.inflight = 1; // every other candidate is idle, so a distinct second sample always wins
        const got = powerOfTwo(defaultContext({ rand: draws(r1, r2) })).pick(cs, R);
        assert.ok(got !== undefined && got !== first && cs.includes(got));
      },
    ),
    { numRuns: 300 },
  );
});
