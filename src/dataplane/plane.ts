import type http from 'node:http';
import type https from 'node:https';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Reporter } from '../pool/snapshot.js';
import { Proxy } from '../proxy/proxy.js';
import { attachHttp2, createTrafficServer, type Http2Side } from '../proxy/server.js';
import type { Strategy } from '../strategies/strategy.js';
import { DataPool } from './data-pool.js';
import { DEFAULT_AGENT_SETTINGS, type Target } from './target.js';

/** One data plane: the pool view, the proxy and the traffic listener, in whichever thread runs it. */
export interface DataPlane {
  readonly pool: DataPool;
  readonly proxy: Proxy;
  readonly traffic: http.Server | https.Server;
  /** HTTP/2 client connections on the same listener. */
  readonly h2: Http2Side;
  /** True once shutdown began: responses carry `Connection: close`. */
  draining: boolean;
}

/**
 * The strategy's `loadChanged`, as the data plane calls it from `Target.tryStart/responded/finish`. A custom
 * module's hook that throws must not break the request it is reporting on, so the error is logged (the first
 * one only: it would repeat three times per request) and the request goes on.
 */
function loadReporter(strategy: Strategy, log: Logger): (target: Target) => void {
  let reported = false;
  return (target) => {
    try {
      strategy.loadChanged?.(target);
    } catch (err) {
      if (reported) return;
      reported = true;
      log.error({ err: err instanceof Error ? err.message : String(err), strategy: strategy.name }, 'strategy loadChanged threw; further errors from it are not logged');
    }
  };
}

export function buildDataPlane(opts: {
  readonly config: Config;
  readonly strategy: Strategy;
  readonly log: Logger;
  readonly reporter: Reporter;
  readonly counters: Int32Array;
  readonly stride: number;
  readonly worker: number;
}): DataPlane {
  const { config, strategy, log, reporter } = opts;
  const pool = new DataPool({
    counters: opts.counters,
    stride: opts.stride,
    worker: opts.worker,
    reporter,
    // A connection that cannot be established within the upstream timeout is an upstream timeout (504).
    agent: { ...DEFAULT_AGENT_SETTINGS, connectTimeoutMs: config.upstreamTimeoutMs, http2: config.backendHttp2 },
    drainTimeoutMs: config.drainTimeoutMs,
    ...(strategy.loadChanged && { loadChanged: loadReporter(strategy, log) }),
  });
  const proxy = new Proxy({
    pool,
    strategy,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    retries: config.retries,
    retryBudgetPercent: config.retryBudgetPercent,
    retryBodyLimit: config.retryBodyLimit,
    bodyTimeoutMs: config.bodyTimeoutMs,
    sendTimeoutMs: config.sendTimeoutMs,
    log,
    reporter,
  });
  const traffic = createTrafficServer({
    proxy,
    headerTimeoutMs: config.headerTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxConnections: config.maxConnections,
    draining: () => plane.draining,
    ...(config.tlsCert !== undefined && config.tlsKey !== undefined && { tls: { certFile: config.tlsCert, keyFile: config.tlsKey, log } }),
  });
  const plane: DataPlane = {
    pool,
    proxy,
    traffic,
    h2: attachHttp2(traffic, { proxy, idleTimeoutMs: config.idleTimeoutMs, headerTimeoutMs: config.headerTimeoutMs, draining: () => plane.draining }),
    draining: false,
  };
  return plane;
}

const listenerClosed = new WeakMap<DataPlane, Promise<void>>();

/**
 * Stops accepting connections (the first step of a stop; idempotent). Resolves once every connection has ended.
 * With `--workers`, every worker does this before any starts answering `Connection: close`: with SO_REUSEPORT, a
 * client that reconnects after one worker's `Connection: close` would otherwise be queued on another worker's
 * socket just before that one closed too, and the kernel resets the connections a closing socket has queued.
 */
export function stopListening(plane: DataPlane): Promise<void> {
  let closed = listenerClosed.get(plane);
  if (closed === undefined) {
    closed = new Promise<void>((r) => plane.traffic.close(() => r()));
    listenerClosed.set(plane, closed);
  }
  return closed;
}

/**
 * Stops one data plane: no new connections, idle ones closed, in-flight requests (and tunnels) given until
 * `deadline` (epoch ms), then everything cut. Resolves true when all finished in time.
 */
export async function stopDataPlane(plane: DataPlane, deadline: number): Promise<boolean> {
  const { traffic, pool } = plane;
  const closed = stopListening(plane);
  // Only now, with the listener closed: a client told to close that reconnects is refused, never queued on a
  // listening socket that is about to close (whose queued connections the kernel resets).
  plane.draining = true;
  traffic.closeIdleConnections();
  plane.h2.goAway();
  let drained = true;
  while (pool.inflightHere() > 0) {
    if (Date.now() >= deadline) {
      drained = false;
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  traffic.closeAllConnections();
  plane.h2.destroyAll();
  await closed;
  plane.proxy.close();
  pool.close();
  return drained;
}
