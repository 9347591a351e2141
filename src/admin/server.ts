import http from 'node:http';
import type { Controller } from '../controller/controller.js';
import type { Logger } from '../log.js';
import type { Pool } from '../pool/pool.js';
import type { Metrics } from './metrics.js';
import { STATUS_PAGE_PATHS, StatusPage } from './status-page/page.js';
import type { WorkerStatus } from './status-page/workers.js';
import { backendView, readiness, sourceView } from './views.js';

export interface AdminState {
  readonly pool: Pool;
  readonly controller: Controller;
  /** True once shutdown has begun: /readyz fails first, so load balancers in front stop sending. */
  readonly shuttingDown: () => boolean;
  /** `/metrics` answers 404 without it. */
  readonly metrics?: Metrics;
  /** When set, every route but /healthz and /readyz needs `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Where operator actions (drain, undrain) are logged. */
  readonly log?: Pick<Logger, 'info'>;
  /**
   * With worker threads: brings every worker's counters in and waits until every worker runs the latest pool,
   * so a read counts every finished request once and a drain has reached every worker when it is answered.
   */
  readonly sync?: () => Promise<void>;
  /** False while no data-plane worker is running (they crash-loop): /readyz then fails. */
  readonly serving?: () => boolean;
  /** The strategy's name, for the status page. */
  readonly strategy?: string;
  /** bulb's version, for the status page; read once, on the page's first poll. */
  readonly version?: () => Promise<string>;
  /** Open client connections on the traffic port, for the status page's worker row. */
  readonly connections?: () => Promise<number>;
  /** The status page's `workers` rows; by default one row for this process (see status-page/workers.ts). */
  readonly workers?: () => Promise<WorkerStatus[]>;
}

/** Every route, for the 404 answer and the docs. */
export const ADMIN_ROUTES = [
  'GET /',
  'GET /status',
  'GET /healthz',
  'GET /readyz',
  'GET /backends',
  'GET /backends/{id}',
  'POST /backends/{id}/drain',
  'POST /backends/{id}/undrain',
  'GET /sources',
  'GET /metrics',
] as const;

/**
 * Probes must work without the token: a kubelet or Docker HEALTHCHECK has no way to send it. The status page's
 * own files hold no pool data, and the page must load before it can ask for the token.
 */
const OPEN_PATHS = new Set(['/healthz', '/readyz', ...STATUS_PAGE_PATHS]);

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// node:crypto is loaded only when a token is set: it is some twenty modules that a bulb without one never uses.
const sha256 = (text: string): Buffer => process.getBuiltinModule('node:crypto').createHash('sha256').update(text, 'utf8').digest();

/**
 * Checks `Authorization: Bearer <token>` in constant time: both sides are hashed first, so `timingSafeEqual`
 * always compares two 32-byte digests and neither the token's length nor its content shows in the timing.
 */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer +([!-~]+) *$/i.exec(header ?? '');
  return m !== null && process.getBuiltinModule('node:crypto').timingSafeEqual(sha256(m[1]), expected);
}

/**
 * The admin API: its own listener (loopback by default), never the traffic port, so nothing here is reachable
 * by the clients bulb proxies for. Every answer is JSON except `/metrics`.
 */
export function createAdminServer(state: AdminState): http.Server {
  const expected = state.token === undefined ? undefined : sha256(state.token);
  const page = new StatusPage({
    pool: state.pool,
    controller: state.controller,
    shuttingDown: state.shuttingDown,
    metrics: state.metrics,
    tokenRequired: expected !== undefined,
    strategy: state.strategy,
    version: state.version,
    connections: state.connections,
    workers: state.workers,
  });

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?', 2);
    const method = req.method ?? 'GET';
    const reading = method === 'GET' || method === 'HEAD';
    const allow = (allowed: string) => json(res, 405, { error: `${method} is not allowed on ${path}` }, { allow: allowed });

    if (expected && !OPEN_PATHS.has(path) && !authorized(req.headers.authorization, expected)) {
      const given = req.headers.authorization !== undefined;
      json(res, 401, { error: given ? 'wrong admin token' : 'this route needs Authorization: Bearer <admin token>' }, {
        'www-authenticate': `Bearer realm="bulb admin"${given ? ', error="invalid_token"' : ''}`,
      });
      return;
    }

    if (path === '/healthz') {
      if (!reading) { allow('GET, HEAD'); return; }
      json(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      if (!reading) { allow('GET, HEAD'); return; }
      const r = readiness(state.pool, state.controller, state.shuttingDown());
      const serving = state.serving?.() ?? true;
      const ready = r.ready && serving;
      json(res, ready ? 200 : 503, { ...r, ready, ...(state.serving && { serving }) });
      return;
    }
    if (STATUS_PAGE_PATHS.has(path)) {
      if (!reading) { allow('GET, HEAD'); return; }
      await page.serveAsset(path, method, res);
      return;
    }
    // Reads see every worker's finished requests; a change (drain, undrain) is answered once every worker runs it.
    if (reading) await state.sync?.();
    if (path === '/status') {
      if (!reading) { allow('GET, HEAD'); return; }
      json(res, 200, await page.status(new URLSearchParams(query)), { 'cache-control': 'no-store' });
      return;
    }
    if (path === '/backends') {
      if (!reading) { allow('GET, HEAD'); return; }
      json(res, 200, { backends: state.pool.all().map((b) => backendView(b, state.metrics, state.pool.routable)) });
      return;
    }
    if (path === '/sources') {
      if (!reading) { allow('GET, HEAD'); return; }
      json(res, 200, { sources: state.controller.sources().map(sourceView) });
      return;
    }
    if (path === '/metrics' && state.metrics) {
      if (!reading) { allow('GET, HEAD'); return; }
      const text = await state.metrics.text();
      res.writeHead(200, { 'content-type': state.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    // /backends/{id}, /backends/{id}/drain, /backends/{id}/undrain. Ids are host:port by default; a custom id
    // may need percent-encoding.
    const m = /^\/backends\/([^/]+)(?:\/(drain|undrain))?$/.exec(path);
    if (m) {
      let id: string;
      try {
        id = decodeURIComponent(m[1]);
      } catch {
        json(res, 400, { error: `bad percent-encoding in ${path}` });
        return;
      }
      const action = m[2];
      if (action === undefined ? !reading : method !== 'POST') { allow(action === undefined ? 'GET, HEAD' : 'POST'); return; }
      const backend = action === undefined ? state.pool.get(id) : state.pool.setAdminDrained(id, action === 'drain');
      if (!backend) {
        json(res, 404, { error: `no backend with id ${JSON.stringify(id)}` });
        return;
      }
      if (action !== undefined) {
        await state.sync?.();
        state.log?.info({ backend: id, adminDrained: backend.adminDrained }, action === 'drain' ? 'backend drained by operator' : 'backend undrained by operator');
      }
      json(res, 200, { backend: backendView(backend, state.metrics, state.pool.routable) });
      return;
    }
    json(res, 404, { error: `no admin route ${path}`, routes: state.metrics ? ADMIN_ROUTES : ADMIN_ROUTES.filter((r) => r !== 'GET /metrics') });
  };

  const server = http.createServer((req, res) => {
    // No route reads a body; drain whatever was sent so keep-alive connections stay usable.
    req.resume();
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else json(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  server.on('close', () => page.close());
  return server;
}
