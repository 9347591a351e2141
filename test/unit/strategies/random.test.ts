import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { weightedRandom } from '../../../src/strategies/random.js';
import { defaultContext } from '../../../src/strategies/strategy.js';
import { cand, draws, picks, req } from './_candidates.js';

const R = req();

test('random maps each draw to its weight bucket', () => {
  // Weights 1,2,1 → buckets [0,1) a, [1,3) b, [3,4) c on rand() * 4.
  const cs = [cand('a'), cand('b', { weight: 2 }), cand('c')];
  const s = weightedRandom(defaultContext({ rand: draws(0, 0.2499, 0.25, 0.7499, 0.75, 0.9999, 1) }));
  assert.deepEqual(picks(() => s.pick(cs, R), 7), ['a', 'a', 'b', 'b', 'c', 'c', 'c']);
});

test('random uses the weights of the array it is given (cache keyed by array identity)', () => {
  const even = [cand('a'), cand('b')];
  const heavyA = [cand('a', { weight: 3 }), cand('b')];
  const s = weightedRandom(defaultContext({ rand: () => 0.6 }));
  assert.equal(s.pick(even, R)?.id, 'b'); // 1.2 >= 1
  assert.equal(s.pick(heavyA, R)?.id, 'a'); // 2.4 < 3
  assert.equal(s.pick(even, R)?.id, 'b'); // cached sums for the first array are still right
});

test('random with one candidate returns it without drawing', () => {
  const only = [cand('a')];
  const s = weightedRandom(defaultContext({ rand: draws() }));
  assert.equal(s.pick(only, R), only[0]);
  assert.equal(s.pick([], R), undefined);
});

test('random always returns one of the candidates (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 50 }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 20 }),
      (weights, rands) => {
        const cs = weights.map((weight, i) => cand(`b${i}`, { weight }));
        const s = weightedRandom(defaultContext({ rand: draws(...rands) }));
        rands.forEach(() => {
          assert.ok(cs.includes(s.pick(cs, R) as (typeof cs)[number]));
        });
      },
    ),
    { numRuns: 200 },
  );
});
