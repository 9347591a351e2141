import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  ActiveChecker,
  jittered,
  nextHealth,
  probe,
  resolveSettings,
  type CheckResult,
  type CheckSettings,
  type HealthDefaults,
  type HealthState,
} from '../../../src/health/active.js';
import { waitFor } from '../../helpers/wait-for.js';

const T = { rise: 2, fall: 3 };

/** Feeds results through the state machine, returning the `healthy` after each. */
function run(start: HealthState, results: boolean[], thresholds = T): boolean[] {
  let s = start;
  return results.map((ok) => {
    s = nextHealth(s, ok, thresholds);
    return s.healthy;
  });
}

test('a healthy backend goes down on its fall-th consecutive failure, not before', () => {
  assert.deepEqual(run({ healthy: true, consecutive: 0 }, [false, false, false]), [true, true, false]);
});

test('a pass between failures resets the streak (consecutive, as HAProxy documents fall)', () => {
  assert.deepEqual(run({ healthy: true, consecutive: 0 }, [false, false, true, false, false, false]), [true, true, true, true, true, false]);
});

test('an unhealthy backend comes back on its rise-th consecutive pass; a failure resets the streak', () => {
  assert.deepEqual(run({ healthy: false, consecutive: 0 }, [true, false, true, true]), [false, false, false, true]);
});

test('a change reports the streak that caused it, and the new state counts from zero', () => {
  let s = nextHealth({ healthy: true, consecutive: 0 }, false, T);
  assert.deepEqual(s, { healthy: true, consecutive: 1, changed: false, streak: 1 });
  s = nextHealth(s, false, T);
  s = nextHealth(s, false, T);
  assert.deepEqual(s, { healthy: false, consecutive: 0, changed: true, streak: 3 });
  assert.deepEqual(nextHealth(s, false, T), { healthy: false, consecutive: 0, changed: false, streak: 0 });
  // Down after 3 failures, then rise 2 passes are still needed: the failure streak does not count towards rise.
  s = nextHealth(s, true, T);
  assert.deepEqual(s, { healthy: false, consecutive: 1, changed: false, streak: 1 });
  assert.deepEqual(nextHealth(s, true, T), { healthy: true, consecutive: 0, changed: true, streak: 2 });
});

test('rise 1 / fall 1 flip on every disagreeing result', () => {
  assert.deepEqual(run({ healthy: true, consecutive: 0 }, [false, true, false, false, true], { rise: 1, fall: 1 }), [false, true, false, false, true]);
});

test('jitter stays within ±10% of the interval and covers both ends', () => {
  assert.equal(jittered(1000, () => 0), 900);
  assert.equal(jittered(1000, () => 0.5), 1000);
  assert.equal(jittered(1000, () => 0.999999), 1100);
  for (let i = 0; i < 1000; i++) {
    const ms = jittered(2000, Math.random);
    assert.ok(ms >= 1800 && ms <= 2200, String(ms));
  }
});

const DEFAULTS: HealthDefaults = {
  mode: 'auto',
  path: undefined,
  status: [200, 399],
  intervalMs: 2000,
  timeoutMs: 1000,
  rise: 2,
  fall: 3,
  initial: 'healthy',
  grpcService: '',
};

test('settings: with nothing set bulb checks TCP; a path (flag or backend file) turns on HTTP', () => {
  assert.equal(resolveSettings(DEFAULTS, undefined).mode, 'tcp');
  assert.deepEqual(resolveSettings({ ...DEFAULTS, path: '/healthz' }, undefined), {
    mode: 'http',
    path: '/healthz',
    service: '',
    status: [200, 399],
    intervalMs: 2000,
    timeoutMs: 1000,
    rise: 2,
    fall: 3,
  });
  assert.equal(resolveSettings(DEFAULTS, { path: '/ready' }).mode, 'http');
  assert.equal(resolveSettings({ ...DEFAULTS, mode: 'off' }, { path: '/ready' }).mode, 'http', 'a backend that declares a path wants it checked');
  assert.equal(resolveSettings({ ...DEFAULTS, mode: 'off' }, undefined).mode, 'off');
  assert.equal(resolveSettings({ ...DEFAULTS, mode: 'http' }, undefined).path, '/', 'http without a path GETs /');
  assert.equal(resolveSettings({ ...DEFAULTS, path: '/healthz' }, { mode: 'tcp' }).mode, 'tcp');
  assert.deepEqual([resolveSettings(DEFAULTS, { service: 'api.v1.Api' }).mode, resolveSettings(DEFAULTS, { service: 'api.v1.Api' }).service], ['grpc', 'api.v1.Api'], 'a backend that names a gRPC service wants it checked');
  assert.deepEqual([resolveSettings({ ...DEFAULTS, mode: 'grpc', grpcService: 'x' }, undefined).mode, resolveSettings({ ...DEFAULTS, mode: 'grpc', grpcService: 'x' }, undefined).service], ['grpc', 'x']);
});

test('settings: a backend file block overrides field by field', () => {
  const s = resolveSettings({ ...DEFAULTS, path: '/healthz' }, { intervalMs: 500, fall: 1, status: [200, 200] });
  assert.deepEqual(s, { mode: 'http', path: '/healthz', service: '', status: [200, 200], intervalMs: 500, timeoutMs: 1000, rise: 2, fall: 1 });
});

// ---------------------------------------------------------------------------------------------------------
// The probe, on real sockets

const HTTP: CheckSettings = { mode: 'http', path: '/healthz', service: '', status: [200, 399], intervalMs: 1000, timeoutMs: 300, rise: 2, fall: 3 };

async function server(t: import('node:test').TestContext, handler: http.RequestListener): Promise<{ url: string; seen: { url: string; headers: http.IncomingHttpHeaders }[] }> {
  const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  const srv = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    srv.closeAllConnections();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

const signal = () => new AbortController().signal;

test('HTTP probe: GETs the path on its own connection and accepts the status range', async (t) => {
  let status = 204;
  const s = await server(t, (_req, res) => {
    res.writeHead(status);
    res.end('x');
  });
  assert.deepEqual(await probe(s.url, HTTP, signal()), { ok: true });
  assert.equal(s.seen[0].url, '/healthz');
  assert.equal(s.seen[0].headers.connection, 'close', 'no keep-alive: never shares or holds sockets');
  status = 302;
  assert.deepEqual(await probe(s.url, HTTP, signal()), { ok: true });
  status = 503;
  assert.deepEqual(await probe(s.url, HTTP, signal()), { ok: false, reason: 'status 503' });
  assert.deepEqual(await probe(s.url, { ...HTTP, status: [200, 200] }, signal()), { ok: false, reason: 'status 503' });
});

test('HTTP probe: a backend that accepts but never answers fails at the timeout', async (t) => {
  const s = await server(t, () => {});
  const started = Date.now();
  const r = await probe(s.url, HTTP, signal());
  assert.deepEqual(r, { ok: false, reason: 'timeout after 300ms' });
  assert.ok(Date.now() - started < 2000);
});

test('TCP probe: connect is enough; a refused port fails with its code', async () => {
  const srv = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const tcp: CheckSettings = { ...HTTP, mode: 'tcp' };
  assert.deepEqual(await probe(`http://127.0.0.1:${port}`, tcp, signal()), { ok: true });
  await new Promise<void>((r) => srv.close(() => r()));
  const refused: CheckResult = await probe(`http://127.0.0.1:${port}`, tcp, signal());
  assert.deepEqual(refused, { ok: false, reason: 'ECONNREFUSED' });
  assert.deepEqual(await probe(`http://127.0.0.1:${port}`, HTTP, signal()), { ok: false, reason: 'ECONNREFUSED' });
});

test('an aborted probe settles at once', async (t) => {
  const s = await server(t, () => {});
  const ac = new AbortController();
  const p = probe(s.url, { ...HTTP, timeoutMs: 60_000 }, ac.signal);
  ac.abort();
  assert.deepEqual(await p, { ok: false, reason: 'aborted' });
});

// ---------------------------------------------------------------------------------------------------------
// The checker loop, with a scripted probe

test('checker: first probe at once, then on the interval; reports every result and each change once', async (t) => {
  const script = [false, false, false, true, true];
  const times: number[] = [];
  const reports: { ok: boolean; healthy: boolean; changed: boolean }[] = [];
  const started = Date.now();
  const checker = new ActiveChecker('http://127.0.0.1:1', { ...HTTP, intervalMs: 50 }, true, {
    rand: () => 0.5,
    probe: () => {
      times.push(Date.now() - started);
      return Promise.resolve(script.shift() ?? true ? { ok: true } : { ok: false, reason: 'scripted' });
    },
    onResult: (r) => reports.push({ ok: r.result.ok, healthy: r.state.healthy, changed: r.changed }),
  });
  t.after(() => checker.stop());
  checker.start();
  await waitFor(() => reports.length >= 5, 5000);
  checker.stop();
  assert.ok(times[0] < 40, `first probe at once (${times[0]}ms)`);
  assert.deepEqual(reports.slice(0, 5), [
    { ok: false, healthy: true, changed: false },
    { ok: false, healthy: true, changed: false },
    { ok: false, healthy: false, changed: true },
    { ok: true, healthy: false, changed: false },
    { ok: true, healthy: true, changed: true },
  ]);
  for (let i = 1; i < 5; i++) assert.ok(times[i] - times[i - 1] >= 40, `probes ${i - 1}→${i} spaced by the interval: ${times.join(',')}`);
  const n = reports.length;
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(reports.length, n, 'nothing runs after stop');
});

test('checker: update keeps the health state and re-probes at once when the target changes', async (t) => {
  const urls: string[] = [];
  const checker = new ActiveChecker('http://127.0.0.1:1', { ...HTTP, intervalMs: 60_000 }, false, {
    probe: (url) => {
      urls.push(url);
      return Promise.resolve({ ok: true });
    },
    onResult: () => {},
  });
  t.after(() => checker.stop());
  checker.start();
  await waitFor(() => urls.length === 1);
  assert.equal(checker.healthy, false, 'one pass of rise 2');
  checker.update('http://127.0.0.1:2', { ...HTTP, intervalMs: 60_000 });
  await waitFor(() => urls.length === 2);
  assert.equal(urls[1], 'http://127.0.0.1:2');
  assert.equal(checker.healthy, true, 'the streak survived the update');
});
