import type { BackendSpec } from '../discovery/source.js';
import { Backend, type Outcome } from './backend.js';
import { LoadSlots } from './load-slots.js';
import type { PoolSnapshot, TargetSnapshot } from './snapshot.js';
import type { TlsMaterial } from '../tls/material.js';

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
  /** The shared in-flight counters; made here when not given (one data plane in this process). */
  readonly load?: LoadSlots;
  /** Panic mode: below this percentage of healthy backends, route to all of them. 0 = off. */
  readonly panicThresholdPercent?: number;
  /** Default slow-start ramp for new and recovered backends, ms (a backend file's `slowStart` overrides). 0 = off. */
  readonly slowStartMs?: number;
  /**
   * The TLS material an https backend is reached with (see src/tls/), put into every snapshot; absent: the data
   * plane's defaults (Node's trust store, verification on).
   */
  readonly tls?: (spec: BackendSpec) => TlsMaterial | undefined;
}

/** How often ramping weights are recomputed during slow start. */
const RAMP_TICK_MS = 250;
/** A ramping backend starts at this fraction of its weight, so it gets some traffic (and latency samples) at once. */
const RAMP_FLOOR = 0.05;

/**
 * The live set of backends, keyed by id: the controller's, and the only place any decision about a backend is
 * made. Only the controller's apply step adds, updates and drains; only health checking changes health (through
 * `setHealth`); the data plane reports finished attempts through `attemptDone` (see snapshot.ts for the order)
 * and receives the result as versioned snapshots (`snapshot()`, announced through `onChange`).
 *
 * `routable` is rebuilt once per change, never per request.
 */
export class Pool {
  private readonly backends = new Map<string, Backend>();
  private readonly drainTimers = new Map<string, NodeJS.Timeout>();
  private readonly listeners: ((e: PoolEvent) => void)[] = [];
  private readonly outcomeListeners: ((b: Backend, o: Outcome) => void)[] = [];
  private readonly opts: PoolOptions;
  readonly load: LoadSlots;
  private version = 0;
  private snapshotCache: PoolSnapshot | undefined;
  private changeListener: (() => void) | undefined;
  private routableCache: readonly Backend[] = Object.freeze([]);
  /** The same backends as `routableCache`, for O(1) membership checks on the request path. */
  private routableSet = new Set<Backend>();
  private readonly panicListeners: ((panic: boolean, healthy: number, total: number) => void)[] = [];
  /** True while panic mode routes to unhealthy backends too. */
  panic = false;
  private rampTimer: NodeJS.Timeout | undefined;
  /** Inside `batch`: rebuilds are deferred to its end (one O(n) pass, not one per change). */
  private batching = 0;
  private dirty = false;

  constructor(opts: PoolOptions) {
    this.opts = opts;
    this.load = opts.load ?? new LoadSlots(1);
  }

  /**
   * The data plane's report of one finished attempt (see `Reporter` in snapshot.ts), in this order: the
   * backend's counters, passive health (outcome listeners), then the drain of a draining backend that has
   * nothing left in flight. Reports for a backend already removed are dropped.
   */
  readonly attemptDone = (id: string, outcome: Outcome, ewmaMs: number): void => {
    const b = this.backends.get(id);
    if (b === undefined) return;
    b.record(outcome, ewmaMs);
    for (const l of this.outcomeListeners) l(b, outcome);
    if (b.state === 'draining' && b.inflight === 0) this.remove(b, false);
  };

  /** Called (with no arguments) whenever `snapshot()` would return something new. One listener: the data-plane link. */
  onChange(listener: () => void): void {
    this.changeListener = listener;
  }

  /** The pool as the data plane needs it, versioned; the same object until the pool changes. */
  snapshot(): PoolSnapshot {
    if (this.snapshotCache !== undefined) return this.snapshotCache;
    const targets: TargetSnapshot[] = [];
    for (const b of this.backends.values()) {
      const tls = this.opts.tls !== undefined && b.spec.url.startsWith('https:') ? this.opts.tls(b.spec) : undefined;
      targets.push({
        id: b.id,
        url: b.spec.url,
        weight: b.weight,
        maxConnections: b.spec.maxConnections,
        slot: b.slot,
        routable: this.routableSet.has(b),
        tls,
        ...(b.cutAt !== undefined && { cutAt: b.cutAt }),
      });
    }
    this.snapshotCache = { version: ++this.version, targets };
    return this.snapshotCache;
  }

  /** Something a snapshot carries changed outside the pool (reloaded TLS material): send a new one. */
  refresh(): void {
    this.snapshotCache = undefined;
    this.changeListener?.();
  }

  /** Backends that may receive new requests (see `rebuild`), in a stable order (insertion). Same object until the pool changes. */
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
    const backend = new Backend(spec, this.load.alloc(), this.load);
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
      backend.cutAt = undefined;
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
    // The pool itself never reads the clock for decisions; this is only passed on, for workers to cut at.
    backend.cutAt = Date.now() + this.opts.drainTimeoutMs;
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
   * Called with the outcome of every attempt the data plane reports (`attemptDone`), draining backends
   * included: listeners must be quick and must not throw.
   */
  onOutcome(listener: (backend: Backend, outcome: Outcome) => void): void {
    this.outcomeListeners.push(listener);
  }

  /** Called once on entering panic mode and once on leaving it. */
  onPanic(listener: (panic: boolean, healthy: number, total: number) => void): void {
    this.panicListeners.push(listener);
  }

  /** Stops the pool's timers. For shutdown, after draining (the data plane closes its own connections). */
  close(): void {
    clearInterval(this.rampTimer);
    this.rampTimer = undefined;
    for (const t of this.drainTimers.values()) clearTimeout(t);
    this.drainTimers.clear();
  }

  private remove(backend: Backend, forced: boolean): void {
    if (this.backends.get(backend.id) !== backend) return;
    clearTimeout(this.drainTimers.get(backend.id));
    this.drainTimers.delete(backend.id);
    this.backends.delete(backend.id);
    this.load.release(backend.slot);
    this.rebuild();
    this.emit({ kind: 'removed', backend, forced });
  }

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

  /**
   * The pool's one eligibility rule. `maxConnections` is not part of it: in-flight counts change on every
   * request in every worker, so the data plane applies that limit itself, atomically, when it starts a request.
   */
  private eligible(b: Backend): boolean {
    return b.state === 'active' && !b.adminDrained;
  }

  /**
   * Routable = eligible (active, not drained by hand) and healthy, and of those only the lowest
   * `priority` (RFC 2782) each source has any of: a source's priority-1 group takes traffic only while every
   * priority-0 backend of that source is out, and gives it back as soon as one returns (`setHealth` rebuilds).
   * Priorities are compared within one source (one SRV name) only, so two SRV names, or an SRV name and a
   * backend file, are balanced together rather than one becoming the backup of the other. No priority = 0.
   */
  private rebuild(): void {
    if (this.batching > 0) {
      this.dirty = true;
      return;
    }
    this.dirty = false;
    // Eligible: could take traffic if healthy (active, not drained by hand).
    let eligible = 0;
    let healthy = 0;
    const lowest = new Map<string, number>();
    for (const b of this.backends.values()) {
      if (!this.eligible(b)) continue;
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
      if (!this.eligible(b)) continue;
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
    this.snapshotCache = undefined;
    this.changeListener?.();
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
