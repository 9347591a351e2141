import http from 'node:http';
import type { Controller } from '../controller/controller.js';
import type { Pool } from '../pool/pool.js';
import type { Backend } from '../pool/backend.js';

export interface AdminState {
  readonly pool: Pool;
  readonly controller: Controller;
  /** True once shutdown has begun: /readyz fails first, so load balancers in front stop sending. */
  readonly shuttingDown: () => boolean;
}

function backendView(b: Backend) {
  return {
    id: b.id,
    url: b.url,
    weight: b.weight,
    state: b.state,
    healthy: b.healthy,
    activeRequests: b.inflight,
    source: b.spec.source,
    origin: b.spec.origin,
    latencyMs: Math.round(b.ewmaMs * 100) / 100,
    requests: b.requests,
    failures: b.failures,
    lastError: b.lastError ?? null,
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The admin API: its own listener (loopback by default), never the traffic port, so nothing here is reachable
 * by the clients bulb proxies for.
 */
export function createAdminServer(state: AdminState): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: `${req.method} is not allowed on ${path}` });
      return;
    }
    switch (path) {
      case '/healthz':
        json(res, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const ready = !state.shuttingDown() && state.controller.synced && state.pool.routable.length > 0;
        json(res, ready ? 200 : 503, {
          ready,
          shuttingDown: state.shuttingDown(),
          synced: state.controller.synced,
          routable: state.pool.routable.length,
        });
        return;
      }
      case '/backends':
        json(res, 200, { backends: state.pool.all().map(backendView) });
        return;
      case '/sources':
        json(res, 200, { sources: state.controller.sources() });
        return;
      default:
        json(res, 404, { error: `no admin route ${path}`, routes: ['/healthz', '/readyz', '/backends', '/sources'] });
    }
  });
}
