/**
 * Prometheus metrics, exposed on the admin API's `GET /metrics` through prom-client, on a Registry of bulb's
 * own (never prom-client's global one, so embedding bulb or running two in one process cannot mix them up).
 * Names follow `bulb_<noun>_<unit|total>` (compare controller-runtime's `controller_runtime_reconcile_total`).
 *
 * Cost on the request path: one `Map.get` by backend object, a few integer increments and one histogram
 * observation per exchange. Per-backend counts are plain numbers on a record made when the pool adds the backend
 * and dropped when it removes it; the prom-client metrics read those records (and the pool, and the controller)
 * in `collect()`, at scrape time. That is cheaper than prom-client's labelled children, which hash their
 * label set on every `inc()`, and it means a removed backend's series simply stop being exported.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type { Controller } from '../controller/controller.js';
import type { Backend } from '../pool/backend.js';
import type { Pool } from '../pool/pool.js';
import type { WorkerStats } from '../dataplane/messages.js';

/**
 * prom-client's classes from their own files. Its index also loads the Pushgateway client (http, https, zlib),
 * the cluster aggregator (cluster, child_process) and Summary, none of which bulb uses: ~15 built-in modules
 * and their memory on every start. prom-client has no `exports` map, so these paths are reachable; the metrics
 * tests fail at once if an upgrade moves them.
 */
const requireProm = createRequire(import.meta.url);
const Registry = requireProm('prom-client/lib/registry.js') as typeof PromClient.Registry;
const Counter = requireProm('prom-client/lib/counter.js') as typeof PromClient.Counter;
const Gauge = requireProm('prom-client/lib/gauge.js') as typeof PromClient.Gauge;
const Histogram = requireProm('prom-client/lib/histogram.js') as typeof PromClient.Histogram;
const collectDefaultMetrics = requireProm('prom-client/lib/defaultMetrics.js') as typeof PromClient.collectDefaultMetrics;
type Registry = PromClient.Registry;
type Counter<T extends string = string> = PromClient.Counter<T>;
type Gauge<T extends string = string> = PromClient.Gauge<T>;
type Histogram<T extends string = string> = PromClient.Histogram<T>;

/** Status classes, indexed by `Math.floor(status / 100) - 1`. */
export const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type CodeClass = (typeof CODE_CLASSES)[number];

/** The `backend` label of exchanges no backend took part in (bulb answered 503 itself): empty, as Prometheus reads a missing label. */
export const NO_BACKEND = '';

/** Proxy latencies on a sidecar start well under a millisecond and end at the upstream timeout. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** A reconcile is a map diff plus pool updates: microseconds to milliseconds. */
const RECONCILE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** What bulb counts for one backend; made on pool 'added', dropped on 'removed'. */
interface BackendSeries {
  readonly id: string;
  /** Finished client exchanges whose last attempt went to this backend, by status class. */
  readonly responses: [number, number, number, number, number];
  retries: number;
  /** Failed attempts the retry budget kept from being retried. */
  retriesRefused: number;
  /** Attempts answered 503 and retried on another backend. */
  retried503: number;
  ejections: number;
}

const newSeries = (id: string): BackendSeries => ({ id, responses: [0, 0, 0, 0, 0], retries: 0, retriesRefused: 0, retried503: 0, ejections: 0 });

export interface MetricsOptions {
  readonly pool: Pool;
  readonly controller: Controller;
  /** With worker threads: each running worker's figures (fresh: the admin API syncs before a scrape). */
  readonly workers?: () => { readonly stats: readonly WorkerStats[]; readonly restarts: number };
  /** Process and Node.js runtime metrics (`process_*`, `nodejs_*`); on by default. */
  readonly defaultMetrics?: boolean;
}

/** Owns bulb's Registry. Hand it to the proxy as its observer, and to the admin server for `/metrics`. */
export class Metrics {
  readonly registry = new Registry();
  /** By backend id: the data plane reports by id, from any thread. */
  private readonly series = new Map<string, BackendSeries>();
  /** Exchanges bulb answered without any backend (503 when nothing is routable). */
  private readonly unrouted = newSeries(NO_BACKEND);
  private readonly duration: Histogram;
  private readonly reconciles: Counter;
  private readonly reconcileDuration: Histogram;
  /** Client exchanges finished since start, every backend (and none) together: the status page's worker row. */
  exchanges = 0;

  constructor(opts: MetricsOptions) {
    const { pool, controller } = opts;
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    const requests = new Counter<'backend' | 'code_class'>({
      name: 'bulb_requests_total',
      help: 'Client requests bulb finished, by the backend that answered last and the status class (499, client gone, counts as 4xx; backend="" when no backend was available).',
      labelNames: ['backend', 'code_class'],
      registers,
      collect: () => {
        requests.reset();
        for (const s of this.allSeries()) {
          for (let i = 0; i < CODE_CLASSES.length; i++) {
            const n = s.responses[i];
            if (n > 0) requests.inc({ backend: s.id, code_class: CODE_CLASSES[i] }, n);
          }
        }
      },
    });
    this.duration = new Histogram({
      name: 'bulb_request_duration_seconds',
      help: 'Time from a client request arriving to its response finishing (or the client leaving), retries included.',
      buckets: REQUEST_BUCKETS,
      registers,
    });
    const retries = new Counter<'backend'>({
      name: 'bulb_retries_total',
      help: 'Attempts that failed before any response and were retried on another backend, by the backend that failed.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        retries.reset();
        for (const s of this.series.values()) retries.inc({ backend: s.id }, s.retries);
      },
    });
    const refused = new Counter<'backend'>({
      name: 'bulb_retries_refused_total',
      help: 'Failed attempts that could have been retried but were not because the retry budget was spent, by the backend that failed.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        refused.reset();
        for (const s of this.series.values()) refused.inc({ backend: s.id }, s.retriesRefused);
      },
    });
    const ejections = new Counter<'backend'>({
      name: 'bulb_ejections_total',
      help: 'Times health checking took a backend out of rotation.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        ejections.reset();
        for (const s of this.series.values()) ejections.inc({ backend: s.id }, s.ejections);
      },
    });
    const active = new Gauge<'backend'>({
      name: 'bulb_backend_active_requests',
      help: 'Requests in flight to each backend.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        active.reset();
        for (const b of pool.all()) active.set({ backend: b.id }, b.inflight);
      },
    });
    const healthy = new Gauge<'backend'>({
      name: 'bulb_backend_healthy',
      help: '1 when health checking considers the backend healthy, else 0.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        healthy.reset();
        for (const b of pool.all()) healthy.set({ backend: b.id }, b.healthy ? 1 : 0);
      },
    });
    const routable = new Gauge<'backend'>({
      name: 'bulb_backend_routable',
      help: '1 when the backend gets new requests (active, healthy or in panic mode, not drained by an operator, in the serving priority group), else 0.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        routable.reset();
        const serving = new Set(pool.routable);
        for (const b of pool.all()) routable.set({ backend: b.id }, serving.has(b) ? 1 : 0);
      },
    });
    const discoveryErrors = new Counter<'source'>({
      name: 'bulb_discovery_errors_total',
      help: 'Reports in which a discovery source could not be read as a whole (its last-known-good backends were kept).',
      labelNames: ['source'],
      registers,
      collect: () => {
        discoveryErrors.reset();
        for (const s of controller.sources()) discoveryErrors.inc({ source: s.name }, s.errors);
      },
    });
    const problems = new Gauge<'source'>({
      name: 'bulb_discovery_problems',
      help: 'Entries a discovery source rejects right now (invalid backend files or records), by source.',
      labelNames: ['source'],
      registers,
      collect: () => {
        problems.reset();
        for (const s of controller.sources()) problems.set({ source: s.name }, s.problems.length);
      },
    });
    const lastSync = new Gauge<'source'>({
      name: 'bulb_discovery_last_sync_timestamp_seconds',
      help: 'Unix time of the last report from each source that carried no source-wide error.',
      labelNames: ['source'],
      registers,
      collect: () => {
        lastSync.reset();
        for (const s of controller.sources()) if (s.lastSyncAt) lastSync.set({ source: s.name }, Date.parse(s.lastSyncAt) / 1000);
      },
    });
    const workers = opts.workers;
    if (workers) {
      const perWorker = (name: string, help: string, value: (w: WorkerStats) => number, kind: typeof Gauge | typeof Counter = Gauge): void => {
        const m: Gauge<'worker'> | Counter<'worker'> = new kind({
          name,
          help,
          labelNames: ['worker'],
          registers,
          collect: () => {
            // After a reset, `inc` sets: one call that counters and gauges both have.
            m.reset();
            for (const w of workers().stats) m.inc({ worker: String(w.index) }, value(w));
          },
        });
      };
      perWorker('bulb_worker_requests_total', 'Client requests each data-plane worker finished since it started.', (w) => w.requests, Counter);
      perWorker('bulb_worker_connections', 'Client connections open on each data-plane worker.', (w) => w.connections);
      perWorker('bulb_worker_event_loop_lag_seconds', 'Mean event-loop delay of each data-plane worker since the previous scrape.', (w) => w.eventLoopLagSeconds);
      const restarts: Counter = new Counter({
        name: 'bulb_worker_restarts_total',
        help: 'Data-plane workers that died and were replaced.',
        registers,
        collect: () => {
          restarts.reset();
          restarts.inc(workers().restarts);
        },
      });
    }
    this.reconciles = new Counter({
      name: 'bulb_reconciles_total',
      help: 'Reconciles that changed the pool (added, updated or drained backends).',
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'bulb_reconcile_duration_seconds',
      help: 'Time one reconcile took to plan and apply its changes to the pool.',
      buckets: RECONCILE_BUCKETS,
      registers,
    });

    for (const b of pool.all()) this.series.set(b.id, newSeries(b.id));
    pool.onEvent((e) => {
      const id = e.backend.id;
      if (e.kind === 'added') this.series.set(id, newSeries(id));
      else if (e.kind === 'removed') {
        // Later in this turn the data plane may still report the exchange whose end made the backend leave (a
        // drained backend leaves when its last request finishes); keep the record until then, unless a backend
        // of the same id was added meanwhile.
        const gone = this.series.get(id);
        setImmediate(() => {
          if (this.series.get(id) === gone) this.series.delete(id);
        });
      }
    });
    controller.onPlan((_plan, durationMs) => {
      this.reconciles.inc();
      this.reconcileDuration.observe(durationMs / 1000);
    });
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The data plane's report of one finished client exchange (see `Reporter`). */
  readonly exchangeDone = (backend: string | undefined, status: number, durationMs: number): void => {
    const s = backend !== undefined ? this.series.get(backend) : this.unrouted;
    const i = Math.floor(status / 100) - 1;
    // A backend removed at the drain timeout can still finish requests; its series are gone, so skip it.
    if (s && i >= 0 && i < 5) s.responses[i]++;
    this.exchanges++;
    this.duration.observe(durationMs / 1000);
  };

  /** The data plane's report: an attempt on `backend` failed (no response, or a 503) and is being retried elsewhere. */
  readonly retried = (backend: string, error: string): void => {
    const s = this.series.get(backend);
    if (!s) return;
    s.retries++;
    // A retried 503 reaches no client and is not a transport failure (`Backend.failures`): count it here so
    // `serverErrors` sees every 5xx the backend sent.
    if (error === '503') s.retried503++;
  };

  /** The data plane's report: an attempt on `backend` failed and would have been retried, but the retry budget was spent. */
  readonly retryRefused = (backend: string): void => {
    const s = this.series.get(backend);
    if (s) s.retriesRefused++;
  };

  /** For health checking: `backend` was ejected (taken out of rotation). */
  ejected(backend: Backend): void {
    const s = this.series.get(backend.id);
    if (s) s.ejections++;
  }

  /** Finished exchanges per status class for one backend, for the admin API's `/backends`. */
  responses(backend: Backend): Record<CodeClass, number> | undefined {
    const s = this.series.get(backend.id);
    if (!s) return undefined;
    return { '1xx': s.responses[0], '2xx': s.responses[1], '3xx': s.responses[2], '4xx': s.responses[3], '5xx': s.responses[4] };
  }

  /** 5xx answers `backend` sent, whether bulb passed them on or retried them elsewhere (the status page's errors). */
  serverErrors(backend: Backend): number {
    const s = this.series.get(backend.id);
    return s === undefined ? 0 : s.responses[4] + s.retried503;
  }

  private *allSeries(): Iterable<BackendSeries> {
    yield this.unrouted;
    yield* this.series.values();
  }
}
