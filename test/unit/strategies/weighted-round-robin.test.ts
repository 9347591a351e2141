import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Candidate, Strategy } from '../../../src/strategies/strategy.js';
import { weightedRoundRobin } from '../../../src/strategies/weighted-round-robin.js';
import { count } from '../../helpers/tally.js';
import { cand, picks, req, type TestCandidate } from './_candidates.js';

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
    assert.deepEqual(count(picks(() => s.pick(cs, R), 10)), { a: 3, b: 2, c: 4, d: 1 }, `cycle ${cycle}`);
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

test('smooth WRR reads weights when the candidates array changes, as the pool hands a new one on every weight change', () => {
  const a = cand('a');
  const b = cand('b');
  const s = weightedRoundRobin();
  const first = [a, b];
  assert.deepEqual(picks(() => s.pick(first, R), 2), ['a', 'b']);
  a.weight = 3;
  // Same array: the weight it was aligned with still applies (reading weights per pick would cost O(n)).
  assert.deepEqual(picks(() => s.pick(first, R), 4), ['a', 'b', 'a', 'b']);
  const second = [a, b];
  const counts = { a: 0, b: 0 };
  for (const id of picks(() => s.pick(second, R), 40)) counts[id as 'a' | 'b']++;
  assert.deepEqual(counts, { a: 30, b: 10 });
});

test('smooth WRR returns undefined for no candidates', () => {
  assert.equal(weightedRoundRobin().pick([], R), undefined);
});

/**
 * The O(n) loop the heaps replace, kept as the reference: nginx's smooth WRR over the array as given, with
 * `current` carried over by id when the array changes.
 */
class ReferenceWrr {
  private aligned: readonly Candidate[] = [];
  private current = new Map<string, number>();

  pick(cs: readonly Candidate[]): Candidate {
    if (cs !== this.aligned) {
      const next = new Map<string, number>();
      for (const c of cs) next.set(c.id, this.current.get(c.id) ?? 0);
      this.current = next;
      this.aligned = cs;
    }
    let total = 0;
    let best = 0;
    let bestCurrent = -Infinity;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i];
      total += c.weight;
      const v = this.current.get(c.id)! + c.weight;
      this.current.set(c.id, v);
      if (v > bestCurrent) {
        bestCurrent = v;
        best = i;
      }
    }
    this.current.set(cs[best].id, bestCurrent - total);
    return cs[best];
  }
}

/**
 * Weights a pool can hold: small integers (many repeats, so groups have several members), large ones up to a
 * backend file's maximum, and multiples of 1/64 standing in for slow start's fractional weights (exact in
 * binary, so the reference's running sums and the heaps' products agree to the bit).
 */
const weightArb = fc.oneof(
  fc.integer({ min: 1, max: 10 }),
  fc.constantFrom(1, 2, 5),
  fc.integer({ min: 1, max: 1_000_000 }),
  fc.integer({ min: 1, max: 640 }).map((k) => k / 64),
);

/** Pool changes between bursts of picks; each one hands the strategy a new array, as the pool does. */
type WrrOp =
  | { readonly kind: 'picks'; readonly count: number }
  | { readonly kind: 'add'; readonly weight: number; readonly at: number }
  | { readonly kind: 'remove'; readonly at: number }
  | { readonly kind: 'reorder'; readonly keys: readonly number[] }
  | { readonly kind: 'weight'; readonly at: number; readonly weight: number }
  | { readonly kind: 'retry'; readonly at: number };

const wrrOpArb: fc.Arbitrary<WrrOp> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('picks' as const), count: fc.integer({ min: 1, max: 60 }) }), weight: 6 },
  fc.record({ kind: fc.constant('add' as const), weight: weightArb, at: fc.nat() }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('reorder' as const), keys: fc.array(fc.double({ noNaN: true }), { minLength: 200, maxLength: 200 }) }),
  fc.record({ kind: fc.constant('weight' as const), at: fc.nat(), weight: weightArb }),
  fc.record({ kind: fc.constant('retry' as const), at: fc.nat() }),
);

/** Runs `ops` against the strategy and the reference and fails at the first pick where they differ. */
function sameAsReference(strategy: Strategy, weights: readonly number[], ops: readonly WrrOp[]): void {
  const reference = new ReferenceWrr();
  let nextId = 0;
  let cs: TestCandidate[] = weights.map((weight) => cand(`b${nextId++}`, { weight }));
  const log: string[] = [];
  const both = (arr: readonly Candidate[]): void => {
    const want = reference.pick(arr).id;
    const got = strategy.pick(arr, R)?.id;
    log.push(want);
    assert.equal(got, want, `pick ${log.length} differs; reference so far: ${log.join(' ')}`);
  };
  for (const op of ops) {
    switch (op.kind) {
      case 'picks':
        for (let k = 0; k < op.count; k++) both(cs);
        break;
      case 'add':
        cs = [...cs];
        cs.splice(op.at % (cs.length + 1), 0, cand(`b${nextId++}`, { weight: op.weight }));
        break;
      case 'remove':
        if (cs.length > 1) cs = cs.filter((_, i) => i !== op.at % cs.length);
        break;
      case 'reorder': {
        const order = cs.map((c, i) => ({ c, key: op.keys[i % op.keys.length] }));
        cs = order.sort((x, y) => x.key - y.key).map((o) => o.c);
        break;
      }
      case 'weight':
        // The pool changes a weight in place and rebuilds `routable`: same object, new array.
        cs[op.at % cs.length].weight = op.weight;
        cs = [...cs];
        break;
      case 'retry':
        // A retry picks from a filtered copy once, then the next request gets the pool's array again.
        if (cs.length > 1) both(cs.filter((_, i) => i !== op.at % cs.length));
        break;
    }
  }
}

test('smooth WRR makes exactly the picks of the O(n) loop through random pool changes (property)', () => {
  fc.assert(
    // fast-check's default size keeps arrays to about ten elements; 'max' gives long pools and long runs.
    fc.property(fc.array(weightArb, { minLength: 1, maxLength: 60, size: 'max' }), fc.array(wrrOpArb, { maxLength: 40, size: 'max' }), (weights, ops) => {
      sameAsReference(weightedRoundRobin(), weights, ops);
    }),
    { numRuns: 300 },
  );
});

test('smooth WRR folding t × weight into base changes no pick (property)', () => {
  // A fold limit of 1 folds before every pick; 2^20 folds every few picks at weight 1,000,000 and rarely at 10.
  fc.assert(
    fc.property(
      fc.constantFrom(1, 64, 2 ** 20),
      fc.array(weightArb, { minLength: 1, maxLength: 40, size: 'max' }),
      fc.array(wrrOpArb, { maxLength: 30, size: 'max' }),
      (foldLimit, weights, ops) => {
        sameAsReference(weightedRoundRobin(undefined, foldLimit), weights, ops);
      },
    ),
    { numRuns: 200 },
  );
});

test('smooth WRR over 1,000 backends of weights 1-10 matches the loop for several full cycles', () => {
  const cs = Array.from({ length: 1_000 }, (_, i) => cand(`b${i}`, { weight: 1 + ((i * 7) % 10) }));
  const total = cs.reduce((s, c) => s + c.weight, 0);
  const reference = new ReferenceWrr();
  const s = weightedRoundRobin();
  for (let k = 0; k < 3 * total; k++) assert.equal(s.pick(cs, R)?.id, reference.pick(cs).id, `pick ${k}`);
});
