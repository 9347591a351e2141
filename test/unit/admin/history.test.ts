import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backend } from '../../../src/pool/backend.js';
import { LoadSlots } from '../../../src/pool/load-slots.js';
import { RateHistory } from '../../../src/admin/status-page/history.js';

const load = new LoadSlots(1);
const backend = (id: string) => new Backend(Object.freeze({ id, url: `http://${id}`, weight: 1, source: 'static', origin: '--backend' }), load.alloc(), load);

/** A history over `backends` with counters the test sets by hand; sampled by calling `sample()`. */
function fixture(ids: string[], length = 5) {
  const backends = new Map(ids.map((id) => [id, backend(id)]));
  const errors = new Map<Backend, number>();
  let now = 0;
  const h = new RateHistory({
    backends: () => backends.values(),
    counters: (b) => ({ requests: b.requests, errors: errors.get(b) ?? 0 }),
    length,
    idleStopMs: 10_000,
    now: () => now,
  });
  const add = (id: string, requests: number, errs = 0) => {
    const b = backends.get(id)!;
    b.requests += requests;
    errors.set(b, (errors.get(b) ?? 0) + errs);
  };
  return { h, backends, add, setNow: (ms: number) => (now = ms) };
}

test('rates are deltas of the counters per second, over the window asked for or as much as was sampled', (t) => {
  const { h, backends, add } = fixture(['a']);
  t.after(() => h.stop());
  const a = backends.get('a')!;
  add('a', 1000); // before sampling starts: not counted
  h.touch();
  assert.equal(h.rate(a), null, 'no rate before the second sample');
  add('a', 10, 1);
  h.sample();
  assert.deepEqual(h.rate(a), { rps: 10, errorRate: 0.1, windowSeconds: 1 });
  add('a', 30, 0);
  h.sample();
  assert.deepEqual(h.rate(a), { rps: 20, errorRate: 1 / 40, windowSeconds: 2 });
  assert.deepEqual(h.rate(a, 1), { rps: 30, errorRate: 0, windowSeconds: 1 });
  h.sample();
  assert.deepEqual(h.rate(a, 1), { rps: 0, errorRate: null, windowSeconds: 1 }, 'no requests: no error rate');
});

test('since() returns only the points a page has not seen, and never more than the ring holds', (t) => {
  const { h, backends, add } = fixture(['a'], 3);
  t.after(() => h.stop());
  const a = backends.get('a')!;
  h.touch();
  for (const n of [1, 2, 3, 4, 5]) {
    add('a', n);
    h.sample();
  }
  assert.equal(h.seq, 5);
  assert.deepEqual(h.since(a, 0), [3, 4, 5], 'the ring keeps the last 3');
  assert.deepEqual(h.since(a, 4), [5]);
  assert.deepEqual(h.since(a, 5), []);
  assert.deepEqual(h.rate(a, 60), { rps: 4, errorRate: 0, windowSeconds: 3 });
});

test('a backend that joins later has points only from its first sample; one that leaves is forgotten', (t) => {
  const { h, backends, add } = fixture(['a']);
  t.after(() => h.stop());
  h.touch();
  add('a', 5);
  h.sample();
  const b = backend('b');
  b.requests = 500; // a backend's totals before the page saw it are not a burst of traffic
  backends.set('b', b);
  h.sample();
  assert.deepEqual(h.since(b, 0), []);
  b.requests += 7;
  h.sample();
  assert.deepEqual(h.since(b, 0), [7]);
  assert.deepEqual(h.since(backends.get('a')!, 0), [5, 0, 0]);
  const a = backends.get('a')!;
  backends.delete('a');
  h.sample();
  assert.equal(h.rate(a), null);
});

test('sampling starts on touch and stops, forgetting everything, after the idle time', async (t) => {
  const { h, backends, add, setNow } = fixture(['a']);
  t.after(() => h.stop());
  assert.equal(h.active, false, 'nothing runs before anyone looks');
  h.touch();
  assert.equal(h.active, true);
  add('a', 3);
  h.sample();
  setNow(20_000);
  // The next tick sees the page gone for longer than idleStopMs.
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(h.active, false);
  assert.equal(h.rate(backends.get('a')!), null, 'history dropped');
});
