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
  /** Routable as far as health is concerned. Always true until health checks set it. */
  healthy = true;
  /** Requests sent and not yet finished. */
  inflight = 0;
  /** Peak-EWMA of time to response headers, in ms. */
  ewmaMs = DEFAULT_RTT_MS;
  requests = 0;
  failures = 0;
  lastError: string | undefined;
  /** One keep-alive agent per backend, so each backend's sockets are pooled and closed on their own. */
  readonly agent: http.Agent;
  /** Set by the pool: called when `inflight` drops to zero, so a draining backend can leave at once. */
  onIdle: ((backend: Backend) => void) | undefined;
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

  get weight(): number {
    return this.spec.weight;
  }

  /**
   * Call when a request is sent to this backend; call the returned function exactly once when it is over.
   * Latency is sampled at response headers (`responded`), which is what least-time compares.
   */
  begin(): { responded: () => void; done: (outcome: Outcome) => void } {
    this.inflight++;
    this.requests++;
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
        if (outcome.error !== undefined) {
          this.failures++;
          this.lastError = outcome.error;
        }
        if (this.inflight === 0 && this.onIdle) this.onIdle(this);
      },
    };
  }

  /** Close idle sockets and refuse new ones; in-flight sockets are destroyed too when `force`. */
  close(force: boolean): void {
    if (force) this.agent.destroy();
    else {
      // Free sockets only: in-flight requests keep theirs until they finish.
      for (const sockets of Object.values(this.agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
    }
  }
}
