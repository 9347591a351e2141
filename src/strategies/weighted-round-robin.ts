/**
 * weighted-round-robin: nginx's smooth weighted round robin
 * (ngx_http_upstream_get_peer in src/http/ngx_http_upstream_round_robin.c).
 *
 * Each pick, every candidate's `current` grows by its weight; the largest `current` wins (the first in array
 * order on a tie) and gives back the total weight. Over any window of `total` picks every backend gets exactly
 * its share, and the heavy backend's turns are interleaved rather than bunched (5,1,1 → a a b a c a a), so a
 * weight-5 backend never receives five requests in a row while the others sit idle.
 *
 * The sequence is nginx's, but a pick does not touch every candidate (that cost ~20 µs at 10,000 backends).
 * `current` is stored as `base + t × weight`, where t counts picks since the array was last aligned: the
 * "+= weight for everyone" step is then just `t++`, and only the winner's `base` changes. Candidates of equal
 * weight grow at the same rate, so their order by (base desc, array index asc) changes only when one of them
 * wins; each distinct weight keeps a binary heap in that order, and a pick compares the tops of the heaps:
 * O(G + log n) for G distinct weights, about 10 in practice (backends ramping up in slow start at different
 * times each have a weight of their own meanwhile). With integer weights (the only kind a backend file allows)
 * every value is an exact integer, so the picks are exactly those of nginx's loop (`t × weight` is folded into
 * `base` long before it could lose precision). Slow start's fractional weights are rounded in both, differently,
 * so on a near-tie the two may pick differently.
 *
 * Weights are read when the candidates array changes, not per pick: the pool hands strategies a new array on
 * every weight change (an update, and every slow-start tick). `current` belongs to a backend id, not to an
 * array slot: when the array changes, ids that remain keep their value (so a reconcile does not restart the
 * cycle and bias it toward the first backends) and ids that left are forgotten. Aligning to a new array is
 * O(n) (~1 ms at 10,000); a retry's filtered copy, and the pool's array after it, each cost one, as before.
 * A pick allocates nothing.
 */
import { registerStrategy, type Candidate, type PickRequest, type Strategy, type StrategyContext } from './strategy.js';

export const WEIGHTED_ROUND_ROBIN = 'weighted-round-robin';

const EMPTY: readonly Candidate[] = [];
/**
 * `t × weight` is folded into `base` before it passes this. With |current| below it too (current stays within a
 * small multiple of the total weight, which is far less), |base| < 2^52 and every sum is an exact integer.
 */
const FOLD_LIMIT = 2 ** 51;

class WeightedRoundRobin implements Strategy {
  readonly name = WEIGHTED_ROUND_ROBIN;
  /** The candidates array the state below is aligned with (compared by identity). */
  private aligned: readonly Candidate[] = EMPTY;
  /** Ids in `aligned` order, kept so state can be carried over even if the old array has since been mutated. */
  private ids: string[] = [];
  /** Per slot (index in `aligned`): the weight read at alignment, and `current - t × weight`. */
  private weights: Float64Array = new Float64Array(0);
  private base: Float64Array = new Float64Array(0);
  /** Sum of `weights`, added in array order as nginx does. */
  private total = 0;
  /** Picks since alignment or the last fold. */
  private t = 0;
  /** Fold when `t` reaches this. */
  private tLimit = 0;
  private readonly foldLimit: number;
  /**
   * One heap of slots per distinct weight, stored back to back: group g owns heap[groupStart[g] ..
   * groupStart[g + 1]), best (highest base, then lowest slot) at its start.
   */
  private heap: Int32Array = new Int32Array(0);
  private groupStart: Int32Array = new Int32Array(1);
  private groupWeight: Float64Array = new Float64Array(0);

  constructor(foldLimit: number) {
    this.foldLimit = foldLimit;
  }

  pick(candidates: readonly Candidate[], _req: PickRequest): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    if (candidates !== this.aligned) this.realign(candidates);
    if (this.t === this.tLimit) this.fold();
    const t = ++this.t;
    const base = this.base;
    const heap = this.heap;
    const groupStart = this.groupStart;
    const groupWeight = this.groupWeight;
    const groups = groupWeight.length;
    let best = -1;
    let bestGroup = 0;
    let bestCurrent = -Infinity;
    for (let g = 0; g < groups; g++) {
      const s = heap[groupStart[g]];
      const c = base[s] + t * groupWeight[g];
      // The tops hold each group's largest `current` (lowest slot among equals), so this is nginx's scan.
      if (c > bestCurrent || (c === bestCurrent && s < best)) {
        bestCurrent = c;
        best = s;
        bestGroup = g;
      }
    }
    base[best] = base[best] - this.total;
    this.siftDown(groupStart[bestGroup], groupStart[bestGroup + 1], 0);
    return candidates[best];
  }

  /** Whether slot a goes before slot b in its weight group's heap. */
  private before(a: number, b: number): boolean {
    const base = this.base;
    return base[a] > base[b] || (base[a] === base[b] && a < b);
  }

  /** Restores the heap in heap[start, end) after the entry at local index k got worse (or in heapify). */
  private siftDown(start: number, end: number, k: number): void {
    const heap = this.heap;
    const size = end - start;
    const moving = heap[start + k];
    for (;;) {
      let child = 2 * k + 1;
      if (child >= size) break;
      if (child + 1 < size && this.before(heap[start + child + 1], heap[start + child])) child++;
      const c = heap[start + child];
      if (!this.before(c, moving)) break;
      heap[start + k] = c;
      k = child;
    }
    heap[start + k] = moving;
  }

  /** Moves `t × weight` into `base` so the products stay exact; keeps every heap's order (a group shifts as one). */
  private fold(): void {
    const t = this.t;
    const base = this.base;
    const weights = this.weights;
    for (let i = 0; i < base.length; i++) base[i] = base[i] + t * weights[i];
    this.t = 0;
  }

  /** Carries `current` over by id and rebuilds the heaps; runs once per candidates array, never per pick. */
  private realign(candidates: readonly Candidate[]): void {
    const previous = new Map<string, number>();
    for (let i = 0; i < this.ids.length; i++) previous.set(this.ids[i], this.base[i] + this.t * this.weights[i]);
    const n = candidates.length;
    const ids = new Array<string>(n);
    const weights = new Float64Array(n);
    const base = new Float64Array(n);
    const groupOf = new Int32Array(n);
    const groupByWeight = new Map<number, number>();
    const sizes: number[] = [];
    let total = 0;
    let maxWeight = 0;
    for (let i = 0; i < n; i++) {
      const c = candidates[i];
      const w = c.weight;
      ids[i] = c.id;
      weights[i] = w;
      base[i] = previous.get(c.id) ?? 0;
      total += w;
      if (w > maxWeight) maxWeight = w;
      let g = groupByWeight.get(w);
      if (g === undefined) {
        g = sizes.length;
        groupByWeight.set(w, g);
        sizes.push(0);
      }
      groupOf[i] = g;
      sizes[g]++;
    }
    const groups = sizes.length;
    const groupStart = new Int32Array(groups + 1);
    const groupWeight = new Float64Array(groups);
    for (const [w, g] of groupByWeight) groupWeight[g] = w;
    for (let g = 0; g < groups; g++) groupStart[g + 1] = groupStart[g] + sizes[g];
    // Slots go in ascending order, then each group is heapified.
    const heap = new Int32Array(n);
    const fill = groupStart.slice(0, groups);
    for (let i = 0; i < n; i++) heap[fill[groupOf[i]]++] = i;
    this.aligned = candidates;
    this.ids = ids;
    this.weights = weights;
    this.base = base;
    this.total = total;
    this.t = 0;
    this.tLimit = Math.max(1, Math.floor(this.foldLimit / maxWeight));
    this.heap = heap;
    this.groupStart = groupStart;
    this.groupWeight = groupWeight;
    for (let g = 0; g < groups; g++) {
      const start = groupStart[g];
      const end = groupStart[g + 1];
      for (let k = ((end - start) >> 1) - 1; k >= 0; k--) this.siftDown(start, end, k);
    }
  }
}

/** `foldLimit` is for tests, which lower it so that folding happens within a few picks. */
export function weightedRoundRobin(_ctx?: StrategyContext, foldLimit = FOLD_LIMIT): Strategy {
  return new WeightedRoundRobin(foldLimit);
}

registerStrategy(WEIGHTED_ROUND_ROBIN, weightedRoundRobin);
