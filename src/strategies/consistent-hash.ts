/**
 * consistent-hash: a ketama-style hash ring, keyed by the client IP or a request header (`ctx.hashKey`).
 *
 * Why: requests with the same key keep going to the same backend (caches stay warm, sessions stay put), and
 * when a backend joins or leaves only the keys on the arc it gains or loses move, about 1/n of them, instead of
 * nearly all of them as with `hash % n`.
 *
 * Each backend owns pointsPerWeight × min(weight, MAX_WEIGHT) points on a 32-bit ring; a key goes to the owner
 * of the first point at or after the key's hash (wrapping). A point's position depends only on the backend id,
 * and equal positions go to the smaller id, so the ring is a function of the set of (id, weight) alone: two
 * sidecars that list the same backends in a different order send every key to the same backend. The weight cap
 * keeps memory bounded (at most 1,000 points, 8 KB, per backend), and a large pool gets fewer points per unit of
 * weight (never fewer than 10) so the whole ring stays within MAX_RING_POINTS: building it is a sort that runs on
 * the event loop at every pool change, and a million-point ring for 10,000 backends took ~0.5 s to build. Point p
 * of a backend sits at the same place whatever the count, so shrinking the count only removes each backend's last
 * points and moves only the keys on them.
 *
 * The ring is built once per candidates array (by identity); a pick hashes the key (FNV-1a, no allocation)
 * and does one binary search.
 */
import {
  registerStrategy,
  type Candidate,
  type HashKey,
  type PickRequest,
  type Strategy,
  type StrategyContext,
} from './strategy.js';

export const CONSISTENT_HASH = 'consistent-hash';

/** Points per unit of weight. More points even out the arcs; ~100 keeps each backend's share within ~10%. */
export const POINTS_PER_WEIGHT = 100;
/** Weights above this count as this on the ring, so one huge weight cannot blow up memory. */
export const MAX_WEIGHT = 10;
/** The ring never has more points than this (about 10 ms to build); large pools get fewer points per weight. */
export const MAX_RING_POINTS = 160_000;
/** ...but never fewer than this per unit of weight, or arcs get too uneven. */
export const MIN_POINTS_PER_WEIGHT = 10;

/** Points per unit of weight for this pool: POINTS_PER_WEIGHT, scaled down so the ring fits MAX_RING_POINTS. */
export function pointsPerWeight(candidates: readonly Candidate[]): number {
  let units = 0;
  for (const c of candidates) units += cappedWeight(c.weight);
  return Math.max(MIN_POINTS_PER_WEIGHT, Math.min(POINTS_PER_WEIGHT, Math.floor(MAX_RING_POINTS / Math.max(1, units))));
}

function cappedWeight(weight: number): number {
  return Math.max(1, Math.min(MAX_WEIGHT, Math.floor(weight)));
}

/**
 * FNV-1a over UTF-16 code units, then murmur3's fmix32 finaliser so that keys differing only in their last
 * character (10.0.0.1 vs 10.0.0.2) land far apart on the ring. Returns an unsigned 32-bit integer.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

/** murmur3's 32-bit finaliser: a bijection in which every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Position of point `p` of a backend whose id hashes to `idHash`. The point number is mixed on its own and
 * combined by xor, so two backends share a position only by isolated chance. Two tempting alternatives fail at a
 * few thousand backends, where one backend can lose a quarter or more of its points: `f(idHash + p·c)` (two ids
 * whose hashes differ by a multiple of c share a whole run of points), and ketama's `hash("id#p")` with a 32-bit
 * hash (once `a#1` and `b#2` collide, every `a#1x` collides with `b#2x` too; ketama gets away with it with MD5).
 */
function pointHash(idHash: number, p: number): number {
  return fmix32(idHash ^ fmix32(Math.imul(p + 1, 0x9e3779b9)));
}

/** The ring: sorted point positions, and for each the index (into the candidates array) of its owner. */
export interface Ring {
  readonly points: Uint32Array;
  readonly owners: Uint32Array;
}

/** 2^21: position × this + index packs into a double exactly (32 + 21 = 53 bits), so one numeric sort orders both. */
const INDEX_SPACE = 2 ** 21;

export function buildRing(candidates: readonly Candidate[]): Ring {
  const n = candidates.length;
  if (n >= INDEX_SPACE) throw new RangeError(`consistent-hash supports at most ${INDEX_SPACE - 1} backends`);
  const perWeight = pointsPerWeight(candidates);
  let count = 0;
  for (const c of candidates) count += perWeight * cappedWeight(c.weight);
  const packed = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const c = candidates[i];
    const idHash = hash32(c.id);
    const m = perWeight * cappedWeight(c.weight);
    for (let p = 0; p < m; p++) packed[k++] = pointHash(idHash, p) * INDEX_SPACE + i;
  }
  packed.sort();
  const points = new Uint32Array(count);
  const owners = new Uint32Array(count);
  let out = 0;
  for (let r = 0; r < count; ) {
    const pos = Math.floor(packed[r] / INDEX_SPACE);
    let owner = packed[r] - pos * INDEX_SPACE;
    // Equal positions (each pair of points has a 1 in 2^32 chance; ~100 in a million-point ring): the smaller id
    // wins, whatever the array order.
    for (r++; r < count && Math.floor(packed[r] / INDEX_SPACE) === pos; r++) {
      const other = packed[r] - pos * INDEX_SPACE;
      if (candidates[other].id < candidates[owner].id) owner = other;
    }
    points[out] = pos;
    owners[out] = owner;
    out++;
  }
  return { points: points.subarray(0, out), owners: owners.subarray(0, out) };
}

/** Index into `ring.points` of the first point >= h, wrapping to 0 past the end. */
export function searchRing(points: Uint32Array, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

class ConsistentHash implements Strategy {
  readonly name = CONSISTENT_HASH;
  /** Lower-cased once here, not per pick; undefined means key on the client IP. */
  private readonly header: string | undefined;
  private readonly rings = new WeakMap<readonly Candidate[], Ring>();
  private lastArray: readonly Candidate[] | undefined;
  private lastRing: Ring | undefined;

  constructor(hashKey: HashKey) {
    this.header = hashKey.kind === 'header' ? hashKey.name.toLowerCase() : undefined;
  }

  /** The string a request is hashed on: the header's (first) value, or the client IP when it is absent or empty. */
  key(req: PickRequest): string {
    if (this.header !== undefined) {
      const v = req.headers[this.header];
      const s = Array.isArray(v) ? v[0] : v;
      if (s) return s;
    }
    return req.clientIp;
  }

  pick(candidates: readonly Candidate[], req: PickRequest): Candidate | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    let ring = this.lastRing;
    if (candidates !== this.lastArray || ring === undefined) {
      ring = this.rings.get(candidates);
      if (ring === undefined) {
        ring = buildRing(candidates);
        this.rings.set(candidates, ring);
      }
      this.lastArray = candidates;
      this.lastRing = ring;
    }
    return candidates[ring.owners[searchRing(ring.points, hash32(this.key(req)))]];
  }
}

export function consistentHash(ctx: StrategyContext): Strategy {
  return new ConsistentHash(ctx.hashKey);
}

registerStrategy(CONSISTENT_HASH, consistentHash);
