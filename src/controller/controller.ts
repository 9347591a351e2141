import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../log.js';
import type { Snapshot } from '../discovery/source.js';
import type { Pool } from '../pool/pool.js';
import { desiredState, isEmptyPlan, plan, type ActualBackend, type Plan } from './plan.js';

/** What the admin API shows of a source. */
export interface SourceStatus {
  readonly name: string;
  readonly synced: boolean;
  readonly lastSnapshotAt: string | undefined;
  /** The last report that carried no source-wide error (a file may still have been rejected). */
  readonly lastSyncAt: string | undefined;
  readonly backends: number;
  /** The source-wide error of the latest report; undefined once the source recovers. */
  readonly error: string | undefined;
  /** The most recent source-wide error, kept after the source recovers, so an operator can see what happened. */
  readonly lastError: { readonly message: string; readonly at: string } | undefined;
  /** How many reports carried a source-wide error (each failed poll or read counts). */
  readonly errors: number;
  readonly problems: Snapshot['problems'];
}

/**
 * Reconciles the union of every source's latest snapshot against the pool.
 *
 * Level-triggered: a snapshot only records "this is what source X sees now" and schedules one reconcile; the
 * reconcile reads the latest snapshot of every source, so a burst of reports (one per file event, say) costs
 * one pass, and the order they arrived in does not matter. Identical snapshots are dropped on arrival.
 * Until every source has reported once, the plan may add but never drain (compare `WaitForCacheSync`).
 */
export class Controller {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly reportedAt = new Map<string, Date>();
  private readonly syncedAt = new Map<string, Date>();
  private readonly lastErrors = new Map<string, { message: string; at: Date; count: number }>();
  private scheduled = false;
  private stopped = false;
  private readonly pool: Pool;
  private readonly sourceOrder: readonly string[];
  private readonly log: Logger;
  /** How many reconciles changed something; for tests and metrics. */
  reconciles = 0;
  private readonly listeners: ((p: Plan, durationMs: number) => void)[] = [];

  constructor(pool: Pool, sourceOrder: readonly string[], log: Logger) {
    this.pool = pool;
    this.sourceOrder = sourceOrder;
    this.log = log;
  }

  /** True once every source has reported at least once. */
  get synced(): boolean {
    return this.sourceOrder.every((n) => this.snapshots.has(n));
  }

  /** Called by sources; never throws, never blocks. */
  readonly report = (snapshot: Snapshot): void => {
    if (this.stopped) return;
    const now = new Date();
    this.reportedAt.set(snapshot.source, now);
    if (snapshot.error === undefined) this.syncedAt.set(snapshot.source, now);
    else {
      const count = (this.lastErrors.get(snapshot.source)?.count ?? 0) + 1;
      this.lastErrors.set(snapshot.source, { message: snapshot.error, at: now, count });
    }
    const previous = this.snapshots.get(snapshot.source);
    if (previous && isDeepStrictEqual(previous, snapshot)) return;
    if (snapshot.error && snapshot.error !== previous?.error) {
      this.log.warn({ source: snapshot.source, error: snapshot.error, kept: snapshot.backends.length }, 'discovery source failing; keeping its last-known-good backends');
    }
    this.snapshots.set(snapshot.source, snapshot);
    this.schedule();
  };

  /** Called after every reconcile that changed the pool, with how long planning and applying took. */
  onPlan(listener: (p: Plan, durationMs: number) => void): void {
    this.listeners.push(listener);
  }

  sources(): SourceStatus[] {
    return this.sourceOrder.map((name) => {
      const s = this.snapshots.get(name);
      const lastError = this.lastErrors.get(name);
      return {
        name,
        synced: s !== undefined,
        lastSnapshotAt: this.reportedAt.get(name)?.toISOString(),
        lastSyncAt: this.syncedAt.get(name)?.toISOString(),
        backends: s?.backends.length ?? 0,
        error: s?.error,
        lastError: lastError && { message: lastError.message, at: lastError.at.toISOString() },
        errors: lastError?.count ?? 0,
        problems: s?.problems ?? [],
      };
    });
  }

  /** Runs one reconcile now. Public for tests; normal flow goes through `report`. */
  reconcile(): Plan {
    this.scheduled = false;
    const started = performance.now();
    const desired = desiredState(this.snapshots, this.sourceOrder);
    const actual = new Map<string, ActualBackend>();
    for (const b of this.pool.all()) actual.set(b.id, b);
    const p = plan(desired, actual, this.synced);
    if (isEmptyPlan(p)) return p;
    // apply: the only place the controller changes the pool.
    this.pool.batch(() => {
      for (const spec of p.add) this.pool.add(spec);
      for (const spec of p.update) this.pool.update(spec);
      for (const id of p.drain) this.pool.drain(id);
    });
    const durationMs = performance.now() - started;
    this.reconciles++;
    this.log.info(
      {
        added: p.add.map((s) => s.id),
        updated: p.update.map((s) => s.id),
        drained: p.drain,
        routable: this.pool.routable.length,
      },
      'pool changed',
    );
    for (const l of this.listeners) l(p, durationMs);
    return p;
  }

  stop(): void {
    this.stopped = true;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate, not a timer: reports arriving in the same turn coalesce, and nothing waits longer than
    // the current I/O phase. Sources debounce their own event bursts.
    setImmediate(() => {
      if (!this.stopped) this.reconcile();
    });
  }
}
