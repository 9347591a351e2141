import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metrics } from './admin/metrics.js';
import { createAdminServer } from './admin/server.js';
import { packageVersion } from './cli/args.js';
import type { Address, Config } from './config/types.js';
import { Controller } from './controller/controller.js';
import { DirectorySource } from './discovery/directory/index.js';
import { dnsSources } from './discovery/dns/source.js';
import type { DiscoverySource } from './discovery/source.js';
import { StaticSource } from './discovery/static.js';
import { InvalidArgumentError, ListenError } from './errors.js';
import type { BackendSpec } from './discovery/source.js';
import { GLOBAL_TLS_ORIGIN, globalTlsProblems, globalTlsSpec } from './tls/global.js';
import { TlsStore } from './tls/store.js';
import type { Logger } from './log.js';
import { HealthManager } from './health/index.js';
import { buildDataPlane, stopDataPlane, type DataPlane } from './dataplane/plane.js';
import { WorkerGroup } from './dataplane/workers.js';
import { readTlsFiles } from './proxy/tls.js';
import type { WorkerStatus } from './admin/status-page/workers.js';
import { availableCpus } from './dataplane/cpus.js';
import type { Backend } from './pool/backend.js';
import { LoadSlots } from './pool/load-slots.js';
import { Pool } from './pool/pool.js';
import type { Reporter } from './pool/snapshot.js';
import { createStrategy } from './strategies/index.js';
import { defaultContext } from './strategies/strategy.js';

/** A running bulb. */
export interface Bulb {
  readonly pool: Pool;
  readonly controller: Controller;
  /** Where traffic is served (the real port when the config asked for port 0). */
  readonly address: Address;
  readonly adminAddress: Address | undefined;
  /**
   * Graceful stop: /readyz fails, no new connections are accepted, in-flight requests get `drainTimeoutMs`,
   * then everything is closed. Idempotent. Resolves true when every request finished in time.
   */
  shutdown(reason: string): Promise<boolean>;
}

function listen(server: http.Server, addr: Address, what: string): Promise<Address> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
      reject(new ListenError(`cannot listen for ${what} on ${addr.host}:${addr.port}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      const info = server.address() as AddressInfo;
      resolve({ host: info.address, port: info.port });
    });
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Builds the sources in precedence order: static flags first, then watch dirs, then DNS names, as given (see `desiredState`). */
function buildSources(config: Config, log: Logger): DiscoverySource[] {
  const sources: DiscoverySource[] = [];
  if (config.backends.length > 0) sources.push(new StaticSource(config.backends));
  for (const dir of config.watchDirs) sources.push(new DirectorySource({ dir, log: log.child({ source: `dir:${dir}` }) }));
  // DNS last: when a DNS name and a flag or file name the same backend, the flag's or file's weight wins.
  sources.push(...dnsSources(config, (source) => log.child({ source })));
  return sources;
}

/** The status page's worker rows, from the figures the workers sent with their last sync. */
function workerRows(workers: WorkerGroup): WorkerStatus[] {
  return workers.stats().map((w) => ({
    id: `worker-${w.index}`,
    pid: process.pid,
    threadId: w.threadId,
    requests: w.requests,
    connections: w.connections,
    eventLoopLagMs: { mean: w.eventLoopLagSeconds * 1000, p99: w.eventLoopLagP99Seconds * 1000, max: w.eventLoopLagMaxSeconds * 1000 },
  }));
}

/** Wiring only: config → sources → controller → pool ← proxy/admin. */
export async function startBulb(config: Config, log: Logger): Promise<Bulb> {
  // Unreadable or mismatched TLS files stop bulb here, with the file named, before anything has started.
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) readTlsFiles(config.tlsCert, config.tlsKey);
  const strategy = await createStrategy(config.strategy, defaultContext({ hashKey: config.hashKey }));
  const workerCount = config.workers === 'auto' ? availableCpus() : config.workers;
  // Each backend's in-flight counter has a share per data plane (see load-slots.ts).
  const load = new LoadSlots(workerCount);
  // TLS to https backends: the global settings (for --backend, DNS and backend files without a tls block) are
  // checked now, so a bad path stops start-up; a backend file's own block is checked when the file is read.
  const globalTls = globalTlsSpec(config);
  const tlsProblems = globalTlsProblems(globalTls);
  if (tlsProblems.length > 0) throw new InvalidArgumentError(tlsProblems.join('\n'));
  let poolRef: Pool | undefined;
  const tlsStore = new TlsStore({
    log: log.child({ component: 'tls' }),
    onChange: () => poolRef?.refresh(),
    inUse: function* () {
      yield globalTls;
      for (const b of poolRef?.all() ?? []) if (b.spec.tls !== undefined) yield b.spec.tls;
    },
  });
  const tlsOf = (spec: BackendSpec) => (spec.tls !== undefined ? tlsStore.material(spec.tls, spec.origin) : tlsStore.material(globalTls, GLOBAL_TLS_ORIGIN));
  // Loaded now: the insecure warning belongs at start, and the first snapshot then carries the material.
  tlsStore.material(globalTls, GLOBAL_TLS_ORIGIN);
  const pool = new Pool({
    drainTimeoutMs: config.drainTimeoutMs,
    panicThresholdPercent: config.panicThresholdPercent,
    slowStartMs: config.slowStartMs,
    load,
    tls: tlsOf,
  });
  poolRef = pool;
  pool.onPanic((panic, healthy, total) => {
    const at = { healthy, total, panicThresholdPercent: config.panicThresholdPercent };
    if (panic) log.error(at, 'PANIC MODE: too few healthy backends; routing to all backends, healthy or not');
    else log.warn(at, 'panic mode over: routing to healthy backends only');
  });
  const sources = buildSources(config, log);
  const controller = new Controller(pool, sources.map((s) => s.name), log);
  pool.onEvent((e) => {
    if (e.kind === 'removed') log.info({ backend: e.backend.id, forced: e.forced }, e.forced ? 'backend removed at drain timeout' : 'backend drained and removed');
  });

  let shuttingDown = false;
  // Metrics are served by the admin API, so with `--admin off` nothing is counted at all.
  let workers: WorkerGroup | undefined;
  const metrics = config.admin
    ? new Metrics({ pool, controller, ...(workerCount > 1 && { workers: () => ({ stats: workers?.stats() ?? [], restarts: workers?.restarts ?? 0 }) }) })
    : undefined;
  // Active checks and outlier detection change health through `pool.setHealth` only. Started before the sources,
  // so the first backends are probed as soon as they are added.
  const health = new HealthManager({
    pool,
    health: config.health,
    outlier: config.outlier,
    log: log.child({ component: 'health' }),
    tls: (b: Backend) => tlsOf(b.spec),
    ...(metrics && { onEjected: (b: Backend) => metrics.ejected(b) }),
  });
  health.start();
  const reporter: Reporter = {
    attemptDone: pool.attemptDone,
    exchangeDone: metrics ? metrics.exchangeDone : () => {},
    retried: metrics ? metrics.retried : () => {},
    retryRefused: metrics ? metrics.retryRefused : () => {},
  };
  // One worker: the data plane runs in this thread, linked to the pool directly (no thread, no messages: what a
  // single-process bulb always was). More: each runs in a thread of its own and this thread is the controller.
  let plane: DataPlane | undefined;
  if (workerCount > 1) workers = new WorkerGroup({ count: workerCount, config, pool, load, reporter, log });
  else {
    plane = buildDataPlane({ config, strategy, log, reporter, counters: load.counters, stride: load.stride, worker: 0 });
    const inProcess = plane;
    // One burst of pool changes, one snapshot; applied after the change's call stack unwinds, never inside it.
    let applying = false;
    pool.onChange(() => {
      if (applying) return;
      applying = true;
      queueMicrotask(() => {
        applying = false;
        inProcess.pool.apply(pool.snapshot());
      });
    });
  }

  const admin = config.admin
    ? createAdminServer({
        pool,
        controller,
        shuttingDown: () => shuttingDown,
        metrics,
        token: config.adminToken,
        log,
        ...(workers && { sync: () => workers.sync(), serving: () => workers.serving > 0 }),
        strategy: strategy.name,
        version: packageVersion,
        ...(plane
          ? { connections: () => new Promise<number>((resolve, reject) => plane.traffic.getConnections((err, n) => (err ? reject(err) : resolve(n)))) }
          : workers && { workers: () => Promise.resolve(workerRows(workers)) }),
      })
    : undefined;
  if (admin && config.adminToken === undefined && config.admin && !isLoopback(config.admin.host)) {
    log.warn({ admin: config.admin }, 'the admin API listens beyond loopback without --admin-token: anyone who reaches it can drain backends');
  }

  // Discovery first, so the first request already sees the backends that existed at start.
  await Promise.all(sources.map((s) => s.start(controller.report)));
  controller.reconcile();

  let address: Address;
  let adminAddress: Address | undefined;
  try {
    if (plane) {
      plane.pool.apply(pool.snapshot());
      address = await listen(plane.traffic, config.listen, 'traffic');
    } else {
      // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- no in-process plane means workerCount > 1, so the group exists
      address = await workers!.start();
    }
    adminAddress = admin && config.admin ? await listen(admin, config.admin, 'the admin API') : undefined;
  } catch (err) {
    // Stop everything started above (a directory watch, health-check timers, DNS lookups), or their handles
    // would keep the process alive after it has said it cannot start.
    plane?.traffic.close();
    await workers?.stop(Date.now());
    health.stop();
    tlsStore.stop();
    await Promise.all(sources.map((s) => s.stop()));
    pool.close();
    throw err;
  }
  log.info({ listen: address, admin: adminAddress ?? 'off', strategy: strategy.name, workers: workerCount, sources: sources.map((s) => s.name), backends: pool.routable.length }, 'bulb started');

  let stopping: Promise<boolean> | undefined;
  const shutdown = (reason: string): Promise<boolean> => {
    stopping ??= (async () => {
      // /readyz fails from here on, so whoever routes to this bulb stops; keep serving while that propagates.
      shuttingDown = true;
      if (config.shutdownDelayMs > 0) {
        // Keep serving, but tell keep-alive clients to reconnect (they reach another replica once the endpoint is
        // gone). Without a delay, `Connection: close` starts only after the listeners have closed (stopDataPlane).
        if (plane) plane.draining = true;
        workers?.draining();
        log.info({ reason, shutdownDelayMs: config.shutdownDelayMs }, 'shutting down: /readyz failing, still serving during the shutdown delay');
        await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
      }
      const inflight = pool.all().reduce((n, b) => n + b.inflight, 0);
      log.info({ reason, inflight, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down: no new connections, draining in-flight requests');
      const deadline = Date.now() + config.drainTimeoutMs;
      // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- no in-process plane means workerCount > 1, so the group exists
      const drained = plane ? await stopDataPlane(plane, deadline) : await workers!.stop(deadline);
      controller.stop();
      health.stop();
      tlsStore.stop();
      await Promise.all(sources.map((s) => s.stop()));
      pool.close();
      if (admin) {
        admin.closeAllConnections();
        await new Promise<void>((r) => admin.close(() => r()));
      }
      log.info({ drained }, drained ? 'stopped: every request finished' : 'stopped: drain timeout passed with requests in flight');
      return drained;
    })();
    return stopping;
  };

  return { pool, controller, address, adminAddress, shutdown };
}
