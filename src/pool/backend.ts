import type { BackendSpec } from '../discovery/source.js';
import { DEFAULT_RTT_MS } from './load.js';
import type { LoadSlots } from './load-slots.js';
import type { Outcome } from './snapshot.js';

export type { Outcome } from './snapshot.js';

export type BackendState = 'active' | 'draining';

/**
 * A backend as the controller knows it: a long-lived object keyed by id. The controller updates its spec in
 * place when a source changes it, so counters, the latency estimate and health survive every reconcile. The
 * data plane never sees this object: it gets `TargetSnapshot`s (see snapshot.ts) and reports back through the
 * pool, which changes the counters here.
 */
export class Backend {
  readonly id: string;
  /** The current declaration; replaced (never mutated) on update. */
  spec: BackendSpec;
  state: BackendState = 'active';
  /** While draining: when its in-flight requests are cut (epoch ms), for the data plane (see `TargetSnapshot.cutAt`). */
  cutAt: number | undefined = undefined;
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
  /** The latest peak-EWMA of time to response headers (ms) a data plane reported; each worker keeps its own. */
  ewmaMs = DEFAULT_RTT_MS;
  /** Finished requests (attempts) and those that got no response, as reported by the data plane. */
  requests = 0;
  failures = 0;
  lastError: string | undefined;
  /** Slow start: when the current ramp began (epoch ms), and the weight strategies see meanwhile. Pool-managed. */
  rampStartedAt: number | undefined;
  rampWeight: number | undefined;

  constructor(
    spec: BackendSpec,
    /** Where this backend's in-flight counter lives, shared with every data-plane thread. */
    readonly slot: number,
    readonly load: LoadSlots,
  ) {
    this.id = spec.id;
    this.spec = spec;
  }

  get url(): string {
    return this.spec.url;
  }

  /** Requests in flight right now, across every worker (WebSocket tunnels included). */
  get inflight(): number {
    return this.load.inflight(this.slot);
  }

  /** The weight strategies use: the configured weight, or less while slow start ramps it up. */
  get weight(): number {
    return this.rampWeight ?? this.spec.weight;
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

  /** Counts one finished attempt (the pool calls this first when the data plane reports it). */
  record(outcome: Outcome, ewmaMs: number): void {
    this.requests++;
    this.ewmaMs = ewmaMs;
    if (outcome.error !== undefined) {
      this.failures++;
      this.lastError = outcome.error;
    }
  }
}
