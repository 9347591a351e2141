import http from 'node:http';
import type { Controller, SourceStatus } from '../controller/controller.js';
import type { Logger } from '../log.js';
import type { Pool } from '../pool/pool.js';
import type { Backend } from '../pool/backend.js';
import type { Metrics } from './metrics.js';

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
}

/** Every route, for the 404 answer and the docs. */
export const ADMIN_ROUTES = [
  'GET /healthz',
  'GET /readyz',
  'GET /backends',
  'GET /backends/{id}',
  'POST /backends/{id}/drain',
  'POST /backends/{id}/undrain',
  'GET /sources',
  'GET /metrics',
] as const;

/** Probes must work without the token: a kubelet or Docker HEALTHCHECK has no way to send it. */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

function healthView(b: Backend): { reason: 'failing-checks' | 'ejected'; until: string | null } | null {
  const reason = b.unhealthyReason;
  if (reason === null) return null;
  const until = b.unhealthyUntil;
  return { reason, until: until === undefined || !Number.isFinite(until) ? null : new Date(until).toISOString() };
}

function backendView(b: Backend, metrics: Metrics | undefined, routable: readonly Backend[]) {
  return {
    id: b.id,
    url: b.url,
    weight: b.spec.weight,
    // What the weighted strategies use now: lower than weight while slow start ramps a new or recovered backend.
    effectiveWeight: Math.round(b.weight * 100) / 100,
    source: b.spec.source,
    origin: b.spec.origin,
    state: b.state,
    adminDrained: b.adminDrained,
    // In the pool's routable set: takes new requests (priority groups and panic mode included).
    routable: routable.includes(b),
    healthy: b.healthy,
    // Why it is out and until when: `failing-checks` lasts until `rise` checks pass (until null), `ejected` until
    // the ejection time is up. Null while healthy.
    health: healthView(b),
    // Times outlier detection has ejected it (bulb_ejections_total).
    ejections: b.ejections,
    activeRequests: b.inflight,
    latencyMs: Math.round(b.ewmaMs * 100) / 100,
    requests: b.requests,
    failures: b.failures,
    responses: metrics?.responses(b) ?? null,
    lastError: b.lastError ?? null,
  };
}

function sourceView(s: SourceStatus) {
  return {
    name: s.name,
    synced: s.synced,
    backends: s.backends,
    lastSyncAt: s.lastSyncAt ?? null,
    lastReportAt: s.lastSnapshotAt ?? null,
    error: s.error ?? null,
    lastError: s.lastError ?? null,
    errors: s.errors,
    rejected: s.problems.map((p) => ({ path: p.file, pointer: p.pointer, message: p.message })),
  };
}

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
  return m !== null && process.getBuiltinModule('node:crypto').timingSafeEqual(sha256(m[1]!), expected);
}

/**
 * The admin API: its own listener (loopback by default), never the traffic port, so nothing here is reachable
 * by the clients bulb proxies for. Every answer is JSON except `/metrics`.
 */
export function createAdminServer(state: AdminState): http.Server {
  const expected = state.token === undefined ? undefined : sha256(state.token);

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
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
      if (!reading) return allow('GET, HEAD');
      json(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      if (!reading) return allow('GET, HEAD');
      const serving = state.serving?.() ?? true;
      const ready = !state.shuttingDown() && state.controller.synced && state.pool.routable.length > 0 && serving;
      json(res, ready ? 200 : 503, {
        ready,
        shuttingDown: state.shuttingDown(),
        synced: state.controller.synced,
        routable: state.pool.routable.length,
        ...(state.serving && { serving }),
      });
      return;
    }
    // Reads see every worker's finished requests; a change (drain, undrain) is answered once every worker runs it.
    if (reading) await state.sync?.();
    if (path === '/backends') {
      if (!reading) return allow('GET, HEAD');
      json(res, 200, { backends: state.pool.all().map((b) => backendView(b, state.metrics, state.pool.routable)) });
      return;
    }
    if (path === '/sources') {
      if (!reading) return allow('GET, HEAD');
      json(res, 200, { sources: state.controller.sources().map(sourceView) });
      return;
    }
    if (path === '/metrics' && state.metrics) {
      if (!reading) return allow('GET, HEAD');
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
        id = decodeURIComponent(m[1]!);
      } catch {
        json(res, 400, { error: `bad percent-encoding in ${path}` });
        return;
      }
      const action = m[2];
      if (action === undefined ? !reading : method !== 'POST') return allow(action === undefined ? 'GET, HEAD' : 'POST');
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

  return http.createServer((req, res) => {
    // No route reads a body; drain whatever was sent so keep-alive connections stay usable.
    req.resume();
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else json(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
}
