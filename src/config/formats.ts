/**
 * The text formats of bulb's own settings: the patterns the schema checks them against and the parsers that turn
 * a checked value into what bulb uses. Formats shared with the backend files (durations, backend URLs, health
 * paths and statuses) live in `src/values.ts` instead.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import type { HashKey } from '../strategies/strategy.js';

/** A `HOST:PORT` listen address after validation. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/** The strategies bulb ships, by their `--strategy` name (the strategy registry holds the code). */
export const BUILTIN_STRATEGIES = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'least-time',
  'random',
  'power-of-two',
  'consistent-hash',
] as const;

/** `--health-mode`: `auto` is http when a health path is set, else tcp; `off` runs no active checks. */
export const HEALTH_MODES = ['auto', 'http', 'tcp', 'grpc', 'off'] as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

// 0-65535 without leading zeros. Port 0 asks the OS for a free port (tests use it).
const PORT = '(?:6553[0-5]|655[0-2]\\d|65[0-4]\\d{2}|6[0-4]\\d{3}|[1-5]\\d{4}|[1-9]\\d{0,3}|0)';
// A DNS name or IPv4 address, or an IPv6 address in brackets.
const HOST = '(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)';
/** `HOST:PORT`, e.g. `0.0.0.0:8080`, `localhost:0`, `[::1]:8080`. */
export const ADDRESS_PATTERN = `^${HOST}:${PORT}$`;
/** `HOST:PORT` or the word `off`. */
export const ADMIN_PATTERN = `^(?:off|${HOST}:${PORT})$`;
/** Printable ASCII without spaces, as a bearer token is sent in a header (empty only as the default). */
export const ADMIN_TOKEN_PATTERN = '^[!-~]*$';
// A DNS name: letters, digits, hyphens and underscores (SRV labels such as _http._tcp), optional root dot.
const DNS_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const DNS_NAME = `(?:${DNS_LABEL}\\.)*${DNS_LABEL}`;
/** A DNS name as `--dns-srv` takes it, e.g. `_http._tcp.web.default.svc.cluster.local` or `_http._tcp.web`. */
export const DNS_NAME_PATTERN = `^${DNS_NAME}\\.?$`;
/** `HOST:PORT` for `--dns-a`, HOST a DNS name (IP literals are refused later: they need no DNS). */
export const DNS_ADDRESS_PATTERN = `^${DNS_NAME}:${PORT}$`;
/** `system`, or an IP with an optional port: `10.96.0.10`, `127.0.0.1:5353`, `::1`, `[::1]:5353`. */
export const DNS_SERVER_PATTERN = `^(?:system|[0-9.]+(?::${PORT})?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|\\[[0-9A-Fa-f:.]+\\](?::${PORT})?)$`;
/** `client-ip`, or `header:NAME` where NAME is an HTTP header name (an RFC 9110 token). */
export const HASH_KEY_PATTERN = "^(?:client-ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$";

/** `HOST:PORT` (already matched against the schema's pattern) → `{ host, port }`; `[::1]:80` → host `::1`. */
export function parseAddress(text: string): Address {
  const colon = text.lastIndexOf(':');
  let host = text.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(text.slice(colon + 1)) };
}

/**
 * `IP[:PORT]` (already matched against the schema's pattern) → `{ host, port }`, port 53 when absent:
 * `10.96.0.10`, `127.0.0.1:5353`, `::1` (a bare IPv6 address has no port), `[::1]:5353`.
 */
export function parseDnsServer(text: string): Address {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    const port = text.slice(close + 1);
    return { host: text.slice(1, close), port: port === '' ? 53 : Number(port.slice(1)) };
  }
  if (isIP(text) !== 0) return { host: text, port: 53 };
  const colon = text.lastIndexOf(':');
  return colon < 0 ? { host: text, port: 53 } : { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** `client-ip` or `header:NAME` (already matched against the schema's pattern). Header names are lower-cased, as Node presents them. */
export function parseHashKey(text: string): HashKey {
  if (text.startsWith('header:')) return { kind: 'header', name: text.slice('header:'.length).toLowerCase() };
  return { kind: 'client-ip' };
}

/** A custom strategy module path is made absolute here, against the right base; names and file: URLs pass through. */
export function resolveStrategy(value: string, base: string): string {
  if ((BUILTIN_STRATEGIES as readonly string[]).includes(value) || value.startsWith('file:')) return value;
  return /\.m?js$/.test(value) ? path.resolve(base, value) : value;
}

/** A value as error messages quote it: JSON for scalars, a word for lists and mappings, at most 60 characters. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  if (Array.isArray(value)) text = 'a list';
  else if (typeof value === 'object' && value !== null) text = 'a mapping';
  else text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}
