import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendSpec } from '../../../src/discovery/source.js';
import type { Pool } from '../../../src/pool/pool.js';
import { begin, newPool, target } from '../../helpers/plane.js';

const spec = (id: string, extra: Partial<BackendSpec> = {}): BackendSpec => Object.freeze({ id, url: `http://${id}`, weight: 4, source: 'dir:/b', origin: `${id}.json`, ...extra });
const ids = (pool: Pool) => pool.routable.map((b) => b.id);

test('panic mode: below the threshold every backend is routable; entering and leaving are reported once each', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000, panicThresholdPercent: 50 });
  t.after(() => pool.close());
  const events: string[] = [];
  pool.onPanic((panic, healthy, total) => events.push(`${panic}:${healthy}/${total}`));
  for (const id of ['a:1', 'b:1', 'c:1', 'd:1']) pool.add(spec(id));
  pool.setHealth('a:1', false);
  pool.setHealth('b:1', false);
  assert.deepEqual(ids(pool), ['c:1', 'd:1'], '2 of 4 healthy is not below 50%');
  pool.setHealth('c:1', false);
  assert.equal(pool.panic, true);
  assert.deepEqual(ids(pool), ['a:1', 'b:1', 'c:1', 'd:1'], 'in panic, all of them');
  pool.setHealth('d:1', false);
  assert.deepEqual(ids(pool), ['a:1', 'b:1', 'c:1', 'd:1']);
  pool.setHealth('a:1', true);
  pool.setHealth('b:1', true);
  assert.equal(pool.panic, false);
  assert.deepEqual(ids(pool), ['a:1', 'b:1']);
  assert.deepEqual(events, ['true:1/4', 'false:2/4']);
});

test('panic off: with nothing healthy, nothing is routable', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  pool.add(spec('a:1'));
  pool.setHealth('a:1', false);
  assert.deepEqual(ids(pool), []);
  assert.equal(pool.panic, false);
});

test('maxConnections: at the limit a backend takes no further request, and takes one again when a request finishes', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  pool.add(spec('a:1', { maxConnections: 2 }));
  pool.add(spec('b:1'));
  const a = pool.get('a:1')!;
  const first = begin(a);
  const second = begin(a);
  assert.equal(a.inflight, 2);
  // The limit is claimed atomically on the shared counter (every worker's requests count), not by leaving routable.
  assert.equal(target(a).tryStart(), -1, 'a third request is refused');
  assert.equal(a.inflight, 2, 'and a refused claim leaves no trace');
  assert.deepEqual(ids(pool), ['a:1', 'b:1']);
  second.done({ status: 200 });
  const third = begin(a);
  assert.equal(a.inflight, 2);
  third.done({ status: 200 });
  first.done({ status: 200 });
  assert.equal(a.inflight, 0);
});

test('slow start: a new backend\'s weight ramps up linearly to its configured weight', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000, slowStartMs: 1500 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1'));
  assert.ok(a.weight < 1, `starts low (${a.weight})`);
  const seen: number[] = [a.weight];
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 250));
    seen.push(a.weight);
  }
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `never goes down: ${seen.join(' ')}`);
  assert.ok(seen.some((w) => w > 1 && w < 4), `passes through intermediate weights: ${seen.join(' ')}`);
  assert.equal(a.weight, 4, 'ends at the configured weight');
  assert.equal(a.spec.weight, 4);
});

test('slow start: a backend that recovers ramps again; a backend file\'s slowStart overrides the default', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000, slowStartMs: 0 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1', { slowStartMs: 600 }));
  const b = pool.add(spec('b:1'));
  assert.equal(b.weight, 4, 'no default slow start');
  assert.ok(a.weight < 4);
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(a.weight, 4);
  pool.setHealth('a:1', false);
  pool.setHealth('a:1', true);
  assert.ok(a.weight < 4, 'ramping again after recovery');
});

test('batch: routable is rebuilt once at the end of a batch of changes', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  pool.add(spec('a:1'));
  const before = pool.routable;
  pool.batch(() => {
    for (let i = 0; i < 100; i++) pool.add(spec(`b${i}:1`));
    pool.drain('a:1');
    assert.equal(pool.routable, before, 'unchanged inside the batch');
  });
  assert.equal(pool.routable.length, 100);
  assert.ok(!pool.routable.some((b) => b.id === 'a:1'));
});
