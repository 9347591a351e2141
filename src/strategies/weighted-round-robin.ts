/**
 * weighted-round-robin: nginx's smooth weighted round robin
 * (ngx_http_upstream_get_peer in src/http/ngx_http_upstream_round_robin.c).
 *
 * Each pick, every candidate's `current` grows by its weight; the largest `current` wins (the first in array
 * order on a tie) and gives back the total weight. Over any window of `total` picks every backend gets exactly
 * its share, and the heavy backend's turns are interleaved rather than bunched (5,1,1 → a a b a c a a), so a
 * weight-5 backend never receives five requests in a row while the others sit idle.
 *
 * `current` belongs to a backend id, not to an array slot: when the pool changes, ids that remain keep their
 * value (so a reconcile does not restart the cycle and bias it toward the first backends) and ids that left
 * are forgotten. Per pick the state is read from a Float64Array aligned with the candidates array, rebuilt
 * only when the array object changes, so a pick allocates nothing. Weights are read live on every pick, so a
 * weight changed in place still takes effect.
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const WEIGHTED_ROUND_ROBIN = 'weighted-round-robin';

const EMPTY: readonly Candidate[] = [];

class WeightedRoundRobin implements Strategy {
  readonly name = WEIGHTED_ROUND_ROBIN;
  /** The candidates array `current` is aligned with (compared by identity). */
  private aligned: readonly Candidate[] = EMPTY;
  /** Ids in `aligned` order, kept so state can be carried over even if the old array has since been mutated. */
  private ids: string[] = [];
  private current: Float64Array = new Float64Array(0);

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (candidates !== this.aligned) this.realign(candidates);
    const current = this.current;
    let total = 0;
    let best = 0;
    let bestCurrent = -Infinity;
    for (let i = 0; i < n; i++) {
      const w = candidates[i]!.weight;
      total += w;
      const c = current[i]! + w;
      current[i] = c;
      if (c > bestCurrent) {
        bestCurrent = c;
        best = i;
      }
    }
    current[best] = bestCurrent - total;
    return candidates[best];
  }

  /** Carry `current` over by id; runs once per pool change, never per pick. */
  private realign(candidates: readonly Candidate[]): void {
    const previous = new Map<string, number>();
    for (let i = 0; i < this.ids.length; i++) previous.set(this.ids[i]!, this.current[i]!);
    const ids = new Array<string>(candidates.length);
    const current = new Float64Array(candidates.length);
    for (let i = 0; i < candidates.length; i++) {
      const id = candidates[i]!.id;
      ids[i] = id;
      current[i] = previous.get(id) ?? 0;
    }
    this.aligned = candidates;
    this.ids = ids;
    this.current = current;
  }
}

export function weightedRoundRobin(_ctx?: StrategyContext): Strategy {
  return new WeightedRoundRobin();
}

registerStrategy(WEIGHTED_ROUND_ROBIN, weightedRoundRobin);
