import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Controller } from '../../../src/controller/controller.js';
import type { BackendSpec, Snapshot } from '../../../src/discovery/source.js';
import { begin, newPool } from '../../helpers/plane.js';

const log = pino({ level: 'silent' });
const spec = (id: string, weight = 1): BackendSpec => Object.freeze({ id, url: `http://${id}`, weight, source: 'dir:/b', origin: `${id}.json` });
const snap = (...backends: BackendSpec[]): Snapshot => ({ source: 'dir:/b', backends, problems: [] });
const tick = () => new Promise((r) => setImmediate(r));

test('a backend drained by hand leaves rotation but stays in the pool with its counters', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1'));
  pool.add(spec('b:1'));
  const { done } = begin(a);
  const before = pool.routable;

  assert.equal(pool.setAdminDrained('a:1', true), a);
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);
  assert.notEqual(pool.routable, before, 'routable is rebuilt, so strategies drop their caches');
  assert.equal(a.state, 'active');
  assert.equal(a.inflight, 1, 'in-flight requests are left to finish');
  done({});
  assert.equal(pool.get('a:1'), a, 'idle does not remove it: only a source can');

  assert.equal(pool.setAdminDrained('a:1', false), a);
  assert.deepEqual(pool.routable.map((b) => b.id), ['a:1', 'b:1']);
  assert.equal(a.requests, 1);
});

test('draining twice is a no-op that keeps the routable array', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  pool.add(spec('a:1'));
  pool.add(spec('b:1'));
  pool.setAdminDrained('a:1', true);
  const routable = pool.routable;
  pool.setAdminDrained('a:1', true);
  assert.equal(pool.routable, routable);
});

test('an unknown id is answered with undefined', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  assert.equal(pool.setAdminDrained('nope:1', true), undefined);
});

test('a reconcile (weight change, draining and coming back) does not undo a hand drain', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['dir:/b'], log);
  c.report(snap(spec('a:1'), spec('b:1')));
  await tick();
  pool.setAdminDrained('a:1', true);

  c.report(snap(spec('a:1', 5), spec('b:1')));
  await tick();
  assert.equal(pool.get('a:1')?.weight, 5);
  assert.equal(pool.get('a:1')?.adminDrained, true);
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);

  // The source drops it while a request is in flight (so it drains instead of leaving), then names it again.
  const { done } = begin(pool.get('a:1')!);
  c.report(snap(spec('b:1')));
  await tick();
  assert.equal(pool.get('a:1')?.state, 'draining');
  c.report(snap(spec('a:1', 5), spec('b:1')));
  await tick();
  assert.equal(pool.get('a:1')?.state, 'active');
  assert.equal(pool.get('a:1')?.adminDrained, true);
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);
  done({});
});

test('a backend that leaves the pool forgets its hand drain when a source adds it again', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['dir:/b'], log);
  c.report(snap(spec('a:1')));
  await tick();
  pool.setAdminDrained('a:1', true);
  c.report(snap());
  await tick();
  assert.equal(pool.get('a:1'), undefined);
  c.report(snap(spec('a:1')));
  await tick();
  assert.equal(pool.get('a:1')?.adminDrained, false);
  assert.deepEqual(pool.routable.map((b) => b.id), ['a:1']);
});
