import type { HealthDefaults, OutlierSettings } from '../health/index.js';
import type { HashKey } from '../strategies/strategy.js';

/** A `HOST:PORT` listen address after validation. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/**
 * bulb's settings after the config file, `BULB_*` environment variables and flags have been merged
 * (in that order of precedence, flags last), validated against the schema, defaulted and frozen.
 * Durations are milliseconds here.
 */
export interface Config {
  readonly listen: Address;
  /** `undefined` when the admin server is off (`--admin off`). */
  readonly admin: Address | undefined;
  /** Bearer token for the admin API (all routes but /healthz and /readyz); `undefined` when none is set. */
  readonly adminToken: string | undefined;
  readonly watchDirs: readonly string[];
  /** Static backends, as URLs. */
  readonly backends: readonly string[];
  /** SRV names to follow (`--dns-srv`), as given. */
  readonly dnsSrv: readonly string[];
  /** Names whose A/AAAA addresses become backends on the port (`--dns-a HOST:PORT`). */
  readonly dnsA: readonly Address[];
  /** The DNS server to ask; `undefined` means the system resolver (/etc/resolv.conf: servers, search, ndots). */
  readonly dnsServer: Address | undefined;
  /** Clamp on the records' TTL, and the backoff range after failures. */
  readonly dnsMinIntervalMs: number;
  readonly dnsMaxIntervalMs: number;
  /** Consecutive empty answers (NXDOMAIN, no records) before a DNS name's backends are removed. */
  readonly dnsEmptyAfter: number;
  /** A built-in strategy name, or a path to a `.js`/`.mjs` module. */
  readonly strategy: string;
  readonly hashKey: HashKey;
  readonly upstreamTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** SIGTERM → this long serving with /readyz failing → stop accepting → drain. */
  readonly shutdownDelayMs: number;
  /** Retries on another backend per request (see proxy/retry.ts for which failures qualify). */
  readonly retries: number;
  readonly retryBudgetPercent: number;
  /** Bodies up to this size are buffered for retries. */
  readonly retryBodyLimit: number;
  /** 0 = off. */
  readonly panicThresholdPercent: number;
  /** 0 = off. Backend files may override it. */
  readonly slowStartMs: number;
  /** Client must send its headers within this. */
  readonly headerTimeoutMs: number;
  /** Longest pause allowed while a client sends a body. */
  readonly bodyTimeoutMs: number;
  /** Client connection limit; 0 = none. */
  readonly maxConnections: number;
  /** Data-plane worker threads; 1 (or absent) = serve traffic in the controller's own thread. */
  readonly workers?: number;
  /** Active health checks (`--health-*`); a backend file's `health` block overrides them per backend. */
  readonly health: HealthDefaults;
  /** Outlier detection (`--outlier-*`); `consecutive` 0 = off. */
  readonly outlier: OutlierSettings;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Path of the config file this came from, if any (relative paths in it are resolved against its folder). */
  readonly configFile: string | undefined;
}
