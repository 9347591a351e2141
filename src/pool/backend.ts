import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
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

/** Keep-alive settings shared by every backend's agent. */
export interface AgentSettings {
  /**
   * Idle keep-alive sockets are closed after this long. It must stay below the backends' own idle timeout
   * (Node's default is 5 s) so bulb, not the backend, closes idle sockets; otherwise a request can be written
   * onto a socket the backend is closing at that moment.
   */
  readonly idleTimeoutMs: number;
  readonly maxFreeSockets: number;
}

export const DEFAULT_AGENT_SETTINGS: AgentSettings = { idleTimeoutMs: 4_000, maxFreeSockets: 256 };

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
  /** One keep-alive agent per backend, so each backend's sockets are pooled and closed on their own. */
  readonly agent: http.Agent;
  /** Open WebSocket tunnels through this backend; closed when a drain times out. */
  readonly tunnels = new Set<import('node:stream').Duplex>();
  /** Set by the pool: called when `inflight` drops to zero, so a draining backend can leave at once. */
  onIdle: ((backend: Backend) => void) | undefined;
  /** Set by the pool: called when `inflight` reaches or leaves `spec.maxConnections`. */
  onSaturation: ((backend: Backend) => void) | undefined;
  /** Slow start: when the current ramp began (epoch ms), and the weight strategies see meanwhile. Pool-managed. */
  rampStartedAt: number | undefined;
  rampWeight: number | undefined;
  /** Set by the pool: called with every finished request's outcome (passive health listens through `Pool.onOutcome`). */
  onOutcome: ((backend: Backend, outcome: Outcome) => void) | undefined;
  private lastSampleAt = 0;

  constructor(spec: BackendSpec, agentSettings: AgentSettings = DEFAULT_AGENT_SETTINGS) {
    this.id = spec.id;
    this.spec = spec;
    const options: http.AgentOptions = {
      keepAlive: true,
      // LIFO reuses the most recently used socket, so surplus sockets sit idle and expire instead of all
      // being kept warm just enough to race the backend's idle timeout.
      scheduling: 'lifo',
      maxFreeSockets: agentSettings.maxFreeSockets,
      timeout: agentSettings.idleTimeoutMs,
    };
    this.agent = spec.url.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
  }

  get url(): string {
    return this.spec.url;
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
    this.inflight++;
    this.requests++;
    if (this.inflight === this.spec.maxConnections && this.onSaturation) this.onSaturation(this);
    const started = performance.now();
    let finished = false;
    return {
      responded: () => {
        const now = performance.now();
        const elapsed = this.lastSampleAt === 0 ? DEFAULT_DECAY_MS : now - this.lastSampleAt;
        this.ewmaMs = peakEwma(this.ewmaMs, now - started, elapsed, DEFAULT_DECAY_MS);
        this.lastSampleAt = now;
      },
      done: (outcome: Outcome) => {
        if (finished) return;
        finished = true;
        this.inflight--;
        if (this.inflight + 1 === this.spec.maxConnections && this.onSaturation) this.onSaturation(this);
        if (outcome.error !== undefined) {
          this.failures++;
          this.lastError = outcome.error;
        }
        if (this.onOutcome) this.onOutcome(this, outcome);
        if (this.inflight === 0 && this.onIdle) this.onIdle(this);
      },
    };
  }

  /** Close idle sockets and refuse new ones; in-flight sockets are destroyed too when `force`. */
  close(force: boolean): void {
    if (force) {
      this.agent.destroy();
      for (const t of this.tunnels) t.destroy();
    }
    else {
      // Free sockets only: in-flight requests keep theirs until they finish.
      for (const sockets of Object.values(this.agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
    }
  }
}
