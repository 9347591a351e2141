import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import * as admin from '../helpers/admin.js';
import type { AdminBackend } from '../helpers/admin.js';
import { startBackendProcess, type BackendProcess } from '../helpers/backend-process.js';
import { startBulb, type RunningBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { sample } from '../helpers/prom.js';
import { backendFile, tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

// Health checking end to end: real bulb, real backend processes (killed by PID), real sockets.
// Timing bounds are generous (CI has two shared cores); each names the rule it checks.

async function viewOf(bulb: RunningBulb, url: string): Promise<AdminBackend> {
  const found = (await admin.backends(bulb)).find((b) => b.url === url);
  assert.ok(found, `backend ${url} is in GET /backends`);
  return found;
}

/** Three backend processes on 127.0.0.2-4. */
async function threeBackends(t: import('node:test').TestContext): Promise<BackendProcess[]> {
  return Promise.all(['a', 'b', 'c'].map((n, i) => startBackendProcess(t, n, { host: `127.0.0.${i + 2}` })));
}

/** `clients` loops of GETs through one keep-alive agent until `stop()`; every non-200 or error is recorded. */
function load(url: string, clients: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const errors: string[] = [];
  const by = new Map<string, number>();
  let ok = 0;
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const r = await request(`${url}/`, { agent, timeoutMs: 20_000 });
        if (r.status === 200) {
          ok++;
          by.set(r.body, (by.get(r.body) ?? 0) + 1);
        } else errors.push(`status ${r.status}: ${r.body.trim()}`);
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  });
  return {
    errors,
    by,
    ok: () => ok,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

const FAST_CHECKS = ['--health-interval', '200ms', '--health-fall', '2', '--health-rise', '2', '--health-timeout', '500ms'];

test('1. SIGKILL of one of three backends under load (50 clients): zero client errors, marked down within interval × fall', async (t) => {
  const procs = await threeBackends(t);
  const victim = procs[1];
  const bulb = await startBulb(t, [
    ...procs.flatMap((p) => ['--backend', p.url]),
    '--health-path', '/healthz',
    ...FAST_CHECKS,
    '--retries', '2',
  ]);
  await waitFor(async () => (await admin.backends(bulb)).every((b) => b.healthy), 10_000, 'all three healthy');

  const traffic = load(bulb.url, 50);
  t.after(() => traffic.stop());
  await waitFor(() => traffic.ok() > 200, 15_000, 'traffic flowing');
  await sleep(1000);
  const killedAt = performance.now();
  await victim.kill('SIGKILL');

  let downAfterMs = 0;
  await waitFor(
    async () => {
      const v = await viewOf(bulb, victim.url);
      downAfterMs = performance.now() - killedAt;
      return !v.healthy && v.health?.reason === 'failing-checks';
    },
    10_000,
    'the killed backend marked down by its checks',
    20,
  );
  // interval × fall = 400 ms (+10% jitter); the bound leaves room for a loaded machine, not for a missing check.
  assert.ok(downAfterMs < 2500, `marked down ${Math.round(downAfterMs)} ms after the kill (interval × fall = 400 ms)`);

  // Keep the load up for a while after detection too.
  const okAtDetection = traffic.ok();
  await sleep(2000);
  await waitFor(() => traffic.ok() > okAtDetection + 500, 15_000, 'traffic after detection');
  await traffic.stop();
  assert.deepEqual(traffic.errors.slice(0, 5), [], `${traffic.errors.length} client-visible errors of ${traffic.ok()} requests`);
  assert.ok(traffic.ok() > 1000, `${traffic.ok()} requests served`);

  const view = await viewOf(bulb, victim.url);
  assert.equal(view.healthy, false);
  assert.equal(view.routable, false);
  assert.deepEqual(view.health, { reason: 'failing-checks', until: null });
  // One line per state change, not one per check.
  const lines = bulb.logs.filter((l) => l['backend'] === `${victim.host}:${victim.port}` && l['reason'] !== undefined && l['healthy'] === false && l.msg.includes('health checks'));
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0]['consecutive'], 2);
  assert.equal(lines[0]['reason'], 'ECONNREFUSED');
});

test('2. a backend that accepts connections but never answers is taken out by HTTP checks; no request waits on it after', async (t) => {
  const procs = await threeBackends(t);
  const hung = procs[2];
  const upstreamTimeoutMs = 3000;
  const bulb = await startBulb(t, [
    ...procs.flatMap((p) => ['--backend', p.url]),
    '--health-path', '/healthz',
    ...FAST_CHECKS,
    '--health-timeout', '300ms',
    '--upstream-timeout', `${upstreamTimeoutMs}ms`,
  ]);
  await waitFor(async () => (await admin.backends(bulb)).every((b) => b.healthy), 10_000, 'all three healthy');

  await hung.setMode({ kind: 'hang' });
  // Requests sent now may land on it before detection: they wait at most the upstream timeout.
  const early = await Promise.all(
    Array.from({ length: 9 }, async () => {
      const started = performance.now();
      const r = await request(`${bulb.url}/`, { timeoutMs: 20_000 });
      return { status: r.status, ms: performance.now() - started };
    }),
  );
  for (const e of early) assert.ok(e.ms < upstreamTimeoutMs + 2000, `an early request took ${Math.round(e.ms)} ms`);

  await waitFor(async () => (await viewOf(bulb, hung.url)).health?.reason === 'failing-checks', 10_000, 'the hung backend out by its checks');
  const line = await bulb.waitForLog((l) => l['backend'] === `${hung.host}:${hung.port}` && l['healthy'] === false && l['reason'] === 'timeout after 300ms');
  assert.equal(line['consecutive'], 2);

  // From here on nothing goes to it: every request is answered by another backend, well before the timeout.
  const after = await Promise.all(
    Array.from({ length: 60 }, async () => {
      const started = performance.now();
      const r = await request(`${bulb.url}/`, { timeoutMs: 20_000 });
      return { status: r.status, body: r.body, ms: performance.now() - started };
    }),
  );
  for (const r of after) {
    assert.equal(r.status, 200);
    assert.notEqual(r.body, hung.name);
    assert.ok(r.ms < upstreamTimeoutMs, `a request after detection took ${Math.round(r.ms)} ms`);
  }
});

test('3. a killed backend restarted on the same address rejoins after rise passing checks (TCP checks)', async (t) => {
  const procs = await threeBackends(t);
  const victim = procs[0];
  const bulb = await startBulb(t, [...procs.flatMap((p) => ['--backend', p.url]), ...FAST_CHECKS]);
  const id = `${victim.host}:${victim.port}`;
  await waitFor(async () => (await admin.backends(bulb)).every((b) => b.healthy), 10_000, 'all three healthy');

  await victim.kill('SIGKILL');
  await waitFor(async () => !(await viewOf(bulb, victim.url)).healthy, 10_000, 'marked down');

  const restarted = await startBackendProcess(t, victim.name, { host: victim.host, port: victim.port });
  assert.equal(restarted.url, victim.url);
  const restartedAt = performance.now();
  await waitFor(async () => (await viewOf(bulb, victim.url)).healthy, 10_000, 'back in rotation', 20);
  const backMs = performance.now() - restartedAt;
  assert.ok(backMs < 3000, `rejoined ${Math.round(backMs)} ms after the restart (rise × interval = 400 ms)`);
  const up = await bulb.waitForLog((l) => l['backend'] === id && l['healthy'] === true);
  assert.equal(up['consecutive'], 2, 'after rise (2) consecutive passing checks');
  assert.deepEqual((await viewOf(bulb, victim.url)).health, null);

  // And it gets traffic again.
  const names = new Set<string>();
  for (let i = 0; i < 30; i++) names.add((await request(`${bulb.url}/`)).body);
  assert.ok(names.has(victim.name), `served by ${[...names].join(', ')}`);
});

test('--health-initial unhealthy: a new backend gets no traffic until rise checks pass', async (t) => {
  const [a] = await Promise.all([startBackendProcess(t, 'a', { host: '127.0.0.2' })]);
  const bulb = await startBulb(t, ['--backend', a.url, ...FAST_CHECKS, '--health-initial', 'unhealthy']);
  // Routable only after two checks, 200 ms apart.
  await waitFor(async () => (await viewOf(bulb, a.url)).healthy, 10_000, 'healthy after rise');
  assert.equal((await request(`${bulb.url}/`)).status, 200);
  const up = await bulb.waitForLog((l) => l['healthy'] === true && l['consecutive'] === 2);
  assert.equal(up['reason'], 'checks passing');
});

test('a backend file health block overrides the flags for its backend', async (t) => {
  const procs = await Promise.all(['a', 'b'].map((n, i) => startBackendProcess(t, n, { host: `127.0.0.${i + 2}` })));
  const [a, b] = procs as [BackendProcess, BackendProcess];
  // /healthz of b answers 503 while traffic is fine: only an HTTP check on /healthz can see it.
  await b.setMode({ kind: 'ok' }, { healthzStatus: 503 });
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  await writeFile(join(dir, 'b.json'), backendFile(b.url, { health: { path: '/healthz', interval: '200ms', fall: 2 } }));
  const bulb = await startBulb(t, ['--watch-dir', dir, '--health-interval', '200ms']);
  await waitFor(async () => (await viewOf(bulb, b.url)).health?.reason === 'failing-checks', 10_000, 'b out by its own HTTP check');
  const line = await bulb.waitForLog((l) => l['backend'] === `${b.host}:${b.port}` && l['healthy'] === false);
  assert.equal(line['reason'], 'status 503');
  assert.equal((await viewOf(bulb, a.url)).healthy, true, 'a is checked by TCP (no path), and passes');
});

test('passive: a backend answering 503 to everything is ejected after N consecutive, shows until, and comes back', async (t) => {
  const procs = await threeBackends(t);
  const bad = procs[1];
  await bad.setMode({ kind: 'status', status: 503 });
  // TCP checks (no path) pass: only outlier detection can see the 503s.
  const bulb = await startBulb(t, [
    ...procs.flatMap((p) => ['--backend', p.url]),
    '--health-interval', '200ms',
    '--outlier-consecutive', '3',
    '--outlier-base-ejection', '1s',
    // The TCP checks keep passing; this test is about the ejection's own clock.
    '--outlier-uneject-on-check', 'off',
  ]);
  const id = `${bad.host}:${bad.port}`;
  await waitFor(async () => (await admin.backends(bulb)).every((b) => b.healthy), 10_000, 'all healthy by their checks');

  let ejectedAt = 0;
  await waitFor(
    async () => {
      await Promise.all(Array.from({ length: 6 }, () => request(`${bulb.url}/`)));
      const v = await viewOf(bulb, bad.url);
      ejectedAt = Date.now();
      return v.health?.reason === 'ejected';
    },
    15_000,
    'the 503 backend ejected',
  );
  const view = await viewOf(bulb, bad.url);
  assert.equal(view.healthy, false);
  assert.equal(view.routable, false);
  assert.equal(view.ejections, 1);
  assert.ok(view.health?.until, 'an ejection says until when');
  const until = Date.parse(view.health.until);
  assert.ok(until > ejectedAt - 1500 && until <= ejectedAt + 1000, `until ${view.health.until} is about 1 s (base × 1) after the ejection`);
  const line = await bulb.waitForLog((l) => l['backend'] === id && l['reason'] === 'ejected');
  assert.equal(line['consecutive'], 3);
  assert.equal(line['healthy'], false);
  const metrics = await admin.metrics(bulb);
  assert.equal(sample(metrics, 'bulb_ejections_total', { backend: id }), 1);
  assert.equal(sample(metrics, 'bulb_backend_healthy', { backend: id }), 0);

  // While ejected, traffic goes elsewhere.
  for (let i = 0; i < 10; i++) {
    const r = await request(`${bulb.url}/`);
    assert.equal(r.status, 200);
    assert.notEqual(r.body, bad.name);
  }

  // No traffic now, so nothing re-ejects it: it comes back when the time is up.
  await waitFor(async () => (await viewOf(bulb, bad.url)).healthy, 10_000, 'back after the ejection time');
  const back = await viewOf(bulb, bad.url);
  assert.equal(back.health, null);
  assert.equal(back.ejections, 1, 'the count of ejections stays');
  assert.ok(Date.now() >= until - 50, 'not before its until');

  // A second offence: ejected for 2 × base.
  await waitFor(
    async () => {
      await Promise.all(Array.from({ length: 6 }, () => request(`${bulb.url}/`)));
      return (await viewOf(bulb, bad.url)).ejections === 2;
    },
    15_000,
    'ejected a second time',
  );
  const second = await bulb.waitForLog((l) => l['backend'] === id && l['reason'] === 'ejected' && l['ejections'] === 2);
  assert.equal(second['durationMs'], 2000);
});

for (const uneject of ['on', 'off'] as const) {
  test(`recovery: with --outlier-uneject-on-check ${uneject}, a recovered backend ${uneject === 'on' ? 'is back as soon as its checks pass' : 'waits out its ejection'}`, async (t) => {
    const procs = await threeBackends(t);
    const bad = procs[1];
    const bulb = await startBulb(t, [
      ...procs.flatMap((p) => ['--backend', p.url]),
      '--health-path', '/healthz',
      '--health-interval', '300ms',
      '--outlier-consecutive', '3',
      // Far longer than the test: only a passing check can end the ejection in time.
      '--outlier-base-ejection', '60s',
      '--outlier-uneject-on-check', uneject,
    ]);
    const id = `${bad.host}:${bad.port}`;
    await waitFor(async () => (await admin.backends(bulb)).every((b) => b.healthy), 10_000, 'all healthy by their checks');
    // It fails real requests and its checks alike: ejected first (3 requests), then failing checks too.
    await bad.setMode({ kind: 'status', status: 503 });
    await waitFor(
      async () => {
        await Promise.all(Array.from({ length: 6 }, () => request(`${bulb.url}/`)));
        return (await viewOf(bulb, bad.url)).ejections === 1;
      },
      15_000,
      'ejected',
    );
    await bulb.waitForLog((l) => l['backend'] === id && l.msg === 'backend failing health checks; out of rotation');
    // It recovers.
    await bad.setMode({ kind: 'ok' });
    const recoveredAt = performance.now();
    await bulb.waitForLog((l) => l['backend'] === id && typeof l.msg === 'string' && l.msg.startsWith('backend passing health checks'));
    if (uneject === 'on') {
      await waitFor(async () => (await viewOf(bulb, bad.url)).routable, 10_000, 'back in rotation', 20);
      const backMs = performance.now() - recoveredAt;
      assert.ok(backMs < 5000, `back ${Math.round(backMs)} ms after recovering, not after the 60 s ejection`);
      const line = await bulb.waitForLog((l) => l['backend'] === id && l['reason'] === 'active health check passed');
      assert.equal(line.msg, 'backend ejection ended; still failing health checks', 'the first passing check ends the ejection; rise passes end the check failure');
      const names = new Set<string>();
      for (let i = 0; i < 30; i++) names.add((await request(`${bulb.url}/`)).body);
      assert.ok(names.has(bad.name), `served by ${[...names].join(', ')}`);
    } else {
      await sleep(2000);
      const view = await viewOf(bulb, bad.url);
      assert.equal(view.routable, false, 'still out: the ejection runs its course');
      assert.equal(view.health?.reason, 'ejected');
      assert.ok(bulb.logs.some((l) => l['backend'] === id && l.msg === 'backend passing health checks; still ejected'));
    }
  });
}
