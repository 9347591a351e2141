/**
 * Peak-EWMA latency estimate, after Finagle and tower's `PeakEwma`
 * (https://github.com/tower-rs/tower/blob/master/tower/src/load/peak_ewma.rs).
 *
 * A sample slower than the estimate replaces it at once ("peak"), so a backend that turns slow is avoided on
 * the next pick; a faster sample is blended in with weight `1 - exp(-elapsed/decay)`, so the estimate recovers
 * over about `decay` milliseconds rather than in one lucky request. Pure, so tests pass the clock in.
 */
export function peakEwma(prevMs: number, sampleMs: number, elapsedMs: number, decayMs: number): number {
  if (sampleMs > prevMs) return sampleMs;
  const w = Math.exp(-Math.max(0, elapsedMs) / decayMs);
  return prevMs * w + sampleMs * (1 - w);
}

/** Estimate for a backend with no samples yet: optimistic enough to get tried, not so low it takes everything. */
export const DEFAULT_RTT_MS = 25;
/** How long a latency sample keeps most of its influence. */
export const DEFAULT_DECAY_MS = 10_000;
