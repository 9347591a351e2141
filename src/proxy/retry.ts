import type { IncomingMessage } from 'node:http';

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * The request provably did not reach the application: the connection was never established, or an HTTP/2
 * backend refused the stream (REFUSED_STREAM, or a GOAWAY below its id: RFC 9113 §8.7, "not processed").
 */
const NEVER_REACHED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'H2_REFUSED_STREAM']);

/** The connection broke before any response byte: the application may or may not have acted on it. */
const BROKE_BEFORE_RESPONSE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * undici's own error codes, in the terms retry rules, passive health and the logs use. A socket that closes
 * before the response is complete (`other side closed`) is a reset; a dispatcher closed or destroyed under a
 * request (the backend was removed) is one too, since the request may have been sent; both timeouts are timeouts.
 */
const UNDICI_CODES: ReadonlyMap<string, string> = new Map([
  ['UND_ERR_SOCKET', 'ECONNRESET'],
  ['UND_ERR_CLOSED', 'ECONNRESET'],
  ['UND_ERR_DESTROYED', 'ECONNRESET'],
  ['UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT'],
  ['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'],
  ['UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'],
]);

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return UNDICI_CODES.get(code) ?? code;
  const message = err instanceof Error ? err.message : String(err);
  // Node reports a socket closed before any response as this message, without a code.
  return message === 'socket hang up' ? 'ECONNRESET' : message;
}

/** Whether the request carries a body (which then has to be replayable for a retry). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** Why an attempt failed, as far as retrying is concerned. */
export type Failure = { readonly kind: 'error'; readonly code: string } | { readonly kind: 'status'; readonly status: number };

/**
 * Whether a failed attempt may be sent to another backend (before budget and attempt limits):
 * - a connection that was never established (refused, unreachable): any method, since nothing reached the app;
 * - a reset before any response byte, or a 503 (the backend saying "not me, not now"): idempotent methods only,
 *   because a POST the backend may have acted on must not be silently replayed.
 * The body must be replayable: absent, or buffered whole (see `--retry-body-limit`).
 * Upstream timeouts are not retried: the backend may still be working on it, and a retry would double the load
 * exactly when the pool is slow.
 */
export function isRetryable(method: string, bodyReplayable: boolean, failure: Failure): boolean {
  if (!bodyReplayable) return false;
  if (failure.kind === 'status') return failure.status === 503 && IDEMPOTENT.has(method);
  if (NEVER_REACHED.has(failure.code)) return true;
  return BROKE_BEFORE_RESPONSE.has(failure.code) && IDEMPOTENT.has(method);
}

/**
 * Caps retries at a share of recent requests, so a sick pool does not get a retry storm on top of its normal
 * load (Envoy's retry budget). A rolling window of one-second buckets; `minRetries` per window are always
 * allowed, so a quiet bulb can still retry its occasional failure. Time is a parameter for tests.
 */
export class RetryBudget {
  private readonly buckets: { second: number; requests: number; retries: number }[];
  private readonly percent: number;
  private readonly minRetries: number;
  private readonly now: () => number;

  constructor(opts: { percent: number; windowSeconds?: number; minRetries?: number; now?: () => number }) {
    this.percent = opts.percent;
    this.minRetries = opts.minRetries ?? 10;
    this.now = opts.now ?? Date.now;
    this.buckets = Array.from({ length: opts.windowSeconds ?? 10 }, () => ({ second: -1, requests: 0, retries: 0 }));
  }

  private bucket(): { second: number; requests: number; retries: number } {
    const second = Math.floor(this.now() / 1000);
    const b = this.buckets[second % this.buckets.length];
    if (b.second !== second) {
      b.second = second;
      b.requests = 0;
      b.retries = 0;
    }
    return b;
  }

  /** Count one client request. */
  request(): void {
    this.bucket().requests++;
  }

  /** Take a retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    const current = this.bucket();
    const oldest = current.second - this.buckets.length + 1;
    let requests = 0;
    let retries = 0;
    for (const b of this.buckets) {
      if (b.second >= oldest) {
        requests += b.requests;
        retries += b.retries;
      }
    }
    if (retries >= Math.max(this.minRetries, (requests * this.percent) / 100)) return false;
    current.retries++;
    return true;
  }
}
