import type { IncomingHttpHeaders } from 'node:http';

/**
 * What a strategy may read of a backend. The pool's `Backend` satisfies it; custom strategy modules get the
 * same view. Read-only: a strategy chooses, it never changes load or health.
 */
export interface Candidate {
  readonly id: string;
  readonly url: string;
  /** Relative share, integer >= 1. */
  readonly weight: number;
  /** Requests in flight to this backend right now. */
  readonly inflight: number;
  /** Peak-EWMA of the time to response headers, ms (a default for backends with no samples yet). */
  readonly ewmaMs: number;
}

/** The parts of a request a strategy may key on. */
export interface PickRequest {
  /** Client address as bulb saw it on the socket. */
  readonly clientIp: string;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * Picks one backend per request.
 * `candidates` is already filtered by the pool (healthy, not draining) and is never empty. The same array
 * object is passed until the pool changes, so a strategy may cache derived data keyed on its identity; a
 * weight change (including every slow-start step) always comes with a new array, while `inflight` and
 * `ewmaMs` change in place (see `loadChanged`).
 * `pick` is called on the request path: it must not block, throw or do I/O. Returning `undefined` (or something
 * not in `candidates`) makes bulb answer 503.
 */
export interface Strategy<B extends Candidate = Candidate> {
  readonly name: string;
  pick(candidates: readonly B[], req: PickRequest): B | undefined;
  /**
   * Optional. Called by the pool right after a backend's `inflight` or `ewmaMs` changed (a request sent to it,
   * its response headers, a request finished): three calls per request, synchronously on the request path, for
   * any backend of the pool, including ones not in the current candidates. It lets a strategy that keeps
   * candidates ordered by load re-file one of them instead of rescanning all of them per pick. Same rules
   * as `pick`: quick, no I/O, must not throw.
   */
  loadChanged?(candidate: B): void;
}

/** Where a consistent-hash key comes from. */
export type HashKey = { readonly kind: 'client-ip' } | { readonly kind: 'header'; readonly name: string };

/** Inputs a strategy is built with. Randomness is a parameter so tests can assert exact choices. */
export interface StrategyContext {
  /** Uniform in [0, 1). */
  readonly rand: () => number;
  readonly hashKey: HashKey;
  /**
   * True when other threads change `inflight` too (`--workers` > 1): their changes are not reported through
   * `loadChanged`, so a strategy must not keep an order over in-flight counts between picks.
   */
  readonly sharedLoad?: boolean;
}

export type StrategyFactory = (ctx: StrategyContext) => Strategy;

const registry = new Map<string, StrategyFactory>();

/** Registers a built-in strategy under its `--strategy` name. */
export function registerStrategy(name: string, factory: StrategyFactory): void {
  if (registry.has(name)) throw new Error(`strategy ${name} registered twice`);
  registry.set(name, factory);
}

export function strategyFactory(name: string): StrategyFactory | undefined {
  return registry.get(name);
}

export function strategyNames(): string[] {
  return [...registry.keys()];
}

export function defaultContext(overrides: Partial<StrategyContext> = {}): StrategyContext {
  return { rand: Math.random, hashKey: { kind: 'client-ip' }, ...overrides };
}
