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
  readonly backends: number;
  readonly error: string | undefined;
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
  private scheduled = false;
  private stopped = false;
  private readonly pool: Pool;
  private readonly sourceOrder: readonly string[];
  private readonly log: Logger;
  /** How many reconciles changed something; for tests and metrics. */
  reconciles = 0;
  private readonly listeners: Array<(p: Plan) => void> = [];

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
    this.reportedAt.set(snapshot.source, new Date());
    const previous = this.snapshots.get(snapshot.source);
    if (previous && isDeepStrictEqual(previous, snapshot)) return;
    if (snapshot.error && snapshot.error !== previous?.error) {
      this.log.warn({ source: snapshot.source, error: snapshot.error, kept: snapshot.backends.length }, 'discovery source failing; keeping its last-known-good backends');
    }
    this.snapshots.set(snapshot.source, snapshot);
    this.schedule();
  };

  onPlan(listener: (p: Plan) => void): void {
    this.listeners.push(listener);
  }

  sources(): SourceStatus[] {
    return this.sourceOrder.map((name) => {
      const s = this.snapshots.get(name);
      return {
        name,
        synced: s !== undefined,
        lastSnapshotAt: this.reportedAt.get(name)?.toISOString(),
        backends: s?.backends.length ?? 0,
        error: s?.error,
        problems: s?.problems ?? [],
      };
    });
  }

  /** Runs one reconcile now. Public for tests; normal flow goes through `report`. */
  reconcile(): Plan {
    this.scheduled = false;
    const desired = desiredState(this.snapshots, this.sourceOrder);
    const actual = new Map<string, ActualBackend>();
    for (const b of this.pool.all()) actual.set(b.id, b);
    const p = plan(desired, actual, this.synced);
    if (isEmptyPlan(p)) return p;
    // apply: the only place the controller changes the pool.
    for (const spec of p.add) this.pool.add(spec);
    for (const spec of p.update) this.pool.update(spec);
    for (const id of p.drain) this.pool.drain(id);
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
    for (const l of this.listeners) l(p);
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
