/**
 * The one description of bulb's settings. The JSON Schema below validates the config file and, value by value,
 * the `BULB_*` environment variables and the flags; `DEFAULTS` feeds its `default`s; `OPTIONS` maps every setting
 * to its flag and variable. `--help`, the env parser and the docs drift test all read these, so a setting added
 * here appears everywhere at once. Model: fastify's build-validation.js + `defaultInitOptions`.
 */
import { DURATION_PATTERN } from './duration.js';

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
export const HEALTH_MODES = ['auto', 'http', 'tcp', 'off'] as const;
export type HealthMode = (typeof HEALTH_MODES)[number];

/** A health path: empty (none), or an origin-form path with optional query, printable ASCII. */
export const HEALTH_PATH_PATTERN = '^(?:|/[!-~]*)$';
/** Expected status of an HTTP check: one code (`200`) or an inclusive range (`200-399`). */
export const HEALTH_STATUS_PATTERN = '^[1-5]\\d\\d(?:-[1-5]\\d\\d)?$';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The config file as written (and the merged raw object before conversion): durations are still strings or
 * numbers of seconds, addresses still `HOST:PORT` text. Every key is optional; `DEFAULTS` fills the rest.
 */
export interface RawConfig {
  listen?: string;
  admin?: string;
  adminToken?: string;
  watchDirs?: string[];
  backends?: string[];
  dnsSrv?: string[];
  dnsA?: string[];
  dnsServer?: string;
  dnsMinInterval?: string | number;
  dnsMaxInterval?: string | number;
  dnsEmptyAfter?: string | number;
  strategy?: string;
  hashKey?: string;
  upstreamTimeout?: string | number;
  drainTimeout?: string | number;
  shutdownDelay?: string | number;
  retries?: string | number;
  retryBudget?: string | number;
  retryBodyLimit?: string | number;
  panicThreshold?: string | number;
  slowStart?: string | number;
  healthMode?: HealthMode;
  healthPath?: string;
  healthStatus?: string;
  healthInterval?: string | number;
  healthTimeout?: string | number;
  healthRise?: string | number;
  healthFall?: string | number;
  healthInitial?: 'healthy' | 'unhealthy';
  headerTimeout?: string | number;
  bodyTimeout?: string | number;
  maxConnections?: string | number;
  outlierConsecutive?: string | number;
  outlierBaseEjection?: string | number;
  outlierMaxEjectionPercent?: string | number;
  outlierUnejectOnCheck?: 'on' | 'off';
  requestTimeout?: string | number;
  sendTimeout?: string | number;
  idleTimeout?: string | number;
  logLevel?: LogLevel;
}

export type SettingKey = keyof RawConfig;

/** Every default, in config-file form. The schema's `default`s and `--help` both come from here. */
export const DEFAULTS: Readonly<Required<RawConfig>> = Object.freeze({
  listen: '0.0.0.0:8080',
  admin: '127.0.0.1:9901',
  // Empty means no token (the admin API is open to whoever reaches its address); an empty value given by
  // the user is refused instead, so `--admin-token "$UNSET"` cannot silently turn authentication off.
  adminToken: '',
  watchDirs: [],
  backends: [],
  dnsSrv: [],
  dnsA: [],
  // `system` = the servers, search list and ndots of /etc/resolv.conf, as every other program in the container.
  dnsServer: 'system',
  // Docker's embedded DNS answers with TTL 600 and CoreDNS with 5-30 s: the clamps keep bulb following
  // changes within 30 s, without asking more than once a second.
  dnsMinInterval: '1s',
  dnsMaxInterval: '30s',
  dnsEmptyAfter: 2,
  strategy: 'round-robin',
  hashKey: 'client-ip',
  upstreamTimeout: '60s',
  drainTimeout: '30s',
  shutdownDelay: '0s',
  // nginx's proxy_next_upstream_tries is unlimited by default; two retries reach three backends, which is
  // enough to get past one dead and one dying backend without turning one request into a storm.
  retries: 2,
  // Envoy's retry budget default: retries may add at most 20% to the load.
  retryBudget: 20,
  // Bodies up to 64 KiB are buffered so they can be retried (nginx buffers 8-16 KiB in memory; API requests
  // are mostly small); larger ones stream and are never retried.
  retryBodyLimit: 65536,
  panicThreshold: 0,
  slowStart: '0s',
  // With no health settings bulb still checks TCP reachability ('auto' without a path); a path turns on HTTP.
  healthMode: 'auto',
  healthPath: '',
  // HAProxy's `http-check expect` default: any 2xx or 3xx is healthy.
  healthStatus: '200-399',
  healthInterval: '2s',
  healthTimeout: '1s',
  // HAProxy's defaults: 2 passes bring a backend back, 3 failures take it out.
  healthRise: 2,
  healthFall: 3,
  // Optimistic: a new backend is routable at once (see docs/health.md for why).
  healthInitial: 'healthy',
  // Envoy's consecutive_5xx and base_ejection_time defaults.
  outlierConsecutive: 5,
  outlierBaseEjection: '30s',
  // Envoy's 10% would never eject anything in a sidecar's pool of 2-5 backends (beyond the first); half of the
  // pool may be ejected, and one always may be when the pool has two or more.
  outlierMaxEjectionPercent: 50,
  // Envoy's successful_active_health_check_uneject_host default: a passing active check ends an ejection.
  outlierUnejectOnCheck: 'on',
  // HAProxy's usual `timeout http-request`: a client gets 10 s to send its headers (slowloris).
  headerTimeout: '10s',
  bodyTimeout: '30s',
  // Node's own requestTimeout default: head and body of one request within 5 minutes (uploads included).
  requestTimeout: '300s',
  // nginx's send_timeout: a client that accepts nothing for 60 s is dropped, and its upstream request with it.
  sendTimeout: '60s',
  // nginx's keepalive_timeout: an idle keep-alive client connection is closed after 75 s.
  idleTimeout: '75s',
  // Past this, new client connections are closed at once instead of queueing without bound.
  maxConnections: 10000,
  logLevel: 'info',
});

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

const duration = (description: string, dflt: string | number) =>
  ({
    description,
    default: dflt,
    anyOf: [
      { type: 'string', pattern: DURATION_PATTERN },
      { type: 'number', minimum: 0 },
    ],
  }) as const;

/** A whole number within bounds; a string of digits is accepted too, since flags and env vars are strings. */
const wholeNumber = (description: string, dflt: string | number, minimum: number, maximum: number) =>
  ({
    description,
    default: dflt,
    anyOf: [
      { type: 'integer', minimum, maximum },
      { type: 'string', pattern: '^\\d{1,9}$' },
    ],
  }) as const;

/** The config file schema (draft-07, as ajv 8's default class speaks it). */
export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://bulb.dev/schemas/config.json',
  title: 'bulb configuration',
  description: 'Settings for bulb. Every key is optional; flags and BULB_* environment variables override the file.',
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      description:
        'Address the proxy listens on, HOST:PORT. Port 0 picks a free port; put an IPv6 host in brackets, e.g. [::1]:8080.',
      type: 'string',
      pattern: ADDRESS_PATTERN,
      default: DEFAULTS.listen,
    },
    admin: {
      description: 'Address of the admin HTTP server (readiness and metrics), HOST:PORT, or off to disable it.',
      type: 'string',
      pattern: ADMIN_PATTERN,
      default: DEFAULTS.admin,
    },
    adminToken: {
      description:
        'Bearer token the admin API requires on every route but /healthz and /readyz (Authorization: Bearer TOKEN), compared in constant time. Printable ASCII, no spaces. Prefer the environment variable: flags show in ps.',
      type: 'string',
      pattern: ADMIN_TOKEN_PATTERN,
      default: DEFAULTS.adminToken,
    },
    watchDirs: {
      description:
        'Directories to watch for backend files. In the config file, relative paths are resolved against the file\'s folder.',
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: DEFAULTS.watchDirs,
    },
    backends: {
      description: 'Static backends, as http:// or https:// origins (HOST:PORT only: no path, query or credentials).',
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: DEFAULTS.backends,
    },
    dnsSrv: {
      description:
        'DNS SRV names to follow (e.g. a Kubernetes headless Service, _http._tcp.web.default.svc.cluster.local). Each target address becomes a backend on the port of its record; RFC 2782 priority and weight apply.',
      type: 'array',
      items: { type: 'string', pattern: DNS_NAME_PATTERN },
      default: DEFAULTS.dnsSrv,
    },
    dnsA: {
      description:
        'DNS names to follow as HOST:PORT (e.g. a compose service with replicas, web:8080). Every A and AAAA address of HOST becomes a backend on PORT.',
      type: 'array',
      items: { type: 'string', pattern: DNS_ADDRESS_PATTERN },
      default: DEFAULTS.dnsA,
    },
    dnsServer: {
      description:
        'DNS server for --dns-srv and --dns-a, IP[:PORT] (port 53 by default; names are then taken as absolute), or system for the servers and search domains of /etc/resolv.conf.',
      type: 'string',
      pattern: DNS_SERVER_PATTERN,
      default: DEFAULTS.dnsServer,
    },
    dnsMinInterval: duration(
      'Shortest time between two lookups of a DNS name, however short its TTL (and the first retry after a failure).',
      DEFAULTS.dnsMinInterval,
    ),
    dnsMaxInterval: duration(
      'Longest time between two lookups of a DNS name, however long its TTL (and the cap on retry backoff).',
      DEFAULTS.dnsMaxInterval,
    ),
    dnsEmptyAfter: {
      description:
        'How many consecutive lookups must find no records (NXDOMAIN or an empty answer) before a DNS name\'s backends are removed, so one flap does not empty the pool.',
      default: DEFAULTS.dnsEmptyAfter,
      anyOf: [
        { type: 'integer', minimum: 1, maximum: 100 },
        { type: 'string', pattern: '^(?:[1-9]\\d?|100)$' },
      ],
    },
    strategy: {
      description: `Load-balancing strategy: a built-in name (${BUILTIN_STRATEGIES.join(', ')}), or the path of a .js or .mjs module that exports a custom strategy.`,
      type: 'string',
      minLength: 1,
      default: DEFAULTS.strategy,
    },
    hashKey: {
      description: 'What consistent-hash keys on: client-ip, or header:NAME to use a request header.',
      type: 'string',
      pattern: HASH_KEY_PATTERN,
      default: DEFAULTS.hashKey,
    },
    upstreamTimeout: duration(
      'How long a backend may take to answer a proxied request before bulb gives up on it.',
      DEFAULTS.upstreamTimeout,
    ),
    drainTimeout: duration(
      'How long in-flight requests may run to completion when bulb shuts down or a backend is removed.',
      DEFAULTS.drainTimeout,
    ),
    shutdownDelay: duration(
      'On SIGTERM, how long to keep serving with /readyz failing before closing the listener, so the endpoint removal can reach whoever sends traffic (e.g. 5s in Kubernetes).',
      DEFAULTS.shutdownDelay,
    ),
    retries: wholeNumber(
      'How many times a failed request may be retried on another backend: connection refused (any method), or a reset before any response byte or a 503 (idempotent methods only).',
      DEFAULTS.retries,
      0,
      10,
    ),
    retryBudget: wholeNumber(
      'At most this percentage of recent requests (a 10 s window) may be retries, so a sick pool does not get a retry storm; 10 retries per window are always allowed.',
      DEFAULTS.retryBudget,
      0,
      100,
    ),
    retryBodyLimit: wholeNumber(
      'Request bodies up to this many bytes are buffered so the request can be retried; larger or chunked bodies are streamed and never retried.',
      DEFAULTS.retryBodyLimit,
      0,
      67108864,
    ),
    panicThreshold: wholeNumber(
      'Panic mode (Envoy): when fewer than this percentage of backends is healthy, route across all of them rather than only the healthy ones. 0 turns it off: with nothing healthy, bulb answers 503 at once.',
      DEFAULTS.panicThreshold,
      0,
      100,
    ),
    slowStart: duration(
      'A new or recovered backend\'s weight ramps up linearly over this time (nginx Plus / HAProxy slowstart), for the weighted strategies. 0 turns it off. A backend file\'s slowStart overrides it.',
      DEFAULTS.slowStart,
    ),
    healthMode: {
      description:
        'Active health checks: http (GET the health path), tcp (connect only), off, or auto (http when a health path is set, else tcp). A backend file\'s health block overrides every health setting for its backends.',
      type: 'string',
      enum: HEALTH_MODES,
      default: DEFAULTS.healthMode,
    },
    healthPath: {
      description: 'Path an HTTP health check GETs, e.g. /healthz. Setting it turns on HTTP checks (with --health-mode auto).',
      type: 'string',
      pattern: HEALTH_PATH_PATTERN,
      default: DEFAULTS.healthPath,
    },
    healthStatus: {
      description: 'Statuses an HTTP health check accepts: one code or an inclusive range, e.g. 200 or 200-399.',
      type: 'string',
      pattern: HEALTH_STATUS_PATTERN,
      default: DEFAULTS.healthStatus,
    },
    healthInterval: duration(
      'Time between two health checks of a backend (each one jittered by up to 10% so checks do not align). The first check runs as soon as a backend is added.',
      DEFAULTS.healthInterval,
    ),
    healthTimeout: duration('How long a health check may take (connect, and for HTTP the response headers) before it counts as failed.', DEFAULTS.healthTimeout),
    healthRise: wholeNumber('Consecutive passing checks that bring an unhealthy backend back (HAProxy rise).', DEFAULTS.healthRise, 1, 100),
    healthFall: wholeNumber('Consecutive failing checks that take a healthy backend out (HAProxy fall).', DEFAULTS.healthFall, 1, 100),
    healthInitial: {
      description:
        'State of a new backend before its checks have decided: healthy (routable at once; fall failures take it out) or unhealthy (no traffic until rise checks pass).',
      type: 'string',
      enum: ['healthy', 'unhealthy'],
      default: DEFAULTS.healthInitial,
    },
    outlierConsecutive: wholeNumber(
      'Outlier detection (Envoy): this many consecutive failures of real requests (connection errors, resets, timeouts, 5xx) eject a backend. 0 turns it off.',
      DEFAULTS.outlierConsecutive,
      0,
      1000,
    ),
    outlierBaseEjection: duration(
      'How long an ejection lasts, multiplied by the number of times the backend has been ejected (at most 10x); the count decays while it behaves.',
      DEFAULTS.outlierBaseEjection,
    ),
    outlierMaxEjectionPercent: wholeNumber(
      'At most this percentage of the backends may be ejected at once; one may always be ejected when there are two or more, and a lone backend never is.',
      DEFAULTS.outlierMaxEjectionPercent,
      0,
      100,
    ),
    outlierUnejectOnCheck: {
      description:
        'on: a passing active health check ends an outlier ejection at once (Envoy\'s successful_active_health_check_uneject_host); off: an ejected backend stays out for its whole ejection time.',
      type: 'string',
      enum: ['on', 'off'],
      default: DEFAULTS.outlierUnejectOnCheck,
    },
    headerTimeout: duration(
      'A client must send its whole request head (request line and headers), counted from its first byte, within this time, or it gets 408 and its connection is closed (slowloris protection).',
      DEFAULTS.headerTimeout,
    ),
    bodyTimeout: duration(
      'While a client sends a request body, it may pause for at most this long before it gets 408 and its connection is closed.',
      DEFAULTS.bodyTimeout,
    ),
    requestTimeout: duration(
      'A whole request, head and body, must arrive within this time, counted from its first byte, or it gets 408 and its connection is closed (slow-body protection, however the bytes trickle in). 0 turns it off.',
      DEFAULTS.requestTimeout,
    ),
    sendTimeout: duration(
      'A client that accepts no response bytes for this long (nginx send_timeout: the time between two successful writes) is disconnected, and its upstream request released. 0 turns it off.',
      DEFAULTS.sendTimeout,
    ),
    idleTimeout: duration(
      'An idle keep-alive client connection (no request in progress) is closed after this long.',
      DEFAULTS.idleTimeout,
    ),
    maxConnections: wholeNumber(
      'Most client connections open at once; further connections are closed at once rather than queued. 0 = no limit.',
      DEFAULTS.maxConnections,
      0,
      1000000,
    ),
    logLevel: {
      description: `Log level: ${LOG_LEVELS.join(', ')}.`,
      type: 'string',
      enum: LOG_LEVELS,
      default: DEFAULTS.logLevel,
    },
  },
} as const;

/** How one setting is spelled in each place a user can give it. */
export interface SettingOption {
  /** The config-file key, which is also the schema property. */
  readonly key: SettingKey;
  readonly flag: `--${string}`;
  readonly env: `BULB_${string}`;
  /** The value placeholder `--help` shows, e.g. `HOST:PORT`. */
  readonly value: string;
  /** A list: the flag may repeat, the env var is comma-separated, and either replaces the file's list. */
  readonly repeatable: boolean;
  /** Noun phrase for flag/env errors: `--listen: "abc" is not HOST:PORT`. */
  readonly expected: string;
  /** Sentence for config-file errors: `bulb.yaml: /listen: must match HOST:PORT`. */
  readonly rule: string;
}

const DURATION_EXPECTED = 'a duration (use 250ms, 2s, 1m; a bare number means seconds)';
const DURATION_RULE = 'must be a duration like 250ms, 2s or 1m, or a number of seconds';

/** The options-table entry of a `duration` setting. */
function durationOption(key: SettingKey, flag: `--${string}`, env: `BULB_${string}`): SettingOption {
  return { key, flag, env, value: 'DURATION', repeatable: false, expected: DURATION_EXPECTED, rule: DURATION_RULE };
}

/** The options-table entry of a `wholeNumber` setting. */
function wholeNumberOption(key: SettingKey, flag: `--${string}`, env: `BULB_${string}`, value: string, min: number, max: number): SettingOption {
  return {
    key,
    flag,
    env,
    value,
    repeatable: false,
    expected: `a whole number from ${min} to ${max}`,
    rule: `must be a whole number from ${min} to ${max}`,
  };
}

/** Every setting, in `--help` order. */
export const OPTIONS: readonly SettingOption[] = Object.freeze([
  {
    key: 'listen',
    flag: '--listen',
    env: 'BULB_LISTEN',
    value: 'HOST:PORT',
    repeatable: false,
    expected: 'HOST:PORT',
    rule: 'must match HOST:PORT',
  },
  {
    key: 'admin',
    flag: '--admin',
    env: 'BULB_ADMIN',
    value: 'HOST:PORT|off',
    repeatable: false,
    expected: 'HOST:PORT or off',
    rule: 'must match HOST:PORT or be off',
  },
  {
    key: 'adminToken',
    flag: '--admin-token',
    env: 'BULB_ADMIN_TOKEN',
    value: 'TOKEN',
    repeatable: false,
    expected: 'a token of printable ASCII characters without spaces',
    rule: 'must be printable ASCII characters without spaces',
  },
  {
    key: 'watchDirs',
    flag: '--watch-dir',
    env: 'BULB_WATCH_DIR',
    value: 'DIR',
    repeatable: true,
    expected: 'a directory path',
    rule: 'must be a list of directory paths',
  },
  {
    key: 'backends',
    flag: '--backend',
    env: 'BULB_BACKEND',
    value: 'URL',
    repeatable: true,
    expected: 'a backend URL',
    rule: 'must be a list of backend URLs',
  },
  {
    key: 'dnsSrv',
    flag: '--dns-srv',
    env: 'BULB_DNS_SRV',
    value: 'NAME',
    repeatable: true,
    expected: 'a DNS name',
    rule: 'must be a list of DNS names',
  },
  {
    key: 'dnsA',
    flag: '--dns-a',
    env: 'BULB_DNS_A',
    value: 'HOST:PORT',
    repeatable: true,
    expected: 'HOST:PORT with HOST a DNS name',
    rule: 'must be a list of HOST:PORT with HOST a DNS name',
  },
  {
    key: 'dnsServer',
    flag: '--dns-server',
    env: 'BULB_DNS_SERVER',
    value: 'IP[:PORT]|system',
    repeatable: false,
    expected: 'IP[:PORT] or system',
    rule: 'must be IP[:PORT] or system',
  },
  durationOption('dnsMinInterval', '--dns-min-interval', 'BULB_DNS_MIN_INTERVAL'),
  durationOption('dnsMaxInterval', '--dns-max-interval', 'BULB_DNS_MAX_INTERVAL'),
  {
    key: 'dnsEmptyAfter',
    flag: '--dns-empty-after',
    env: 'BULB_DNS_EMPTY_AFTER',
    value: 'N',
    repeatable: false,
    expected: 'a whole number from 1 to 100',
    rule: 'must be a whole number from 1 to 100',
  },
  {
    key: 'strategy',
    flag: '--strategy',
    env: 'BULB_STRATEGY',
    value: 'NAME|PATH',
    repeatable: false,
    expected: 'a strategy name or module path',
    rule: 'must be a strategy name or module path',
  },
  {
    key: 'hashKey',
    flag: '--hash-key',
    env: 'BULB_HASH_KEY',
    value: 'client-ip|header:NAME',
    repeatable: false,
    expected: 'client-ip or header:NAME',
    rule: 'must be client-ip or header:NAME',
  },
  durationOption('upstreamTimeout', '--upstream-timeout', 'BULB_UPSTREAM_TIMEOUT'),
  durationOption('drainTimeout', '--drain-timeout', 'BULB_DRAIN_TIMEOUT'),
  durationOption('shutdownDelay', '--shutdown-delay', 'BULB_SHUTDOWN_DELAY'),
  wholeNumberOption('retries', '--retries', 'BULB_RETRIES', 'N', 0, 10),
  wholeNumberOption('retryBudget', '--retry-budget', 'BULB_RETRY_BUDGET', 'PERCENT', 0, 100),
  wholeNumberOption('retryBodyLimit', '--retry-body-limit', 'BULB_RETRY_BODY_LIMIT', 'BYTES', 0, 67108864),
  wholeNumberOption('panicThreshold', '--panic-threshold', 'BULB_PANIC_THRESHOLD', 'PERCENT', 0, 100),
  durationOption('slowStart', '--slow-start', 'BULB_SLOW_START'),
  {
    key: 'healthMode',
    flag: '--health-mode',
    env: 'BULB_HEALTH_MODE',
    value: 'auto|http|tcp|off',
    repeatable: false,
    expected: `a health mode (${HEALTH_MODES.join(', ')})`,
    rule: `must be one of ${HEALTH_MODES.join(', ')}`,
  },
  {
    key: 'healthPath',
    flag: '--health-path',
    env: 'BULB_HEALTH_PATH',
    value: 'PATH',
    repeatable: false,
    expected: 'a path starting with /',
    rule: 'must be a path starting with /',
  },
  {
    key: 'healthStatus',
    flag: '--health-status',
    env: 'BULB_HEALTH_STATUS',
    value: 'CODE|FROM-TO',
    repeatable: false,
    expected: 'a status code or range such as 200-399',
    rule: 'must be a status code or range such as 200-399',
  },
  durationOption('healthInterval', '--health-interval', 'BULB_HEALTH_INTERVAL'),
  durationOption('healthTimeout', '--health-timeout', 'BULB_HEALTH_TIMEOUT'),
  wholeNumberOption('healthRise', '--health-rise', 'BULB_HEALTH_RISE', 'N', 1, 100),
  wholeNumberOption('healthFall', '--health-fall', 'BULB_HEALTH_FALL', 'N', 1, 100),
  {
    key: 'healthInitial',
    flag: '--health-initial',
    env: 'BULB_HEALTH_INITIAL',
    value: 'healthy|unhealthy',
    repeatable: false,
    expected: 'healthy or unhealthy',
    rule: 'must be healthy or unhealthy',
  },
  wholeNumberOption('outlierConsecutive', '--outlier-consecutive', 'BULB_OUTLIER_CONSECUTIVE', 'N', 0, 1000),
  durationOption('outlierBaseEjection', '--outlier-base-ejection', 'BULB_OUTLIER_BASE_EJECTION'),
  wholeNumberOption('outlierMaxEjectionPercent', '--outlier-max-ejection-percent', 'BULB_OUTLIER_MAX_EJECTION_PERCENT', 'PERCENT', 0, 100),
  {
    key: 'outlierUnejectOnCheck',
    flag: '--outlier-uneject-on-check',
    env: 'BULB_OUTLIER_UNEJECT_ON_CHECK',
    value: 'on|off',
    repeatable: false,
    expected: 'on or off',
    rule: 'must be on or off',
  },
  durationOption('headerTimeout', '--header-timeout', 'BULB_HEADER_TIMEOUT'),
  durationOption('bodyTimeout', '--body-timeout', 'BULB_BODY_TIMEOUT'),
  durationOption('requestTimeout', '--request-timeout', 'BULB_REQUEST_TIMEOUT'),
  durationOption('sendTimeout', '--send-timeout', 'BULB_SEND_TIMEOUT'),
  durationOption('idleTimeout', '--idle-timeout', 'BULB_IDLE_TIMEOUT'),
  wholeNumberOption('maxConnections', '--max-connections', 'BULB_MAX_CONNECTIONS', 'N', 0, 1000000),
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'BULB_LOG_LEVEL',
    value: 'LEVEL',
    repeatable: false,
    expected: `a log level (${LOG_LEVELS.join(', ')})`,
    rule: `must be one of ${LOG_LEVELS.join(', ')}`,
  },
] satisfies SettingOption[]);

/** Flags that are not settings: they choose what bulb does, or where the settings come from. */
export interface CommandFlag {
  readonly flag: `--${string}`;
  readonly short?: `-${string}`;
  readonly env?: `BULB_${string}`;
  /** Value placeholder, absent for a switch. */
  readonly value?: string;
  readonly description: string;
}

export const COMMAND_FLAGS: readonly CommandFlag[] = Object.freeze([
  {
    flag: '--config',
    env: 'BULB_CONFIG',
    value: 'FILE',
    description: 'Read settings from FILE (YAML or JSON; keys as in the flags, camelCase: listen, watchDirs, ...).',
  },
  { flag: '--check', description: 'Validate the settings and exit without serving; the same as `bulb check`.' },
  { flag: '--help', short: '-h', description: 'Print this help and exit.' },
  { flag: '--version', short: '-v', description: 'Print the version and exit.' },
] satisfies CommandFlag[]);

/** Every environment variable bulb reads. */
export const ENV_VARS: readonly string[] = Object.freeze([
  ...OPTIONS.map((o) => o.env),
  ...COMMAND_FLAGS.flatMap((c) => (c.env ? [c.env] : [])),
]);

/** The schema's description of a setting (the one text `--help` and the README use). */
export function describeSetting(key: SettingKey): string {
  return CONFIG_SCHEMA.properties[key].description;
}
