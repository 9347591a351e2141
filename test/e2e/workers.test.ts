import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as admin from '../helpers/admin.js';
import { startBackend } from '../helpers/backend.js';
import { runBulb, startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { sample, select } from '../helpers/prom.js';
import { backendFile, tmpDir, writeAtomic } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

// `--workers 2`: a controller thread and two data-plane threads sharing the traffic port (SO_REUSEPORT).

test('every worker serves connections; metrics and /backends count each request exactly once across workers', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  const b = await startBackend('b', { host: '127.0.0.3' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const bulb = await startBulb(t, ['--workers', '2', '--backend', a.url, '--backend', b.url]);
  assert.equal(bulb.logs.find((l) => l.msg === 'bulb started')!['workers'], 2);
  const n = 200;
  // New connections each (agent: false), so the kernel spreads them over both workers' sockets.
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, k) => request(`${bulb.url}/r${i + k}`)));
    for (const r of batch) assert.equal(r.status, 200);
  }
  assert.equal(a.seen.length + b.seen.length, n);
  const m = await admin.metrics(bulb);
  const perWorker = select(m, 'bulb_worker_requests_total');
  assert.equal(perWorker.length, 2, 'one series per worker');
  for (const s of perWorker) assert.ok(s.value > 0, `worker ${s.labels['worker']} served some of ${n}: ${s.value}`);
  assert.equal(perWorker.reduce((x, s) => x + s.value, 0), n, 'per-worker requests add up to the total');
  const total = select(m, 'bulb_requests_total').reduce((x, s) => x + s.value, 0);
  assert.equal(total, n, 'bulb_requests_total counts each request once');
  assert.equal(sample(m, 'bulb_request_duration_seconds_count'), n);
  const view = await admin.backends(bulb);
  assert.equal(view.reduce((x, v) => x + v.requests, 0), n, '/backends totals');
  assert.equal(view.find((v) => v.id.startsWith('127.0.0.2'))!.requests, a.seen.length);
});

test('in-flight counts are global: maxConnections holds across workers, and least-connections sees every worker\'s requests', async (t) => {
  const dir = await tmpDir(t);
  const slow = await startBackend('slow', { host: '127.0.0.2' });
  const other = await startBackend('other', { host: '127.0.0.3' });
  slow.delayMs = 60_000;
  other.delayMs = 60_000;
  t.after(() => Promise.all([slow.close(), other.close()]));
  await writeFile(join(dir, 'slow.json'), backendFile(slow.url, { maxConnections: 3 }));
  await writeFile(join(dir, 'other.json'), backendFile(other.url));
  const bulb = await startBulb(t, ['--workers', '2', '--watch-dir', dir, '--strategy', 'least-connections', '--upstream-timeout', '120s']);
  const held = Array.from({ length: 10 }, (_, i) => request(`${bulb.url}/h${i}`, { timeoutMs: 120_000 }).catch(() => undefined));
  await waitFor(() => slow.inflight + other.inflight === 10, 20_000, () => `held ${slow.inflight} + ${other.inflight}`);
  // Per-worker counting would let each of the two workers send 3 to `slow`, and each would split its own
  // requests evenly; counted globally, `slow` never has more than 3 and the rest go to `other`.
  assert.equal(slow.inflight, 3, 'maxConnections is a limit across every worker');
  assert.equal(other.inflight, 7);
  const view = await admin.backends(bulb);
  assert.deepEqual(view.map((v) => v.activeRequests).sort(), [3, 7]);
  const m = await admin.metrics(bulb);
  assert.equal(select(m, 'bulb_backend_active_requests').reduce((x, s) => x + s.value, 0), 10);
  bulb.kill('SIGKILL');
  await Promise.all(held);
});

test('a dropped file is routed by every worker; a deleted one and an admin drain stop new requests on every worker', async (t) => {
  const dir = await tmpDir(t);
  const a = await startBackend('a', { host: '127.0.0.2' });
  const b = await startBackend('b', { host: '127.0.0.3' });
  t.after(() => Promise.all([a.close(), b.close()]));
  await writeAtomic(join(dir, 'a.json'), backendFile(a.url));
  const bulb = await startBulb(t, ['--workers', '2', '--watch-dir', dir]);
  await writeAtomic(join(dir, 'b.json'), backendFile(b.url));
  await waitFor(async () => (await admin.backends(bulb)).length === 2, 10_000, 'b added');
  const burst = async (k: number) => Promise.all(Array.from({ length: k }, (_, i) => request(`${bulb.url}/x${i}`)));
  const before = b.seen.length;
  await burst(40);
  // Round robin in each worker alternates, so every worker sent some of its share to b.
  assert.ok(b.seen.length - before >= 10, `b got requests from the workers: ${b.seen.length - before}`);
  const drained = await admin.drain(bulb, b.url.slice(7));
  assert.equal(drained.status, 200, drained.body);
  // The drain is answered once every worker runs it: not one more request reaches b.
  const atDrain = b.seen.length;
  await burst(40);
  assert.equal(b.seen.length, atDrain, 'no worker sends to a drained backend');
  await admin.drain(bulb, b.url.slice(7), 'undrain');
  const { rm } = await import('node:fs/promises');
  await rm(join(dir, 'a.json'));
  await waitFor(async () => (await admin.backends(bulb)).length === 1, 10_000, 'a removed');
  const atRemove = a.seen.length;
  await burst(40);
  assert.equal(a.seen.length, atRemove, 'no worker sends to a removed backend');
});

test('a worker that dies (a custom strategy throws out of band) is logged with its reason and replaced; the other keeps serving', async (t) => {
  const dir = await tmpDir(t);
  const mod = join(dir, 'crashy.mjs');
  // On a request with x-crash, throw outside the request (an uncaught exception kills the worker thread).
  await writeFile(
    mod,
    `let i = 0;\nexport default { name: 'crashy', pick(cs, req) { if (req.headers['x-crash']) setImmediate(() => { throw new Error('crashy strategy blew up'); }); return cs[i++ % cs.length]; } };\n`,
  );
  const a = await startBackend('a', { host: '127.0.0.2' });
  t.after(() => a.close());
  const bulb = await startBulb(t, ['--workers', '2', '--backend', a.url, '--strategy', mod]);
  await request(`${bulb.url}/boom`, { headers: { 'x-crash': '1' } }).catch(() => undefined);
  const died = await bulb.waitForLog((l) => l.msg === 'worker died; starting a new one with the current pool', 10_000);
  assert.equal(died.level, 'error');
  assert.match(String(died['reason']), /crashy strategy blew up/);
  // Meanwhile and afterwards, requests are served (by the other worker, then by both).
  for (let i = 0; i < 30; i++) assert.equal((await request(`${bulb.url}/after${i}`)).status, 200);
  await waitFor(async () => select(await admin.metrics(bulb), 'bulb_worker_requests_total').length === 2, 10_000, 'replaced: two workers again');
  assert.equal(sample(await admin.metrics(bulb), 'bulb_worker_restarts_total'), 1);
  assert.equal((await request(`${bulb.adminUrl}/readyz`)).status, 200);
  assert.equal(bulb.proc.exitCode, null, 'the process lives on');
});

test('SIGTERM with held requests on both workers: /readyz fails, every held request completes, exit 0', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  a.delayMs = 1500;
  t.after(() => a.close());
  const bulb = await startBulb(t, ['--workers', '2', '--backend', a.url, '--shutdown-delay', '300ms', '--drain-timeout', '20s']);
  const held = Array.from({ length: 16 }, (_, i) => request(`${bulb.url}/held${i}`));
  await waitFor(() => a.inflight === 16, 10_000, () => `in flight: ${a.inflight}`);
  bulb.kill('SIGTERM');
  await waitFor(async () => (await request(`${bulb.adminUrl}/readyz`).catch(() => ({ status: 0 }))).status === 503, 5_000, '/readyz fails');
  const results = await Promise.all(held);
  for (const r of results) assert.equal(r.status, 200);
  assert.equal(await bulb.exited, 0);
});

test('log lines from both workers are whole JSON lines, never torn or interleaved', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  t.after(() => a.close());
  // A long path makes each access-log line long, so tearing would show.
  const bulb = await startBulb(t, ['--workers', '2', '--backend', a.url]);
  const path = `/${'p'.repeat(3000)}`;
  for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 40 }, () => request(`${bulb.url}${path}`)));
  await waitFor(() => bulb.logs.filter((l) => l.msg === 'request').length >= 200, 10_000, 'access lines');
  assert.deepEqual(bulb.logs.filter((l) => l.level === 'raw'), [], 'every line parses as JSON');
  for (const l of bulb.logs.filter((x) => x.msg === 'request')) assert.equal(l['path'], path);
});

test('--workers refuses bad values with one clear error naming the flag', async () => {
  for (const bad of ['0', '-1', 'two', '1.5']) {
    const r = await runBulb(['--workers', bad, '--backend', 'http://127.0.0.2:1']);
    assert.notEqual(r.code, 0, bad);
    assert.match(r.stderr, /--workers/, bad);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('per-worker gauges: open client connections add up to the connections held', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  t.after(() => a.close());
  const bulb = await startBulb(t, ['--workers', '2', '--backend', a.url]);
  const { connect } = await import('node:net');
  const { port, hostname } = new URL(bulb.url);
  const held = await Promise.all(
    Array.from({ length: 10 }, () => new Promise<import('node:net').Socket>((resolve) => {
      const c = connect(Number(port), hostname, () => resolve(c));
    })),
  );
  t.after(() => held.forEach((c) => c.destroy()));
  await waitFor(async () => select(await admin.metrics(bulb), 'bulb_worker_connections').reduce((x, s) => x + s.value, 0) === 10, 10_000, () => 'connections per worker add up to 10');
});
