/**
 * `pick()` cost per built-in strategy at 10, 1,000 and 10,000 candidates: ns per pick, heap bytes per pick, and
 * the first and second picks on a new candidates array (what a strategy that caches per array pays once per
 * pool change; least-time scans on the first and builds its heap on the second, so a retry's one-off array
 * costs it only the first).
 *
 *   npm run bench:pick
 *   (= node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 --import tsx bench/micro/pick.bench.ts)
 *
 * At 10,000 candidates two more numbers are taken, so that a strategy cannot look fast by moving work off
 * `pick()`: one `loadChanged` call after a candidate's in-flight count changed (for strategies that have the
 * hook), and a whole request's worth of strategy work: `pick()` plus the three load changes a request makes
 * (sent, response headers, done), each reported through `loadChanged` as the pool does, with 64 requests in
 * flight.
 *
 * Each strategy is measured in its own child process: in one process the `strategy.pick(...)` call site would
 * see seven classes and go megamorphic, which costs the later strategies time that bulb (one strategy per
 * process) never pays. Candidates are plain objects satisfying `Candidate` (seeded random weight, inflight,
 * ewmaMs); requests rotate through 256 client addresses so consistent-hash hashes varied keys.
 * Markdown goes to stdout.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createStrategy, defaultContext, strategyNames, type Candidate, type PickRequest } from '../../src/strategies/index.js';
import { bytesPerOp, fmt, machineLines, median, passFail, seededRandom, sinkValue, stopObserving, timeNsPerOp } from './harness.js';

const SIZES = [10, 1_000, 10_000] as const;
/** The targets: every built-in ≤ 1 µs at 10,000; these three allocate nothing per pick. */
const TARGET_NS_AT_10K = 1_000;
const ZERO_ALLOC = new Set(['round-robin', 'weighted-round-robin', 'least-connections']);
/** Below one byte per pick no object can be allocated per pick (the smallest is 12+ bytes). */
const ZERO_ALLOC_BYTES = 1;
/** Requests in flight during the request measurement (a power of two: the ring is indexed with a mask). */
const IN_FLIGHT = 64;

/** What the pool changes in place on a backend; the bench changes it on its plain objects the same way. */
type BenchCandidate = { -readonly [K in keyof Candidate]: Candidate[K] };

interface SizeResult {
  readonly n: number;
  readonly nsPerPick: number;
  readonly bytesPerPick: number;
  /** Median µs of the first and of the second pick on a fresh array with the same backends. */
  readonly firstPickUs: number;
  readonly secondPickUs: number;
}

interface StrategyResult {
  readonly strategy: string;
  readonly sizes: readonly SizeResult[];
  /** At 10,000: ns per `loadChanged` call, when the strategy has one. */
  readonly loadChangedNs: number | undefined;
  /** At 10,000: ns and heap bytes per request (pick + three reported load changes). */
  readonly requestNs: number;
  readonly requestBytes: number;
}

function makeCandidates(n: number, seed: number): BenchCandidate[] {
  const rand = seededRandom(seed);
  const out: BenchCandidate[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: `backend-${i}`,
      url: `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
      weight: 1 + Math.floor(rand() * 10),
      inflight: Math.floor(rand() * 20),
      ewmaMs: 1 + rand() * 100,
    });
  }
  return out;
}

function makeRequests(): PickRequest[] {
  const reqs: PickRequest[] = [];
  for (let i = 0; i < 256; i++) reqs.push({ clientIp: `192.168.${i >> 4}.${i & 15}`, method: 'GET', url: '/', headers: {} });
  return reqs;
}

/** Child: measures one strategy at every size and prints one JSON line. */
async function measureOne(name: string): Promise<StrategyResult> {
  const reqs = makeRequests();
  const sizes: SizeResult[] = [];
  for (const n of SIZES) {
    const candidates = makeCandidates(n, n);
    // Production's context: Math.random and client-ip hashing (bulb's defaults).
    const strategy = await createStrategy(name, defaultContext());
    const pickOnce = (i: number): number => strategy.pick(candidates, reqs[i & 255])?.weight ?? 0;
    const nsPerPick = timeNsPerOp(pickOnce, { minSampleMs: 40 });
    const bytesPerPick = await bytesPerOp(pickOnce, n >= 10_000 ? 20_000 : 100_000);
    // A pool change hands the strategy a new array: time its first two picks (cache rebuilds happen here).
    const first: number[] = [];
    const second: number[] = [];
    for (let k = 0; k < 5; k++) {
      const fresh = [...candidates];
      const t0 = performance.now();
      strategy.pick(fresh, reqs[k]);
      const t1 = performance.now();
      strategy.pick(fresh, reqs[k]);
      first.push((t1 - t0) * 1000);
      second.push((performance.now() - t1) * 1000);
    }
    sizes.push({ n, nsPerPick, bytesPerPick, firstPickUs: median(first), secondPickUs: median(second) });
  }

  // Load changes at 10,000, on a fresh set: the numbers above were taken with loads that never change.
  const n = 10_000;
  const candidates = makeCandidates(n, n);
  const strategy = await createStrategy(name, defaultContext());
  // Twice: least-time builds its heap on the second pick from an array.
  strategy.pick(candidates, reqs[0]);
  strategy.pick(candidates, reqs[1]);
  let loadChangedNs: number | undefined;
  if (strategy.loadChanged) {
    // Spread over the array; toggling one in-flight request moves the cost up or down, as begin/done do.
    const update = (i: number): number => {
      const c = candidates[(i * 7919) % n];
      c.inflight ^= 1;
      strategy.loadChanged!(c);
      return c.inflight;
    };
    loadChangedNs = timeNsPerOp(update, { minSampleMs: 40 });
  }
  // One request: the oldest of IN_FLIGHT gets its response headers (a new latency estimate) and finishes,
  // then a new one is picked and sent, each change reported as Backend.begin()/responded()/done() do.
  const ring: (BenchCandidate | undefined)[] = new Array<BenchCandidate | undefined>(IN_FLIGHT).fill(undefined);
  const hook = strategy.loadChanged?.bind(strategy);
  const request = (i: number): number => {
    const slot = i & (IN_FLIGHT - 1);
    const old = ring[slot];
    if (old !== undefined) {
      old.ewmaMs = 1 + ((old.ewmaMs * 1.618) % 100);
      if (hook) hook(old);
      old.inflight--;
      if (hook) hook(old);
    }
    const c = strategy.pick(candidates, reqs[i & 255]) as BenchCandidate;
    c.inflight++;
    if (hook) hook(c);
    ring[slot] = c;
    return c.weight;
  };
  const requestNs = timeNsPerOp(request, { minSampleMs: 40 });
  const requestBytes = await bytesPerOp(request, 20_000);
  return { strategy: name, sizes, loadChangedNs, requestNs, requestBytes };
}

/** Parent: one child per strategy, then the Markdown report. */
async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const results: StrategyResult[] = [];
  for (const name of strategyNames()) {
    process.stderr.write(`[pick] ${name}\n`);
    const child = spawn(process.execPath, [...process.execArgv, self, '--one', name], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    if (code !== 0) throw new Error(`pick bench for ${name} exited ${code}`);
    results.push(JSON.parse(out) as StrategyResult);
  }

  const lines: string[] = ['## pick() per strategy', ''];
  lines.push(...machineLines('npm run bench:pick'));
  lines.push(
    '- Plain `Candidate` objects (seeded random weight 1-10, inflight 0-19, ewmaMs 1-101), one candidates array ' +
      'per size; ns/op is the median of 7 calibrated samples; B/op is heap growth per pick after a full GC ' +
      '(`--expose-gc`, windows with a GC discarded); "1st · 2nd pick" are the median times of the first and second ' +
      'picks on a new array of the same backends, paid once per pool change by strategies that cache per array ' +
      '(least-time scans on the first and builds its heap on the second, so a retry\'s one-off array costs it the first only). ' +
      '"loadChanged" is one call of the hook after a candidate\'s in-flight count changed (strategies that keep ' +
      'candidates ordered by load; the pool calls it three times per request). "per request" is everything a ' +
      'request costs the strategy at 10,000 candidates with loads changing: pick() plus three reported load ' +
      `changes (sent, response headers, done), ${IN_FLIGHT} requests in flight. With loads that never change ` +
      '(the ns/op columns), least-time\'s pick only re-reads the top of its heap: compare its per-request figure.',
    '',
  );
  lines.push(
    '| strategy | ns/op @10 | ns/op @1,000 | ns/op @10,000 | B/op @10 · 1,000 · 10,000 | 1st · 2nd pick on a new array @10,000 µs | loadChanged ns @10,000 | per request ns · B @10,000 | ≤ 1 µs @10,000 | no allocation |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  );
  const targets: string[] = [];
  for (const r of results) {
    const at = (n: number): SizeResult => r.sizes.find((s) => s.n === n)!;
    const ns10k = at(10_000).nsPerPick;
    const maxBytes = Math.max(...r.sizes.map((s) => s.bytesPerPick));
    const allocTarget = ZERO_ALLOC.has(r.strategy) ? passFail(maxBytes < ZERO_ALLOC_BYTES) : 'n/a';
    lines.push(
      `| ${r.strategy} | ${fmt(at(10).nsPerPick, 1)} | ${fmt(at(1_000).nsPerPick, 1)} | ${fmt(ns10k, 1)} | ` +
        `${r.sizes.map((s) => fmt(s.bytesPerPick, 1)).join(' · ')} | ${fmt(at(10_000).firstPickUs, 1)} · ${fmt(at(10_000).secondPickUs, 1)} | ` +
        `${r.loadChangedNs === undefined ? '—' : fmt(r.loadChangedNs, 1)} | ${fmt(r.requestNs, 1)} · ${fmt(r.requestBytes, 1)} | ` +
        `${passFail(ns10k <= TARGET_NS_AT_10K)} | ${allocTarget} |`,
    );
    targets.push(`- ${passFail(ns10k <= TARGET_NS_AT_10K)} ${r.strategy}: pick() ≤ 1 µs at 10,000 candidates (${fmt(ns10k, 1)} ns)`);
    if (ZERO_ALLOC.has(r.strategy)) {
      targets.push(`- ${passFail(maxBytes < ZERO_ALLOC_BYTES)} ${r.strategy}: no allocation per pick (${fmt(maxBytes, 2)} B/op at most)`);
    }
  }
  lines.push('', '### Targets', '', ...targets, '');
  process.stdout.write(lines.join('\n') + '\n');
}

if (process.argv[2] === '--one') {
  const result = await measureOne(process.argv[3]);
  stopObserving();
  // Reading the sink keeps every measured call observable, so none can be optimised away.
  process.stderr.write(`[pick] ${process.argv[3]} sink ${sinkValue()}\n`);
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  stopObserving();
  await main();
}
