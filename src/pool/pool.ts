import type { BackendSpec } from '../discovery/source.js';
import { Backend, DEFAULT_AGENT_SETTINGS, type AgentSettings } from './backend.js';

export type PoolEvent =
  | { readonly kind: 'added'; readonly backend: Backend }
  | { readonly kind: 'updated'; readonly backend: Backend; readonly previous: BackendSpec }
  | { readonly kind: 'draining'; readonly backend: Backend }
  | { readonly kind: 'removed'; readonly backend: Backend; readonly forced: boolean }
  | { readonly kind: 'health'; readonly backend: Backend };

export interface PoolOptions {
  /** How long a draining backend's in-flight requests get before their sockets are destroyed. */
  readonly drainTimeoutMs: number;
  readonly agent?: AgentSettings;
}

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
  private readonly opts: PoolOptions;
  private routableCache: readonly Backend[] = Object.freeze([]);

  constructor(opts: PoolOptions) {
    this.opts = opts;
  }

  /** Healthy, active backends, in a stable order (insertion). Same object until the pool changes. */
  get routable(): readonly Backend[] {
    return this.routableCache;
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
    backend.onIdle = (b) => {
      if (b.state === 'draining') this.remove(b, false);
    };
    this.backends.set(spec.id, backend);
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

  /** The one seam through which health checking changes routability. */
  setHealth(id: string, healthy: boolean): void {
    const backend = this.backends.get(id);
    if (!backend || backend.healthy === healthy) return;
    backend.healthy = healthy;
    this.rebuild();
    this.emit({ kind: 'health', backend });
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

  private rebuild(): void {
    const next: Backend[] = [];
    for (const b of this.backends.values()) if (b.state === 'active' && b.healthy) next.push(b);
    this.routableCache = Object.freeze(next);
  }

  private emit(e: PoolEvent): void {
    for (const l of this.listeners) l(e);
  }
}
