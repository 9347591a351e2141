/**
 * The `workers` rows of `GET /status`. Today bulb is one process, so there is one row describing it; with
 * `--workers` the controller replaces `processWorkers` with one that asks every worker thread for the same
 * fields (the page renders whatever rows arrive).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';

export interface WorkerStatus {
  /** Stable name of the worker for the page (`main` for the single process). */
  readonly id: string;
  readonly pid: number;
  readonly threadId: number;
  /** Client exchanges this worker finished since it started. */
  readonly requests: number;
  /** Open client connections on the traffic port; absent when unknown. */
  readonly connections?: number;
  /** Event-loop delay over the last few seconds of sampling, ms; null until the first window is complete. */
  readonly eventLoopLagMs: { readonly mean: number; readonly p99: number; readonly max: number } | null;
}

/**
 * Event-loop delay, measured only while the status page is open (`start`/`stop` follow the rate sampler):
 * `monitorEventLoopDelay` runs a libuv timer at `resolution`, which is not free enough to leave on for nobody.
 * Reported over windows of `windowSamples` sampler ticks, so one slow tick shows for a few seconds.
 */
export class EventLoopLag {
  private histogram: ReturnType<typeof monitorEventLoopDelay> | undefined;
  private ticks = 0;
  private readonly windowSamples: number;
  last: WorkerStatus['eventLoopLagMs'] = null;

  constructor(windowSamples = 5) {
    this.windowSamples = windowSamples;
  }

  start(): void {
    if (this.histogram) return;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.ticks = 0;
  }

  stop(): void {
    this.histogram?.disable();
    this.histogram = undefined;
    this.last = null;
  }

  /** One sampler tick: close the window every `windowSamples` ticks. */
  tick(): void {
    const h = this.histogram;
    if (!h || ++this.ticks % this.windowSamples !== 0) return;
    // The histogram is in ns and includes the timer's own resolution; subtracting it leaves the delay.
    const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - 10) * 100) / 100);
    this.last = h.count > 0 ? { mean: ms(h.mean), p99: ms(h.percentile(99)), max: ms(h.max) } : null;
    h.reset();
  }
}

/** This process as the one worker. */
export async function processWorkers(opts: {
  readonly requests: () => number;
  readonly connections?: () => Promise<number>;
  readonly lag: EventLoopLag;
}): Promise<WorkerStatus[]> {
  const connections = opts.connections ? await opts.connections().catch(() => undefined) : undefined;
  return [
    {
      id: 'main',
      pid: process.pid,
      threadId,
      requests: opts.requests(),
      ...(connections !== undefined && { connections }),
      eventLoopLagMs: opts.lag.last,
    },
  ];
}
