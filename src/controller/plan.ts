import { isDeepStrictEqual } from 'node:util';
import type { BackendSpec } from '../discovery/source.js';

/** What the pool currently holds, as far as planning needs to know. */
export interface ActualBackend {
  readonly spec: BackendSpec;
  readonly state: 'active' | 'draining';
}

/** The changes that bring the pool to the desired state. Empty when they already agree. */
export interface Plan {
  readonly add: readonly BackendSpec[];
  /** Specs whose weight, priority, url or source changed, or draining backends the desired state names again. */
  readonly update: readonly BackendSpec[];
  /** Ids of active backends no longer desired. */
  readonly drain: readonly string[];
}

export function isEmptyPlan(p: Plan): boolean {
  return p.add.length === 0 && p.update.length === 0 && p.drain.length === 0;
}

/** Specs are plain frozen values, so any field a source adds (weight, priority, health, limits) counts as a change. */
function sameSpec(a: BackendSpec, b: BackendSpec): boolean {
  return isDeepStrictEqual(a, b);
}

/**
 * Compares desired with actual. Pure: no I/O, no clock, no mutation. Running it again after applying its
 * result yields an empty plan (the controller is level-triggered, so this is what makes it idempotent).
 * `allowDrain` is false until every source has reported once, so a slow source never empties the pool at start.
 */
export function plan(
  desired: ReadonlyMap<string, BackendSpec>,
  actual: ReadonlyMap<string, ActualBackend>,
  allowDrain = true,
): Plan {
  const add: BackendSpec[] = [];
  const update: BackendSpec[] = [];
  const drain: string[] = [];
  for (const [id, spec] of desired) {
    const have = actual.get(id);
    if (!have) add.push(spec);
    else if (have.state === 'draining' || !sameSpec(have.spec, spec)) update.push(spec);
  }
  if (allowDrain) {
    for (const [id, have] of actual) if (have.state === 'active' && !desired.has(id)) drain.push(id);
  }
  return { add, update, drain };
}

/**
 * The union of every source's backends, one per id. When two sources name the same id, the source that
 * comes first in `order` wins (static `--backend` flags, then watch dirs in the order given, then DNS),
 * so the weight an operator typed on the command line beats discovery.
 */
export function desiredState(
  snapshots: ReadonlyMap<string, { readonly backends: readonly BackendSpec[] }>,
  order: readonly string[],
): Map<string, BackendSpec> {
  const desired = new Map<string, BackendSpec>();
  const names = [...order, ...[...snapshots.keys()].filter((n) => !order.includes(n))];
  for (const name of names) {
    const snap = snapshots.get(name);
    if (!snap) continue;
    for (const spec of snap.backends) if (!desired.has(spec.id)) desired.set(spec.id, spec);
  }
  return desired;
}
