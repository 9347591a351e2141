/**
 * Reads bulb's admin API the way an operator's script would: real HTTP to `bulb.adminUrl`. Every e2e test
 * that looks at `/backends`, `/sources` or `/metrics`, or drains a backend, goes through here, so a change to
 * the API's shape breaks the type check in one place instead of silently in four local copies.
 */
import type { backendView, sourceView } from '../../src/admin/views.js';
import { request, type Reply } from './http.js';
import { parseExposition, type Exposition } from './prom.js';

/** One entry of `GET /backends`, typed from the code that builds it (every field is plain JSON). */
export type AdminBackend = ReturnType<typeof backendView>;
/** One entry of `GET /sources`. */
export type AdminSource = ReturnType<typeof sourceView>;

/** Anything with an admin address: a `RunningBulb`, or a bare `{ adminUrl }`. */
export interface HasAdmin {
  readonly adminUrl: string;
}

export interface AdminOptions {
  readonly method?: string;
  /** Sent as `Authorization: Bearer TOKEN`; omit (or null) to send no credentials. */
  readonly token?: string | null;
}

/** One admin request; `json` is the parsed body when the answer is `application/json`, else undefined. */
export async function adminRequest(bulb: HasAdmin, path: string, opts: AdminOptions = {}): Promise<Reply & { json: unknown }> {
  const headers = opts.token == null ? {} : { authorization: `Bearer ${opts.token}` };
  const r = await request(`${bulb.adminUrl}${path}`, { method: opts.method ?? 'GET', headers });
  const json: unknown = String(r.headers['content-type']).startsWith('application/json') ? JSON.parse(r.body) : undefined;
  return { ...r, json };
}

/** The body of a GET that must succeed; a refusal is an error naming the path and the answer. */
async function get(bulb: HasAdmin, path: string, token?: string | null): Promise<Reply & { json: unknown }> {
  const r = await adminRequest(bulb, path, { token });
  if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${r.body.slice(0, 200)}`);
  return r;
}

/** `GET /backends`: every backend in the pool, draining ones included. */
export async function backends(bulb: HasAdmin, opts: { token?: string | null } = {}): Promise<AdminBackend[]> {
  return ((await get(bulb, '/backends', opts.token)).json as { backends: AdminBackend[] }).backends;
}

/** `GET /sources`: every discovery source with its sync state, errors and rejected files. */
export async function sources(bulb: HasAdmin, opts: { token?: string | null } = {}): Promise<AdminSource[]> {
  return ((await get(bulb, '/sources', opts.token)).json as { sources: AdminSource[] }).sources;
}

/** `GET /metrics` as served (Prometheus text). */
export async function metricsText(bulb: HasAdmin, opts: { token?: string | null } = {}): Promise<string> {
  return (await get(bulb, '/metrics', opts.token)).body;
}

/** `GET /metrics`, parsed: a malformed exposition fails here. */
export async function metrics(bulb: HasAdmin, opts: { token?: string | null } = {}): Promise<Exposition> {
  return parseExposition(await metricsText(bulb, opts));
}

/**
 * `POST /backends/ID/drain` (or `/undrain`), ID being `host:port`. Returns the reply unchecked: some tests
 * assert on refusals.
 */
export function drain(bulb: HasAdmin, id: string, action: 'drain' | 'undrain' = 'drain', opts: { token?: string | null } = {}): Promise<Reply & { json: unknown }> {
  return adminRequest(bulb, `/backends/${encodeURIComponent(id)}/${action}`, { method: 'POST', token: opts.token });
}
