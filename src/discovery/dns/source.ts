/**
 * DNS discovery: one source per `--dns-srv NAME` (RFC 2782 SRV records, as a Kubernetes headless Service
 * publishes them) and one per `--dns-a HOST:PORT` (every A/AAAA address of HOST, as a compose service with
 * replicas resolves). Like every source it reports whole snapshots; adding, re-weighting in place and draining
 * are the controller's job, so a backend that stays in the answer keeps its health, counters and latency.
 *
 * Resolution runs on its own timer, never on the request path. Timing and failures, modelled on grpc-go's DNS
 * resolver (internal/resolver/dns):
 *  - after an answer, look again when its TTL runs out (the smallest TTL of the records used, read from the DNS
 *    message; see `client.ts`), clamped to [minIntervalMs, maxIntervalMs];
 *  - a timeout, SERVFAIL/REFUSED or network error keeps the last-known-good backends, sets the snapshot's
 *    `error`, logs one warning per failure streak, and retries with exponential backoff capped at maxIntervalMs;
 *  - NXDOMAIN or no records (a service scaled to zero) is an authoritative answer, but it empties a non-empty set
 *    only once `emptyAfter` consecutive lookups agree, so a single flap does not empty the pool;
 *  - a name that never resolved reports an empty set: bulb starts, answers 503, and picks the name up later.
 *    `start()` waits at most `firstSyncTimeoutMs` for the first answer, so a dead DNS server cannot hold up start.
 */
import { isIP } from 'node:net';
import type { Answer, RecordType } from 'dns-packet';
import { parseBackendUrl } from '../../values.js';
import type { BackendSpec, DiscoverySource, Snapshot, SnapshotListener, SourceLogger, SourceProblem } from '../source.js';
import { DnsQueryError, query, serverText, type QueryOptions } from './client.js';
import {
  addressesOf,
  backoffMs,
  isRootTarget,
  negativeTtl,
  refreshDelayMs,
  srvBackends,
  srvRecordsOf,
} from './records.js';
import { readResolvConf, searchCandidates, type DnsServer } from './resolv-conf.js';

/** What one DNS source follows. */
export type DnsTarget =
  | { readonly kind: 'srv'; readonly name: string }
  | { readonly kind: 'a'; readonly host: string; readonly port: number };

export interface DnsSourceOptions {
  readonly target: DnsTarget;
  readonly log: SourceLogger;
  /** Ask this server, with the name taken as absolute. Default: /etc/resolv.conf's servers and search list. */
  readonly server?: DnsServer;
  /** Lower clamp on the TTL, and the first backoff step. Default 1 s. */
  readonly minIntervalMs?: number;
  /** Upper clamp on the TTL, and the backoff cap. Default 30 s. */
  readonly maxIntervalMs?: number;
  /** Consecutive NXDOMAIN / no-records answers needed before a non-empty set is emptied. Default 2. */
  readonly emptyAfter?: number;
  /** How long `start()` waits for the first answer before reporting an empty set with an error. Default 1 s. */
  readonly firstSyncTimeoutMs?: number;
  /** Per query attempt, unless resolv.conf sets `options timeout:N`. Default 2 s. */
  readonly queryTimeoutMs?: number;
  /** Rounds over the servers per query, unless resolv.conf sets `options attempts:N`. Default 2. */
  readonly attempts?: number;
  /** Scheme of the backends this source reports (`--dns-scheme`). Default http. */
  readonly scheme?: 'http' | 'https' | 'h2c';
  /** For tests: another resolv.conf. */
  readonly resolvConfPath?: string;
  /** For tests: 0 disables EDNS(0), so answers over 512 bytes come back truncated and go over TCP. */
  readonly udpPayloadSize?: number;
  /** Jitter source for the backoff; tests pass a constant. */
  readonly rand?: () => number;
}

export const DNS_DEFAULTS = Object.freeze({
  minIntervalMs: 1000,
  maxIntervalMs: 30_000,
  emptyAfter: 2,
  firstSyncTimeoutMs: 1000,
  queryTimeoutMs: 2000,
  attempts: 2,
});

/** `dns-srv:NAME` or `dns-a:HOST:PORT`: the source's name in the controller, logs and the admin API. */
export function dnsSourceName(target: DnsTarget): string {
  return target.kind === 'srv' ? `dns-srv:${target.name}` : `dns-a:${target.host}:${target.port}`;
}

/** SRV targets whose addresses are looked up at once, when the reply's additional section lacks them. */
const TARGET_CONCURRENCY = 8;

/** The result of one lookup of the source's name. */
type Outcome =
  | {
      readonly kind: 'records';
      readonly backends: BackendSpec[];
      readonly problems: SourceProblem[];
      readonly ttl: number | undefined;
    }
  | {
      /** Authoritative absence: NXDOMAIN, NODATA, only "." targets, or targets without addresses. */
      readonly kind: 'empty';
      readonly reason: string;
      readonly problems: SourceProblem[];
      readonly ttl: number | undefined;
    };

/** Where to ask and which names to try, fixed for one refresh. */
interface Plan {
  readonly candidates: readonly string[];
  readonly query: QueryOptions;
}

export class DnsSource implements DiscoverySource {
  readonly name: string;
  /** The name as the user gave it (for SRV) or the HOST (for A/AAAA). */
  readonly lookupName: string;

  private readonly target: DnsTarget;
  private readonly log: SourceLogger;
  private readonly server: DnsServer | undefined;
  private readonly minIntervalMs: number;
  private readonly maxIntervalMs: number;
  private readonly emptyAfter: number;
  private readonly firstSyncTimeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly attempts: number;
  private readonly resolvConfPath: string | undefined;
  private readonly udpPayloadSize: number | undefined;
  private readonly rand: () => number;
  private readonly scheme: 'http' | 'https' | 'h2c';

  private listener: SnapshotListener | undefined;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private stopped = false;
  /** Aborts the queries of the refresh in flight when the source stops. */
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  /** The set reported after the last authoritative answer: what a failure keeps. */
  private good: readonly BackendSpec[] = [];
  /** Per SRV target, its addresses from the last answer about it: a target whose own lookup fails keeps them. */
  private readonly targetAddresses = new Map<string, readonly string[]>();
  /** Consecutive failed refreshes (0 = healthy), and the error text of the streak (stable, so one warning). */
  private failures = 0;
  private streakError: string | undefined;
  /** Consecutive authoritative empty answers. */
  private emptyStreak = 0;
  private lastEmitted: string | undefined;
  private lastProblems = '[]';
  /** The delay chosen after the last lookup (TTL clamped, or backoff): for `/sources`-style status and tests. */
  lastDelayMs: number | undefined;

  constructor(options: DnsSourceOptions) {
    this.target = options.target;
    this.lookupName = options.target.kind === 'srv' ? options.target.name : options.target.host;
    this.name = dnsSourceName(options.target);
    this.log = options.log;
    this.server = options.server;
    this.minIntervalMs = options.minIntervalMs ?? DNS_DEFAULTS.minIntervalMs;
    this.maxIntervalMs = Math.max(this.minIntervalMs, options.maxIntervalMs ?? DNS_DEFAULTS.maxIntervalMs);
    this.emptyAfter = Math.max(1, options.emptyAfter ?? DNS_DEFAULTS.emptyAfter);
    this.firstSyncTimeoutMs = options.firstSyncTimeoutMs ?? DNS_DEFAULTS.firstSyncTimeoutMs;
    this.queryTimeoutMs = options.queryTimeoutMs ?? DNS_DEFAULTS.queryTimeoutMs;
    this.attempts = options.attempts ?? DNS_DEFAULTS.attempts;
    this.resolvConfPath = options.resolvConfPath;
    this.udpPayloadSize = options.udpPayloadSize;
    this.rand = options.rand ?? Math.random;
    this.scheme = options.scheme ?? 'http';
  }

  /**
   * Looks the name up once and reports the result. If no answer (good or bad) came within `firstSyncTimeoutMs`,
   * reports an empty set with an error and resolves anyway; the lookup carries on and reports when it ends.
   */
  start(onSnapshot: SnapshotListener): Promise<void> {
    this.startPromise ??= (async () => {
      this.listener = onSnapshot;
      const first = this.refresh();
      let guard: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        first.then(() => false),
        new Promise<boolean>((resolve) => (guard = setTimeout(() => resolve(true), this.firstSyncTimeoutMs))),
      ]);
      clearTimeout(guard);
      if (timedOut && this.lastEmitted === undefined) {
        this.emit([], [], `no answer from DNS yet for ${this.lookupName} (still waiting after ${this.firstSyncTimeoutMs} ms)`);
      }
    })();
    return this.startPromise;
  }

  /** Stops the timer, aborts queries in flight and waits for the refresh to unwind. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopped = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      this.abort.abort();
      await this.refreshing;
    })();
    return this.stopPromise;
  }

  // --- refresh loop ---------------------------------------------------------------------------------------------

  /** One lookup, its report, and the timer for the next one. Never overlaps itself, never rejects. */
  private refresh(): Promise<void> {
    this.refreshing = (async () => {
      let delay: number;
      try {
        delay = await this.refreshOnce();
      } catch (err) {
        // A bug, not a DNS failure (those are handled inside). Keep the source alive and try again later.
        this.log.error({ err, name: this.lookupName }, 'DNS refresh failed unexpectedly');
        delay = this.maxIntervalMs;
      }
      this.refreshing = undefined;
      if (this.stopped) return;
      this.lastDelayMs = delay;
      // refresh() catches and logs what a lookup throws, so nothing waits on it.
      this.timer = setTimeout(() => void this.refresh(), delay);
      // The servers keep bulb alive; a pending lookup alone must not.
      this.timer.unref();
    })();
    return this.refreshing;
  }

  /** Looks up, reports, and returns the delay until the next lookup. */
  private async refreshOnce(): Promise<number> {
    let outcome: Outcome;
    let plan: Plan | undefined;
    try {
      plan = await this.plan();
      outcome = this.target.kind === 'srv' ? await this.lookupSrv(plan, this.target.name) : await this.lookupA(plan, this.target.port);
    } catch (err) {
      if (this.stopped) return 0;
      if (!(err instanceof DnsQueryError)) throw err;
      return this.onFailure(err, plan);
    }
    if (this.stopped) return 0;
    if (this.failures > 0) {
      this.log.info({ name: this.lookupName, failures: this.failures }, 'DNS lookups answer again');
      this.failures = 0;
      this.streakError = undefined;
    }
    this.logProblems(outcome.problems);
    if (outcome.kind === 'records') {
      this.emptyStreak = 0;
      this.good = outcome.backends;
      this.emit(outcome.backends, outcome.problems, undefined);
      return refreshDelayMs(outcome.ttl, this.minIntervalMs, this.maxIntervalMs);
    }
    this.emptyStreak++;
    const problems = [...outcome.problems, this.problem(outcome.reason)];
    if (this.good.length === 0 || this.emptyStreak >= this.emptyAfter) {
      if (this.good.length > 0) {
        this.log.info({ name: this.lookupName, reason: outcome.reason, lookups: this.emptyStreak, removed: this.good.length }, 'DNS name has no records; emptying its backends');
      }
      this.good = [];
      this.emit([], problems, undefined);
    } else {
      this.log.info(
        { name: this.lookupName, reason: outcome.reason, lookups: this.emptyStreak, emptyAfter: this.emptyAfter, kept: this.good.length },
        'DNS name has no records; keeping its backends until consecutive lookups confirm it',
      );
      // Stable text for the whole streak, so the controller sees one change, not one per lookup.
      this.emit(this.good, problems, `${this.lookupName}: ${outcome.reason}; keeping the last-known-good backends until ${this.emptyAfter} consecutive lookups agree`);
    }
    return refreshDelayMs(outcome.ttl, this.minIntervalMs, this.maxIntervalMs);
  }

  private onFailure(err: DnsQueryError, plan: Plan | undefined): number {
    this.failures++;
    const retryInMs = backoffMs(this.failures, this.minIntervalMs, this.maxIntervalMs, this.rand);
    if (this.failures === 1) {
      this.streakError = `DNS lookup of ${this.lookupName} failed: ${err.message}`;
      this.log.warn(
        {
          name: this.lookupName,
          reason: err.reason,
          error: err.message,
          servers: plan?.query.servers.map(serverText),
          kept: this.good.length,
          retryInMs,
        },
        'DNS lookup failed; keeping the last-known-good backends and retrying with backoff',
      );
    }
    // The streak's first error is kept as the snapshot error, so a streak is one change for the controller.
    this.emit(this.good, this.lastProblemList(), this.streakError);
    return retryInMs;
  }

  // --- lookups --------------------------------------------------------------------------------------------------

  /** Where to ask and which names to try: `--dns-server` with the name as given, or resolv.conf's rules. */
  private async plan(): Promise<Plan> {
    const base = { signal: this.abort.signal, ...(this.udpPayloadSize === undefined ? {} : { udpPayloadSize: this.udpPayloadSize }) };
    if (this.server) {
      return {
        candidates: [this.lookupName.replace(/\.$/, '')],
        query: { ...base, servers: [this.server], timeoutMs: this.queryTimeoutMs, attempts: this.attempts },
      };
    }
    // Read on every refresh: it is small, and Docker and Kubernetes may rewrite it while bulb runs.
    const conf = await readResolvConf(this.resolvConfPath);
    return {
      candidates: searchCandidates(this.lookupName, conf.search, conf.ndots),
      query: { ...base, servers: conf.nameservers, timeoutMs: conf.timeoutMs ?? this.queryTimeoutMs, attempts: conf.attempts ?? this.attempts },
    };
  }

  /**
   * Tries each candidate name in turn: the first with records wins; NXDOMAIN or NODATA moves on to the next.
   * A failed query stops the walk (and the refresh counts as failed): going on could settle on a different name
   * only because the right one did not answer this time.
   */
  private async lookupSrv(plan: Plan, name: string): Promise<Outcome> {
    let reason = 'no SRV records';
    let ttl: number | undefined;
    for (const candidate of plan.candidates) {
      const answer = await query(candidate, 'SRV', plan.query);
      const answers = answer.reply.answers ?? [];
      if (answer.rcode === 'NXDOMAIN') {
        reason = 'NXDOMAIN';
        ttl = negativeTtl(answer.reply.authorities ?? []);
        continue;
      }
      const srv = srvRecordsOf(candidate, answers);
      if (srv.records.length === 0) {
        reason = 'no SRV records';
        ttl = negativeTtl(answer.reply.authorities ?? []);
        continue;
      }
      return this.srvOutcome(plan, candidate, srv.records, srv.ttl, answer.reply.additionals ?? []);
    }
    return { kind: 'empty', reason: `${name}: ${reason}`, problems: [], ttl };
  }

  private async srvOutcome(
    plan: Plan,
    fqdn: string,
    records: ReturnType<typeof srvRecordsOf>['records'],
    srvTtl: number | undefined,
    additionals: readonly Answer[],
  ): Promise<Outcome> {
    let ttl = srvTtl;
    const problems: SourceProblem[] = [];
    const targets = [...new Set(records.filter((r) => !isRootTarget(r.target)).map((r) => r.target.toLowerCase()))].sort();
    if (targets.length === 0) {
      return { kind: 'empty', reason: `${fqdn}: SRV target is "." (service decidedly not available)`, problems, ttl };
    }
    const resolved = new Map<string, readonly string[]>();
    // Addresses the server sent along in the additional section save one round trip per target.
    const missing: string[] = [];
    for (const t of targets) {
      const extra = addressesOf(t, additionals);
      if (extra.addresses.length > 0) {
        resolved.set(t, extra.addresses);
        ttl = minOf(ttl, extra.ttl);
      } else missing.push(t);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < missing.length) {
        const t = missing[next++];
        try {
          const found = await this.addressesOfName(plan, t);
          ttl = minOf(ttl, found.ttl);
          resolved.set(t, found.addresses);
          if (found.addresses.length === 0) problems.push(this.problem(`SRV target ${t} has no A or AAAA records`));
        } catch (err) {
          if (!(err instanceof DnsQueryError) || err.reason === 'aborted') throw err;
          const kept = this.targetAddresses.get(t) ?? [];
          resolved.set(t, kept);
          problems.push(this.problem(`SRV target ${t}: ${err.message}; ${kept.length > 0 ? 'keeping its last-known addresses' : 'it contributes no backends'}`));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(TARGET_CONCURRENCY, missing.length) }, worker));
    // Remember each target's addresses for the next time its own lookup fails; forget targets no longer named.
    this.targetAddresses.clear();
    for (const [t, a] of resolved) this.targetAddresses.set(t, a);

    const backends: BackendSpec[] = [];
    for (const b of srvBackends(records, (t) => resolved.get(t.toLowerCase()) ?? [])) {
      const spec = this.spec(b.address, b.port, b.weight, `${fqdn} SRV ${b.targets.join(',')}`, b.priority);
      if ('problem' in spec) problems.push(spec.problem);
      else backends.push(spec);
    }
    problems.sort((a, b) => (a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
    if (backends.length === 0) return { kind: 'empty', reason: `${fqdn}: no SRV target has an address`, problems, ttl };
    return { kind: 'records', backends, problems, ttl };
  }

  /** A/AAAA mode: every address of the first candidate that has any becomes a backend on `port`. */
  private async lookupA(plan: Plan, port: number): Promise<Outcome> {
    let reason = 'no A or AAAA records';
    let ttl: number | undefined;
    for (const candidate of plan.candidates) {
      const found = await this.addressesOfName(plan, candidate);
      if (found.addresses.length === 0) {
        reason = found.nxdomain ? 'NXDOMAIN' : 'no A or AAAA records';
        ttl = found.negativeTtl;
        continue;
      }
      const problems: SourceProblem[] = [];
      const backends: BackendSpec[] = [];
      for (const address of [...found.addresses].sort()) {
        const spec = this.spec(address, port, 1, candidate, undefined);
        if ('problem' in spec) problems.push(spec.problem);
        else backends.push(spec);
      }
      return { kind: 'records', backends, problems, ttl: found.ttl };
    }
    return { kind: 'empty', reason: `${this.lookupName}: ${reason}`, problems: [], ttl };
  }

  /**
   * A and AAAA of one absolute name, asked in parallel. If one of the two fails but the other found addresses,
   * those are used (some resolvers mishandle AAAA; an IPv4 service must not go dark for it). Otherwise a failure
   * throws `DnsQueryError`: an empty answer beside a failed one proves nothing.
   */
  private async addressesOfName(
    plan: Plan,
    name: string,
  ): Promise<{ addresses: string[]; ttl: number | undefined; nxdomain: boolean; negativeTtl: number | undefined }> {
    const types: RecordType[] = ['A', 'AAAA'];
    const settled = await Promise.allSettled(types.map((type) => query(name, type, plan.query)));
    const addresses: string[] = [];
    let ttl: number | undefined;
    let negTtl: number | undefined;
    let failure: unknown;
    let nxdomain = true;
    for (const result of settled) {
      if (result.status === 'rejected') {
        failure ??= result.reason;
        continue;
      }
      const answer = result.value;
      if (answer.rcode !== 'NXDOMAIN') nxdomain = false;
      const found = addressesOf(name, answer.reply.answers ?? []);
      for (const a of found.addresses) if (!addresses.includes(a)) addresses.push(a);
      ttl = minOf(ttl, found.ttl);
      negTtl = minOf(negTtl, negativeTtl(answer.reply.authorities ?? []));
    }
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows a query's own rejection unchanged (a DnsQueryError, or a bug's Error)
    if (failure !== undefined && (addresses.length === 0 || (failure instanceof DnsQueryError && failure.reason === 'aborted'))) throw failure;
    return { addresses, ttl, nxdomain, negativeTtl: negTtl };
  }

  // --- reporting ------------------------------------------------------------------------------------------------

  private spec(address: string, port: number, weight: number, origin: string, priority: number | undefined): BackendSpec | { problem: SourceProblem } {
    const host = isIP(address) === 6 ? `[${address}]` : address;
    const parsed = parseBackendUrl(`${this.scheme}://${host}:${port}`);
    if ('error' in parsed) return { problem: this.problem(`address ${address} port ${port}: ${parsed.error}`) };
    return Object.freeze({
      id: parsed.id,
      url: parsed.url,
      weight,
      ...(priority === undefined ? {} : { priority }),
      source: this.name,
      origin,
    });
  }

  private problem(message: string): SourceProblem {
    return Object.freeze({ file: this.lookupName, pointer: '', message });
  }

  /** Problems of the last answer: a failure streak repeats them with the kept backends. */
  private lastProblemList(): SourceProblem[] {
    return (JSON.parse(this.lastProblems) as SourceProblem[]).map((p) => Object.freeze(p));
  }

  /** Logs target-level problems when they change, not on every refresh. */
  private logProblems(problems: readonly SourceProblem[]): void {
    const text = JSON.stringify(problems);
    if (text === this.lastProblems) return;
    this.lastProblems = text;
    for (const p of problems) this.log.warn({ name: this.lookupName, reason: p.message }, 'DNS answer partly unusable');
  }

  private emit(backends: readonly BackendSpec[], problems: readonly SourceProblem[], error: string | undefined): void {
    if (this.stopped || !this.listener) return;
    const snapshot: Snapshot = Object.freeze({
      source: this.name,
      backends: Object.freeze([...backends]),
      problems: Object.freeze([...problems]),
      ...(error === undefined ? {} : { error }),
    });
    // Specs and problems are plain frozen data in a deterministic order, so JSON is a faithful deep compare.
    const fingerprint = JSON.stringify(snapshot);
    if (fingerprint === this.lastEmitted) return;
    this.lastEmitted = fingerprint;
    this.listener(snapshot);
  }
}

function minOf(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * One source per `--dns-srv` name, then one per `--dns-a` HOST:PORT, in the order given (a name given twice is
 * one source). `childLog` gives each source a logger labelled with its name.
 */
export function dnsSources(
  config: {
    readonly dnsSrv: readonly string[];
    readonly dnsA: readonly { readonly host: string; readonly port: number }[];
    readonly dnsServer: DnsServer | undefined;
    readonly dnsMinIntervalMs: number;
    readonly dnsMaxIntervalMs: number;
    readonly dnsEmptyAfter: number;
    readonly dnsScheme?: 'http' | 'https' | 'h2c';
  },
  childLog: (sourceName: string) => SourceLogger,
): DnsSource[] {
  const targets: DnsTarget[] = [
    ...config.dnsSrv.map((name) => ({ kind: 'srv', name }) as const),
    ...config.dnsA.map(({ host, port }) => ({ kind: 'a', host, port }) as const),
  ];
  const sources = new Map<string, DnsSource>();
  for (const target of targets) {
    const options = {
      target,
      minIntervalMs: config.dnsMinIntervalMs,
      maxIntervalMs: config.dnsMaxIntervalMs,
      emptyAfter: config.dnsEmptyAfter,
      ...(config.dnsScheme ? { scheme: config.dnsScheme } : {}),
      ...(config.dnsServer ? { server: config.dnsServer } : {}),
    };
    const name = dnsSourceName(target);
    if (!sources.has(name)) sources.set(name, new DnsSource({ ...options, log: childLog(name) }));
  }
  return [...sources.values()];
}
