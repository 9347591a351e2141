/**
 * least-time: NGINX Plus `least_time header` semantics with tower's PeakEwma cost
 * (https://github.com/tower-rs/tower/blob/master/tower/src/load/peak_ewma.rs).
 *
 * cost = ewmaMs × (inflight + 1) / weight, lowest wins. The latency estimate alone would send every request to
 * the fastest backend until its samples caught up; multiplying by (inflight + 1) charges each queued request,
 * so load spreads as soon as it builds, and a backend that turns slow is avoided at once because the estimate
 * is a peak (see pool/load.ts). Dividing by weight lets a bigger backend carry proportionally more.
 * Ties (e.g. fresh backends all at the default RTT) are broken in rotation, as in least-connections.
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const LEAST_TIME = 'least-time';

/** The cost least-time minimises; exported so benchmarks and power-of-two-style variants can share it. */
export function leastTimeCost(c: Candidate): number {
  return (c.ewmaMs * (c.inflight + 1)) / c.weight;
}

class LeastTime implements Strategy {
  readonly name = LEAST_TIME;
  /** Where the next scan starts: one past the last winner, so ties rotate. */
  private start = 0;

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    let i = this.start < n ? this.start : this.start % n;
    let best = i;
    let bestCost = Infinity;
    for (let k = 0; k < n; k++) {
      const cost = leastTimeCost(candidates[i]!);
      if (cost < bestCost) {
        bestCost = cost;
        best = i;
      }
      if (++i === n) i = 0;
    }
    this.start = best + 1 === n ? 0 : best + 1;
    return candidates[best];
  }
}

export function leastTime(_ctx?: StrategyContext): Strategy {
  return new LeastTime();
}

registerStrategy(LEAST_TIME, leastTime);
