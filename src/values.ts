/**
 * Value rules that both the settings (`src/config/`) and the discovery sources (`src/discovery/`) apply: what a
 * duration, a backend URL and a health check's path and status look like. They live here, below both, so that
 * neither has to import the other for them. Pure functions and patterns only; no I/O.
 */

// ---------------------------------------------------------------------------------------------------------
// Durations

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** The regular expression a duration string must match; the JSON Schemas use the same source. */
export const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)?$';

/**
 * Parses `250ms`, `2s`, `1.5m`, `1h`; a bare number means seconds (as the CLI docs say).
 * Returns milliseconds, or undefined when the text is not a duration.
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input * 1000 : undefined;
  const m = PATTERN.exec(input.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2] ?? 's'];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Backend URLs

/**
 * One rule for what a backend URL may be, used by backend files, `--backend` and DNS: an http, https or h2c
 * origin. Paths, queries, fragments and credentials are refused rather than silently dropped, because each of
 * them would mean something the proxy does not do.
 */
export type BackendUrl = { readonly url: string; readonly id: string } | { readonly error: string };

export function parseBackendUrl(input: string): BackendUrl {
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    return { error: `"${input}" is not a URL (expected http://HOST:PORT)` };
  }
  // h2c: cleartext HTTP/2 with prior knowledge (Traefik's scheme name), for gRPC backends.
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'h2c:') {
    return { error: `"${input}" has scheme ${u.protocol.replace(/:$/, '')}; only http, https and h2c are allowed` };
  }
  if (u.username || u.password) return { error: `"${input}" contains credentials; they are not allowed in a backend URL` };
  if (u.hash || input.includes('#')) return { error: `"${input}" has a fragment; a backend URL is an origin only` };
  if (u.search || input.includes('?')) return { error: `"${input}" has a query; a backend URL is an origin only` };
  if (u.pathname !== '/' && u.pathname !== '') return { error: `"${input}" has a path; a backend URL is an origin only` };
  if (!u.hostname) return { error: `"${input}" has no host` };
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  // join, not a template: both strings live as long as the backend, and a template's result is a tree of
  // pieces that costs ~3 times the memory of the flat string join makes (it adds up at 10,000 backends).
  const url = [u.protocol, '//', u.hostname, ':', port].join('');
  // The id is host:port so the same server named by two sources (or by http and a file) is one backend.
  return { url, id: [u.hostname, port].join(':') };
}

// ---------------------------------------------------------------------------------------------------------
// Health checks (the `--health-*` settings and a backend file's `health` block)

/** A health path: empty (none), or an origin-form path with optional query, printable ASCII. */
export const HEALTH_PATH_PATTERN = '^(?:|/[!-~]*)$';
/** Expected status of an HTTP check: one code (`200`) or an inclusive range (`200-399`). */
export const HEALTH_STATUS_PATTERN = '^[1-5]\\d\\d(?:-[1-5]\\d\\d)?$';

/** `200` or `200-399` (already matched against {@link HEALTH_STATUS_PATTERN}) → an inclusive `[from, to]`. */
export function parseStatusRange(text: string): [number, number] {
  const [from, to] = text.split('-').map(Number);
  return [from, to ?? from];
}
