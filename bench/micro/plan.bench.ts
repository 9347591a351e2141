/**
 * The reconcile plan at 10,000 backends: `plan(desired, actual)` when nothing changed, when one backend among
 * them changed, and the first plan (everything to add), plus `desiredState()` (the union of the sources) that
 * runs before every plan. A directory rescan hands the controller fresh spec objects equal to the ones in the
 * pool, so the "no change" case compares 10,000 pairs of distinct-but-equal objects, the common and the
 * expensive case; "same objects" is the case where a source hands back identical specs.
 *
 *   npm run bench:plan   (= node --expose-gc --import tsx bench/micro/plan.bench.ts)
 *
 * Markdown goes to stdout. Each case checks the plan it got, so the bench cannot silently measure a wrong path.
 */
import { desiredState, plan, type ActualBackend } from '../../src/controller/plan.js';
import type { BackendSpec } from '../../src/discovery/source.js';
import { fmt, machineLines, sinkValue, stopObserving, timeNsPerOp } from './harness.js';

const N = 10_000;
const SOURCE = 'dir:/etc/bulb/backends';

/** What the directory source produces for file i: a frozen spec as a backend file would give. */
function spec(i: number, weight = 1 + (i % 5)): BackendSpec {
  return Object.freeze({
    id: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
    url: `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
    weight,
    source: SOURCE,
    origin: `/etc/bulb/backends/backend-${i}.json`,
  });
}

const byId = (specs: readonly BackendSpec[]): Map<string, BackendSpec> => new Map(specs.map((s) => [s.id, s]));

const poolSpecs = Array.from({ length: N }, (_, i) => spec(i));
const actual = new Map<string, ActualBackend>(poolSpecs.map((s) => [s.id, { spec: s, state: 'active' as const }]));
const empty = new Map<string, ActualBackend>();
const desiredSameObjects = byId(poolSpecs);
const desiredEqualCopies = byId(Array.from({ length: N }, (_, i) => spec(i)));
const desiredOneChanged = byId(Array.from({ length: N }, (_, i) => (i === N >> 1 ? spec(i, 100) : spec(i))));
const snapshots = new Map([[SOURCE, { backends: Array.from({ length: N }, (_, i) => spec(i)) }]]);

interface Case {
  readonly name: string;
  readonly run: () => number;
  /** The plan size this case must produce: add · update · drain. */
  readonly expect: string;
}

const sizes = (p: ReturnType<typeof plan>): string => `${p.add.length} · ${p.update.length} · ${p.drain.length}`;

const cases: Case[] = [
  { name: `plan: ${fmt(N)} unchanged (equal copies, as after a rescan)`, expect: '0 · 0 · 0', run: () => check(plan(desiredEqualCopies, actual), '0 · 0 · 0') },
  { name: `plan: ${fmt(N)} unchanged (same spec objects)`, expect: '0 · 0 · 0', run: () => check(plan(desiredSameObjects, actual), '0 · 0 · 0') },
  { name: `plan: one weight changed among ${fmt(N)}`, expect: '0 · 1 · 0', run: () => check(plan(desiredOneChanged, actual), '0 · 1 · 0') },
  { name: `plan: first reconcile, ${fmt(N)} to add`, expect: `${N} · 0 · 0`, run: () => check(plan(desiredEqualCopies, empty), `${N} · 0 · 0`) },
  { name: `desiredState: one source of ${fmt(N)}`, expect: `${N} ids`, run: () => desiredState(snapshots, [SOURCE]).size },
];

function check(p: ReturnType<typeof plan>, expected: string): number {
  const got = sizes(p);
  if (got !== expected) throw new Error(`plan gave ${got}, expected ${expected}`);
  return p.update.length;
}

const lines: string[] = ['## Reconcile plan at 10,000 backends', ''];
lines.push(...machineLines('npm run bench:plan'));
lines.push('- Median of 7 calibrated samples; the plan each case produces (add · update · drain) is checked every call.', '');
lines.push('| case | plan | ms/op | ops/s |', '| --- | --- | ---: | ---: |');
for (const c of cases) {
  process.stderr.write(`[plan] ${c.name}\n`);
  const ns = timeNsPerOp(() => c.run(), { minSampleMs: 100, samples: 7 });
  lines.push(`| ${c.name} | ${c.expect} | ${fmt(ns / 1e6, 3)} | ${fmt(1e9 / ns)} |`);
}
stopObserving();
lines.push('');
// Reading the sink keeps every measured call observable, so none can be optimised away.
process.stderr.write(`[plan] sink ${sinkValue()}\n`);
process.stdout.write(lines.join('\n') + '\n');
