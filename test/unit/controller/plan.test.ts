import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { desiredState, isEmptyPlan, plan, type ActualBackend } from '../../../src/controller/plan.js';
import type { BackendSpec } from '../../../src/discovery/source.js';

const spec = (id: string, weight = 1, source = 'dir:/b'): BackendSpec =>
  Object.freeze({ id, url: `http://${id}`, weight, source, origin: `${id}.json` });

const desired = (...specs: BackendSpec[]) => new Map(specs.map((s) => [s.id, s]));
const actual = (...items: [BackendSpec, 'active' | 'draining'][]) =>
  new Map<string, ActualBackend>(items.map(([s, state]) => [s.id, { spec: s, state }]));

test('a new backend is added, a changed weight is an update, a missing one is drained', () => {
  const p = plan(desired(spec('a:1'), spec('b:1', 3)), actual([spec('b:1', 1), 'active'], [spec('c:1'), 'active']));
  assert.deepEqual(p.add.map((s) => s.id), ['a:1']);
  assert.deepEqual(p.update.map((s) => [s.id, s.weight]), [['b:1', 3]]);
  assert.deepEqual(p.drain, ['c:1']);
});

test('the same desired state twice plans nothing', () => {
  const d = desired(spec('a:1'), spec('b:1', 2));
  const p = plan(d, actual([spec('a:1'), 'active'], [spec('b:1', 2), 'active']));
  assert.ok(isEmptyPlan(p), JSON.stringify(p));
});

test('a draining backend that is desired again is brought back by an update, not re-added', () => {
  const p = plan(desired(spec('a:1')), actual([spec('a:1'), 'draining']));
  assert.deepEqual(p.add, []);
  assert.deepEqual(p.update.map((s) => s.id), ['a:1']);
});

test('draining backends are not drained again', () => {
  const p = plan(desired(), actual([spec('a:1'), 'draining']));
  assert.ok(isEmptyPlan(p));
});

test('before every source has synced, the plan adds but never drains', () => {
  const p = plan(desired(spec('a:1')), actual([spec('b:1'), 'active']), false);
  assert.deepEqual(p.add.map((s) => s.id), ['a:1']);
  assert.deepEqual(p.drain, []);
});

test('when two sources name the same id, the earlier source in the order wins', () => {
  const snaps = new Map([
    ['dir:/b', { backends: [spec('x:1', 7, 'dir:/b')] }],
    ['static', { backends: [spec('x:1', 2, 'static'), spec('y:1', 1, 'static')] }],
  ]);
  const d = desiredState(snaps, ['static', 'dir:/b']);
  assert.equal(d.get('x:1')?.weight, 2);
  assert.equal(d.get('x:1')?.source, 'static');
  assert.equal(d.size, 2);
});

test('property: applying a plan and planning again is a no-op (level-triggered idempotence)', () => {
  const idArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g');
  const specArb = fc.record({ id: idArb, weight: fc.integer({ min: 1, max: 5 }) }).map(({ id, weight }) => spec(`${id}:1`, weight));
  fc.assert(
    fc.property(fc.uniqueArray(specArb, { selector: (s) => s.id }), fc.uniqueArray(fc.tuple(specArb, fc.constantFrom<'active' | 'draining'>('active', 'draining')), { selector: ([s]) => s.id }), (want, have) => {
      const d = desired(...want);
      const a = actual(...have);
      const p = plan(d, a);
      // apply, as the pool would
      for (const s of p.add) a.set(s.id, { spec: s, state: 'active' });
      for (const s of p.update) a.set(s.id, { spec: s, state: 'active' });
      for (const id of p.drain) a.set(id, { spec: a.get(id)!.spec, state: 'draining' });
      assert.ok(isEmptyPlan(plan(d, a)));
      // every desired backend is active with the desired spec
      for (const s of want) assert.deepEqual(a.get(s.id), { spec: s, state: 'active' });
    }),
  );
});
