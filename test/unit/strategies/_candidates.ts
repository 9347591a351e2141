// Fixtures shared by the strategy tests; not a *.test.ts file, so the test runner does not run it on its own.
import type { Candidate, PickRequest } from '../../../src/strategies/strategy.js';

/** A candidate whose load a test can change between picks. */
export type TestCandidate = { -readonly [K in keyof Candidate]: Candidate[K] };

export function cand(id: string, load: Partial<Omit<TestCandidate, 'id'>> = {}): TestCandidate {
  return { id, url: `http://${id}:80`, weight: 1, inflight: 0, ewmaMs: 25, ...load };
}

export function req(over: Partial<PickRequest> = {}): PickRequest {
  return { clientIp: '192.0.2.1', method: 'GET', url: '/', headers: {}, ...over };
}

/** A `rand` that returns these values in order and fails the test if asked for more. */
export function draws(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`rand called ${i + 1} times, only ${values.length} draws given`);
    return values[i++];
  };
}

/** Ids of `n` successive picks. */
export function picks(pick: () => Candidate | undefined, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pick()?.id ?? '<none>');
  return out;
}
