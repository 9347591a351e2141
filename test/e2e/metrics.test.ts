import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import * as admin from '../helpers/admin.js';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { sample, select, total } from '../helpers/prom.js';
import { backendFile, tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

const scrape = admin.metrics;

test('the exposition parses, names every bulb metric with its type, and includes the process metrics', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  t.after(() => a.close());
  const bulb = await startBulb(t, ['--backend', a.url]);
  const m = await scrape(bulb);
  assert.deepEqual(
    Object.fromEntries([...m.types].filter(([name]) => name.startsWith('bulb_')).sort()),
    {
      bulb_backend_active_requests: 'gauge',
      bulb_backend_healthy: 'gauge',
      bulb_backend_routable: 'gauge',
      bulb_discovery_errors_total: 'counter',
      bulb_discovery_last_sync_timestamp_seconds: 'gauge',
      bulb_discovery_problems: 'gauge',
      bulb_ejections_total: 'counter',
      bulb_reconcile_duration_seconds: 'histogram',
      bulb_reconciles_total: 'counter',
      bulb_request_duration_seconds: 'histogram',
      bulb_requests_total: 'counter',
      bulb_retries_refused_total: 'counter',
      bulb_retries_total: 'counter',
    },
  );
  for (const name of m.types.keys()) assert.ok(m.help.get(name), `${name} has HELP text`);
  assert.ok(m.types.has('process_cpu_user_seconds_total'), 'default process metrics');
  assert.ok(m.types.has('nodejs_eventloop_lag_seconds'), 'default Node.js metrics');
  const id = `127.0.0.2:${a.port}`;
  assert.equal(sample(m, 'bulb_ejections_total', { backend: id }), 0, 'registered before health checking uses it');
  assert.equal(sample(m, 'bulb_backend_healthy', { backend: id }), 1);
  assert.equal(sample(m, 'bulb_discovery_errors_total', { source: 'static' }), 0);
  assert.ok((sample(m, 'bulb_reconciles_total') ?? 0) >= 1);
  assert.equal(sample(m, 'bulb_reconcile_duration_seconds_count'), sample(m, 'bulb_reconciles_total'));
  const lastSync = sample(m, 'bulb_discovery_last_sync_timestamp_seconds', { source: 'static' }) ?? 0;
  assert.ok(Math.abs(lastSync - Date.now() / 1000) < 120, 'last sync is a recent Unix time');
});

test('counters and gauges move as traffic flows and backends change', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  const b = await startBackend('b', { host: '127.0.0.3' });
  const c = await startBackend('c', { host: '127.0.0.4' });
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  await writeFile(join(dir, 'b.json'), backendFile(b.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const [idA, idB, idC] = [`127.0.0.2:${a.port}`, `127.0.0.3:${b.port}`, `127.0.0.4:${c.port}`];
  const source = `dir:${dir}`;

  // Traffic: 6 requests, round robin, then b answers 500 for 2 more (a 503 would be retried).
  let m = await scrape(bulb);
  assert.equal(total(m, 'bulb_requests_total'), 0);
  for (let i = 0; i < 6; i++) assert.equal((await request(`${bulb.url}/`)).status, 200);
  b.mode = { kind: 'status', status: 500 };
  for (let i = 0; i < 2; i++) await request(`${bulb.url}/`);
  m = await scrape(bulb);
  assert.equal(sample(m, 'bulb_requests_total', { backend: idA, code_class: '2xx' }), 4);
  assert.equal(sample(m, 'bulb_requests_total', { backend: idB, code_class: '2xx' }), 3);
  assert.equal(sample(m, 'bulb_requests_total', { backend: idB, code_class: '5xx' }), 1);
  assert.equal(sample(m, 'bulb_request_duration_seconds_count'), 8);
  const buckets = select(m, 'bulb_request_duration_seconds_bucket').map((s) => s.value);
  assert.deepEqual(buckets, [...buckets].sort((x, y) => x - y), 'cumulative buckets never decrease');
  assert.equal(sample(m, 'bulb_request_duration_seconds_bucket', { le: '+Inf' }), 8);
  b.mode = { kind: 'ok' };

  // Retries: b resets the connection before answering, the request is retried on a, and b gets the blame.
  b.mode = { kind: 'reset' };
  for (let i = 0; i < 2; i++) assert.equal((await request(`${bulb.url}/`)).body, 'a');
  b.mode = { kind: 'ok' };
  m = await scrape(bulb);
  assert.equal(sample(m, 'bulb_retries_total', { backend: idB }), 1);
  assert.equal(sample(m, 'bulb_retries_total', { backend: idA }), 0);

  // Active requests: a hangs, one request sits in flight.
  a.mode = { kind: 'hang' };
  b.mode = { kind: 'hang' };
  const stuck = request(`${bulb.url}/`, { timeoutMs: 60_000 }).catch(() => undefined);
  await waitFor(async () => total(await scrape(bulb), 'bulb_backend_active_requests') === 1, 10_000, 'one request in flight');
  const [before] = [(await scrape(bulb))];
  a.mode = { kind: 'ok' };
  b.mode = { kind: 'ok' };

  // Backends change: b's file goes, c's arrives, a file is rejected.
  const reconciles = sample(before, 'bulb_reconciles_total') ?? 0;
  const reconcileCount = sample(before, 'bulb_reconcile_duration_seconds_count') ?? 0;
  const busy = sample(before, 'bulb_backend_active_requests', { backend: idA }) === 1 ? idA : idB;
  const idle = busy === idA ? idB : idA;
  const idleFile = idle === idA ? 'a.json' : 'b.json';
  await rm(join(dir, idleFile));
  await writeFile(join(dir, 'c.json'), backendFile(c.url));
  await writeFile(join(dir, 'bad.json'), '{ "url": "http://127.0.0.9:1", "wieght": 2 }');
  await waitFor(
    async () => {
      const now = await scrape(bulb);
      return sample(now, 'bulb_backend_healthy', { backend: idC }) === 1 && sample(now, 'bulb_backend_healthy', { backend: idle }) === undefined;
    },
    10_000,
    'c added and the idle backend removed',
  );
  m = await scrape(bulb);
  assert.ok((sample(m, 'bulb_reconciles_total') ?? 0) > reconciles, 'reconciles counted');
  assert.ok((sample(m, 'bulb_reconcile_duration_seconds_count') ?? 0) > reconcileCount, 'reconcile durations observed');
  assert.equal(select(m, 'bulb_requests_total', { backend: idle }).length, 0, 'a removed backend stops being exported');
  assert.equal(select(m, 'bulb_retries_total', { backend: idle }).length, 0);
  assert.equal(sample(m, 'bulb_backend_active_requests', { backend: idC }), 0);
  assert.equal(sample(m, 'bulb_backend_routable', { backend: idC }), 1);
  assert.equal(sample(m, 'bulb_discovery_problems', { source }), 1);

  // An operator drain shows as not routable, still healthy.
  assert.equal((await admin.drain(bulb, idC)).status, 200);
  m = await scrape(bulb);
  assert.equal(sample(m, 'bulb_backend_routable', { backend: idC }), 0);
  assert.equal(sample(m, 'bulb_backend_healthy', { backend: idC }), 1);

  // Release the stuck request (closing the hung backend ends it) and the gauge goes back to 0.
  await (busy === idA ? a : b).close();
  await stuck;
  await waitFor(async () => total(await scrape(bulb), 'bulb_backend_active_requests') === 0, 10_000, 'nothing in flight');
});

test('requests no backend could take are counted with backend=""', async (t) => {
  const dir = await tmpDir(t);
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  assert.equal((await request(`${bulb.url}/`)).status, 503);
  const m = await scrape(bulb);
  assert.equal(sample(m, 'bulb_requests_total', { backend: '', code_class: '5xx' }), 1);
  assert.equal(sample(m, 'bulb_request_duration_seconds_count'), 1);
});

test('a source that cannot be read counts discovery errors and keeps its last successful sync', async (t) => {
  const parent = await tmpDir(t);
  const dir = join(parent, 'backends');
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const m = await scrape(bulb);
  assert.ok((sample(m, 'bulb_discovery_errors_total', { source: `dir:${dir}` }) ?? 0) >= 1, 'a missing directory is an error');
  assert.equal(sample(m, 'bulb_discovery_last_sync_timestamp_seconds', { source: `dir:${dir}` }), undefined, 'never synced');
  const sources = await admin.sources(bulb);
  assert.ok(sources[0].error);
  assert.equal(sources[0].lastError?.message, sources[0].error);
});

test('attempts the retry budget keeps from being retried are counted by the backend that failed', async (t) => {
  const bad = await startBackend('bad', { host: '127.0.0.2' });
  const good = await startBackend('good', { host: '127.0.0.3' });
  t.after(() => Promise.all([bad.close(), good.close()]));
  bad.mode = { kind: 'status', status: 503 };
  // Budget 0%: only the 10 retries per window that are always allowed; outlier detection off so `bad` stays in.
  const bulb = await startBulb(t, ['--backend', bad.url, '--backend', good.url, '--retry-budget', '0', '--outlier-consecutive', '0', '--health-mode', 'off']);
  for (let i = 0; i < 40; i++) await request(`${bulb.url}/`);
  const m = await scrape(bulb);
  const id = `${bad.host}:${bad.port}`;
  assert.equal(sample(m, 'bulb_retries_total', { backend: id }), 10, 'the budget allows 10 per window');
  // Every 503 from `bad` was either retried or refused (a retry always goes to `good`).
  assert.ok(bad.seen.length > 10, `bad answered ${bad.seen.length}`);
  assert.equal(sample(m, 'bulb_retries_refused_total', { backend: id }), bad.seen.length - 10, 'the rest were refused');
  assert.equal(sample(m, 'bulb_retries_refused_total', { backend: `${good.host}:${good.port}` }), 0);
});
