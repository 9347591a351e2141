import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as admin from '../helpers/admin.js';
import { startBackends } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { closedPort, request } from '../helpers/http.js';
import { sample } from '../helpers/prom.js';
import { tmpDir } from '../helpers/tmpdir.js';

// Retries end to end: which failures are retried, how many times, with what body, and the budget that caps
// them. What counts as retryable is unit-tested in test/unit/proxy/retry.test.ts.

test('--retries N: a GET gets past N refusing backends, and no further', async (t) => {
  const [good] = await startBackends(t, 'good');
  const dead1 = `http://127.0.0.1:${await closedPort()}`;
  const dead2 = `http://127.0.0.1:${await closedPort()}`;
  // A strategy that always takes the first candidate makes the order exact: dead1, then dead2, then good.
  const dir = await tmpDir(t);
  const first = join(dir, 'first.mjs');
  await writeFile(first, 'export default { name: "first", pick: (candidates) => candidates[0] };\n');
  const args = ['--backend', dead1, '--backend', dead2, '--backend', good.url, '--strategy', first];
  const two = await startBulb(t, [...args, '--retries', '2']);
  const r2 = await request(`${two.url}/`);
  assert.equal(r2.status, 200);
  assert.equal(r2.body, 'good');
  const log = await two.waitForLog((l) => l.msg === 'request');
  assert.equal(log['attempts'], 3);
  const one = await startBulb(t, [...args, '--retries', '1']);
  const r1 = await request(`${one.url}/`);
  assert.equal(r1.status, 502, 'one retry is not enough to get past two dead backends');
  assert.equal(good.seen.length, 1);
});

test('a 503 from a backend is retried elsewhere for a GET, and passed through for a POST', async (t) => {
  const [busy, ok] = await startBackends(t, 'busy', 'ok');
  busy.mode = { kind: 'status', status: 503 };
  const bulb = await startBulb(t, ['--backend', busy.url, '--backend', ok.url]);
  for (let i = 0; i < 4; i++) {
    const r = await request(`${bulb.url}/g${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  }
  const posts = [];
  for (let i = 0; i < 4; i++) posts.push((await request(`${bulb.url}/p${i}`, { method: 'POST', body: 'x' })).status);
  assert.ok(posts.includes(503), `a POST that got 503 was not replayed: ${posts.join(',')}`);
  assert.equal(busy.seen.filter((s) => s.method === 'POST').length, posts.filter((s) => s === 503).length);
});

test('small request bodies are buffered and replayed on retry; bodies over --retry-body-limit are not retried', async (t) => {
  const [ok] = await startBackends(t, 'ok');
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const bulb = await startBulb(t, ['--backend', dead, '--backend', ok.url, '--retry-body-limit', '1000']);
  for (let i = 0; i < 4; i++) {
    const r = await request(`${bulb.url}/echo`, { method: 'PUT', body: `small-${i}` });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { body: string }).body, `small-${i}`, 'the body arrived whole after a retry');
  }
  const big = 'x'.repeat(5000);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await request(`${bulb.url}/echo`, { method: 'PUT', body: big })).status);
  assert.ok(statuses.includes(502), `a large body that hit the dead backend was not retried: ${statuses.join(',')}`);
  assert.ok(statuses.includes(200));
});

test('the retry budget caps retries when the whole pool is failing', async (t) => {
  const [a, b] = await startBackends(t, 'a', 'b');
  a.mode = { kind: 'status', status: 503 };
  b.mode = { kind: 'status', status: 503 };
  // Outlier detection off: it would eject one of the two and leave nothing to retry on.
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url, '--retry-budget', '20', '--outlier-consecutive', '0']);
  for (let i = 0; i < 80; i++) assert.equal((await request(`${bulb.url}/${i}`)).status, 503);
  const hits = a.seen.length + b.seen.length;
  const retries = hits - 80;
  // 80 requests; without a budget each would try both backends (80 retries), with no retry at all there are
  // none. 20% of 80 = 16 retries at most; the floor of 10 per window lets at least 10 through.
  assert.ok(retries <= 16, `${retries} retries for 80 requests: the budget caps them`);
  assert.ok(retries >= 10, `${retries} retries: the budget's floor was allowed`);
  const metrics = await admin.metrics(bulb);
  const counted = [a, b].reduce((n, x) => n + (sample(metrics, 'bulb_retries_total', { backend: `${x.host}:${x.port}` }) ?? 0), 0);
  const refused = [a, b].reduce((n, x) => n + (sample(metrics, 'bulb_retries_refused_total', { backend: `${x.host}:${x.port}` }) ?? 0), 0);
  assert.equal(counted, retries, 'bulb_retries_total counts exactly the extra backend hits');
  assert.equal(refused, 80 - retries, 'every other request was refused a retry by the budget');
  await bulb.waitForLog((l) => l.msg === 'retry budget spent; not retrying');
});
