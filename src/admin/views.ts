/**
 * How the admin API shows backends and sources: one place, shared by `/backends`, `/sources` and the status
 * page's `/status`, so the page and the JSON API can never describe the same backend differently.
 */
import type { Controller, SourceStatus } from '../controller/controller.js';
import type { Backend } from '../pool/backend.js';
import type { Pool } from '../pool/pool.js';
import type { Metrics } from './metrics.js';

function healthView(b: Backend): { reason: 'failing-checks' | 'ejected'; until: string | null } | null {
  const reason = b.unhealthyReason;
  if (reason === null) return null;
  const until = b.unhealthyUntil;
  return { reason, until: until === undefined || !Number.isFinite(until) ? null : new Date(until).toISOString() };
}

export function backendView(b: Backend, metrics: Metrics | undefined, routable: readonly Backend[]) {
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

export function sourceView(s: SourceStatus) {
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

/** What `/readyz` answers: ready once every source has synced, something is routable, and bulb is not stopping. */
export function readiness(pool: Pool, controller: Controller, shuttingDown: boolean) {
  return {
    ready: !shuttingDown && controller.synced && pool.routable.length > 0,
    shuttingDown,
    synced: controller.synced,
    routable: pool.routable.length,
  };
}
