/**
 * round-robin: each pick takes the next candidate in order and ignores weight.
 *
 * Why it exists: when backends are alike it spreads requests exactly evenly (k picks each over k*n picks) with no
 * state beyond one integer, so it is the cheapest choice and the easiest to reason about.
 * The index is taken modulo the current length on every pick, so when the pool grows or shrinks it never reads
 * past the end and never gets stuck: it carries on from the same position in the new array.
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const ROUND_ROBIN = 'round-robin';

class RoundRobin implements Strategy {
  readonly name = ROUND_ROBIN;
  /** Position of the next pick; always < the length of the array it was last used with. */
  private next = 0;

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    let i = this.next;
    if (i >= n) i %= n;
    this.next = i + 1 === n ? 0 : i + 1;
    return candidates[i];
  }
}

export function roundRobin(_ctx?: StrategyContext): Strategy {
  return new RoundRobin();
}

registerStrategy(ROUND_ROBIN, roundRobin);
