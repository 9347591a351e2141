import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { leastTime, leastTimeCost } from '../../../src/strategies/least-time.js';
import type { Candidate } from '../../../src/strategies/strategy.js';
import { cand, picks, req, type TestCandidate } from './_candidates.js';

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

test('least-time breaks ties by least recently picked, so a backend that just joined goes first', () => {
  const a = cand('a');
  const b = cand('b');
  const c = cand('c');
  const s = leastTime();
  assert.deepEqual(picks(() => s.pick([a, b], R), 3), ['a', 'b', 'a']);
  // c has never been picked; then b (picked before a's last turn), then a. The order carries over to the new array.
  assert.deepEqual(picks(() => s.pick([c, b, a], R), 4), ['c', 'b', 'a', 'c']);
});

test('least-time: a retry\'s one-off array is scanned with the same rule and leaves the pick history alone', () => {
  const [a, b, c] = [cand('a'), cand('b'), cand('c')];
  const all = [a, b, c];
  const s = leastTime();
  assert.deepEqual(picks(() => s.pick(all, R), 3), ['a', 'b', 'c']);
  // A retry after c failed: the proxy hands the pool's array minus c.
  assert.equal(s.pick([a, b], R), a);
  // c keeps its turn in the rotation (a history reset on the retry would put it first).
  assert.deepEqual(picks(() => s.pick(all, R), 3), ['b', 'c', 'a']);
});

test('least-time follows load changes reported through loadChanged', () => {
  const cs = [cand('a', { ewmaMs: 10 }), cand('b', { ewmaMs: 20 }), cand('c', { ewmaMs: 30 })];
  const [a, b, c] = cs as [TestCandidate, TestCandidate, TestCandidate];
  const s = leastTime();
  assert.equal(s.pick(cs, R), a);
  a.inflight = 3; // 40
  s.loadChanged!(a);
  assert.equal(s.pick(cs, R), b);
  c.ewmaMs = 5; // 5
  s.loadChanged!(c);
  assert.equal(s.pick(cs, R), c);
  c.ewmaMs = 50;
  s.loadChanged!(c);
  a.inflight = 0; // 10 again
  s.loadChanged!(a);
  assert.equal(s.pick(cs, R), a);
  // A candidate that is not in the array is ignored.
  s.loadChanged!(cand('elsewhere'));
  assert.equal(s.pick(cs, R), a);
});

test('least-time ranks a NaN cost last instead of breaking its order', () => {
  const cs = [cand('a', { ewmaMs: Number.NaN }), cand('b', { ewmaMs: 30 }), cand('c', { ewmaMs: 20 })];
  const s = leastTime();
  // Scanned on the first pick, from the heap after.
  assert.deepEqual(picks(() => s.pick(cs, R), 3), ['c', 'c', 'c']);
  cs[2].inflight = 2; // 60
  s.loadChanged!(cs[2]);
  assert.equal(s.pick(cs, R)?.id, 'b');
  cs[0].ewmaMs = 1;
  s.loadChanged!(cs[0]);
  assert.equal(s.pick(cs, R)?.id, 'a');
});

test('least-time re-reads its winner: a load rise nobody reported still moves traffic away', () => {
  const cs = [cand('a', { ewmaMs: 10 }), cand('b', { ewmaMs: 20 })];
  const s = leastTime();
  assert.equal(s.pick(cs, R)?.id, 'a');
  cs[0].inflight = 5;
  assert.equal(s.pick(cs, R)?.id, 'b');
});

/**
 * The O(n) scan the heap replaces, kept as the reference, with the tie rule: least recently picked, then array
 * order. Pick history is kept per candidate object; it is cut down to the members of an array when least-time
 * builds its heap for it, which is on the second pick from that array (so a retry's one-off array never does).
 */
class ReferenceLeastTime {
  private adopted: readonly Candidate[] = [];
  private pending: readonly Candidate[] | undefined;
  private lastPick = new Map<Candidate, number>();
  private picks = 0;

  pick(cs: readonly Candidate[]): Candidate {
    if (cs !== this.adopted) {
      if (cs !== this.pending) this.pending = cs;
      else {
        const kept = new Map<Candidate, number>();
        for (const c of cs) kept.set(c, this.lastPick.get(c) ?? 0);
        this.lastPick = kept;
        this.adopted = cs;
        this.pending = undefined;
      }
    }
    const last = (c: Candidate): number => this.lastPick.get(c) ?? 0;
    let best = 0;
    for (let i = 1; i < cs.length; i++) {
      const [c, d] = [cs[i], cs[best]];
      const [cc, dc] = [leastTimeCost(c), leastTimeCost(d)];
      if (cc < dc || (cc === dc && last(c) < last(d))) best = i;
    }
    this.lastPick.set(cs[best], ++this.picks);
    return cs[best];
  }
}

/** Mostly a few round values, so exact cost ties (which the tie rule decides) are common; some arbitrary ones. */
const ewmaArb = fc.oneof({ arbitrary: fc.constantFrom(10, 20, 25, 40), weight: 4 }, { arbitrary: fc.double({ min: 0.5, max: 500, noNaN: true }), weight: 1 });
const weightArb = fc.oneof(
  { arbitrary: fc.constantFrom(1, 2, 4), weight: 4 },
  { arbitrary: fc.integer({ min: 1, max: 1_000_000 }), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 640 }).map((k) => k / 64), weight: 1 },
);

type LtOp =
  | { readonly kind: 'pick'; readonly begin: boolean }
  | { readonly kind: 'load'; readonly at: number; readonly inflight: number; readonly ewmaMs: number }
  | { readonly kind: 'done'; readonly at: number }
  | { readonly kind: 'add'; readonly at: number; readonly weight: number; readonly ewmaMs: number }
  | { readonly kind: 'remove'; readonly at: number }
  | { readonly kind: 'reorder'; readonly keys: readonly number[] }
  | { readonly kind: 'weight'; readonly at: number; readonly weight: number }
  | { readonly kind: 'retry'; readonly at: number }
  | { readonly kind: 'gone-load'; readonly inflight: number };

const ltOpArb: fc.Arbitrary<LtOp> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('pick' as const), begin: fc.boolean() }), weight: 8 },
  { arbitrary: fc.record({ kind: fc.constant('load' as const), at: fc.nat(), inflight: fc.nat(6), ewmaMs: ewmaArb }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('done' as const), at: fc.nat() }), weight: 3 },
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), weight: weightArb, ewmaMs: ewmaArb }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('reorder' as const), keys: fc.array(fc.double({ noNaN: true }), { minLength: 100, maxLength: 100 }) }),
  fc.record({ kind: fc.constant('weight' as const), at: fc.nat(), weight: weightArb }),
  { arbitrary: fc.record({ kind: fc.constant('retry' as const), at: fc.nat() }), weight: 3 },
  fc.record({ kind: fc.constant('gone-load' as const), inflight: fc.nat(6) }),
);

test('least-time picks what an O(n) scan picks, through load changes and pool changes (property)', () => {
  fc.assert(
    fc.property(
      // fast-check's default size keeps arrays to about ten elements; 'max' gives long pools and long runs.
      fc.array(
        // Many fresh, idle backends (all tied, as after a start), the rest arbitrary.
        fc.oneof({ arbitrary: fc.constant({ weight: 1, ewmaMs: 25, inflight: 0 }), weight: 2 }, fc.record({ weight: weightArb, ewmaMs: ewmaArb, inflight: fc.nat(2) })),
        { minLength: 1, maxLength: 50, size: 'max' },
      ),
      fc.array(ltOpArb, { maxLength: 150, size: 'max' }),
      (initial, ops) => {
        const s = leastTime();
        const reference = new ReferenceLeastTime();
        let nextId = 0;
        let cs: TestCandidate[] = initial.map((load) => cand(`b${nextId++}`, load));
        const removed: TestCandidate[] = [];
        let n = 0;
        const both = (arr: readonly TestCandidate[]): TestCandidate => {
          n++;
          const want = reference.pick(arr) as TestCandidate;
          const got = s.pick(arr, R);
          const min = Math.min(...arr.map(leastTimeCost));
          assert.equal(leastTimeCost(want), min);
          assert.equal(got, want, `pick ${n}: got ${got?.id} (cost ${got && leastTimeCost(got)}), want ${want.id} (cost ${min})`);
          return want;
        };
        // Every in-place load change is reported, as Backend.begin()/responded()/done() do through the pool.
        const report = (c: TestCandidate): void => s.loadChanged!(c);
        for (const op of ops) {
          switch (op.kind) {
            case 'pick': {
              const c = both(cs);
              if (op.begin) {
                c.inflight++;
                report(c);
              }
              break;
            }
            case 'load': {
              const c = cs[op.at % cs.length];
              c.inflight = op.inflight;
              c.ewmaMs = op.ewmaMs;
              report(c);
              break;
            }
            case 'done': {
              const c = cs[op.at % cs.length];
              if (c.inflight > 0) {
                c.inflight--;
                report(c);
              }
              break;
            }
            case 'add':
              cs = [...cs];
              cs.splice(op.at % (cs.length + 1), 0, cand(`b${nextId++}`, { weight: op.weight, ewmaMs: op.ewmaMs }));
              break;
            case 'remove':
              if (cs.length > 1) {
                const at = op.at % cs.length;
                removed.push(cs[at]);
                cs = cs.filter((_, i) => i !== at);
              }
              break;
            case 'reorder': {
              const order = cs.map((c, i) => ({ c, key: op.keys[i % op.keys.length] }));
              cs = order.sort((x, y) => x.key - y.key).map((o) => o.c);
              break;
            }
            case 'weight':
              // Weights change only with a new array (the pool rebuilds `routable`); not reported as load.
              cs[op.at % cs.length].weight = op.weight;
              cs = [...cs];
              break;
            case 'retry':
              if (cs.length > 1) both(cs.filter((_, i) => i !== op.at % cs.length));
              break;
            case 'gone-load': {
              // A draining backend's requests still finish and report; it must not disturb the heap.
              const c = removed[removed.length - 1];
              if (c !== undefined) {
                c.inflight = op.inflight;
                report(c);
              }
              break;
            }
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('least-time over 2,000 backends matches the scan through a long run of begin/done reports', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const cs = Array.from({ length: 2_000 }, (_, i) => cand(`b${i}`, { weight: 1 + (i % 4), ewmaMs: [10, 20, 25, 40][i % 4] }));
  const s = leastTime();
  const reference = new ReferenceLeastTime();
  const inflight: TestCandidate[] = [];
  for (let k = 0; k < 5_000; k++) {
    const want = reference.pick(cs) as TestCandidate;
    assert.equal(s.pick(cs, R), want, `pick ${k}`);
    want.inflight++;
    s.loadChanged!(want);
    inflight.push(want);
    if (inflight.length > 64 || rand() < 0.3) {
      const c = inflight.splice(Math.floor(rand() * inflight.length), 1)[0];
      c.inflight--;
      c.ewmaMs = [10, 20, 25, 40][Math.floor(rand() * 4)]!;
      s.loadChanged!(c);
    }
  }
});

test('least-time with load shared across workers sees a fall in load nobody reported (another worker\'s request ended)', () => {
  const mk = (): TestCandidate[] => [cand('a', { ewmaMs: 10, inflight: 3 }), cand('b', { ewmaMs: 10, inflight: 2 }), cand('c', { ewmaMs: 10, inflight: 4 })];
  const run = (s: ReturnType<typeof leastTime>): string[] => {
    const cs = mk();
    const out = [s.pick(cs, R)!.id, s.pick(cs, R)!.id];
    // Another worker's three requests to a ended: a's shared count fell, and this worker heard nothing of it.
    cs[0].inflight = 0;
    out.push(s.pick(cs, R)!.id);
    return out;
  };
  assert.deepEqual(run(leastTime({ sharedLoad: true })), ['b', 'b', 'a']);
  // The heap (one worker, every change reported) misses an unreported fall until its next rebuild, by design.
  assert.deepEqual(run(leastTime()), ['b', 'b', 'b']);
});

test('least-time with shared load keeps the tie rule: least recently picked, then array order', () => {
  const [a, b, c] = [cand('a'), cand('b'), cand('c')];
  const s = leastTime({ sharedLoad: true });
  assert.deepEqual(picks(() => s.pick([a, b], R), 3), ['a', 'b', 'a']);
  assert.deepEqual(picks(() => s.pick([c, b, a], R), 4), ['c', 'b', 'a', 'c']);
  assert.equal(s.pick([], R), undefined);
  b.inflight = 1;
  assert.deepEqual(picks(() => s.pick([a, b, c], R), 3), ['a', 'c', 'a']);
});
