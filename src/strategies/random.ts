/**
 * random: weighted random choice using `ctx.rand`.
 *
 * Why: needs no shared state, so several bulb sidecars in front of the same backends do not fall into step
 * with each other the way independent round robins can. Each backend is chosen with probability
 * weight / total. Prefix sums of the weights are built once per candidates array (the pool passes the same
 * array until it changes) and each pick is a binary search, O(log n).
 */
import {
  registerStrategy,
  type Candidate,
  type PickRequest,
  type Strategy,
  type StrategyContext,
} from './strategy.js';

export const RANDOM = 'random';

/** Prefix sums of weights: `sums[i]` = weight of candidates 0..i. Exported for tests and benchmarks. */
export function prefixSums(candidates: readonly Candidate[]): Float64Array {
  const sums = new Float64Array(candidates.length);
  let total = 0;
  for (let i = 0; i < candidates.length; i++) {
    total += candidates[i].weight;
    sums[i] = total;
  }
  return sums;
}

/** Index of the first prefix sum greater than `r`; the last index when `r` >= total (e.g. rand() returned 1). */
export function searchPrefix(sums: Float64Array, r: number): number {
  let lo = 0;
  let hi = sums.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sums[mid] > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

class WeightedRandom implements Strategy {
  readonly name = RANDOM;
  private readonly rand: () => number;
  /** Keyed by array identity, so a strategy shared by several pools still never rebuilds per pick. */
  private readonly cache = new WeakMap<readonly Candidate[], Float64Array>();
  private lastArray: readonly Candidate[] | undefined;
  private lastSums: Float64Array = new Float64Array(0);

  constructor(rand: () => number) {
    this.rand = rand;
  }

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) return candidates[0];
    if (candidates !== this.lastArray) {
      let sums = this.cache.get(candidates);
      if (sums === undefined) {
        sums = prefixSums(candidates);
        this.cache.set(candidates, sums);
      }
      this.lastArray = candidates;
      this.lastSums = sums;
    }
    const sums = this.lastSums;
    return candidates[searchPrefix(sums, this.rand() * sums[n - 1])];
  }
}

export function weightedRandom(ctx: StrategyContext): Strategy {
  return new WeightedRandom(ctx.rand);
}

registerStrategy(RANDOM, weightedRandom);
