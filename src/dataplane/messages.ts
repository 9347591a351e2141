import type { Address, Config } from '../config/types.js';
import type { PoolSnapshot } from '../pool/snapshot.js';

/** What a worker thread starts with: everything it needs to serve before it accepts a connection. */
export interface WorkerInit {
  readonly index: number;
  readonly config: Config;
  /** The shared in-flight counters (load-slots.ts) and their layout. */
  readonly load: SharedArrayBuffer;
  readonly stride: number;
  /** The latest pool: applied before the worker listens. */
  readonly snapshot: PoolSnapshot;
  /** Where to listen; port 0 only for the first worker, which reports the port the others then share. */
  readonly listen: Address;
}

/** Per-worker figures, for metrics and the status page. */
export interface WorkerStats {
  readonly index: number;
  readonly threadId: number;
  /** Client requests this worker finished since it started. */
  readonly requests: number;
  /** Client connections open now. */
  readonly connections: number;
  /** Event-loop delay, mean and max over the last interval, in seconds. */
  readonly eventLoopLagSeconds: number;
  readonly eventLoopLagP99Seconds: number;
  readonly eventLoopLagMaxSeconds: number;
}

/**
 * One batch of reports (see `Reporter` in snapshot.ts), flat to keep structured cloning cheap:
 * attempts as [id, status (-1 = none), error ('' = none), ewmaMs] × n; exchanges as [id ('' = none), status,
 * durationMs] × n; retries as [id, error] × n; refused as [id] × n.
 */
export interface ReportBatch {
  readonly attempts: (string | number)[];
  readonly exchanges: (string | number)[];
  readonly retries: string[];
  /** Backends whose failed attempt the retry budget kept from being retried. */
  readonly refused: string[];
}

export type ToWorker =
  | { readonly t: 'snapshot'; readonly snapshot: PoolSnapshot }
  | { readonly t: 'flush'; readonly id: number }
  | { readonly t: 'draining' }
  | { readonly t: 'unlisten' }
  | { readonly t: 'stop'; readonly deadline: number };

export type FromWorker =
  | { readonly t: 'listening'; readonly address: Address }
  | { readonly t: 'listen-error'; readonly message: string; readonly code: string | undefined }
  | { readonly t: 'applied'; readonly version: number }
  | ({ readonly t: 'report' } & ReportBatch)
  | { readonly t: 'flushed'; readonly id: number; readonly stats: WorkerStats }
  | { readonly t: 'log'; readonly chunk: string }
  | { readonly t: 'unlistened' }
  | { readonly t: 'stopped'; readonly drained: boolean };
