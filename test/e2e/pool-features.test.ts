import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBackends } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { backendFile, tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

// The pool's protections on real traffic: maxConnections, slow start and panic mode. Their rules are unit-tested in
// test/unit/pool/pool-features.test.ts.

test('maxConnections: a backend at its limit is skipped by the strategy', async (t) => {
  const dir = await tmpDir(t);
  const [slow, other] = await startBackends(t, 'slow', 'other');
  slow.delayMs = 3000;
  await writeFile(join(dir, 'a-slow.json'), backendFile(slow.url, { maxConnections: 1 }));
  await writeFile(join(dir, 'b-other.json'), backendFile(other.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const pending: Promise<unknown>[] = [];
  while (slow.inflight < 1) {
    pending.push(request(`${bulb.url}/hold`));
    await waitFor(() => slow.inflight + other.seen.length >= pending.length, 5000);
  }
  for (let i = 0; i < 6; i++) assert.equal((await request(`${bulb.url}/${i}`)).body, 'other');
  assert.equal(slow.seen.length, 1, 'the saturated backend got nothing more');
  await Promise.all(pending);
});

test('slow start: a new backend\'s share grows gradually, not in one step', async (t) => {
  const dir = await tmpDir(t);
  const [old, fresh] = await startBackends(t, 'old', 'fresh');
  await writeFile(join(dir, 'old.json'), backendFile(old.url));
  const bulb = await startBulb(t, ['--watch-dir', dir, '--strategy', 'weighted-round-robin']);
  await writeFile(join(dir, 'fresh.json'), backendFile(fresh.url, { slowStart: '4s' }));
  await waitFor(async () => (await request(`${bulb.url}/probe`)).body === 'fresh', 5000, 'fresh routable');
  const share = async () => {
    let n = 0;
    for (let i = 0; i < 40; i++) if ((await request(`${bulb.url}/s`)).body === 'fresh') n++;
    return n / 40;
  };
  const early = await share();
  await new Promise((r) => setTimeout(r, 4500));
  const late = await share();
  t.diagnostic(`fresh backend share: ${early} early, ${late} after the ramp`);
  assert.ok(early < 0.4, `early share ${early} is below the full 0.5`);
  assert.ok(late >= 0.45 && late <= 0.55, `full share ${late} after the ramp`);
});

test('every backend down: 503 at once with panic mode off; with --panic-threshold, requests are tried anyway', async (t) => {
  const [a, b] = await startBackends(t, 'a', 'b');
  // Their health checks fail, but they would still answer traffic: what panic mode bets on.
  a.healthzStatus = 500;
  b.healthzStatus = 500;
  const health = ['--health-path', '/healthz', '--health-interval', '200ms', '--health-fall', '1', '--outlier-consecutive', '0'];
  const off = await startBulb(t, ['--backend', a.url, '--backend', b.url, ...health]);
  await waitFor(async () => (await request(`${off.url}/x`)).status === 503, 10_000, 'both marked down');
  const t0 = Date.now();
  const r = await request(`${off.url}/fast`);
  assert.equal(r.status, 503);
  assert.equal(r.body, 'no backend available\n');
  assert.ok(Date.now() - t0 < 1000, 'answered at once, no hanging');

  const on = await startBulb(t, ['--backend', a.url, '--backend', b.url, ...health, '--panic-threshold', '50']);
  await on.waitForLog((l) => l.msg.startsWith('PANIC MODE'), 10_000);
  for (let i = 0; i < 4; i++) assert.equal((await request(`${on.url}/p${i}`)).status, 200, 'routed anyway in panic');
  // Recovery leaves panic mode, logged once.
  a.healthzStatus = 200;
  b.healthzStatus = 200;
  await on.waitForLog((l) => l.msg === 'panic mode over: routing to healthy backends only', 10_000);
  assert.equal(on.logs.filter((l) => l.msg.startsWith('PANIC MODE')).length, 1, 'entering panic logged once');
});
