import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Pool as UndiciPoolType } from 'undici';
import { DEFAULT_DECAY_MS, DEFAULT_RTT_MS, peakEwma } from '../pool/load.js';
import { H2Upstream, type H2Handler } from './h2-upstream.js';
import type { Outcome, TargetSnapshot } from '../pool/snapshot.js';
import type { Agent } from 'node:http';
import type { TlsMaterial } from '../tls/material.js';

/** Connection settings shared by every backend's connection pool. */
export interface AgentSettings {
  /**
   * Idle keep-alive sockets are closed after this long. It must stay below the backends' own idle timeout
   * (Node's default is 5 s) so bulb, not the backend, closes idle sockets; otherwise a request can be written
   * onto a socket the backend is closing at that moment. A backend announcing a shorter `Keep-Alive: timeout=`
   * gets that, less a second.
   */
  readonly idleTimeoutMs: number;
  /** Giving up on establishing a connection (the request then fails as a timeout: 504). */
  readonly connectTimeoutMs: number;
  /** https backends may negotiate HTTP/2 by ALPN (`--backend-http2`). */
  readonly http2?: boolean;
}

export const DEFAULT_AGENT_SETTINGS: AgentSettings = { idleTimeoutMs: 4_000, connectTimeoutMs: 10_000 };

/**
 * undici's Pool class alone. `import { Pool } from 'undici'` loads all of undici (fetch, WebSocket, caches,
 * mocks: 50 ms and ~6 MB at start-up) for the one class bulb uses, through `dispatch` only. undici has no
 * `exports` map, so its file is reachable; a major upgrade that moves it fails at start, loudly.
 */
const UndiciPool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof UndiciPoolType;
type UndiciPool = UndiciPoolType;

/**
 * What carries a target's requests: undici's Pool (HTTP/1.1 to `http://` and `https://`) or an `H2Upstream`
 * (`h2c://`). The proxy uses `dispatch` only.
 */
export interface Upstream {
  dispatch(opts: Parameters<UndiciPool['dispatch']>[0], handler: H2Handler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** What a target tells its data-plane pool (which tells the strategy and the controller). */
export interface TargetHost {
  /** Right after `inflight` or `ewmaMs` changed (the strategy's `loadChanged`). */
  loadChanged(target: Target): void;
  /** Once per finished attempt, after the counters changed. */
  finished(target: Target, outcome: Outcome): void;
}

/**
 * A backend as one data-plane thread sees it: what strategies read (`Candidate`), its keep-alive connections,
 * and the pick-then-report-back calls the proxy makes. Its in-flight count is the shared one (load-slots.ts),
 * so every worker's strategy sees every worker's requests; its latency estimate is this worker's own.
 */
export class Target {
  readonly id: string;
  url: string;
  weight: number;
  maxConnections: number | undefined;
  slot: number;
  /** While draining: when what is still in flight here is cut (see `TargetSnapshot.cutAt`). */
  cutAt: number | undefined;
  /** Peak-EWMA of time to response headers, in ms, as this worker measured it. */
  ewmaMs = DEFAULT_RTT_MS;
  /** Made on first use: most backends never carry a WebSocket, and an empty Set is ~180 bytes. */
  private tunnelSet: Set<Duplex> | undefined;
  private lastSampleAt = 0;
  private pool: Upstream | undefined;
  /** The origin `pool` was made for: an update that changes the URL's origin gets a new pool. */
  private poolOrigin = '';
  /** TLS material for an https backend; a new version gets a new pool (new connections), like a new origin. */
  tls: TlsMaterial | undefined;
  private poolTls = '';
  /** The agent WebSocket upgrades to this https backend go through, and the material version it carries. */
  private upgradeAgentOf: { readonly version: string; readonly agent: Agent } | undefined;
  /** Index of the shared total and of this worker's share (see load-slots.ts). */
  private total: number;
  private mine: number;

  constructor(
    s: TargetSnapshot,
    private readonly counters: Int32Array,
    private readonly stride: number,
    private readonly worker: number,
    private readonly host: TargetHost,
    private readonly agentSettings: AgentSettings,
  ) {
    this.id = s.id;
    this.url = s.url;
    this.weight = s.weight;
    this.maxConnections = s.maxConnections;
    this.slot = s.slot;
    this.cutAt = s.cutAt;
    this.tls = s.tls;
    this.total = s.slot * stride;
    this.mine = this.total + 1 + worker;
  }

  /** Takes a newer snapshot's values; the connections, latency estimate and tunnels stay. */
  update(s: TargetSnapshot): void {
    this.url = s.url;
    this.weight = s.weight;
    this.maxConnections = s.maxConnections;
    this.cutAt = s.cutAt;
    this.tls = s.tls;
    if (s.slot !== this.slot) {
      this.slot = s.slot;
      this.total = s.slot * this.stride;
      this.mine = this.total + 1 + this.worker;
    }
  }

  /** Requests in flight to this backend from every worker. */
  get inflight(): number {
    return Atomics.load(this.counters, this.total);
  }

  /** Requests (and tunnels) this worker alone has in flight to this backend. */
  get inflightHere(): number {
    return Atomics.load(this.counters, this.mine);
  }

  /** Open WebSocket tunnels through this backend (from this worker); closed when the backend is removed. */
  get tunnels(): Set<Duplex> {
    this.tunnelSet ??= new Set();
    return this.tunnelSet;
  }

  /**
   * This backend's keep-alive connection pool (undici), made on first use so that a pool of thousands of
   * backends that never get traffic costs nothing. Connections are not capped here (`maxConnections` caps
   * requests in flight); the pool hands a request to the first idle connection, so surplus connections sit idle
   * and expire instead of all being kept warm just enough to race the backend's idle timeout.
   */
  get dispatcher(): Pick<Upstream, 'dispatch'> {
    const origin = this.url;
    const tls = this.tls;
    if (tls?.error !== undefined) return new FailingDispatcher(tls.error);
    const tlsVersion = tls?.version ?? '';
    if (this.pool !== undefined && this.poolOrigin === origin && this.poolTls === tlsVersion) return this.pool;
    // The URL or the TLS material changed in place (same id): let the old pool finish what it has, then close.
    // Nothing waits for an old pool, and an error while closing it has nobody to tell: hence catch and void.
    if (this.pool !== undefined) void this.pool.close().catch(() => {});
    const settings = this.agentSettings;
    this.poolOrigin = origin;
    this.poolTls = tlsVersion;
    if (origin.startsWith('h2c:')) {
      this.pool = new H2Upstream(origin, settings);
      return this.pool;
    }
    this.pool = new UndiciPool(new URL(origin).origin, {
      connections: null,
      pipelining: 1,
      keepAliveTimeout: settings.idleTimeoutMs,
      keepAliveMaxTimeout: settings.idleTimeoutMs,
      keepAliveTimeoutThreshold: 1_000,
      connectTimeout: settings.connectTimeoutMs,
      // bulb's own timeouts apply per request (headers) and on the client side (body); a long download is fine.
      bodyTimeout: 0,
      // Spread into a fresh object: undici keeps (and may extend) what it is given, and the material is frozen.
      ...(tls?.options !== undefined && { connect: { ...tls.options } }),
      // ALPN offers h2 then http/1.1; undici falls back to HTTP/1.1 when the backend does not pick h2.
      ...(settings.http2 === true && origin.startsWith('https:') && { allowH2: true }),
    });
    return this.pool;
  }

  /**
   * For a WebSocket upgrade to an https backend: an agent carrying its TLS material (CA, SNI, client certificate,
   * verification), which http-proxy hands to `tls.connect` (an agent's options take precedence over the request's).
   * Undefined for http backends and when no material is set (then Node's defaults verify).
   */
  get upgradeAgent(): Agent | undefined {
    const tls = this.tls;
    if (!this.url.startsWith('https:') || tls?.options === undefined) return undefined;
    if (this.upgradeAgentOf?.version !== tls.version) {
      const https = process.getBuiltinModule('node:https');
      this.upgradeAgentOf = { version: tls.version, agent: new https.Agent({ ...tls.options, keepAlive: false }) };
    }
    return this.upgradeAgentOf.agent;
  }

  /**
   * Pick, then report back: call when a request is about to be sent to this backend. Returns the start time to
   * hand to `responded`, or -1 when the backend is at its `maxConnections` across all workers (then nothing was
   * counted and the caller picks again). Every successful `tryStart` must be followed by exactly one `finish`.
   */
  tryStart(): number {
    const c = this.counters;
    const before = Atomics.add(c, this.total, 1);
    const max = this.maxConnections;
    if (max !== undefined && before >= max) {
      // Another worker got the last place first; the check and the claim are one atomic step.
      Atomics.sub(c, this.total, 1);
      return -1;
    }
    Atomics.add(c, this.mine, 1);
    this.host.loadChanged(this);
    return performance.now();
  }

  /** Response headers arrived: the latency sample least-time compares. */
  responded(started: number): void {
    const now = performance.now();
    const elapsed = this.lastSampleAt === 0 ? DEFAULT_DECAY_MS : now - this.lastSampleAt;
    this.ewmaMs = peakEwma(this.ewmaMs, now - started, elapsed, DEFAULT_DECAY_MS);
    this.lastSampleAt = now;
    this.host.loadChanged(this);
  }

  /** The attempt is over (exactly once per `tryStart`; the caller keeps that promise). */
  finish(outcome: Outcome): void {
    const c = this.counters;
    Atomics.sub(c, this.mine, 1);
    Atomics.sub(c, this.total, 1);
    this.host.loadChanged(this);
    this.host.finished(this, outcome);
  }

  /**
   * The backend left the pool. Idle connections close now. Requests and tunnels still open here are let finish
   * until `cutAt` (epoch ms), then cut: the controller removes a backend as soon as it reads no request in flight
   * anywhere, and a worker that had not yet applied the drain may have started one just after that read.
   * Cutting it would reset a request that did nothing wrong (seen with two workers under file churn).
   */
  retire(cutAt: number): void {
    const wait = cutAt - Date.now();
    if (this.inflightHere === 0 || wait <= 0) {
      this.close(this.inflightHere > 0);
      return;
    }
    const pool = this.pool;
    const tunnels = this.tunnelSet;
    this.close(false);
    setTimeout(() => {
      if (pool !== undefined) void pool.destroy().catch(() => {});
      if (tunnels !== undefined) for (const t of tunnels) t.destroy();
    }, wait).unref();
  }

  /**
   * Close idle connections and refuse new requests; in-flight ones and tunnels are destroyed too when `force`.
   * Not awaited (here and in retire): a retired pool's close error has nobody to tell.
   */
  close(force: boolean): void {
    const pool = this.pool;
    this.pool = undefined;
    if (force) {
      if (pool !== undefined) void pool.destroy().catch(() => {});
      if (this.tunnelSet !== undefined) for (const t of this.tunnelSet) t.destroy();
    }
    // In-flight requests keep their connections until they finish; idle ones close now.
    else if (pool !== undefined) void pool.close().catch(() => {});
  }
}

/** Why every request to a backend fails at once: its TLS material never loaded (never a plaintext fallback). */
export class TlsMaterialError extends Error {
  readonly code = 'BULB_TLS_MATERIAL';
}

/** Stands in for a connection pool while a backend's TLS material is unusable: each request fails with the reason. */
class FailingDispatcher {
  constructor(private readonly reason: string) {}

  dispatch(_opts: unknown, handler: { onError?(err: Error): void }): boolean {
    const err = new TlsMaterialError(this.reason);
    // Asynchronously, as a real connection failure arrives: the proxy's bookkeeping for the attempt is done first.
    queueMicrotask(() => handler.onError?.(err));
    return false;
  }
}
