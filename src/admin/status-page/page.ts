/**
 * The status page on the admin port: three static files (`/`, `/ui/app.js`, `/ui/app.css`, served from
 * `assets/` beside this module and copied next to the compiled module by `npm run build`) and one JSON
 * document, `GET /status`, that the page polls once a second.
 *
 * Nothing here runs until the page is opened: the files are read on first request, and the rate history and
 * the event-loop lag monitor start on the first `/status` and stop two minutes after the last one.
 */
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { Controller } from '../../controller/controller.js';
import type { Backend } from '../../pool/backend.js';
import type { Pool } from '../../pool/pool.js';
import type { Metrics } from '../metrics.js';
import { backendView, readiness, sourceView } from '../views.js';
import { RateHistory } from './history.js';
import { EventLoopLag, processWorkers, type WorkerStatus } from './workers.js';

/**
 * No inline script or style, nothing from another origin. `img-src data:` is for the inline favicon only, so
 * browsers do not ask for /favicon.ico (which would need the token).
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** Path → file under assets/ and its content type. These answer without the admin token: they hold no pool data. */
const ASSETS: ReadonlyMap<string, { readonly file: string; readonly type: string }> = new Map([
  ['/', { file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['/ui/app.js', { file: 'app.js', type: 'text/javascript; charset=utf-8' }],
  ['/ui/app.css', { file: 'app.css', type: 'text/css; charset=utf-8' }],
]);

export const STATUS_PAGE_PATHS: ReadonlySet<string> = new Set(ASSETS.keys());

export interface StatusPageOptions {
  readonly pool: Pool;
  readonly controller: Controller;
  readonly shuttingDown: () => boolean;
  readonly metrics?: Metrics;
  /** Whether the admin API wants a token: the page then asks for it before its first request. */
  readonly tokenRequired: boolean;
  readonly strategy?: string;
  readonly version?: () => Promise<string>;
  /** Open client connections on the traffic port. */
  readonly connections?: () => Promise<number>;
  /** Replaces the one-row `processWorkers` (for `--workers`). */
  readonly workers?: () => Promise<WorkerStatus[]>;
}

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

export class StatusPage {
  private readonly opts: StatusPageOptions;
  private readonly files = new Map<string, Promise<Buffer>>();
  private readonly lag = new EventLoopLag();
  private readonly history: RateHistory;
  private version: Promise<string> | undefined;

  constructor(opts: StatusPageOptions) {
    this.opts = opts;
    const metrics = opts.metrics;
    this.history = new RateHistory({
      backends: () => opts.pool.all(),
      // Errors: attempts that got no response (refused, reset, timed out) plus 5xx answers, retried ones included.
      counters: (b) => ({ requests: b.requests, errors: b.failures + (metrics?.serverErrors(b) ?? 0) }),
      onSample: () => this.lag.tick(),
      onActive: (active) => (active ? this.lag.start() : this.lag.stop()),
    });
  }

  /** Serves one of the page's files; false when `path` is not one of them. */
  async serveAsset(path: string, method: string, res: http.ServerResponse): Promise<boolean> {
    const asset = ASSETS.get(path);
    if (asset === undefined) return false;
    let body = await this.file(asset.file);
    if (asset.file === 'index.html') {
      body = Buffer.from(body.toString('utf8').replace('data-token-required=""', `data-token-required="${this.opts.tokenRequired}"`));
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(method === 'HEAD' ? undefined : body);
    return true;
  }

  /** `GET /status?since=N&epoch=E`: everything the page shows, with only the chart points after sample N. */
  async status(query: URLSearchParams): Promise<unknown> {
    const { pool, controller, metrics } = this.opts;
    this.history.touch();
    const epoch = Number(query.get('epoch'));
    const since = epoch === this.history.epoch ? Math.max(0, Math.floor(Number(query.get('since')) || 0)) : 0;
    const routable = pool.routable;
    const backends = pool.all().map((b: Backend) => ({
      ...backendView(b, metrics, routable),
      rate: this.history.rate(b),
      history: this.history.since(b, since),
    }));
    const workers = this.opts.workers
      ? await this.opts.workers()
      : await processWorkers({ requests: () => metrics?.exchanges ?? 0, connections: this.opts.connections, lag: this.lag });
    this.version ??= this.opts.version?.() ?? Promise.resolve('unknown');
    return {
      now: new Date().toISOString(),
      version: await this.version,
      strategy: this.opts.strategy ?? null,
      startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
      uptimeSeconds: Math.round(process.uptime()),
      ...readiness(pool, controller, this.opts.shuttingDown()),
      panic: pool.panic,
      backendCount: backends.length,
      sampling: { epoch: this.history.epoch, seq: this.history.seq, intervalMs: this.history.intervalMs, length: this.history.length },
      workers,
      sources: controller.sources().map(sourceView),
      backends,
    };
  }

  /** Stops sampling (the admin server closed). */
  close(): void {
    this.history.stop();
  }

  private file(name: string): Promise<Buffer> {
    let p = this.files.get(name);
    if (p === undefined) {
      p = readFile(new URL(`./assets/${name}`, import.meta.url));
      // A failed read is not cached: the next request tries again.
      p.catch(() => this.files.delete(name));
      this.files.set(name, p);
    }
    return p;
  }
}
