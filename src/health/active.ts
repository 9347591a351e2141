/**
 * Active health checks: every backend is probed on its own schedule (all on one timer, see `CheckScheduler`), by
 * HTTP (GET a path, expect a status range), by gRPC (`grpc.health.v1.Health/Check` over HTTP/2, see grpc.ts) or by
 * a bare TCP connect, and a rise/fall state machine with HAProxy's
 * semantics decides when it goes out of rotation and when it comes back. The verdict reaches the pool through
 * `Pool.setHealth(id, up, 'failing-checks')` and nothing else; strategies never hear of health checks (STYLE.md,
 * "A strategy only picks").
 *
 * Decisions (docs/health.md repeats them):
 * - Optimistic start: a new backend is healthy, its first check runs at once, and `fall` consecutive failures take
 *   it out. `--health-initial unhealthy` instead keeps it out until `rise` checks pass.
 * - Consecutive counts, as HAProxy documents `rise`/`fall`: a result that agrees with the current state resets
 *   the streak, so one flapping check never moves a backend.
 * - Every probe uses its own connection (`agent: false`): a check must neither share sockets with traffic (a
 *   stale keep-alive socket would fail it) nor queue behind requests when the traffic agent is saturated.
 * - Jitter: each interval is stretched or shrunk by up to 10%, so backends added together drift apart instead of
 *   being probed in lockstep.
 */
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { BackendHealthSpec } from '../discovery/source.js';
import type { TlsMaterial } from '../tls/material.js';
import { grpcProbe } from './grpc.js';

/** `--health-*` settings after loading (durations in ms); a backend file's `health` block overrides them. */
export interface HealthDefaults {
  /** `auto` = http when a path is set, else tcp. */
  readonly mode: 'auto' | 'http' | 'tcp' | 'grpc' | 'off';
  /** `undefined` when no path is set. */
  readonly path: string | undefined;
  /** Accepted HTTP statuses, inclusive. */
  readonly status: readonly [number, number];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** State of a new backend before its checks have decided. */
  readonly initial: 'healthy' | 'unhealthy';
  /** The service a gRPC check asks about; '' = the server as a whole. */
  readonly grpcService: string;
}

/** The settings one backend is checked with: the defaults, overridden field by field by its `health` block. */
export interface CheckSettings {
  readonly mode: 'http' | 'tcp' | 'grpc' | 'off';
  /** The path an HTTP check GETs (`/` when none was given). */
  readonly path: string;
  /** The service a gRPC check asks `grpc.health.v1.Health/Check` about ('' = the whole server). */
  readonly service: string;
  readonly status: readonly [number, number];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
}

/**
 * Resolves one backend's settings. Mode: the block's own mode; else http when the block names a path (a backend
 * that declares a health path wants it checked, even with `--health-mode off`); else the default mode, where
 * `auto` means http with a path and tcp without.
 */
export function resolveSettings(defaults: HealthDefaults, block: BackendHealthSpec | undefined): CheckSettings {
  const path = block?.path ?? defaults.path;
  let mode = block?.mode ?? (block?.path !== undefined ? 'http' : block?.service !== undefined ? 'grpc' : defaults.mode);
  if (mode === 'auto') mode = path !== undefined ? 'http' : 'tcp';
  return {
    mode,
    path: path ?? '/',
    service: block?.service ?? defaults.grpcService ?? '',
    status: block?.status ?? defaults.status,
    intervalMs: block?.intervalMs ?? defaults.intervalMs,
    timeoutMs: block?.timeoutMs ?? defaults.timeoutMs,
    rise: block?.rise ?? defaults.rise,
    fall: block?.fall ?? defaults.fall,
  };
}

/** Where a backend stands in the rise/fall state machine. */
export interface HealthState {
  readonly healthy: boolean;
  /** Results in a row that disagree with `healthy` (failures while healthy, passes while unhealthy). */
  readonly consecutive: number;
}

/**
 * The rise/fall state machine, pure. A healthy backend goes down on its `fall`-th consecutive failure; an unhealthy
 * one comes back on its `rise`-th consecutive pass; a result agreeing with the current state resets the streak, and
 * so does a change (the new state starts counting from zero). `changed` says whether this result flipped the
 * state, and `streak` is the run of like results that ended in it (the log line's `consecutive`).
 */
export function nextHealth(
  state: HealthState,
  ok: boolean,
  thresholds: { readonly rise: number; readonly fall: number },
): HealthState & { readonly changed: boolean; readonly streak: number } {
  if (ok === state.healthy) return { healthy: state.healthy, consecutive: 0, changed: false, streak: 0 };
  const streak = state.consecutive + 1;
  const needed = state.healthy ? thresholds.fall : thresholds.rise;
  if (streak >= needed) return { healthy: !state.healthy, consecutive: 0, changed: true, streak };
  return { healthy: state.healthy, consecutive: streak, changed: false, streak };
}

/** Largest share an interval is stretched or shrunk by. */
export const JITTER = 0.1;

/** `intervalMs` moved by up to ±`JITTER` of itself; `rand` returns [0, 1) (Math.random in production). */
export function jittered(intervalMs: number, rand: () => number): number {
  return Math.max(0, Math.round(intervalMs * (1 + JITTER * (2 * rand() - 1))));
}

/** One probe's verdict; `reason` is short and stable (`ECONNREFUSED`, `timeout after 1000ms`, `status 503`). */
export type CheckResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** What a probe needs of its abort signal. An `AbortSignal` is one; checkers pass a lighter `ProbeAbort`. */
export interface ProbeSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * Runs one probe; never rejects. Aborting `signal` settles it as failed and frees its socket. `tls` is the
 * backend's TLS material when its url is https: checks verify exactly as traffic does.
 */
export type Probe = (url: string, settings: CheckSettings, signal: ProbeSignal, tls?: TlsMaterial) => Promise<CheckResult>;

/**
 * The abort signal a checker gives each probe: an `AbortController` does the same but allocates an EventTarget
 * with its maps (~2 KB) per probe, about a fifth of the checks' garbage at 10,000 backends checked every 2 s.
 */
class ProbeAbort implements ProbeSignal {
  aborted = false;
  private listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners.indexOf(listener);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    for (const l of this.listeners.splice(0)) l();
  }
}

/** The real probe: HTTP GET or TCP connect to the backend's origin, on a connection of its own. */
export const probe: Probe = (url, settings, signal, tls) =>
  new Promise<CheckResult>((resolve) => {
    const origin = new URL(url);
    let settled = false;
    let cleanup: () => void = () => {};
    const finish = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      cleanup();
      resolve(result);
    };
    const onAbort = (): void => finish({ ok: false, reason: 'aborted' });
    const timer = setTimeout(() => finish({ ok: false, reason: `timeout after ${settings.timeoutMs}ms` }), settings.timeoutMs);
    signal.addEventListener('abort', onAbort);
    if (signal.aborted) { onAbort(); return; }
    const failed = (err: NodeJS.ErrnoException): void => finish({ ok: false, reason: err.code ?? err.message });
    if (tls?.error !== undefined && settings.mode !== 'tcp') { finish({ ok: false, reason: `TLS material: ${tls.error}` }); return; }

    if (settings.mode === 'grpc') {
      grpcProbe(origin, settings.service, tls?.options, finish, (c) => (cleanup = c), signal);
      return;
    }
    if (settings.mode === 'tcp') {
      // `URL.hostname` keeps an IPv6 address's brackets; net.connect wants it bare.
      const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
      const socket = net.connect({ host, port: Number(origin.port) || (origin.protocol === 'https:' ? 443 : 80) });
      const connected = (): void => finish({ ok: true });
      cleanup = () => {
        detach(socket, 'connect', connected, failed);
        socket.destroy();
      };
      socket.once('connect', connected);
      socket.once('error', failed);
      return;
    }
    const target = new URL(settings.path, origin);
    // https (and with it tls) only when a backend needs it: most sidecars never load them.
    const client = origin.protocol === 'https:' ? process.getBuiltinModule('node:https') : http;
    const req = client.request(target, {
      method: 'GET',
      // Its own socket: never a traffic keep-alive socket, never queued behind traffic (see the header comment).
      agent: false,
      headers: { 'user-agent': 'bulb-health-check', accept: '*/*', connection: 'close' },
      // The traffic's CA, SNI and client certificate; ignored by http.
      ...tls?.options,
    });
    const responded = (res: http.IncomingMessage): void => {
      res.resume();
      const status = res.statusCode ?? 0;
      // The verdict is in the status line; the body is not awaited (the socket is closed by `cleanup`).
      finish(status >= settings.status[0] && status <= settings.status[1] ? { ok: true } : { ok: false, reason: `status ${status}` });
    };
    cleanup = () => {
      detach(req, 'response', responded, failed);
      req.destroy();
    };
    req.once('response', responded);
    req.once('error', failed);
    req.end();
  });

const ignoreError = (): void => {};

/**
 * Takes a settled probe's listeners off its socket (or request), leaving a no-op `error` listener so a late error
 * cannot crash the process. A destroyed socket outlives V8's young-generation GCs (its handle is a weak C++
 * object, freed by a full GC), so it is promoted to the old generation together with everything it references:
 * through these listeners, the probe's closures and, from there, the checker's promise chain. Detached, only the
 * socket's own objects are (at 10,000 backends checked every 2 s, that is still most of the checks' garbage).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter's own listener type; the events detached here pass different arguments
function detach(emitter: NodeJS.EventEmitter, event: string, listener: (...args: any[]) => void, failed: (err: NodeJS.ErrnoException) => void): void {
  emitter.removeListener(event, listener);
  emitter.removeListener('error', failed);
  emitter.on('error', ignoreError);
}

/** What a checker reports after each probe. `state` is the state machine after the result. */
export interface CheckReport {
  readonly result: CheckResult;
  readonly state: HealthState;
  readonly changed: boolean;
  /** The run of like results this one ends (see `nextHealth`). */
  readonly streak: number;
}

export interface CheckerOptions {
  /** Defaults to the real `probe`; tests pass their own. */
  readonly probe?: Probe;
  /** [0, 1), for jitter; defaults to Math.random. */
  readonly rand?: () => number;
  /** Called after every probe, synchronously; the manager applies and logs state changes. */
  readonly onResult: (report: CheckReport) => void;
  /** The backend's current TLS material (it may be reloaded between probes). */
  readonly tls?: (() => TlsMaterial | undefined) | undefined;
}

/**
 * Probes one backend on a jittered interval until stopped. The first probe runs at once. Probes never overlap:
 * the next one is scheduled when the previous one has settled, `interval` (jittered) after it started, so a
 * timeout shorter than the interval keeps the cadence and a longer one only delays the next probe.
 */
export class ActiveChecker {
  private settings: CheckSettings;
  private url: string;
  private state: HealthState;
  private abort: ProbeAbort | undefined;
  /** Bumped on every restart, so a probe that settles after `update` or `stop` is ignored. */
  private generation = 0;
  private stopped = false;
  private readonly opts: CheckerOptions;

  constructor(url: string, settings: CheckSettings, initiallyHealthy: boolean, opts: CheckerOptions) {
    this.url = url;
    this.settings = settings;
    this.state = { healthy: initiallyHealthy, consecutive: 0 };
    this.opts = opts;
  }

  get healthy(): boolean {
    return this.state.healthy;
  }

  start(): void {
    this.schedule(0);
  }

  /**
   * New settings or a new url: the health state is kept (a reconcile must not undo a verdict), and probing
   * restarts at once when what is probed changed, otherwise on the next tick of the new interval.
   */
  update(url: string, settings: CheckSettings): void {
    const target = url !== this.url || settings.mode !== this.settings.mode || settings.path !== this.settings.path || settings.service !== this.settings.service;
    this.url = url;
    this.settings = settings;
    if (this.stopped) return;
    this.schedule(target ? 0 : jittered(settings.intervalMs, this.opts.rand ?? Math.random));
  }

  stop(): void {
    this.stopped = true;
    // The scheduler's entry for this checker is now stale and is dropped when it comes due.
    this.generation++;
    this.abort?.abort();
  }

  /** Called by the scheduler when an entry of this checker comes due. False when it is stale (an earlier generation). */
  due(generation: number): boolean {
    if (this.stopped || generation !== this.generation) return false;
    // The scheduler does not wait for probes. A probe resolves every outcome (failures are results, never
    // rejections), and run() reports through onResult.
    void this.run(generation);
    return true;
  }

  private schedule(delayMs: number): void {
    this.abort?.abort();
    scheduler.add(performance.now() + delayMs, this, ++this.generation);
  }

  private async run(generation: number): Promise<void> {
    const started = performance.now();
    const abort = new ProbeAbort();
    this.abort = abort;
    const result = await (this.opts.probe ?? probe)(this.url, this.settings, abort, this.opts.tls?.());
    if (this.stopped || generation !== this.generation) return;
    this.abort = undefined;
    const next = nextHealth(this.state, result.ok, this.settings);
    this.state = { healthy: next.healthy, consecutive: next.consecutive };
    this.opts.onResult({ result, state: this.state, changed: next.changed, streak: next.streak });
    const wait = jittered(this.settings.intervalMs, this.opts.rand ?? Math.random) - (performance.now() - started);
    this.schedule(Math.max(0, wait));
  }
}

/** One pending probe in the scheduler. */
interface Due {
  readonly at: number;
  readonly checker: ActiveChecker;
  readonly generation: number;
}

/** Probes started per event-loop turn at most; a TCP probe costs the loop ~0.1 ms to start (see `CheckScheduler`). */
const PROBES_PER_TURN = 32;

/**
 * One timer for every checker in the process instead of a Timeout each: a min-heap of due times, and one
 * unref'd timer for the earliest. Checkers that come due together (every backend of a reconcile is probed at
 * once: 10,000 of them after start-up with a big directory) are started `PROBES_PER_TURN` per event-loop
 * turn, with I/O and requests served between batches, instead of all in one turn that held up the first
 * request by a second. A checker waiting for its next probe costs one small heap entry.
 */
class CheckScheduler {
  private readonly heap: Due[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When `timer` fires (performance.now() ms), Infinity when none is set. */
  private timerAt = Number.POSITIVE_INFINITY;
  private batching = false;

  add(at: number, checker: ActiveChecker, generation: number): void {
    this.push({ at, checker, generation });
    if (!this.batching && at < this.timerAt) this.arm(at);
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.runDue, Math.max(0, at - performance.now()));
    // Checks alone must not keep the process alive (tests, and shutdown before stop is called).
    this.timer.unref();
  }

  private readonly runDue = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.batching = false;
    // Timers fire on the loop's millisecond clock: anything due within the next millisecond counts as due.
    const now = performance.now() + 1;
    let started = 0;
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const d = this.pop();
      if (d.checker.due(d.generation) && ++started === PROBES_PER_TURN) break;
    }
    const next = this.heap[0];
    if (next === undefined) return;
    if (next.at <= now) {
      // More are due: the next batch after this turn's I/O.
      this.batching = true;
      setImmediate(this.runDue).unref();
    } else this.arm(next.at);
  };

  private push(d: Due): void {
    const h = this.heap;
    let i = h.length;
    h.push(d);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= d.at) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = d;
  }

  private pop(): Due {
    const h = this.heap;
    const top = h[0];
    // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- pop() is called only while the heap has entries
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r].at < h[l].at ? r : l;
        if (h[c].at >= last.at) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

const scheduler = new CheckScheduler();
