/**
 * The pure parts of DNS discovery: RFC 2782 rules for SRV records, reading addresses and TTLs out of a reply,
 * and the refresh timing (TTL clamped to the configured interval, exponential backoff after failures).
 * No I/O and no clock: the DNS source passes everything in, and unit tests assert exact values.
 */
import type { Answer } from 'dns-packet';

/** One SRV record's data, as RFC 2782 defines it. */
export interface SrvRecord {
  readonly target: string;
  readonly port: number;
  /** Lower is preferred; a client uses the lowest-priority group it can reach. */
  readonly priority: number;
  /** Relative share within one priority group, 0-65535; 0 means "almost never, unless all are 0". */
  readonly weight: number;
}

/** A backend derived from SRV records: one per address and port, however many records name it. */
export interface SrvBackend {
  readonly address: string;
  readonly port: number;
  readonly priority: number;
  /** bulb's backend weight (an integer >= 1), mapped from the SRV weights by `mapSrvWeights`. */
  readonly weight: number;
  /** The SRV targets that led here, for the backend's origin. */
  readonly targets: readonly string[];
}

/** Backend weight of a weight-0 SRV target when its group also has weighted targets. */
export const ZERO_WEIGHT = 1;
/** Factor applied to non-zero SRV weights in a group that also has weight-0 targets. */
export const ZERO_WEIGHT_SCALE = 100;

/**
 * SRV weights of one priority group → backend weights (integers >= 1, which is what bulb's strategies take).
 * RFC 2782: weight 0 targets "should be given a very small chance of being selected" when others have weight,
 * and an equal chance when all have weight 0. So:
 *  - no 0 in the group: the weights are used as they are (1-65535), so an operator sees the numbers they wrote;
 *  - all 0: every target gets weight 1 (equal shares);
 *  - some 0: a weight-0 target gets 1 and every other target 100 × its weight, so a weight-0 target gets under
 *    1 % of what the lightest weighted target gets (and never starves completely, as the RFC intends).
 */
export function mapSrvWeights(weights: readonly number[]): number[] {
  const zeros = weights.filter((w) => w === 0).length;
  if (zeros === 0) return [...weights];
  if (zeros === weights.length) return weights.map(() => 1);
  return weights.map((w) => (w === 0 ? ZERO_WEIGHT : w * ZERO_WEIGHT_SCALE));
}

/**
 * RFC 2782 records → backends. Each record's target contributes one backend per address on the record's port.
 * A target of `.` means "decidedly not available" and contributes nothing. When several records (or several
 * targets) lead to the same address and port, it is one backend: the lowest priority that names it wins, and
 * the SRV weights of the records at that priority add up (an RFC 2782 client would pick it with that combined
 * share). Weights are then mapped per priority group (`mapSrvWeights`).
 * Result order: priority, then address, then port, so identical answers give identical snapshots.
 */
export function srvBackends(records: readonly SrvRecord[], addressesOf: (target: string) => readonly string[]): SrvBackend[] {
  interface Acc {
    address: string;
    port: number;
    priority: number;
    srvWeight: number;
    targets: string[];
  }
  const byKey = new Map<string, Acc>();
  for (const r of records) {
    if (isRootTarget(r.target)) continue;
    for (const address of addressesOf(r.target)) {
      const key = `${address}|${r.port}`;
      const have = byKey.get(key);
      if (!have || r.priority < have.priority) {
        byKey.set(key, { address, port: r.port, priority: r.priority, srvWeight: r.weight, targets: [r.target] });
      } else if (r.priority === have.priority) {
        have.srvWeight += r.weight;
        if (!have.targets.includes(r.target)) have.targets.push(r.target);
      }
    }
  }
  const all = [...byKey.values()].sort(
    (a, b) => a.priority - b.priority || compareText(a.address, b.address) || a.port - b.port,
  );
  const out: SrvBackend[] = [];
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].priority === all[i].priority) j++;
    const group = all.slice(i, j);
    const weights = mapSrvWeights(group.map((g) => g.srvWeight));
    group.forEach((g, k) =>
      out.push(Object.freeze({ address: g.address, port: g.port, priority: g.priority, weight: weights[k], targets: Object.freeze([...g.targets].sort(compareText)) })),
    );
    i = j;
  }
  return out;
}

/** RFC 2782: a target of "." means the service is decidedly not available at this domain. */
export function isRootTarget(target: string): boolean {
  return target === '' || target === '.';
}

/** The SRV records of `name` in a reply's answer section (following a CNAME on the name itself, if any). */
export function srvRecordsOf(name: string, answers: readonly Answer[]): { records: SrvRecord[]; ttl: number | undefined } {
  const { owner, ttl: chainTtl } = followCnames(name, answers);
  let ttl = chainTtl;
  const records: SrvRecord[] = [];
  for (const a of answers) {
    if (a.type !== 'SRV' || !sameName(a.name, owner)) continue;
    records.push({ target: a.data.target, port: a.data.port, priority: a.data.priority ?? 0, weight: a.data.weight ?? 0 });
    ttl = minTtl(ttl, a.ttl);
  }
  return { records, ttl };
}

/**
 * The A and AAAA addresses of `name` among `records` (an answer or additional section), following CNAMEs,
 * with the smallest TTL of every record used. Empty when the records say nothing about the name.
 */
export function addressesOf(name: string, records: readonly Answer[]): { addresses: string[]; ttl: number | undefined } {
  const { owner, ttl: chainTtl } = followCnames(name, records);
  let ttl = chainTtl;
  const addresses: string[] = [];
  for (const r of records) {
    if ((r.type !== 'A' && r.type !== 'AAAA') || !sameName(r.name, owner)) continue;
    if (!addresses.includes(r.data)) addresses.push(r.data);
    ttl = minTtl(ttl, r.ttl);
  }
  return { addresses, ttl: addresses.length > 0 ? ttl : undefined };
}

/**
 * The negative-caching TTL of an NXDOMAIN or NODATA reply (RFC 2308: the smaller of the SOA record's own TTL and
 * its MINIMUM field), or undefined when the server sent no SOA.
 */
export function negativeTtl(authorities: readonly Answer[]): number | undefined {
  for (const a of authorities) {
    if (a.type === 'SOA') return minTtl(a.ttl, a.data.minimum);
  }
  return undefined;
}

/** How long until the next lookup after an answer: the TTL in seconds, clamped to [minMs, maxMs]. */
export function refreshDelayMs(ttlSeconds: number | undefined, minMs: number, maxMs: number): number {
  const ms = ttlSeconds === undefined ? minMs : ttlSeconds * 1000;
  return Math.min(maxMs, Math.max(minMs, ms));
}

/**
 * How long until the next lookup after the `failures`-th consecutive failure (1, 2, ...): the min interval
 * doubled per failure, capped at the max interval, plus up to 20 % jitter (still capped) so that many bulbs
 * that lost the same DNS server do not come back to it in lockstep. `rand` returns [0, 1).
 */
export function backoffMs(failures: number, minMs: number, maxMs: number, rand: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.min(maxMs, Math.round(base * (1 + 0.2 * rand())));
}

function followCnames(name: string, records: readonly Answer[]): { owner: string; ttl: number | undefined } {
  let owner = name;
  let ttl: number | undefined;
  // A bounded walk: a CNAME loop in a hostile or broken reply must not hang the source.
  for (let hop = 0; hop < 8; hop++) {
    const cname = records.find((r) => r.type === 'CNAME' && sameName(r.name, owner));
    if (cname?.type !== 'CNAME') break;
    owner = cname.data;
    ttl = minTtl(ttl, cname.ttl);
  }
  return { owner, ttl };
}

function minTtl(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/** DNS names compare case-insensitively and with or without the root dot. */
export function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
