/**
 * The system resolver configuration, `/etc/resolv.conf`, read the way glibc's resolver reads it (resolv.conf(5)),
 * so a Kubernetes pod's short names (`_http._tcp.web` with `search default.svc.cluster.local ...` and
 * `options ndots:5`) resolve for bulb exactly as they do for every other program in the pod.
 *
 * Parsed here rather than with a package: the format is a handful of line keywords, the npm parsers we found are
 * unmaintained or skip `ndots`, and Node's own resolver (c-ares) does not expose its parsed search list.
 * Supported: `nameserver`, `search`, `domain` (the last of `search`/`domain` wins, as in glibc) and
 * `options ndots:N timeout:N attempts:N`. `LOCALDOMAIN`/`RES_OPTIONS` environment overrides are not read.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';

export interface DnsServer {
  /** An IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

export interface ResolvConf {
  /** In file order; glibc uses at most 3 (MAXNS), and so does bulb. Never empty. */
  readonly nameservers: readonly DnsServer[];
  /** Search domains, without trailing dots. */
  readonly search: readonly string[];
  /** A name with at least this many dots is tried as given before the search list. */
  readonly ndots: number;
  /** Per-attempt timeout in ms, when the file sets `options timeout:N`. */
  readonly timeoutMs?: number;
  /** Attempts per server, when the file sets `options attempts:N`. */
  readonly attempts?: number;
}

export const RESOLV_CONF_PATH = '/etc/resolv.conf';

/** glibc's defaults: no nameserver line means the local one; ndots 1. */
const LOCAL_NAMESERVER: DnsServer = Object.freeze({ host: '127.0.0.1', port: 53 });
const MAXNS = 3;

/** Parses the text of a resolv.conf. Unknown lines and malformed values are ignored, as glibc ignores them. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: DnsServer[] = [];
  let search: string[] = [];
  let ndots = 1;
  let timeoutMs: number | undefined;
  let attempts: number | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [keyword, ...args] = line.split(/\s+/);
    switch (keyword) {
      case 'nameserver': {
        const host = args[0];
        // A scoped IPv6 address (fe80::1%eth0) is kept whole; isIP accepts the scope.
        if (host !== undefined && isIP(host) !== 0 && nameservers.length < MAXNS) nameservers.push({ host, port: 53 });
        break;
      }
      case 'domain':
        search = args.slice(0, 1).map(stripDot);
        break;
      case 'search':
        search = args.map(stripDot).filter((d) => d !== '');
        break;
      case 'options':
        for (const opt of args) {
          const m = /^(ndots|timeout|attempts):(\d+)$/.exec(opt);
          if (!m) continue;
          const n = Number(m[2]);
          // The same caps glibc applies (RES_MAXNDOTS 15, RES_MAXRETRANS 30 s, RES_MAXRETRY 5).
          if (m[1] === 'ndots') ndots = Math.min(n, 15);
          else if (m[1] === 'timeout') timeoutMs = Math.max(1, Math.min(n, 30)) * 1000;
          else attempts = Math.max(1, Math.min(n, 5));
        }
        break;
      default:
      // sortlist, lookup, ...: not relevant to bulb
    }
  }
  return Object.freeze({
    nameservers: Object.freeze(nameservers.length > 0 ? nameservers : [LOCAL_NAMESERVER]),
    search: Object.freeze(search),
    ndots,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(attempts === undefined ? {} : { attempts }),
  });
}

/** Reads and parses the file; a missing or unreadable file means glibc's defaults (the local nameserver). */
export async function readResolvConf(file = RESOLV_CONF_PATH): Promise<ResolvConf> {
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    // Same as an empty file: 127.0.0.1, no search list.
  }
  return parseResolvConf(text);
}

/**
 * The names to try for `name`, in order (glibc's res_nsearch): a name ending in a dot is absolute and tried
 * alone; a name with at least `ndots` dots is tried as given first, then with each search domain; a shorter
 * one with each search domain first, then as given. Returned without trailing dots.
 */
export function searchCandidates(name: string, search: readonly string[], ndots: number): string[] {
  if (name.endsWith('.')) return [stripDot(name)];
  const dots = name.split('.').length - 1;
  const withSearch = search.map((d) => `${name}.${d}`);
  return dots >= ndots ? [name, ...withSearch] : [...withSearch, name];
}

function stripDot(s: string): string {
  return s.endsWith('.') ? s.slice(0, -1) : s;
}
