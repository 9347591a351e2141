import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../../src/controller/plan.js';
import type { BackendSpec } from '../../../src/discovery/source.js';
import type { Pool } from '../../../src/pool/pool.js';
import { newPool as planePool } from '../../helpers/plane.js';

function spec(id: string, priority: number | undefined, source = 'dns-srv:_http._tcp.web'): BackendSpec {
  return Object.freeze({ id, url: `http://${id}`, weight: 1, source, origin: 'test', ...(priority === undefined ? {} : { priority }) });
}

function routable(pool: Pool): string[] {
  return pool.routable.map((b) => b.id);
}

function newPool(t: import('node:test').TestContext): Pool {
  const pool = planePool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  return pool;
}

test('only the lowest priority group of a source is routable', (t) => {
  const pool = newPool(t);
  for (const s of [spec('a:1', 0), spec('b:1', 0), spec('c:1', 1), spec('d:1', 2)]) pool.add(s);
  assert.deepEqual(routable(pool), ['a:1', 'b:1']);
});

test('the next group takes over only when the whole group is down, and gives the traffic back on recovery', (t) => {
  const pool = newPool(t);
  for (const s of [spec('a:1', 0), spec('b:1', 0), spec('c:1', 1), spec('d:1', 2)]) pool.add(s);
  pool.setHealth('a:1', false);
  assert.deepEqual(routable(pool), ['b:1'], 'one backend of the group left: the group still serves alone');
  pool.setHealth('b:1', false);
  assert.deepEqual(routable(pool), ['c:1'], 'whole group down: priority 1 takes over');
  pool.setHealth('c:1', false);
  assert.deepEqual(routable(pool), ['d:1']);
  pool.setHealth('b:1', true);
  assert.deepEqual(routable(pool), ['b:1'], 'a priority-0 backend is back: it gets all the traffic again');
});

test('draining backends do not hold their group: drain the whole group and the next one serves', (t) => {
  const pool = newPool(t);
  for (const s of [spec('a:1', 0), spec('c:1', 1)]) pool.add(s);
  pool.drain('a:1');
  assert.deepEqual(routable(pool), ['c:1']);
});

test('priorities are compared within a source only; backends without a priority are 0', (t) => {
  const pool = newPool(t);
  pool.add(spec('file:1', undefined, 'dir:/etc/bulb'));
  pool.add(spec('a:1', 10, 'dns-srv:_http._tcp.one'));
  pool.add(spec('b:1', 20, 'dns-srv:_http._tcp.one'));
  pool.add(spec('x:1', 5, 'dns-srv:_http._tcp.two'));
  assert.deepEqual(routable(pool), ['file:1', 'a:1', 'x:1'], 'each source contributes its own lowest group');
});

test('a priority change is an update in place (the backend keeps its counters) and re-groups the pool', (t) => {
  const pool = newPool(t);
  const a = pool.add(spec('a:1', 0));
  pool.add(spec('b:1', 1));
  a.requests = 42;
  const desired = new Map([
    ['a:1', spec('a:1', 1)],
    ['b:1', spec('b:1', 0)],
  ]);
  const actual = new Map(pool.all().map((x) => [x.id, x] as const));
  const p = plan(desired, actual);
  assert.deepEqual(p.update.map((s) => s.id), ['a:1', 'b:1']);
  for (const s of p.update) pool.update(s);
  assert.deepEqual(routable(pool), ['b:1']);
  assert.equal(pool.get('a:1')!.requests, 42);
  assert.deepEqual(plan(desired, new Map(pool.all().map((x) => [x.id, x] as const))), { add: [], update: [], drain: [] }, 'idempotent');
});
