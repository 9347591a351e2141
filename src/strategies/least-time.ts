/**
 * least-time: NGINX Plus `least_time header` semantics with tower's PeakEwma cost
 * (https://github.com/tower-rs/tower/blob/master/tower/src/load/peak_ewma.rs).
 *
 * cost = ewmaMs × (inflight + 1) / weight, lowest wins. The latency estimate alone would send every request to
 * the fastest backend until its samples caught up; multiplying by (inflight + 1) charges each queued request,
 * so load spreads as soon as it builds, and a backend that turns slow is avoided at once because the estimate
 * is a peak (see pool/load.ts). Dividing by weight lets a bigger backend carry proportionally more.
 *
 * Ties (e.g. fresh backends all at the default RTT) go to the candidate picked least recently, then to the first
 * in array order, so idle backends take turns and one that just joined is tried first. (The linear scan this
 * replaced rotated its starting point instead; the two agree while the tied set stays the same.)
 *
 * Scanning every candidate per pick cost ~20 µs at 10,000 backends. Instead the candidates sit in an indexed
 * binary heap keyed on (cost, last pick, array index). A cost changes only when inflight or ewmaMs does, which
 * the pool reports through `loadChanged` (the entry is re-filed, O(log n); three calls per request), or when a
 * weight does, which always comes with a new array. A pick takes the top and re-files it under its new pick
 * number (O(log n)). The top's cost is re-read before it is returned, so a winner whose load rose without a
 * report is still passed over; a cost that fell unreported is missed until the next rebuild.
 *
 * The heap is built (O(n), ~1 ms at 10,000) on the second pick from a new array; the first is a plain scan with
 * the same rule. A retry hands the strategy a one-off copy (the pool's array minus the backends tried), which is
 * thus scanned once rather than costing two rebuilds, and leaves the heap and the pick history alone. History
 * (last-pick numbers) is kept per candidate object and cut down to the new array's members at each rebuild.
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const LEAST_TIME = 'least-time';

/** The cost least-time minimises; exported so benchmarks and power-of-two-style variants can share it. */
export function leastTimeCost(c: Candidate): number {
  return (c.ewmaMs * (c.inflight + 1)) / c.weight;
}

const EMPTY: readonly Candidate[] = [];

/**
 * least-time's rule by a scan: the index of the lowest cost; on a tie the one picked longest ago
 * (`lastPickOf`, read only on a tie: a lookup per candidate would cost more than the scan), then array order.
 * A NaN cost loses to any number. `candidates` must not be empty.
 */
function lowestCost(candidates: readonly Candidate[], lastPickOf: (c: Candidate) => number): number {
  let best = 0;
  let bestCost = leastTimeCost(candidates[0]);
  let bestPick = -1;
  for (let i = 1; i < candidates.length; i++) {
    const c = candidates[i];
    const cost = leastTimeCost(c);
    if (cost < bestCost || (bestCost !== bestCost && cost === cost)) {
      best = i;
      bestCost = cost;
      bestPick = -1;
    } else if (cost === bestCost) {
      if (bestPick < 0) bestPick = lastPickOf(candidates[best]);
      const p = lastPickOf(c);
      if (p < bestPick) {
        best = i;
        bestPick = p;
      }
    }
  }
  return best;
}

class LeastTime implements Strategy {
  readonly name = LEAST_TIME;
  /** The candidates array the heap is built over (compared by identity). */
  private aligned: readonly Candidate[] = EMPTY;
  /** Candidate → its index in `aligned` (its slot), for `loadChanged`. */
  private slotOf = new Map<Candidate, number>();
  /** Per slot: the cost last read, and the pick number of its last win (0 = never). */
  private cost: Float64Array = new Float64Array(0);
  private lastPick: Float64Array = new Float64Array(0);
  /** Heap of slots, best first; `pos[slot]` is the slot's index in `heap`. */
  private heap: Int32Array = new Int32Array(0);
  private pos: Int32Array = new Int32Array(0);
  /** The last array picked from that the heap is not built for: the heap is built when it comes again. */
  private pending: readonly Candidate[] = EMPTY;
  /** Last-pick numbers of scan winners that are not in `aligned`, until the next rebuild. */
  private scanPicks = new Map<Candidate, number>();
  private picks = 0;

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    if (candidates !== this.aligned) {
      if (candidates !== this.pending) {
        // Likely a retry's one-off copy (the pool's array minus the backends tried): building a heap for it,
        // then again for the pool's array, would cost two rebuilds per retry.
        this.pending = candidates;
        return this.scan(candidates);
      }
      this.rebuild(candidates);
    }
    let top = this.heap[0];
    // The top's cost is re-read: a rise nobody reported re-files it, and the new top is checked in turn.
    for (let tries = candidates.length; tries > 0 && this.refile(top, candidates[top]); tries--) top = this.heap[0];
    this.lastPick[top] = ++this.picks;
    this.siftDown(0);
    return candidates[top];
  }

  loadChanged(candidate: Candidate): void {
    const slot = this.slotOf.get(candidate);
    // Not in the heap's array (draining, saturated, not adopted yet): scans and the next rebuild read it live.
    if (slot !== undefined) this.refile(slot, candidate);
  }

  /** The heap's rule by brute force, over an array the heap is not built for. */
  private scan(candidates: readonly Candidate[]): Candidate {
    const winner = candidates[lowestCost(candidates, this.lastPickOf)];
    const slot = this.slotOf.get(winner);
    if (slot === undefined) this.scanPicks.set(winner, ++this.picks);
    else {
      this.lastPick[slot] = ++this.picks;
      this.siftDown(this.pos[slot]);
    }
    return winner;
  }

  private readonly lastPickOf = (c: Candidate): number => {
    const slot = this.slotOf.get(c);
    return slot === undefined ? (this.scanPicks.get(c) ?? 0) : this.lastPick[slot];
  };

  /** Re-reads a slot's cost and moves it to its place in the heap; returns whether the cost had changed. */
  private refile(slot: number, c: Candidate): boolean {
    // leastTimeCost written out, and NaN left to `before` rather than mapped to Infinity here: both the call
    // and the mapping measured 16 B per call (a boxed double), and this runs on every pick and thrice a request.
    const cost = (c.ewmaMs * (c.inflight + 1)) / c.weight;
    const old = this.cost[slot];
    if (cost === old || (cost !== cost && old !== old)) return false;
    this.cost[slot] = cost;
    if (cost < old || old !== old) this.siftUp(this.pos[slot]);
    else this.siftDown(this.pos[slot]);
    return true;
  }

  /** Whether slot a goes before slot b: lower cost, then picked longer ago, then earlier in the array. */
  private before(a: number, b: number): boolean {
    const ca = this.cost[a];
    const cb = this.cost[b];
    if (ca < cb) return true;
    if (ca > cb) return false;
    // A NaN cost (which no backend should produce) ranks after every number, so it cannot break the order.
    if (ca !== cb) return ca === ca;
    const lastPick = this.lastPick;
    return lastPick[a] < lastPick[b] || (lastPick[a] === lastPick[b] && a < b);
  }

  private siftUp(k: number): void {
    const heap = this.heap;
    const pos = this.pos;
    const moving = heap[k];
    while (k > 0) {
      const parent = (k - 1) >> 1;
      const p = heap[parent];
      if (!this.before(moving, p)) break;
      heap[k] = p;
      pos[p] = k;
      k = parent;
    }
    heap[k] = moving;
    pos[moving] = k;
  }

  private siftDown(k: number): void {
    const heap = this.heap;
    const pos = this.pos;
    const size = heap.length;
    const moving = heap[k];
    for (;;) {
      let child = 2 * k + 1;
      if (child >= size) break;
      if (child + 1 < size && this.before(heap[child + 1], heap[child])) child++;
      const c = heap[child];
      if (!this.before(c, moving)) break;
      heap[k] = c;
      pos[c] = k;
      k = child;
    }
    heap[k] = moving;
    pos[moving] = k;
  }

  /** Reads every cost and heapifies (O(n)); runs on the second pick from a new candidates array, never per pick. */
  private rebuild(candidates: readonly Candidate[]): void {
    const n = candidates.length;
    const slotOf = new Map<Candidate, number>();
    const cost = new Float64Array(n);
    const lastPick = new Float64Array(n);
    const heap = new Int32Array(n);
    const pos = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = candidates[i];
      slotOf.set(c, i);
      cost[i] = leastTimeCost(c);
      lastPick[i] = this.lastPickOf(c);
      heap[i] = i;
      pos[i] = i;
    }
    this.aligned = candidates;
    this.pending = EMPTY;
    this.scanPicks = new Map();
    this.slotOf = slotOf;
    this.cost = cost;
    this.lastPick = lastPick;
    this.heap = heap;
    this.pos = pos;
    for (let k = (n >> 1) - 1; k >= 0; k--) this.siftDown(k);
  }
}

/**
 * least-time when other workers change the in-flight counts too (`ctx.sharedLoad`): their requests start and
 * finish without a `loadChanged` here, so the heap would keep a backend whose load fell below the top, unseen,
 * until the next rebuild. Every pick scans instead (the same rule: cost, then picked longest ago, then array
 * order). O(n) per pick is what the heap replaced, ~20 µs at 10,000 backends and well under 1 µs for the few
 * backends a sidecar usually has; a load view that is never stale is worth more than that here.
 */
class SharedLeastTime implements Strategy {
  readonly name = LEAST_TIME;
  /** Pick number of each candidate's last win; weak, so removed backends leave with their objects. */
  private readonly lastPick = new WeakMap<Candidate, number>();
  private readonly lastPickOf = (c: Candidate): number => this.lastPick.get(c) ?? 0;
  private picks = 0;

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const best = candidates[lowestCost(candidates, this.lastPickOf)];
    this.lastPick.set(best, ++this.picks);
    return best;
  }
}

export function leastTime(ctx?: Partial<StrategyContext>): Strategy {
  return ctx?.sharedLoad === true ? new SharedLeastTime() : new LeastTime();
}

registerStrategy(LEAST_TIME, leastTime);
