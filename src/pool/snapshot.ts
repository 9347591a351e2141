/**
 * What the controller tells the data plane: the whole pool, as plain data, versioned. Never a delta: a worker
 * that starts (or restarts) applies the latest snapshot before it accepts a connection, and any snapshot can be
 * applied on top of any earlier one (Envoy's main thread posts whole host sets to its workers the same way).
 */
export interface TargetSnapshot {
  readonly id: string;
  readonly url: string;
  /** The weight strategies use: the configured weight, or less while slow start ramps it up. */
  readonly weight: number;
  /** At most this many requests in flight across every worker; undefined = no limit. */
  readonly maxConnections: number | undefined;
  /** Where its in-flight counter lives in the shared load buffer (see load-slots.ts). */
  readonly slot: number;
  /** Takes new requests (the pool's one eligibility rule, decided by the controller). */
  readonly routable: boolean;
  /**
   * Draining: when (epoch ms) whatever is still in flight to it gets cut (the drain timeout). A worker uses it
   * when the backend leaves the snapshot: before this moment its requests are let finish (they raced the
   * removal), from it on they are cut.
   */
  readonly cutAt?: number;
  /** How an https backend is reached (CA, SNI, client certificate); a new `version` means new connections use new material. */
  readonly tls: TlsMaterial | undefined;
}

import type { TlsMaterial } from '../tls/material.js';

export interface PoolSnapshot {
  /** Increases with every snapshot; a data plane acknowledges the versions it has applied. */
  readonly version: number;
  /** Every backend, draining ones included (their in-flight requests finish), in the pool's order. */
  readonly targets: readonly TargetSnapshot[];
}

/** What a backend's request came to, as the data plane reports it back. */
export interface Outcome {
  /** Set when no response came back (refused, reset, timeout). A short code such as `ECONNREFUSED`. */
  readonly error?: string;
  /** Response status, when there was a response. */
  readonly status?: number;
}

/**
 * The one way back from the data plane to the controller. Called on the request path, synchronously in one
 * process, batched per event-loop turn across threads; implementations must be quick and must not throw.
 *
 * Order, for every finished attempt: the data plane first takes it off the shared in-flight counter and tells
 * its strategy (`loadChanged`), then reports `attemptDone`, which the controller's pool fans out to the
 * backend's counters, passive health (outlier detection), and the drain of a draining backend, in that order.
 * `exchangeDone` and `retried` feed the metrics.
 */
export interface Reporter {
  attemptDone(id: string, outcome: Outcome, ewmaMs: number): void;
  /** `backend` is the last one tried (undefined when none was available); status 499 means the client left first. */
  exchangeDone(backend: string | undefined, status: number, durationMs: number): void;
  retried(backend: string, error: string): void;
  /** An attempt on `backend` failed and would have been retried, but the retry budget was spent. */
  retryRefused(backend: string): void;
}
