/**
 * Per-backend load that every data-plane thread must see at once: the number of requests in flight. nginx keeps
 * it in a shared `zone` (without one, `max_conns` and `least_conn` count per worker); HAProxy keeps it in atomics
 * on the shared server struct. bulb keeps it in a SharedArrayBuffer of Int32 counters, one slot per backend,
 * changed only with `Atomics`, so least-connections, power-of-two, least-time, `maxConnections` and the drain
 * all read the same number from any thread, with no message and no lag.
 *
 * Each slot holds the total and, beside it, each worker's own share (two atomic adds per change): when a worker
 * dies with requests in flight, the controller takes that worker's share off the totals, so a crash never
 * leaves a backend looking busy for ever.
 *
 * The controller owns slot numbers: it hands one to each backend it adds and takes it back when the backend
 * leaves. A freed slot is reused only after a quarantine and only when its counter reads 0, so a request that
 * was still finishing on a backend removed at its drain timeout cannot decrement the counter of a backend added
 * after it.
 */

/** Room reserved for this many backends; memory is committed only as slots are used. */
const MAX_SLOTS = 1 << 18;
const INITIAL_SLOTS = 1024;
/** A freed slot waits this long before reuse (longer than any request still unwinding after a forced removal). */
const SLOT_QUARANTINE_MS = 10_000;

/** The counters, as every thread sees them: a length-tracking view over the growable shared buffer. */
export function loadCounters(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer);
}

export class LoadSlots {
  readonly buffer: SharedArrayBuffer;
  readonly counters: Int32Array;
  /** Int32s per slot: the total, then one per worker. */
  readonly stride: number;
  private used = 0;
  private readonly quarantine: { readonly slot: number; readonly at: number }[] = [];

  constructor(
    workers: number,
    private readonly now: () => number = Date.now,
  ) {
    this.stride = workers + 1;
    const bytes = 4 * this.stride;
    this.buffer = new SharedArrayBuffer(INITIAL_SLOTS * bytes, { maxByteLength: MAX_SLOTS * bytes });
    this.counters = loadCounters(this.buffer);
  }

  /** Requests in flight to the backend in `slot`, across every worker. */
  inflight(slot: number): number {
    return Atomics.load(this.counters, slot * this.stride);
  }

  /** Worker `worker` is gone: whatever it had in flight is not in flight any more. */
  forgetWorker(worker: number): void {
    const c = this.counters;
    for (let slot = 0; slot < this.used; slot++) {
      const at = slot * this.stride;
      const mine = Atomics.exchange(c, at + 1 + worker, 0);
      if (mine !== 0) Atomics.sub(c, at, mine);
    }
  }

  alloc(): number {
    const q = this.quarantine[0];
    if (q !== undefined && this.now() - q.at >= SLOT_QUARANTINE_MS && this.inflight(q.slot) === 0) {
      this.quarantine.shift();
      return q.slot;
    }
    const bytes = 4 * this.stride;
    if ((this.used + 1) * bytes > this.buffer.byteLength) {
      if (this.used >= MAX_SLOTS) throw new Error(`more than ${MAX_SLOTS} backends`);
      this.buffer.grow(Math.min(MAX_SLOTS * bytes, this.buffer.byteLength * 2));
    }
    return this.used++;
  }

  release(slot: number): void {
    this.quarantine.push({ slot, at: this.now() });
  }
}
