/**
 * Passive health (outlier detection, as Envoy's consecutive_5xx does it): every finished request's outcome is
 * reported by `Backend.begin().done`, and a backend whose last N real requests all failed (connection error,
 * reset, timeout, or a 5xx response) is ejected for `base × times ejected` (at most 10×), then comes back by
 * itself. A success resets the count. Ejection goes through `Pool.setHealth(id, false, 'ejected', until)`.
 *
 * Decisions (docs/health.md repeats them):
 * - Max ejection percent defaults to 50, not Envoy's 10: a sidecar's pool holds 2-5 backends, where 10% would
 *   allow no second ejection at all. As in Envoy, one backend may always be ejected (when none is)...
 * - ...except a lone backend, which is never ejected: with nowhere else to send traffic, ejecting it turns every
 *   request into a 503 (Envoy's default 50% panic threshold would route to it anyway; bulb's panic mode is off by
 *   default).
 * - The multiplier decays: it drops by one for every base ejection time the backend stays in rotation, so a
 *   backend that failed once last week is not punished 2× today (Envoy does the same per detection interval).
 * - Outcomes of requests that finish while their backend is already ejected are ignored: they were sent before
 *   the ejection and say nothing new.
 */
/** The two log methods health checking uses (a pino logger has them). */
export interface HealthLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}
import type { Backend, Outcome } from '../pool/backend.js';
import type { Pool } from '../pool/pool.js';

/** `--outlier-*` settings after loading. */
export interface OutlierSettings {
  /** Consecutive failures that eject; 0 turns outlier detection off. */
  readonly consecutive: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionPercent: number;
  /** A passing active check ends an ejection at once (Envoy's successful_active_health_check_uneject_host). */
  readonly unejectOnCheck: boolean;
}

/** The longest ejection is this many base ejection times (Envoy's max_ejection_time default, 300 s, is 10 × 30 s). */
export const MAX_EJECTION_MULTIPLIER = 10;

/** Longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** true = a failure, false = a success, undefined = says nothing (the client went away, a tunnel closed). */
export function isFailure(outcome: Outcome): boolean | undefined {
  if (outcome.error !== undefined) return true;
  if (outcome.status === undefined) return undefined;
  return outcome.status >= 500;
}

/** How long the `multiplier`-th ejection lasts: base × multiplier, capped at `MAX_EJECTION_MULTIPLIER` × base. */
export function ejectionMs(baseMs: number, multiplier: number): number {
  return Math.min(MAX_TIMER_MS, baseMs * Math.min(Math.max(1, multiplier), MAX_EJECTION_MULTIPLIER));
}

/** The multiplier after `inRotationMs` in rotation without an ejection: one step down per base ejection time. */
export function decayedMultiplier(multiplier: number, inRotationMs: number, baseMs: number): number {
  if (baseMs <= 0) return 0;
  return Math.max(0, multiplier - Math.floor(inRotationMs / baseMs));
}

/**
 * May one more backend be ejected, with `ejected` of `total` (active, not draining) already out? At most
 * `maxPercent` of them, but one always may be (Envoy) — unless the pool has a single backend (see the header).
 */
export function mayEject(ejected: number, total: number, maxPercent: number): boolean {
  if (total < 2) return false;
  if (ejected === 0) return true;
  return (ejected + 1) * 100 <= maxPercent * total;
}

interface OutlierState {
  consecutive: number;
  /** Times ejected, decayed (see `decayedMultiplier`); the next ejection uses this + 1. */
  multiplier: number;
  /** When the backend last came back from an ejection (or was first seen), epoch ms. */
  since: number;
  timer: NodeJS.Timeout | undefined;
}

export interface OutlierOptions {
  readonly pool: Pool;
  readonly settings: OutlierSettings;
  readonly log: HealthLog;
  /** Epoch ms; defaults to Date.now. */
  readonly now?: () => number;
  /** Told of every ejection (metrics: bulb_ejections_total). */
  readonly onEjected?: (backend: Backend) => void;
}

/** Tracks consecutive failures per backend and ejects and restores backends through the pool. */
export class OutlierDetector {
  private readonly states = new Map<string, OutlierState>();
  private readonly opts: OutlierOptions;
  private readonly now: () => number;
  private stopped = false;

  constructor(opts: OutlierOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** Give it to `Pool.onOutcome`. Quick and never throws: it runs on the request path. */
  readonly onOutcome = (backend: Backend, outcome: Outcome): void => {
    const { pool, settings } = this.opts;
    if (this.stopped || settings.consecutive === 0) return;
    if (pool.get(backend.id) !== backend || backend.ejectedUntil !== undefined) return;
    const failed = isFailure(outcome);
    if (failed === undefined) return;
    const state = this.stateOf(backend.id);
    if (!failed) {
      state.consecutive = 0;
      return;
    }
    state.consecutive++;
    if (state.consecutive < settings.consecutive) return;
    const consecutive = state.consecutive;
    state.consecutive = 0;
    const active = pool.all().filter((b) => b.state === 'active');
    const ejected = active.filter((b) => b.ejectedUntil !== undefined).length;
    if (!mayEject(ejected, active.length, settings.maxEjectionPercent)) {
      this.opts.log.warn(
        { backend: backend.id, consecutive, ejected, backends: active.length, maxEjectionPercent: settings.maxEjectionPercent },
        active.length < 2 ? 'backend keeps failing; not ejected: it is the only backend' : 'backend keeps failing; not ejected: max ejection percent reached',
      );
      return;
    }
    const now = this.now();
    state.multiplier = decayedMultiplier(state.multiplier, now - state.since, settings.baseEjectionMs) + 1;
    const durationMs = ejectionMs(settings.baseEjectionMs, state.multiplier);
    const until = now + durationMs;
    pool.setHealth(backend.id, false, 'ejected', until);
    this.opts.onEjected?.(backend);
    this.opts.log.warn(
      { backend: backend.id, healthy: false, reason: 'ejected', consecutive, until: new Date(until).toISOString(), ejections: backend.ejections, durationMs, lastOutcome: outcome.error ?? outcome.status },
      'backend ejected by outlier detection',
    );
    clearTimeout(state.timer);
    state.timer = setTimeout(() => this.restore(backend), durationMs);
    state.timer.unref();
  };

  /** Forget a backend that left the pool (its timer too). */
  forget(id: string): void {
    const state = this.states.get(id);
    if (state) clearTimeout(state.timer);
    this.states.delete(id);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.states.values()) clearTimeout(s.timer);
    this.states.clear();
  }

  /**
   * A passing active check ends an ejection at once, as Envoy does by default
   * (`successful_active_health_check_uneject_host`): without it a recovered backend, or a recovered DNS SRV
   * priority tier, waits out the whole ejection while its traffic goes elsewhere. The multiplier is kept, so a
   * backend that fails real requests again right away is ejected for longer next time.
   */
  checkPassed(backend: Backend): void {
    if (!this.opts.settings.unejectOnCheck || backend.ejectedUntil === undefined) return;
    this.restore(backend, 'active health check passed');
  }

  private restore(backend: Backend, why = 'ejection ended'): void {
    const state = this.states.get(backend.id);
    if (this.stopped || !state || this.opts.pool.get(backend.id) !== backend) return;
    clearTimeout(state.timer);
    state.timer = undefined;
    state.consecutive = 0;
    state.since = this.now();
    this.opts.pool.setHealth(backend.id, true, 'ejected');
    this.opts.log.info(
      { backend: backend.id, healthy: backend.healthy, reason: why, consecutive: 0, ejections: backend.ejections },
      backend.healthy ? 'backend back from ejection' : 'backend ejection ended; still failing health checks',
    );
  }

  private stateOf(id: string): OutlierState {
    let state = this.states.get(id);
    if (!state) {
      state = { consecutive: 0, multiplier: 0, since: this.now(), timer: undefined };
      this.states.set(id, state);
    }
    return state;
  }
}
