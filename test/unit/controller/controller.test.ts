import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Controller } from '../../../src/controller/controller.js';
import type { BackendSpec, Snapshot } from '../../../src/discovery/source.js';
import { begin, newPool } from '../../helpers/plane.js';

const log = pino({ level: 'silent' });
const spec = (id: string, weight = 1, source = 'dir:/b'): BackendSpec => Object.freeze({ id, url: `http://${id}`, weight, source, origin: `${id}.json` });
const snap = (source: string, ...backends: BackendSpec[]): Snapshot => ({ source, backends, problems: [] });
const tick = () => new Promise((r) => setImmediate(r));

test('a burst of snapshots in one turn costs one reconcile', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['dir:/b'], log);
  for (let i = 1; i <= 50; i++) c.report(snap('dir:/b', ...Array.from({ length: i }, (_, k) => spec(`h${k}:1`))));
  await tick();
  assert.equal(c.reconciles, 1);
  assert.equal(pool.routable.length, 50);
});

test('an identical snapshot changes nothing and does not reconcile', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['dir:/b'], log);
  c.report(snap('dir:/b', spec('a:1')));
  await tick();
  const before = pool.get('a:1');
  c.report(snap('dir:/b', spec('a:1')));
  await tick();
  assert.equal(c.reconciles, 1);
  assert.equal(pool.get('a:1'), before);
});

test('a weight change updates the backend in place, keeping its counters', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['dir:/b'], log);
  c.report(snap('dir:/b', spec('a:1', 1)));
  await tick();
  const b = pool.get('a:1')!;
  const { done } = begin(b);
  c.report(snap('dir:/b', spec('a:1', 5)));
  await tick();
  assert.equal(pool.get('a:1'), b, 'same object');
  assert.equal(b.weight, 5);
  assert.equal(b.inflight, 1, 'in-flight count survived the update');
  done({});
  assert.equal(b.requests, 1, 'the finished request is counted on the same object');
});

test('no backend is drained until every source has reported once', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['static', 'dir:/b'], log);
  c.report(snap('static', spec('a:1', 1, 'static')));
  await tick();
  assert.equal(c.synced, false);
  // Something from an earlier reconcile that no reported source names yet must stay.
  pool.add(spec('b:1'));
  c.report(snap('static', spec('a:1', 2, 'static')));
  await tick();
  assert.ok(pool.get('b:1'), 'not drained before sync');
  c.report(snap('dir:/b'));
  await tick();
  assert.equal(c.synced, true);
  assert.equal(pool.get('b:1'), undefined, 'drained (idle, so removed at once) after sync');
});

test('a removed backend with requests in flight drains: out of rotation, removed when its last request ends', async (t) => {
  const pool = newPool({ drainTimeoutMs: 60_000 });
  t.after(() => pool.close());
  const c = new Controller(pool, ['dir:/b'], log);
  c.report(snap('dir:/b', spec('a:1'), spec('b:1')));
  await tick();
  const a = pool.get('a:1')!;
  const { done } = begin(a);
  c.report(snap('dir:/b', spec('b:1')));
  await tick();
  assert.equal(a.state, 'draining');
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);
  assert.ok(pool.get('a:1'), 'still in the pool while a request is in flight');
  done({ status: 200 });
  assert.equal(pool.get('a:1'), undefined);
});

test('a draining backend is forced out at the drain timeout', async (t) => {
  const pool = newPool({ drainTimeoutMs: 50 });
  t.after(() => pool.close());
  const events: string[] = [];
  pool.onEvent((e) => events.push(`${e.kind}:${e.backend.id}${e.kind === 'removed' ? `:${e.forced}` : ''}`));
  pool.add(spec('a:1'));
  begin(pool.get('a:1')!);
  pool.drain('a:1');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(events, ['added:a:1', 'draining:a:1', 'removed:a:1:true']);
});

test('unhealthy backends are not routable, and health survives updates', (t) => {
  const pool = newPool({ drainTimeoutMs: 50 });
  t.after(() => pool.close());
  pool.add(spec('a:1'));
  pool.add(spec('b:1'));
  const before = pool.routable;
  pool.setHealth('a:1', false);
  assert.notEqual(pool.routable, before, 'a new routable array on change, so strategies can cache by identity');
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);
  pool.update(spec('a:1', 4));
  assert.equal(pool.get('a:1')!.healthy, false);
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);
});
