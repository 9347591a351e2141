import type { Outcome, PoolSnapshot, Reporter } from '../pool/snapshot.js';
import { DEFAULT_AGENT_SETTINGS, Target, type AgentSettings, type TargetHost } from './target.js';

/** `--drain-timeout`'s default, for a DataPool built without one (unit tests). */
const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

export interface DataPoolOptions {
  /** The shared in-flight counters (load-slots.ts) and their layout. */
  readonly counters: Int32Array;
  readonly stride: number;
  /** This worker's index: its own share of each counter sits at `slot * stride + 1 + worker`. */
  readonly worker: number;
  /** Where finished attempts are reported (the controller's pool, directly or across a thread). */
  readonly reporter: Reporter;
  readonly agent?: AgentSettings;
  /** How long requests to a backend that left without a drain this worker saw are let finish (`--drain-timeout`). */
  readonly drainTimeoutMs?: number;
  /** The strategy's `loadChanged`, if it has one (already guarded against throwing). */
  readonly loadChanged?: (target: Target) => void;
}

/**
 * The pool as one data-plane thread holds it: targets by id, built and updated in place from the controller's
 * snapshots, and the routable list the controller decided. It decides nothing itself (health, drain, priority
 * groups and panic are the controller's); the one rule it applies is `maxConnections`, atomically, in
 * `Target.tryStart`, because only that can change between two snapshots.
 *
 * `routable` keeps its identity until a snapshot changes who is in it or a weight, so strategies may cache
 * derived structures (hash rings, weight heaps) on it, as they did on the controller's pool.
 */
export class DataPool implements TargetHost {
  private readonly targets = new Map<string, Target>();
  private routableList: readonly Target[] = Object.freeze([]);
  private routableSet = new Set<Target>();
  /** The version of the last snapshot applied. */
  version = -1;

  constructor(private readonly opts: DataPoolOptions) {}

  get routable(): readonly Target[] {
    return this.routableList;
  }

  isRoutable(target: Target): boolean {
    return this.routableSet.has(target);
  }

  get(id: string): Target | undefined {
    return this.targets.get(id);
  }

  all(): IterableIterator<Target> {
    return this.targets.values();
  }

  /** Applies a whole snapshot: adds, updates in place, and removes (closing) what it no longer lists. */
  apply(snapshot: PoolSnapshot): void {
    if (snapshot.version <= this.version) return;
    this.version = snapshot.version;
    const { counters, stride, worker } = this.opts;
    const agent = this.opts.agent ?? DEFAULT_AGENT_SETTINGS;
    const seen = new Set<string>();
    const next: Target[] = [];
    let changed = false;
    for (const s of snapshot.targets) {
      seen.add(s.id);
      let t = this.targets.get(s.id);
      if (t === undefined) {
        t = new Target(s, counters, stride, worker, this, agent);
        this.targets.set(s.id, t);
      } else {
        if (s.routable && t.weight !== s.weight) changed = true;
        t.update(s);
      }
      if (s.routable) next.push(t);
    }
    for (const [id, t] of this.targets) {
      if (seen.has(id)) continue;
      // The controller removes a backend when nothing is in flight to it anywhere, or at its drain timeout
      // (`cutAt`, then what is still open here is cut). A worker that never saw it draining gives its requests
      // a whole drain timeout from now.
      this.targets.delete(id);
      t.retire(t.cutAt ?? Date.now() + (this.opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS));
    }
    const old = this.routableList;
    if (changed || next.length !== old.length || next.some((t, i) => t !== old[i])) {
      this.routableList = Object.freeze(next);
      this.routableSet = new Set(next);
    }
  }

  /** Requests and tunnels this worker has in flight (for its own drain at shutdown). */
  inflightHere(): number {
    let n = 0;
    for (const t of this.targets.values()) n += t.inflightHere;
    return n;
  }

  loadChanged(target: Target): void {
    this.opts.loadChanged?.(target);
  }

  finished(target: Target, outcome: Outcome): void {
    this.opts.reporter.attemptDone(target.id, outcome, target.ewmaMs);
  }

  /** Destroys every connection pool and tunnel. For shutdown, after draining. */
  close(): void {
    for (const t of this.targets.values()) t.close(true);
  }
}
