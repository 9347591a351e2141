import type { BackendSpec } from '../discovery/source.js';
import { Backend, DEFAULT_AGENT_SETTINGS, type AgentSettings, type Outcome } from './backend.js';

/** Why a backend is unhealthy: active checks failing, or ejected by outlier detection. */
export type HealthCause = 'failing-checks' | 'ejected';

export type PoolEvent =
  | { readonly kind: 'added'; readonly backend: Backend }
  | { readonly kind: 'updated'; readonly backend: Backend; readonly previous: BackendSpec }
  | { readonly kind: 'draining'; readonly backend: Backend }
  | { readonly kind: 'removed'; readonly backend: Backend; readonly forced: boolean }
  /** Either health cause changed (`Backend.checksFailing`, `Backend.ejectedUntil`); read the backend for the new state. */
  | { readonly kind: 'health'; readonly backend: Backend };

export interface PoolOptions {
  /** How long a draining backend's in-flight requests get before their sockets are destroyed. */
  readonly drainTimeoutMs: number;
  readonly agent?: AgentSettings;
  /** Panic mode: below this percentage of healthy backends, route to all of them. 0 = off. */
  readonly panicThresholdPercent?: number;
  /** Default slow-start ramp for new and recovered backends, ms (a backend file's `slowStart` overrides). 0 = off. */
  readonly slowStartMs?: number;
  /**
   * Called right after any backend's `inflight` or `ewmaMs` changes, on the request path (the strategy's
   * `loadChanged`, so least-time can keep its heap current). One function, not a listener list, to keep that
   * path to a single call.
   */
  readonly loadChanged?: (backend: Backend) => void;
}

/** How often ramping weights are recomputed during slow start. */
const RAMP_TICK_MS = 250;
/** A ramping backend starts at this fraction of its weight, so it gets some traffic (and latency samples) at once. */
const RAMP_FLOOR = 0.05;

/**
 * The live set of backends, keyed by id. Only the controller's apply step adds, updates and drains; only
 * health checking changes health (through `setHealth`). Everything else reads.
 *
 * `routable` is rebuilt once per change, never per request: strategies get the same array object until the
 * pool changes, which lets them cache derived structures (hash rings, prefix sums) on its identity.
 */
export class Pool {
  private readonly backends = new Map<string, Backend>();
  private readonly drainTimers = new Map<string, NodeJS.Timeout>();
  private readonly listeners: Array<(e: PoolEvent) => void> = [];
  private readonly outcomeListeners: Array<(b: Backend, o: Outcome) => void> = [];
  private readonly opts: PoolOptions;
  private routableCache: readonly Backend[] = Object.freeze([]);
  /** The same backends as `routableCache`, for O(1) membership checks on the request path. */
  private routableSet = new Set<Backend>();
  private readonly panicListeners: Array<(panic: boolean, healthy: number, total: number) => void> = [];
  /** True while panic mode routes to unhealthy backends too. */
  panic = false;
  private rampTimer: NodeJS.Timeout | undefined;
  /** Inside `batch`: rebuilds are deferred to its end (one O(n) pass, not one per change). */
  private batching = 0;
  private dirty = false;

  private readonly backendIdle = (b: Backend): void => {
    if (b.state === 'draining') this.remove(b, false);
  };
  private readonly backendOutcome = (b: Backend, outcome: Outcome): void => {
    for (const l of this.outcomeListeners) l(b, outcome);
  };
  private readonly backendSaturation = (): void => this.rebuild();

  constructor(opts: PoolOptions) {
    this.opts = opts;
  }

  /** Backends that may receive new requests (`Backend.routable`), in a stable order (insertion). Same object until the pool changes. */
  get routable(): readonly Backend[] {
    return this.routableCache;
  }

  /** Whether `backend` is in `routable` right now, in O(1). */
  isRoutable(backend: Backend): boolean {
    return this.routableSet.has(backend);
  }

  get(id: string): Backend | undefined {
    return this.backends.get(id);
  }

  /** Every backend, draining ones included. */
  all(): Backend[] {
    return [...this.backends.values()];
  }

  onEvent(listener: (e: PoolEvent) => void): void {
    this.listeners.push(listener);
  }

  add(spec: BackendSpec): Backend {
    if (this.backends.has(spec.id)) throw new Error(`backend ${spec.id} is already in the pool`);
    const backend = new Backend(spec, this.opts.agent ?? DEFAULT_AGENT_SETTINGS);
    // The pool's own functions, shared by every backend (a closure per backend and hook was ~250 bytes each).
    backend.onIdle = this.backendIdle;
    backend.onOutcome = this.backendOutcome;
    backend.onLoadChanged = this.opts.loadChanged;
    // Crossing maxConnections (either way) changes who is routable; rebuilding only then keeps picks free of
    // per-request filtering.
    backend.onSaturation = this.backendSaturation;
    this.backends.set(spec.id, backend);
    this.startRamp(backend);
    this.rebuild();
    this.emit({ kind: 'added', backend });
    return backend;
  }

  /**
   * Replaces the spec of a backend in place (weight, url, source) and brings it back from draining if the
   * desired state names it again. Counters, latency and health are kept.
   */
  update(spec: BackendSpec): Backend {
    const backend = this.backends.get(spec.id);
    if (!backend) throw new Error(`backend ${spec.id} is not in the pool`);
    const previous = backend.spec;
    backend.spec = spec;
    if (backend.state === 'draining') {
      backend.state = 'active';
      clearTimeout(this.drainTimers.get(spec.id));
      this.drainTimers.delete(spec.id);
    }
    this.rebuild();
    this.emit({ kind: 'updated', backend, previous });
    return backend;
  }

  /**
   * Takes a backend out of rotation. It leaves the pool when its last in-flight request finishes, or when
   * the drain timeout passes, whichever comes first.
   */
  drain(id: string): void {
    const backend = this.backends.get(id);
    if (!backend || backend.state === 'draining') return;
    backend.state = 'draining';
    this.rebuild();
    this.emit({ kind: 'draining', backend });
    if (backend.inflight === 0) {
      this.remove(backend, false);
      return;
    }
    const timer = setTimeout(() => this.remove(backend, true), this.opts.drainTimeoutMs);
    timer.unref();
    this.drainTimers.set(id, timer);
  }

  /**
   * An operator's hand drain or undrain (the admin API). The backend stays in the pool and keeps its state;
   * only its routability changes, and a later reconcile does not undo it (see `Backend.adminDrained`).
   * Returns the backend, or undefined for an unknown id.
   */
  setAdminDrained(id: string, drained: boolean): Backend | undefined {
    const backend = this.backends.get(id);
    if (!backend) return undefined;
    if (backend.adminDrained !== drained) {
      backend.adminDrained = drained;
      this.rebuild();
    }
    return backend;
  }

  /**
   * The one seam through which health checking changes routability. The two causes are independent: active
   * checks set `failing-checks`, outlier detection sets `ejected` (until `untilMs`, epoch ms; the caller clears
   * it when the time is up, and without `untilMs` it lasts until cleared). A backend is healthy when neither
   * holds. Emits a 'health' event whenever either cause changes; `routable` is rebuilt only when `healthy` does.
   */
  setHealth(id: string, healthy: boolean, cause: HealthCause = 'failing-checks', untilMs?: number): void {
    const backend = this.backends.get(id);
    if (!backend) return;
    const wasHealthy = backend.healthy;
    if (cause === 'failing-checks') {
      if (backend.checksFailing === !healthy) return;
      backend.checksFailing = !healthy;
    } else {
      const until = healthy ? undefined : (untilMs ?? Number.POSITIVE_INFINITY);
      if (backend.ejectedUntil === until) return;
      if (backend.ejectedUntil === undefined && until !== undefined) backend.ejections++;
      backend.ejectedUntil = until;
    }
    if (backend.healthy !== wasHealthy) {
      // A recovered backend ramps up again rather than taking its full share in one step.
      if (backend.healthy) this.startRamp(backend);
      this.rebuild();
    }
    this.emit({ kind: 'health', backend });
  }

  /**
   * Called with the outcome of every request a backend finishes (`Backend.begin().done`), draining backends
   * included, synchronously on the request path: listeners must be quick and must not throw.
   */
  onOutcome(listener: (backend: Backend, outcome: Outcome) => void): void {
    this.outcomeListeners.push(listener);
  }

  /** Called once on entering panic mode and once on leaving it. */
  onPanic(listener: (panic: boolean, healthy: number, total: number) => void): void {
    this.panicListeners.push(listener);
  }

  /** Waits until no backend has requests in flight, or `timeoutMs` passes. Resolves true if idle. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.all().some((b) => b.inflight > 0)) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  /** Destroys every agent. For shutdown, after draining. */
  close(): void {
    clearInterval(this.rampTimer);
    this.rampTimer = undefined;
    for (const t of this.drainTimers.values()) clearTimeout(t);
    this.drainTimers.clear();
    for (const b of this.backends.values()) b.close(true);
  }

  private remove(backend: Backend, forced: boolean): void {
    if (this.backends.get(backend.id) !== backend) return;
    clearTimeout(this.drainTimers.get(backend.id));
    this.drainTimers.delete(backend.id);
    this.backends.delete(backend.id);
    backend.onIdle = undefined;
    backend.close(forced);
    this.rebuild();
    this.emit({ kind: 'removed', backend, forced });
  }

  /**
   * Routable = `Backend.routable` (active, healthy, not drained by hand), and of those only the lowest
   * `priority` (RFC 2782) each source has any of: a source's priority-1 group takes traffic only while every
   * priority-0 backend of that source is out, and gives it back as soon as one returns (`setHealth` rebuilds).
   * Priorities are compared within one source (one SRV name) only, so two SRV names, or an SRV name and a
   * backend file, are balanced together rather than one becoming the backup of the other. No priority = 0.
   */
  /**
   * Runs `fn` (a reconcile's apply step) with `routable` rebuilt once at the end instead of after every change:
   * adding 10,000 backends one by one would otherwise cost 10,000 O(n) rebuilds.
   */
  batch(fn: () => void): void {
    this.batching++;
    try {
      fn();
    } finally {
      this.batching--;
      if (this.batching === 0 && this.dirty) this.rebuild();
    }
  }

  private rebuild(): void {
    if (this.batching > 0) {
      this.dirty = true;
      return;
    }
    this.dirty = false;
    // Eligible: could take traffic if healthy (active, not drained by hand, under maxConnections).
    let eligible = 0;
    let healthy = 0;
    const lowest = new Map<string, number>();
    for (const b of this.backends.values()) {
      if (b.state !== 'active' || b.adminDrained || b.saturated) continue;
      eligible++;
      if (!b.healthy) continue;
      healthy++;
      const p = b.spec.priority ?? 0;
      const have = lowest.get(b.spec.source);
      if (have === undefined || p < have) lowest.set(b.spec.source, p);
    }
    const threshold = this.opts.panicThresholdPercent ?? 0;
    const panic = threshold > 0 && eligible > 0 && healthy * 100 < threshold * eligible;
    const next: Backend[] = [];
    for (const b of this.backends.values()) {
      if (b.state !== 'active' || b.adminDrained || b.saturated) continue;
      // In panic every eligible backend takes traffic, healthy or not (Envoy's panic routing): better some
      // requests fail than the healthy few collapse under everything.
      if (panic || (b.healthy && (b.spec.priority ?? 0) === lowest.get(b.spec.source))) next.push(b);
    }
    this.routableCache = Object.freeze(next);
    this.routableSet = new Set(next);
    if (panic !== this.panic) {
      this.panic = panic;
      for (const l of this.panicListeners) l(panic, healthy, eligible);
    }
  }

  /** Starts (or restarts) a backend's slow-start ramp, if slow start applies to it. */
  private startRamp(backend: Backend): void {
    const ms = backend.spec.slowStartMs ?? this.opts.slowStartMs ?? 0;
    if (ms <= 0) return;
    backend.rampStartedAt = Date.now();
    backend.rampWeight = backend.spec.weight * RAMP_FLOOR;
    this.rampTimer ??= setInterval(() => this.tickRamps(), RAMP_TICK_MS).unref();
  }

  /**
   * Moves every ramping backend's effective weight along (linear, as nginx Plus and HAProxy do) and rebuilds
   * `routable`, so strategies that cache per candidates array (random, consistent-hash) see the new weights.
   */
  private tickRamps(): void {
    const now = Date.now();
    let ramping = 0;
    for (const b of this.backends.values()) {
      if (b.rampStartedAt === undefined) continue;
      const ms = b.spec.slowStartMs ?? this.opts.slowStartMs ?? 0;
      const progress = ms > 0 ? (now - b.rampStartedAt) / ms : 1;
      if (progress >= 1) {
        b.rampStartedAt = undefined;
        b.rampWeight = undefined;
      } else {
        b.rampWeight = b.spec.weight * Math.max(RAMP_FLOOR, progress);
        ramping++;
      }
    }
    this.rebuild();
    if (ramping === 0) {
      clearInterval(this.rampTimer);
      this.rampTimer = undefined;
    }
  }

  private emit(e: PoolEvent): void {
    for (const l of this.listeners) l(e);
  }
}
