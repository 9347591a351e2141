/**
 * The controller's side of the worker threads: starts them with the latest pool, keeps them current with
 * snapshots, replays their reports into the controller's pool and metrics, replaces a worker that dies, and
 * stops them at shutdown. Threads rather than processes: they share the in-flight counters (a SharedArrayBuffer)
 * with the controller, and cost a V8 isolate each rather than a whole Node process.
 */
import { Worker } from 'node:worker_threads';
import type { Address, Config } from '../config/types.js';
import { ListenError } from '../errors.js';
import { type Logger, writeRaw } from '../log.js';
import type { LoadSlots } from '../pool/load-slots.js';
import type { Pool } from '../pool/pool.js';
import type { Reporter } from '../pool/snapshot.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from './messages.js';

/** A worker that died is replaced after this long, doubled for each death in the last minute (at most 30 s). */
const RESTART_DELAY_MS = 100;
const RESTART_DELAY_MAX_MS = 30_000;
const CRASH_WINDOW_MS = 60_000;
/** How long a read of the admin API waits for a worker that does not answer (busy or dying). */
const SYNC_TIMEOUT_MS = 1_000;

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  /** The last snapshot version it applied. */
  applied: number;
  listening: boolean;
  stats: WorkerStats | undefined;
  crashes: number[];
  restartTimer: NodeJS.Timeout | undefined;
}

export class WorkerGroup {
  private readonly slots: Slot[];
  private address: Address | undefined;
  private stopping = false;
  private nextFlush = 0;
  private readonly waiters = new Map<number, Map<Worker, () => void>>();
  private readonly appliedWaiters: (() => void)[] = [];
  private broadcastScheduled = false;
  /** Workers that died and were replaced, for `bulb_worker_restarts_total`. */
  restarts = 0;

  constructor(
    private readonly opts: {
      readonly count: number;
      readonly config: Config;
      readonly pool: Pool;
      readonly load: LoadSlots;
      readonly reporter: Reporter;
      readonly log: Logger;
    },
  ) {
    this.slots = Array.from({ length: opts.count }, (_, index) => ({ index, worker: undefined, applied: -1, listening: false, stats: undefined, crashes: [], restartTimer: undefined }));
    opts.pool.onChange(() => {
      if (this.broadcastScheduled) return;
      this.broadcastScheduled = true;
      // One snapshot per burst of changes (a reconcile, a health flip), sent when the burst is over.
      setImmediate(() => {
        this.broadcastScheduled = false;
        const snapshot = this.opts.pool.snapshot();
        for (const s of this.slots) if (s.listening) this.send(s, { t: 'snapshot', snapshot });
      });
    });
  }

  /** Starts every worker; resolves with the address they share once all of them accept connections. */
  async start(): Promise<Address> {
    const first = this.slots[0];
    const address = await this.spawn(first, this.opts.config.listen);
    this.address = address;
    await Promise.all(this.slots.slice(1).map((s) => this.spawn(s, address)));
    return address;
  }

  /** Workers accepting connections now. */
  get serving(): number {
    return this.slots.filter((s) => s.listening).length;
  }

  /** The latest figures of every running worker (fresh after `sync`). */
  stats(): WorkerStats[] {
    return this.slots.flatMap((s) => (s.listening && s.stats ? [s.stats] : []));
  }

  /**
   * Brings every worker's reports in and waits until every worker has applied the latest snapshot (each
   * answers in order, so its reports sent before the answer have been replayed when this resolves).
   */
  async sync(): Promise<void> {
    const version = this.opts.pool.snapshot().version;
    const id = this.nextFlush++;
    const waiting = new Map<Worker, () => void>();
    this.waiters.set(id, waiting);
    const all = this.slots.flatMap((s) => (s.listening && s.worker ? [s.worker] : []));
    await Promise.race([
      Promise.all(
        all.map(
          (w) =>
            new Promise<void>((resolve) => {
              waiting.set(w, resolve);
              w.postMessage({ t: 'flush', id } satisfies ToWorker);
            }),
        ),
      ),
      new Promise((r) => setTimeout(r, SYNC_TIMEOUT_MS).unref()),
    ]);
    this.waiters.delete(id);
    // The flush answer comes after any snapshot sent before it; one still scheduled goes out now and is awaited.
    const behind = () => this.slots.some((s) => s.listening && s.applied < version);
    if (behind()) {
      await Promise.race([new Promise<void>((r) => this.appliedWaiters.push(r)), new Promise((r) => setTimeout(r, SYNC_TIMEOUT_MS).unref())]);
    }
  }

  /** Shutdown, first step: responses carry `Connection: close` from now on. */
  draining(): void {
    for (const s of this.slots) if (s.worker) this.send(s, { t: 'draining' });
  }

  /** Stops every worker (see `stopDataPlane`); resolves true when every one drained in time. */
  async stop(deadline: number): Promise<boolean> {
    this.stopping = true;
    // Every worker closes its listener first, and only then do any answer `Connection: close` (see stopListening).
    await Promise.all(
      this.slots.map((s) => {
        const w = s.worker;
        if (!w) return Promise.resolve();
        return Promise.race([
          new Promise<void>((resolve) => {
            const onMessage = (m: FromWorker): void => {
              if (m.t !== 'unlistened') return;
              w.off('message', onMessage);
              resolve();
            };
            w.on('message', onMessage);
            w.once('exit', () => resolve());
            this.send(s, { t: 'unlisten' });
          }),
          new Promise((r) => setTimeout(r, SYNC_TIMEOUT_MS).unref()),
        ]);
      }),
    );
    const results = await Promise.all(
      this.slots.map((s) => {
        clearTimeout(s.restartTimer);
        const w = s.worker;
        if (!w) return Promise.resolve(true);
        return new Promise<boolean>((resolve) => {
          let drained = false;
          w.on('message', (m: FromWorker) => {
            if (m.t === 'stopped') drained = m.drained;
          });
          w.once('exit', () => resolve(drained));
          this.send(s, { t: 'stop', deadline });
          // A worker that does not stop by the deadline (and a little) is ended.
          // terminate() resolves with the exit code; the 'exit' listener above is what resolves this promise.
          setTimeout(() => void w.terminate(), Math.max(0, deadline - Date.now()) + 2_000).unref();
        });
      }),
    );
    return results.every(Boolean);
  }

  private send(s: Slot, m: ToWorker): void {
    s.worker?.postMessage(m);
  }

  private spawn(s: Slot, listen: Address): Promise<Address> {
    const { pool, load, config, log } = this.opts;
    const init: WorkerInit = { index: s.index, config, load: load.buffer, stride: load.stride, snapshot: pool.snapshot(), listen };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, stdout: false, stderr: false });
    s.worker = worker;
    s.applied = init.snapshot.version;
    return new Promise<Address>((resolve, reject) => {
      let lastError: Error | undefined;
      worker.on('message', (m: FromWorker) => this.onMessage(s, worker, m, resolve, reject));
      worker.on('error', (err: Error) => {
        lastError = err;
        log.error({ worker: s.index, err: err.message, stack: err.stack }, 'worker failed');
      });
      worker.on('exit', (code) => {
        const wasListening = s.listening;
        s.listening = false;
        if (s.worker === worker) s.worker = undefined;
        // Whatever it had in flight is gone with it; its requests must not hold their backends' counts.
        load.forgetWorker(s.index);
        for (const waiting of this.waiters.values()) waiting.get(worker)?.();
        if (!wasListening) reject(new ListenError(`worker ${s.index} exited before it listened: ${lastError?.message ?? `exit code ${code}`}`));
        if (this.stopping) return;
        this.restart(s, code, lastError);
      });
    });
  }

  private restart(s: Slot, code: number, err: Error | undefined): void {
    const now = Date.now();
    s.crashes = s.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    s.crashes.push(now);
    const delay = Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_MS * 2 ** (s.crashes.length - 1));
    this.opts.log.error({ worker: s.index, exitCode: code, reason: err?.message ?? `exit code ${code}`, restartInMs: delay, crashesLastMinute: s.crashes.length }, 'worker died; starting a new one with the current pool');
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      if (this.stopping || this.address === undefined) return;
      this.restarts++;
      this.spawn(s, this.address).catch((e: unknown) => this.opts.log.error({ worker: s.index, err: e instanceof Error ? e.message : String(e) }, 'worker could not start'));
    }, delay);
  }

  private onMessage(s: Slot, worker: Worker, m: FromWorker, resolve: (a: Address) => void, reject: (e: Error) => void): void {
    const { reporter, log } = this.opts;
    switch (m.t) {
      case 'report': {
        const a = m.attempts;
        for (let i = 0; i < a.length; i += 4) {
          const status = a[i + 1] as number;
          const error = a[i + 2] as string;
          reporter.attemptDone(a[i] as string, { ...(status >= 0 && { status }), ...(error !== '' && { error }) }, a[i + 3] as number);
        }
        const x = m.exchanges;
        for (let i = 0; i < x.length; i += 3) reporter.exchangeDone(x[i] === '' ? undefined : (x[i] as string), x[i + 1] as number, x[i + 2] as number);
        const r = m.retries;
        for (let i = 0; i < r.length; i += 2) reporter.retried(r[i], r[i + 1]);
        for (const id of m.refused) reporter.retryRefused(id);
        return;
      }
      case 'log':
        writeRaw(log, m.chunk);
        return;
      case 'listening':
        s.listening = true;
        // Snapshots sent while it started did not reach it; it starts from the one it was given, so catch up.
        this.send(s, { t: 'snapshot', snapshot: this.opts.pool.snapshot() });
        resolve(m.address);
        return;
      case 'listen-error':
        reject(new ListenError(`cannot listen for traffic on ${this.opts.config.listen.host}:${this.opts.config.listen.port}: ${m.code === 'EADDRINUSE' ? 'the address is already in use' : m.message}`));
        void worker.terminate(); // resolves with the exit code, which nobody needs: 'exit' is handled in spawn
        return;
      case 'applied':
        s.applied = Math.max(s.applied, m.version);
        if (!this.slots.some((x) => x.listening && x.applied < this.opts.pool.snapshot().version)) {
          for (const w of this.appliedWaiters.splice(0)) w();
        }
        return;
      case 'flushed':
        s.stats = m.stats;
        this.waiters.get(m.id)?.get(worker)?.();
        return;
      case 'stopped':
        return;
    }
  }
}
