import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendSpec } from '../../../src/discovery/source.js';
import type { CheckSettings, HealthDefaults } from '../../../src/health/active.js';
import { HealthManager } from '../../../src/health/index.js';
import { newPool } from '../../helpers/plane.js';
import { waitFor } from '../../helpers/wait-for.js';

const spec = (id: string, extra: Partial<BackendSpec> = {}): BackendSpec =>
  Object.freeze({ id, url: `http://${id}`, weight: 1, source: 'dir:/b', origin: `${id}.json`, ...extra });

const DEFAULTS: HealthDefaults = { mode: 'auto', path: undefined, status: [200, 399], intervalMs: 20, timeoutMs: 1000, rise: 2, fall: 2, initial: 'healthy', grpcService: '' };
const OUTLIER = { consecutive: 5, baseEjectionMs: 30_000, maxEjectionPercent: 50, unejectOnCheck: true };

function setup(t: import('node:test').TestContext, health: Partial<HealthDefaults> = {}) {
  const pool = newPool({ drainTimeoutMs: 50 });
  const up = new Map<string, boolean>();
  const probes: { url: string; settings: CheckSettings }[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = { info: (o: object) => logs.push({ level: 'info', ...o }), warn: (o: object) => logs.push({ level: 'warn', ...o }) };
  const manager = new HealthManager({
    pool,
    health: { ...DEFAULTS, ...health },
    outlier: OUTLIER,
    log,
    rand: () => 0.5,
    probe: (url, settings) => {
      probes.push({ url, settings });
      return Promise.resolve(up.get(url) ?? true ? { ok: true } : { ok: false, reason: 'ECONNREFUSED' });
    },
  });
  manager.start();
  t.after(() => {
    manager.stop();
    pool.close();
  });
  return { pool, up, probes, logs, manager };
}

test('a new backend is routable at once and fall failures take it out; one log line per change', async (t) => {
  const { pool, up, logs } = setup(t);
  up.set('http://a:1', false);
  pool.add(spec('a:1'));
  assert.equal(pool.get('a:1')!.healthy, true, 'optimistic start');
  await waitFor(() => !pool.get('a:1')!.healthy, 2000);
  assert.equal(pool.get('a:1')!.unhealthyReason, 'failing-checks');
  up.set('http://a:1', true);
  await waitFor(() => pool.get('a:1')!.healthy, 2000);
  await new Promise((r) => setTimeout(r, 100)); // more passing checks: no more lines
  assert.deepEqual(
    logs.map((l) => [l['level'], l['backend'], l['healthy'], l['reason'], l['consecutive']]),
    [
      ['warn', 'a:1', false, 'ECONNREFUSED', 2],
      ['info', 'a:1', true, 'checks passing', 2],
    ],
  );
});

test('--health-initial unhealthy: out of rotation until rise checks pass', async (t) => {
  const { pool } = setup(t, { initial: 'unhealthy' });
  pool.add(spec('a:1'));
  assert.equal(pool.get('a:1')!.healthy, false);
  assert.deepEqual(pool.routable, []);
  await waitFor(() => pool.get('a:1')!.healthy, 2000);
});

test('mode off runs no checks and never holds a backend out, even with initial unhealthy', async (t) => {
  const { pool, probes } = setup(t, { mode: 'off', initial: 'unhealthy' });
  pool.add(spec('a:1'));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(probes.length, 0);
  assert.equal(pool.get('a:1')!.healthy, true);
});

test('a backend file health block is used, and an update re-reads it', async (t) => {
  const { pool, probes } = setup(t);
  pool.add(spec('a:1', { health: Object.freeze({ path: '/ready' }) }));
  await waitFor(() => probes.length > 0);
  assert.equal(probes[0].settings.mode, 'http');
  assert.equal(probes[0].settings.path, '/ready');
  pool.update(spec('a:1', { health: Object.freeze({ mode: 'tcp' as const }) }));
  await waitFor(() => probes.at(-1)!.settings.mode === 'tcp', 2000);
});

test('a removed backend is no longer probed', async (t) => {
  const { pool, probes } = setup(t);
  pool.add(spec('a:1'));
  await waitFor(() => probes.length > 0);
  pool.drain('a:1'); // idle: removed at once
  assert.equal(pool.get('a:1'), undefined);
  await new Promise((r) => setTimeout(r, 50));
  const n = probes.length;
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(probes.length, n);
});
