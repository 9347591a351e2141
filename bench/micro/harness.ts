/**
 * The timing and allocation loops the micro benchmarks share. Plain `performance.now()` loops, no dependency:
 * calibrate the iteration count until one sample takes long enough for the timer's resolution not to matter
 * (which doubles as the warm-up that gets the code optimised), then take the median of several samples.
 *
 * Allocation is measured as heap growth over N calls after a full GC. That is only exact when no GC runs inside
 * the window, so the process is started with a large fixed young generation (`--min-semi-space-size=64
 * --max-semi-space-size=64`, see package.json) and a `gc` PerformanceObserver discards any window a GC ran in.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';

/** Written to by every loop so V8 cannot drop a call whose result is unused. */
let sink = 0;
/** Read once at the end so that `sink` is observably used. */
export function sinkValue(): number {
  return sink;
}

/** One sample: `iterations` calls of `fn(i)`, in ns per call. `fn` returns a number that goes into the sink. */
function sample(fn: (i: number) => number, iterations: number): number {
  const t0 = performance.now();
  let acc = 0;
  for (let i = 0; i < iterations; i++) acc += fn(i);
  const elapsed = performance.now() - t0;
  sink += acc;
  return (elapsed * 1e6) / iterations;
}

export interface TimeOptions {
  /** Shortest sample worth keeping, ms. */
  readonly minSampleMs?: number;
  /** Samples after calibration; the median is reported. */
  readonly samples?: number;
  /** Upper bound on iterations per sample, so a very cheap function cannot loop for ever. */
  readonly maxIterations?: number;
}

/** Median ns per call of `fn`, after calibration and warm-up. */
export function timeNsPerOp(fn: (i: number) => number, options: TimeOptions = {}): number {
  const minSampleMs = options.minSampleMs ?? 50;
  const samples = options.samples ?? 7;
  const maxIterations = options.maxIterations ?? 2 ** 26;
  let iterations = 16;
  // Calibrate (and warm up): double until a sample is long enough. Bounded by maxIterations.
  while (iterations < maxIterations && (sample(fn, iterations) * iterations) / 1e6 < minSampleMs) iterations *= 2;
  sample(fn, iterations);
  const ns: number[] = [];
  for (let s = 0; s < samples; s++) ns.push(sample(fn, iterations));
  return median(ns);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Start times (performance.now() clock) of the GCs seen so far; entries arrive asynchronously. */
const gcStarts: number[] = [];
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcStarts.push(e.startTime);
});
observer.observe({ entryTypes: ['gc'] });

/** Lets the observer deliver the entries of the GCs that already happened. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Heap bytes allocated per call of `fn`, from heapUsed before and after `calls` calls, minus the same
 * measurement over an empty loop (the cost of measuring). Call it after timeNsPerOp, so that optimised code
 * (not the compiler's own allocations) is what is measured. Returns NaN without `--expose-gc`.
 */
export async function bytesPerOp(fn: (i: number) => number, calls = 100_000): Promise<number> {
  if (gc === undefined) return NaN;
  const window = async (f: (i: number) => number, n: number): Promise<number | undefined> => {
    gc();
    gc();
    await settle();
    const t0 = performance.now();
    const before = process.memoryUsage().heapUsed;
    let acc = 0;
    for (let i = 0; i < n; i++) acc += f(i);
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();
    sink += acc;
    await settle();
    // A GC inside the window frees memory and hides allocations: discard that window.
    if (gcStarts.some((t) => t >= t0 && t <= t1)) return undefined;
    return after - before;
  };
  const empty = (i: number): number => i & 1;
  // Bounded retries: each retry uses a tenth of the calls, so a GC becomes less and less likely.
  for (let n = calls, attempt = 0; attempt < 4 && n >= 100; attempt++, n = Math.floor(n / 10)) {
    const used = await window(fn, n);
    const overhead = await window(empty, n);
    if (used !== undefined && overhead !== undefined) return Math.max(0, used - overhead) / n;
  }
  return NaN;
}

export function stopObserving(): void {
  observer.disconnect();
}

/** Seeded PRNG (mulberry32), so every run builds the same candidates. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const passFail = (ok: boolean): string => (ok ? '**PASS**' : '**FAIL**');

/** Markdown lines describing the machine and the moment, as bench/lib.mjs prints them for the other benches. */
export function machineLines(command: string): string[] {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  return [
    `- Machine: ${os.availableParallelism()} CPUs (nproc), ${model}, ${os.type()} ${os.release()}`,
    `- Date: ${new Date().toISOString()}; load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `- Node ${process.version}`,
    `- Reproduce: \`${command}\``,
  ];
}
