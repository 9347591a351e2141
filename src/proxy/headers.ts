import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy ones proxies still see). They describe one connection,
 * not the message, so they are never forwarded. `Trailer` is on the list too (http-proxy 1.18, which still
 * carries WebSocket upgrades, throws synchronously when it is present on a request with a Content-Length), and
 * so is `Expect`, which undici refuses to send.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'expect']);

/** Removes hop-by-hop headers and every header the `Connection` header names. */
/* eslint-disable @typescript-eslint/no-dynamic-delete -- header names are data: removing them by name is the job */
function stripHopByHop(headers: IncomingHttpHeaders | Record<string, unknown>, keepUpgrade: boolean): void {
  const conn = headers.connection;
  if (typeof conn === 'string') {
    for (const token of conn.split(',')) {
      const name = token.trim().toLowerCase();
      if (name && name !== 'close' && name !== 'keep-alive' && !(keepUpgrade && name === 'upgrade')) delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) {
    if (keepUpgrade && (name === 'upgrade' || name === 'connection')) continue;
    delete headers[name];
  }
}
/* eslint-enable @typescript-eslint/no-dynamic-delete */

/**
 * Prepares an incoming request's headers for forwarding, once per request (retries reuse the result).
 * X-Forwarded-For is appended to, as nginx's `$proxy_add_x_forwarded_for` does; X-Forwarded-Proto and
 * X-Forwarded-Host are set from what bulb itself saw, overwriting any the client sent, because bulb is the
 * edge of its pod and a client must not be able to claim it came in over https.
 * Returns whether the client asked to close its connection, which the response must honour.
 */
export function prepareRequestHeaders(req: IncomingMessage, isUpgrade: boolean): { clientWantsClose: boolean } {
  const h = req.headers;
  const clientWantsClose = typeof h.connection === 'string' && /(^|,)\s*close\s*(,|$)/i.test(h.connection);
  stripHopByHop(h, isUpgrade);
  const ip = req.socket.remoteAddress ?? '';
  const prior = h['x-forwarded-for'];
  h['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${ip}` : ip;
  h['x-forwarded-proto'] = 'encrypted' in req.socket ? 'https' : 'http';
  if (h.host !== undefined) h['x-forwarded-host'] = h.host;
  else delete h['x-forwarded-host'];
  return { clientWantsClose };
}

/** undici gives raw header bytes (latin1, as HTTP/1.1 is); the HTTP/2 upstream gives strings already. */
function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** Response headers bulb never forwards: the hop-by-hop ones, and `Transfer-Encoding`, which Node sets itself. */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'transfer-encoding']);
/** Their lengths: a name of any other length is forwarded without being lower-cased and looked up. */
const NOT_FORWARDED_LENGTHS = new Set([...NOT_FORWARDED].map((n) => n.length));

/**
 * The headers to send the client, from undici's raw response headers (`[name, value, name, value, ...]`), as the
 * flat `[name, value, ...]` list `writeHead` takes: names as the backend wrote them (as nginx and HAProxy pass
 * them), repeated headers kept as separate lines, hop-by-hop headers (and every header `Connection` names)
 * dropped as in `prepareResponseHeaders`, and `Transfer-Encoding` left to Node, which frames the body itself
 * (chunked or not, by the client's HTTP version). Runs once per response, so most names skip the lower-casing.
 */
export function responseHeaderList(raw: readonly (Buffer | string)[], clientWantsClose: boolean): string[] {
  const out: string[] = [];
  let named: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = latin1(raw[i]);
    if (NOT_FORWARDED_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (NOT_FORWARDED.has(lower)) {
        if (lower === 'connection') {
          for (const token of latin1(raw[i + 1]).split(',')) {
            const t = token.trim().toLowerCase();
            if (t && t !== 'close' && t !== 'keep-alive') (named ??= []).push(t);
          }
        }
        continue;
      }
    }
    out.push(name, latin1(raw[i + 1]));
  }
  // Rare: a backend naming its own extra hop-by-hop headers in `Connection`.
  if (named !== undefined) {
    const drop = named;
    const kept: string[] = [];
    for (let i = 0; i < out.length; i += 2) if (!drop.includes(out[i].toLowerCase())) kept.push(out[i], out[i + 1]);
    out.length = 0;
    out.push(...kept);
  }
  if (clientWantsClose) out.push('connection', 'close');
  return out;
}

/** Drops the backend's hop-by-hop response headers (its `Keep-Alive: timeout=5` is about bulb's socket, not the client's). */
export function prepareResponseHeaders(headers: IncomingHttpHeaders, clientWantsClose: boolean, isUpgrade = false): void {
  stripHopByHop(headers, isUpgrade);
  // The request's `Connection` was removed before forwarding, so say `close` here when the client asked for it,
  // or Node would keep a connection the client wants closed.
  if (clientWantsClose) headers.connection = 'close';
}

/**
 * Response trailers as `[name, value]` pairs, from whichever form undici hands them: a flat raw list (HTTP/1.1,
 * and bulb's h2c upstream) or, from its HTTP/2 client, a headers object.
 */
export function trailerPairs(trailers: unknown): [string, string][] {
  const out: [string, string][] = [];
  if (trailers === null || trailers === undefined) return out;
  if (Array.isArray(trailers)) {
    for (let i = 0; i + 1 < trailers.length; i += 2) out.push([latin1(trailers[i] as Buffer | string), latin1(trailers[i + 1] as Buffer | string)]);
    return out;
  }
  if (typeof trailers === 'object') {
    for (const [name, v] of Object.entries(trailers as Record<string, unknown>)) {
      if (name.startsWith(':') || v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) out.push([name, String(x)]);
    }
  }
  return out;
}
