import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metrics } from './admin/metrics.js';
import { createAdminServer } from './admin/server.js';
import type { Address, Config } from './config/types.js';
import { Controller } from './controller/controller.js';
import { DirectorySource } from './discovery/directory/index.js';
import { dnsSources } from './discovery/dns/source.js';
import type { DiscoverySource } from './discovery/source.js';
import { StaticSource } from './discovery/static.js';
import { ListenError } from './errors.js';
import type { Logger } from './log.js';
import { HealthManager } from './health/index.js';
import { DEFAULT_AGENT_SETTINGS, type Backend } from './pool/backend.js';
import { Pool } from './pool/pool.js';
import { Proxy } from './proxy/proxy.js';
import { createStrategy } from './strategies/index.js';
import { defaultContext, type Strategy } from './strategies/strategy.js';

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

/**
 * The strategy's `loadChanged`, as the pool calls it from inside `Backend.begin()` and its callbacks. A custom
 * module's hook that throws must not break the request it is reporting on, so the error is logged (the first
 * one only: it would repeat three times per request) and the request goes on.
 */
function loadReporter(strategy: Strategy, log: Logger): (backend: Backend) => void {
  let reported = false;
  return (backend) => {
    try {
      strategy.loadChanged!(backend);
    } catch (err) {
      if (reported) return;
      reported = true;
      log.error({ err: err instanceof Error ? err.message : String(err), strategy: strategy.name }, 'strategy loadChanged threw; further errors from it are not logged');
    }
  };
}

/** Wiring only: config → sources → controller → pool ← proxy/admin. */
export async function startBulb(config: Config, log: Logger): Promise<Bulb> {
  const strategy = await createStrategy(config.strategy, defaultContext({ hashKey: config.hashKey }));
  const pool = new Pool({
    drainTimeoutMs: config.drainTimeoutMs,
    panicThresholdPercent: config.panicThresholdPercent,
    slowStartMs: config.slowStartMs,
    // A connection that cannot be established within the upstream timeout is an upstream timeout (504).
    agent: { ...DEFAULT_AGENT_SETTINGS, connectTimeoutMs: config.upstreamTimeoutMs },
    ...(strategy.loadChanged && { loadChanged: loadReporter(strategy, log) }),
  });
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
  const metrics = config.admin ? new Metrics({ pool, controller }) : undefined;
  // Active checks and outlier detection change health through `pool.setHealth` only. Started before the sources,
  // so the first backends are probed as soon as they are added.
  const health = new HealthManager({
    pool,
    health: config.health,
    outlier: config.outlier,
    log: log.child({ component: 'health' }),
    ...(metrics && { onEjected: (b: Backend) => metrics.ejected(b) }),
  });
  health.start();
  const proxy = new Proxy({
    pool,
    strategy,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    retries: config.retries,
    retryBudgetPercent: config.retryBudgetPercent,
    retryBodyLimit: config.retryBodyLimit,
    bodyTimeoutMs: config.bodyTimeoutMs,
    log,
    observer: metrics,
  });
  const traffic = http.createServer(
    {
      keepAliveTimeout: 65_000,
      // Slowloris: headers must arrive within --header-timeout (Node answers 408). Node only checks every
      // connectionsCheckingInterval (30 s by default), so check often enough for the limit to mean something.
      headersTimeout: config.headerTimeoutMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.headerTimeoutMs / 4))),
    },
    (req, res) => {
      // While draining, answer and close, so keep-alive clients reconnect (to another replica) instead of
      // sending more requests down a connection that is about to go.
      if (shuttingDown) req.headers.connection = 'close';
      proxy.handleRequest(req, res);
    },
  );
  // Past the limit Node closes new connections at once: refused fast rather than queued without bound.
  if (config.maxConnections > 0) traffic.maxConnections = config.maxConnections;
  traffic.on('upgrade', proxy.handleUpgrade);
  traffic.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && !socket.destroyed) {
      // Malformed or ambiguous requests (smuggling attempts among them) never reach a backend: Node's parser
      // refuses them before a 'request' event, and the client gets a bare status.
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });

  const admin = config.admin
    ? createAdminServer({ pool, controller, shuttingDown: () => shuttingDown, metrics, token: config.adminToken, log })
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
    address = await listen(traffic, config.listen, 'traffic');
    adminAddress = admin && config.admin ? await listen(admin, config.admin, 'the admin API') : undefined;
  } catch (err) {
    // Stop everything started above (a directory watch, health-check timers, DNS lookups), or their handles
    // would keep the process alive after it has said it cannot start.
    traffic.close();
    health.stop();
    await Promise.all(sources.map((s) => s.stop()));
    pool.close();
    throw err;
  }
  log.info({ listen: address, admin: adminAddress ?? 'off', strategy: strategy.name, sources: sources.map((s) => s.name), backends: pool.routable.length }, 'bulb started');

  let stopping: Promise<boolean> | undefined;
  const shutdown = (reason: string): Promise<boolean> => {
    stopping ??= (async () => {
      // /readyz fails from here on, so whoever routes to this bulb stops; keep serving while that propagates.
      shuttingDown = true;
      if (config.shutdownDelayMs > 0) {
        log.info({ reason, shutdownDelayMs: config.shutdownDelayMs }, 'shutting down: /readyz failing, still serving during the shutdown delay');
        await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
      }
      const closed = new Promise<void>((r) => traffic.close(() => r()));
      traffic.closeIdleConnections();
      const inflight = pool.all().reduce((n, b) => n + b.inflight, 0);
      log.info({ reason, inflight, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down: no new connections, draining in-flight requests');
      const drained = await pool.waitIdle(config.drainTimeoutMs);
      traffic.closeAllConnections();
      await closed;
      controller.stop();
      health.stop();
      await Promise.all(sources.map((s) => s.stop()));
      proxy.close();
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
