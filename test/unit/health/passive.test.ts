import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendSpec } from '../../../src/discovery/source.js';
import {
  MAX_EJECTION_MULTIPLIER,
  OutlierDetector,
  decayedMultiplier,
  ejectionMs,
  isFailure,
  mayEject,
  type OutlierSettings,
} from '../../../src/health/passive.js';
import { begin, newPool } from '../../helpers/plane.js';

const spec = (id: string): BackendSpec => Object.freeze({ id, url: `http://${id}`, weight: 1, source: 'dir:/b', origin: `${id}.json` });
const quiet = { info: () => {}, warn: () => {} };

test('what counts: errors and 5xx fail, other statuses succeed, an outcome with neither says nothing', () => {
  assert.equal(isFailure({ error: 'ECONNREFUSED' }), true);
  assert.equal(isFailure({ error: 'ETIMEDOUT' }), true);
  assert.equal(isFailure({ status: 503 }), true);
  assert.equal(isFailure({ status: 500 }), true);
  assert.equal(isFailure({ status: 499 }), false);
  assert.equal(isFailure({ status: 200 }), false);
  assert.equal(isFailure({}), undefined);
});

test('ejection time is base × times ejected, capped at 10×', () => {
  assert.equal(ejectionMs(30_000, 1), 30_000);
  assert.equal(ejectionMs(30_000, 2), 60_000);
  assert.equal(ejectionMs(30_000, 10), 300_000, "Envoy's max_ejection_time default");
  assert.equal(ejectionMs(30_000, 11), 300_000);
  assert.equal(ejectionMs(30_000, 1000), 30_000 * MAX_EJECTION_MULTIPLIER);
  assert.equal(ejectionMs(30_000, 0), 30_000, 'a first ejection is never shorter than base');
});

test('the multiplier decays one step per base time in rotation', () => {
  assert.equal(decayedMultiplier(3, 0, 30_000), 3);
  assert.equal(decayedMultiplier(3, 29_999, 30_000), 3);
  assert.equal(decayedMultiplier(3, 30_000, 30_000), 2);
  assert.equal(decayedMultiplier(3, 95_000, 30_000), 0);
  assert.equal(decayedMultiplier(3, 10 ** 9, 30_000), 0);
});

test('max ejection percent: at most P% ejected, one always may be, a lone backend never', () => {
  // 3 backends at 50%: the first may go (33%), a second would make 67%.
  assert.equal(mayEject(0, 3, 50), true);
  assert.equal(mayEject(1, 3, 50), false);
  // 2 backends at 50%: one of two.
  assert.equal(mayEject(0, 2, 50), true);
  assert.equal(mayEject(1, 2, 50), false);
  // 4 at 50%: two of four.
  assert.equal(mayEject(1, 4, 50), true);
  assert.equal(mayEject(2, 4, 50), false);
  // Envoy's 10% in a small pool: still the first one (as Envoy allows), never a second.
  assert.equal(mayEject(0, 3, 10), true);
  assert.equal(mayEject(1, 3, 10), false);
  assert.equal(mayEject(0, 2, 0), true, 'one always may be, even at 0%');
  assert.equal(mayEject(9, 10, 100), true);
  // A lone backend: ejecting it would only turn requests into 503s.
  assert.equal(mayEject(0, 1, 100), false);
  assert.equal(mayEject(0, 0, 100), false);
});

function setup(t: import('node:test').TestContext, ids: string[], settings: Partial<OutlierSettings> = {}) {
  const pool = newPool({ drainTimeoutMs: 1000 });
  t.after(() => pool.close());
  for (const id of ids) pool.add(spec(id));
  let now = 1_000_000;
  const ejected: string[] = [];
  const detector = new OutlierDetector({
    pool,
    settings: { consecutive: 3, baseEjectionMs: 60_000, maxEjectionPercent: 50, unejectOnCheck: true, ...settings },
    log: quiet,
    now: () => now,
    onEjected: (b) => ejected.push(b.id),
  });
  t.after(() => detector.stop());
  pool.onOutcome(detector.onOutcome);
  const send = (id: string, outcome: { error?: string; status?: number }) => begin(pool.get(id)!).done(outcome);
  return { pool, detector, ejected, send, advance: (ms: number) => (now += ms), now: () => now };
}

test('N consecutive failures eject for base time; a success in between resets the count', (t) => {
  const { pool, send, ejected, now } = setup(t, ['a:1', 'b:1', 'c:1']);
  send('a:1', { status: 503 });
  send('a:1', { error: 'ECONNRESET' });
  send('a:1', { status: 200 });
  send('a:1', { status: 502 });
  send('a:1', { error: 'ETIMEDOUT' });
  assert.equal(pool.get('a:1')!.healthy, true, 'the 200 reset the count');
  send('a:1', { status: 500 });
  const a = pool.get('a:1')!;
  assert.equal(a.healthy, false);
  assert.equal(a.unhealthyReason, 'ejected');
  assert.equal(a.ejectedUntil, now() + 60_000);
  assert.equal(a.ejections, 1);
  assert.deepEqual(ejected, ['a:1']);
  assert.deepEqual(pool.routable.map((b) => b.id), ['b:1', 'c:1']);
});

test('outcomes that say nothing (client gone) neither count nor reset', (t) => {
  const { pool, send } = setup(t, ['a:1', 'b:1']);
  send('a:1', { status: 503 });
  send('a:1', {});
  send('a:1', { status: 503 });
  send('a:1', {});
  send('a:1', { status: 503 });
  assert.equal(pool.get('a:1')!.unhealthyReason, 'ejected');
});

test('max ejection percent holds: with 3 backends at 50% a second backend is not ejected', (t) => {
  const { pool, send } = setup(t, ['a:1', 'b:1', 'c:1']);
  for (let i = 0; i < 3; i++) send('a:1', { status: 503 });
  for (let i = 0; i < 3; i++) send('b:1', { status: 503 });
  assert.equal(pool.get('a:1')!.unhealthyReason, 'ejected');
  assert.equal(pool.get('b:1')!.healthy, true);
  assert.equal(pool.get('b:1')!.ejections, 0);
});

test('a lone backend is never ejected', (t) => {
  const { pool, send } = setup(t, ['a:1']);
  for (let i = 0; i < 10; i++) send('a:1', { error: 'ECONNREFUSED' });
  assert.equal(pool.get('a:1')!.healthy, true);
});

test('an ejected backend comes back when the time is up, and repeat offenders stay out longer', async (t) => {
  const { pool, send, advance, now } = setup(t, ['a:1', 'b:1'], { baseEjectionMs: 100 });
  for (let i = 0; i < 3; i++) send('a:1', { status: 503 });
  const a = pool.get('a:1')!;
  assert.equal(a.ejectedUntil, now() + 100);
  // Outcomes of requests that were in flight when it was ejected are ignored.
  send('a:1', { status: 200 });
  assert.equal(a.unhealthyReason, 'ejected');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(a.healthy, true, 'restored by its timer');
  assert.deepEqual(pool.routable.map((b) => b.id), ['a:1', 'b:1']);
  advance(50); // back for less than one base time: no decay
  for (let i = 0; i < 3; i++) send('a:1', { status: 503 });
  assert.equal(a.ejectedUntil, now() + 200, 'second ejection: 2 × base');
  assert.equal(a.ejections, 2);
});

test('an ejected backend failing its checks stays out when the ejection ends', async (t) => {
  const { pool, send } = setup(t, ['a:1', 'b:1'], { baseEjectionMs: 50 });
  for (let i = 0; i < 3; i++) send('a:1', { status: 503 });
  pool.setHealth('a:1', false, 'failing-checks');
  await new Promise((r) => setTimeout(r, 150));
  const a = pool.get('a:1')!;
  assert.equal(a.ejectedUntil, undefined);
  assert.equal(a.unhealthyReason, 'failing-checks');
  assert.equal(a.healthy, false);
});

test('consecutive 0 turns outlier detection off', (t) => {
  const { pool, send } = setup(t, ['a:1', 'b:1'], { consecutive: 0 });
  for (let i = 0; i < 20; i++) send('a:1', { status: 503 });
  assert.equal(pool.get('a:1')!.healthy, true);
});

for (const unejectOnCheck of [true, false]) {
  test(`a passing active check ${unejectOnCheck ? 'ends' : 'does not end'} an ejection with unejectOnCheck ${unejectOnCheck}; the multiplier is kept`, (t) => {
    const { pool, detector, send, advance } = setup(t, ['a:1', 'b:1', 'c:1'], { unejectOnCheck });
    for (let i = 0; i < 3; i++) send('a:1', { status: 503 });
    const a = pool.get('a:1')!;
    assert.equal(a.unhealthyReason, 'ejected');
    advance(1000);
    detector.checkPassed(a);
    assert.equal(a.healthy, unejectOnCheck);
    assert.equal(a.ejectedUntil === undefined, unejectOnCheck);
    if (!unejectOnCheck) return;
    // Failing again at once: the second ejection lasts 2 × base, as if the first had run its course.
    for (let i = 0; i < 3; i++) send('a:1', { status: 503 });
    assert.equal(a.ejections, 2);
    assert.equal(a.ejectedUntil! - 1_001_000, 120_000);
    // A check passing on a backend that is not ejected changes nothing.
    detector.checkPassed(pool.get('b:1')!);
    assert.equal(pool.get('b:1')!.healthy, true);
  });
}
