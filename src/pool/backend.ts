import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Pool } from 'undici';
import type { BackendSpec } from '../discovery/source.js';
import { DEFAULT_DECAY_MS, DEFAULT_RTT_MS, peakEwma } from './load.js';

export type BackendState = 'active' | 'draining';

/** What the proxy reports when a request it sent to a backend is over. */
export interface Outcome {
  /** Set when no response came back (refused, reset, timeout). A short code such as `ECONNREFUSED`. */
  readonly error?: string;
  /** Response status, when there was a response. */
  readonly status?: number;
}

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
}

export const DEFAULT_AGENT_SETTINGS: AgentSettings = { idleTimeoutMs: 4_000, connectTimeoutMs: 10_000 };

/**
 * undici's Pool class alone. `import { Pool } from 'undici'` loads all of undici (fetch, WebSocket, caches,
 * mocks: 50 ms and ~6 MB at start-up) for the one class bulb uses, through `dispatch` only. undici has no
 * `exports` map, so its file is reachable; a major upgrade that moves it fails at start, loudly.
 */
const UndiciPool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof Pool;
type UndiciPool = Pool;

/**
 * A backend is a long-lived object keyed by id. The controller updates its spec in place when a source changes
 * it, so in-flight counts, the latency estimate, totals and (later) health survive every reconcile.
 * Strategies read `inflight`, `ewmaMs` and `weight`; only the pool and the proxy (through `begin`) change them.
 */
export class Backend {
  readonly id: string;
  /** The current declaration; replaced (never mutated) on update. */
  spec: BackendSpec;
  state: BackendState = 'active';
  /**
   * Health has two independent causes, each set only through `Pool.setHealth`: active checks failing
   * (`checksFailing`, cleared when `rise` checks pass) and outlier ejection (`ejectedUntil`, epoch ms, cleared by
   * passive health when the time is up; the pool itself never reads the clock). Either one takes the backend out.
   */
  checksFailing = false;
  ejectedUntil: number | undefined = undefined;
  /** Times outlier detection has ejected this backend (a counter, never reset; metrics read it). */
  ejections = 0;
  /**
   * Taken out of rotation by an operator (`POST /backends/{id}/drain`). Unlike `state`, no reconcile touches
   * it: the backend stays in the pool, keeps its counters and in-flight requests, and gets no new requests
   * until it is undrained by hand or its source stops declaring it.
   */
  adminDrained = false;
  /** Requests sent and not yet finished. */
  inflight = 0;
  /** Peak-EWMA of time to response headers, in ms. */
  ewmaMs = DEFAULT_RTT_MS;
  requests = 0;
  failures = 0;
  lastError: string | undefined;
  /** Made on first use: most backends never carry a WebSocket, and an empty Set is ~180 bytes. */
  private tunnelSet: Set<import('node:stream').Duplex> | undefined;
  /** Set by the pool: called when `inflight` drops to zero, so a draining backend can leave at once. */
  onIdle: ((backend: Backend) => void) | undefined;
  /** Set by the pool: called when `inflight` reaches or leaves `spec.maxConnections`. */
  onSaturation: ((backend: Backend) => void) | undefined;
  /** Slow start: when the current ramp began (epoch ms), and the weight strategies see meanwhile. Pool-managed. */
  rampStartedAt: number | undefined;
  rampWeight: number | undefined;
  /** Set by the pool: called with every finished request's outcome (passive health listens through `Pool.onOutcome`). */
  onOutcome: ((backend: Backend, outcome: Outcome) => void) | undefined;
  /** Set by the pool: called right after `inflight` or `ewmaMs` changes (the strategy's `loadChanged`). */
  onLoadChanged: ((backend: Backend) => void) | undefined;
  private lastSampleAt = 0;
  private readonly agentSettings: AgentSettings;
  private pool: UndiciPool | undefined;
  /** The origin `pool` was made for: a spec update that changes the URL's origin gets a new pool. */
  private poolOrigin = '';

  constructor(spec: BackendSpec, agentSettings: AgentSettings = DEFAULT_AGENT_SETTINGS) {
    this.id = spec.id;
    this.spec = spec;
    this.agentSettings = agentSettings;
  }

  get url(): string {
    return this.spec.url;
  }

  /** Open WebSocket tunnels through this backend; closed when a drain times out. */
  get tunnels(): Set<import('node:stream').Duplex> {
    this.tunnelSet ??= new Set();
    return this.tunnelSet;
  }

  /**
   * This backend's keep-alive connection pool (undici), made on first use so that a pool of thousands of
   * backends that never get traffic costs nothing. Connections are not capped here (`maxConnections` caps
   * requests in flight at the pool level); the pool hands a request to the first idle connection, so surplus
   * connections sit idle and expire instead of all being kept warm just enough to race the backend's idle timeout.
   */
  get dispatcher(): UndiciPool {
    const origin = this.spec.url;
    if (this.pool !== undefined && this.poolOrigin === origin) return this.pool;
    // The URL changed in place (same id): let the old pool finish what it has, then close.
    if (this.pool !== undefined) void this.pool.close().catch(() => {});
    const settings = this.agentSettings;
    this.pool = new UndiciPool(new URL(origin).origin, {
      connections: null,
      pipelining: 1,
      keepAliveTimeout: settings.idleTimeoutMs,
      keepAliveMaxTimeout: settings.idleTimeoutMs,
      keepAliveTimeoutThreshold: 1_000,
      connectTimeout: settings.connectTimeoutMs,
      // bulb's own timeouts apply per request (headers) and on the client side (body); a long download is fine.
      bodyTimeout: 0,
    });
    this.poolOrigin = origin;
    return this.pool;
  }

  /** The weight strategies use: the configured weight, or less while slow start ramps it up. */
  get weight(): number {
    return this.rampWeight ?? this.spec.weight;
  }

  /** At its `maxConnections` limit: the pool leaves it out of `routable` until a request finishes. */
  get saturated(): boolean {
    const max = this.spec.maxConnections;
    return max !== undefined && this.inflight >= max;
  }

  /** Routable as far as health is concerned: neither failing active checks nor ejected. */
  get healthy(): boolean {
    return !this.checksFailing && this.ejectedUntil === undefined;
  }

  /** Why the backend is unhealthy (failing checks win when both hold, as they last longer), or null when healthy. */
  get unhealthyReason(): 'failing-checks' | 'ejected' | null {
    if (this.checksFailing) return 'failing-checks';
    return this.ejectedUntil === undefined ? null : 'ejected';
  }

  /** When the current unhealthy state ends by itself: the ejection's end (epoch ms), else undefined (checks decide). */
  get unhealthyUntil(): number | undefined {
    return this.checksFailing ? undefined : this.ejectedUntil;
  }

  /** May receive new requests: active, healthy and not drained by an operator. The pool's `routable` is these. */
  get routable(): boolean {
    return this.state === 'active' && this.healthy && !this.adminDrained && !this.saturated;
  }

  /**
   * Call when a request is sent to this backend; call the returned function exactly once when it is over.
   * Latency is sampled at response headers (`responded`), which is what least-time compares.
   */
  begin(): { responded: () => void; done: (outcome: Outcome) => void } {
    const started = this.start();
    let finished = false;
    return {
      responded: () => this.responded(started),
      done: (outcome: Outcome) => {
        if (finished) return;
        finished = true;
        this.finish(outcome);
      },
    };
  }

  /**
   * `begin()` without its closures, for the proxy's per-request path: `start()` when the request is sent (returns
   * the start time to hand to `responded`), `responded(started)` at response headers, and `finish(outcome)`
   * exactly once at the end; the caller keeps the exactly-once promise.
   */
  start(): number {
    this.inflight++;
    this.requests++;
    if (this.onLoadChanged) this.onLoadChanged(this);
    if (this.inflight === this.spec.maxConnections && this.onSaturation) this.onSaturation(this);
    return performance.now();
  }

  responded(started: number): void {
    const now = performance.now();
    const elapsed = this.lastSampleAt === 0 ? DEFAULT_DECAY_MS : now - this.lastSampleAt;
    this.ewmaMs = peakEwma(this.ewmaMs, now - started, elapsed, DEFAULT_DECAY_MS);
    this.lastSampleAt = now;
    if (this.onLoadChanged) this.onLoadChanged(this);
  }

  finish(outcome: Outcome): void {
    this.inflight--;
    if (this.onLoadChanged) this.onLoadChanged(this);
    if (this.inflight + 1 === this.spec.maxConnections && this.onSaturation) this.onSaturation(this);
    if (outcome.error !== undefined) {
      this.failures++;
      this.lastError = outcome.error;
    }
    if (this.onOutcome) this.onOutcome(this, outcome);
    if (this.inflight === 0 && this.onIdle) this.onIdle(this);
  }

  /** Close idle connections and refuse new requests; in-flight ones are destroyed too when `force`. */
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
