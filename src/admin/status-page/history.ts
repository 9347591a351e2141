/**
 * Per-backend request and error rates for the status page: a ring of one-second deltas per backend, sampled
 * from counters the backends already keep (`Backend.requests`, and an error count the caller derives), so the
 * request path does no extra work at all.
 *
 * It runs only while someone watches: the first `touch()` (a `GET /status`) starts a one-second timer, and
 * `idleStopMs` after the last one the timer stops and every ring is dropped. A bulb nobody looks at pays
 * nothing; an open page pays one O(backends) pass a second and `2 × 4 × length` bytes per backend
 * (1.4 KB with the default three minutes).
 */
import type { Backend } from '../../pool/backend.js';

/** What the sampler reads from each backend, each call: monotonic totals. */
export interface Counters {
  readonly requests: number;
  readonly errors: number;
}

interface Ring {
  /** Totals at the previous sample, to take deltas from. */
  prevRequests: number;
  prevErrors: number;
  /** The sample number (`RateHistory.seq`) this backend was first seen at; it has points only after it. */
  readonly firstSeq: number;
  readonly requests: Uint32Array;
  readonly errors: Uint32Array;
}

export interface RateHistoryOptions {
  /** Every backend to sample right now (the pool's `all()`). */
  readonly backends: () => Iterable<Backend>;
  readonly counters: (b: Backend) => Counters;
  /** Samples kept per backend. */
  readonly length?: number;
  readonly intervalMs?: number;
  /** Stop sampling (and forget every ring) this long after the last `touch()`. */
  readonly idleStopMs?: number;
  readonly now?: () => number;
  /** Called after each sample (the event-loop lag window rolls with it). */
  readonly onSample?: () => void;
  /** Called when sampling starts and stops. */
  readonly onActive?: (active: boolean) => void;
}

export interface Rate {
  /** Requests per second over the window. */
  readonly rps: number;
  /** Errors / requests over the window; null with no requests. */
  readonly errorRate: number | null;
  /** Seconds of data the rate covers (less than asked for while the history fills). */
  readonly windowSeconds: number;
}

export class RateHistory {
  /** Samples taken since sampling (re)started; sample k is stored at ring index (k - 1) % length. */
  seq = 0;
  readonly length: number;
  readonly intervalMs: number;
  private readonly rings = new Map<Backend, Ring>();
  private readonly opts: RateHistoryOptions;
  private readonly idleStopMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastTouch = 0;
  /** Distinguishes one sampling run from the next, so a page never splices two runs' sample numbers. */
  epoch = 0;

  constructor(opts: RateHistoryOptions) {
    this.opts = opts;
    this.length = opts.length ?? 180;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.idleStopMs = opts.idleStopMs ?? 120_000;
    this.now = opts.now ?? Date.now;
  }

  get active(): boolean {
    return this.timer !== undefined;
  }

  /** Someone is watching: start sampling if stopped (taking the baseline at once), and push back the idle stop. */
  touch(): void {
    this.lastTouch = this.now();
    if (this.timer !== undefined) return;
    this.epoch = this.lastTouch;
    this.seq = 0;
    this.baseline();
    // unref: an open page must never keep a stopping bulb alive.
    this.timer = setInterval(() => this.tick(), this.intervalMs).unref();
    this.opts.onActive?.(true);
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.rings.clear();
    this.opts.onActive?.(false);
  }

  /** One sample now. Public so tests can drive it without waiting for the timer. */
  sample(): void {
    this.seq++;
    const i = (this.seq - 1) % this.length;
    const seen = new Set<Backend>();
    for (const b of this.opts.backends()) {
      seen.add(b);
      const c = this.opts.counters(b);
      const ring = this.rings.get(b);
      if (ring === undefined) {
        this.rings.set(b, newRing(c, this.seq, this.length));
        continue;
      }
      ring.requests[i] = Math.max(0, c.requests - ring.prevRequests);
      ring.errors[i] = Math.max(0, c.errors - ring.prevErrors);
      ring.prevRequests = c.requests;
      ring.prevErrors = c.errors;
    }
    // Backends that left the pool leave the history with it.
    if (seen.size !== this.rings.size) for (const b of this.rings.keys()) if (!seen.has(b)) this.rings.delete(b);
    this.opts.onSample?.();
  }

  /** The rate over the last `windowSeconds` (or as much of it as has been sampled); null before two samples. */
  rate(b: Backend, windowSeconds = 60): Rate | null {
    const ring = this.rings.get(b);
    if (ring === undefined) return null;
    const n = Math.min(this.available(ring), Math.round((windowSeconds * 1000) / this.intervalMs));
    if (n === 0) return null;
    let requests = 0;
    let errors = 0;
    for (let k = this.seq - n + 1; k <= this.seq; k++) {
      const i = (k - 1) % this.length;
      requests += ring.requests[i];
      errors += ring.errors[i];
    }
    const seconds = (n * this.intervalMs) / 1000;
    return { rps: requests / seconds, errorRate: requests === 0 ? null : errors / requests, windowSeconds: seconds };
  }

  /**
   * Requests per second for every sample after `since` (oldest first), at most the ring's length: what a page
   * that has seen sample `since` is missing. `since` 0 (or one from another epoch) gets everything kept.
   */
  since(b: Backend, since: number): number[] {
    const ring = this.rings.get(b);
    if (ring === undefined) return [];
    const n = Math.min(this.available(ring), Math.max(0, this.seq - since));
    const perSecond = 1000 / this.intervalMs;
    const out: number[] = new Array<number>(n);
    for (let j = 0; j < n; j++) {
      const k = this.seq - n + 1 + j;
      out[j] = ring.requests[(k - 1) % this.length] * perSecond;
    }
    return out;
  }

  private available(ring: Ring): number {
    return Math.min(this.length, this.seq - ring.firstSeq);
  }

  private baseline(): void {
    for (const b of this.opts.backends()) this.rings.set(b, newRing(this.opts.counters(b), this.seq, this.length));
  }

  private tick(): void {
    if (this.now() - this.lastTouch > this.idleStopMs) {
      this.stop();
      return;
    }
    this.sample();
  }
}

function newRing(c: Counters, seq: number, length: number): Ring {
  return {
    prevRequests: c.requests,
    prevErrors: c.errors,
    firstSeq: seq,
    requests: new Uint32Array(length),
    errors: new Uint32Array(length),
  };
}
