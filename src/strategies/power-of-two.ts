/**
 * power-of-two: "the power of two random choices" (Mitzenmacher), as in tower's p2c and grpc's least_request
 * with choiceCount 2. Sample two distinct candidates at random and send the request to the one with the lower
 * `inflight / weight`; on a tie, the first one sampled.
 *
 * Why: nearly as good at avoiding busy backends as a full least-connections scan, but O(1) per pick whatever
 * the pool size, and the randomness keeps several sidecars from all choosing the same "least loaded" backend
 * at once (the herd effect a global minimum has).
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const POWER_OF_TWO = 'power-of-two';

class PowerOfTwo implements Strategy {
  readonly name = POWER_OF_TWO;
  private readonly rand: () => number;

  constructor(rand: () => number) {
    this.rand = rand;
  }

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    // Two distinct indices without retrying: draw the second from the n-1 others and skip over the first.
    // Math.min guards against a rand() that returns exactly 1.
    const i = Math.min(n - 1, Math.floor(this.rand() * n));
    let j = Math.min(n - 2, Math.floor(this.rand() * (n - 1)));
    if (j >= i) j++;
    const a = candidates[i];
    const b = candidates[j];
    return b.inflight / b.weight < a.inflight / a.weight ? b : a;
  }
}

export function powerOfTwo(ctx: StrategyContext): Strategy {
  return new PowerOfTwo(ctx.rand);
}

registerStrategy(POWER_OF_TWO, powerOfTwo);
