import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendSpec } from '../../../src/discovery/source.js';
import type { Backend } from '../../../src/pool/backend.js';
import type { PoolEvent } from '../../../src/pool/pool.js';
import { begin, newPool } from '../../helpers/plane.js';

const spec = (id: string): BackendSpec => Object.freeze({ id, url: `http://${id}`, weight: 1, source: 'dir:/b', origin: `${id}.json` });

test('health has two independent causes; the backend is healthy only when neither holds', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1'));
  pool.add(spec('b:1'));
  const events: string[] = [];
  pool.onEvent((e: PoolEvent) => events.push(`${e.kind}:${e.backend.id}:${e.backend.unhealthyReason ?? 'ok'}`));

  assert.equal(a.healthy, true);
  assert.equal(a.unhealthyReason, null);
  pool.setHealth('a:1', false, 'ejected', 5000);
  assert.equal(a.unhealthyReason, 'ejected');
  assert.equal(a.unhealthyUntil, 5000);
  assert.equal(a.ejections, 1);
  pool.setHealth('a:1', false); // failing-checks by default, as older callers meant
  assert.equal(a.unhealthyReason, 'failing-checks', 'failing checks win: they last until rise passes');
  assert.equal(a.unhealthyUntil, undefined);
  pool.setHealth('a:1', true, 'ejected');
  assert.equal(a.healthy, false, 'still failing checks');
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1']);
  pool.setHealth('a:1', true);
  assert.equal(a.healthy, true);
  assert.deepEqual(pool.routable.map((b) => b.id), ['a:1', 'b:1']);
  assert.equal(a.ejections, 1, 'a counter: never reset');
  assert.deepEqual(events, ['health:a:1:ejected', 'health:a:1:failing-checks', 'health:a:1:failing-checks', 'health:a:1:ok']);
});

test('setHealth with no change emits nothing and keeps the routable array', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  pool.add(spec('a:1'));
  let n = 0;
  pool.onEvent(() => n++);
  const before = pool.routable;
  pool.setHealth('a:1', true);
  pool.setHealth('a:1', true, 'ejected');
  pool.setHealth('nope', false);
  assert.equal(n, 0);
  assert.equal(pool.routable, before);
});

test('an ejection without an end lasts until cleared', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1'));
  pool.setHealth('a:1', false, 'ejected');
  assert.equal(a.ejectedUntil, Number.POSITIVE_INFINITY);
  pool.setHealth('a:1', true, 'ejected');
  assert.equal(a.healthy, true);
});

test('every finished request reports its outcome to the pool listeners, once', (t) => {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1'));
  const seen: [string, unknown][] = [];
  pool.onOutcome((b: Backend, o) => seen.push([b.id, o]));
  const first = begin(a);
  first.done({ status: 503 });
  first.done({ status: 200 }); // a second call is ignored
  begin(a).done({ error: 'ECONNRESET' });
  begin(a).done({});
  assert.deepEqual(seen, [['a:1', { status: 503 }], ['a:1', { error: 'ECONNRESET' }], ['a:1', {}]]);
});
