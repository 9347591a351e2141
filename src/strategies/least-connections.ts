/**
 * least-connections: picks the candidate with the fewest requests in flight per unit of weight
 * (`inflight / weight`), so a weight-2 backend is considered as busy as a weight-1 backend with half its load.
 *
 * Why: in-flight count is the one load signal that reacts immediately, so slow or stuck backends stop getting
 * new requests without waiting for latency samples. Ties are broken in rotation: the scan starts just after the
 * previous winner, so when everything is idle (the common case at low traffic) picks cycle through all
 * candidates instead of piling onto the first one. One scan, no allocation; it stops at the first idle backend,
 * since nothing can beat a load of 0 and the first one in scan order is the one rotation wants. So a large pool
 * that is mostly idle (the usual case) costs a few steps per pick, and only a saturated one costs O(n).
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const LEAST_CONNECTIONS = 'least-connections';

class LeastConnections implements Strategy {
  readonly name = LEAST_CONNECTIONS;
  /** Where the next scan starts: one past the last winner, so ties rotate. */
  private start = 0;

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    let i = this.start < n ? this.start : this.start % n;
    let best = i;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const c = candidates[i];
      const load = c.inflight / c.weight;
      // Strictly less: on a tie the earlier one in scan order (the next in rotation) stays.
      if (load < bestLoad) {
        bestLoad = load;
        best = i;
        if (load === 0) break;
      }
      if (++i === n) i = 0;
    }
    this.start = best + 1 === n ? 0 : best + 1;
    return candidates[best];
  }
}

export function leastConnections(_ctx?: StrategyContext): Strategy {
  return new LeastConnections();
}

registerStrategy(LEAST_CONNECTIONS, leastConnections);
