/**
 * The settings table: every setting bulb has, once. An entry holds the setting's config-file key, flag,
 * environment variable (derived from the flag), value placeholder, JSON Schema fragment, default, extra checks,
 * conversion into `Config` and help text. Everything else is derived from this table:
 *
 * - the JSON Schema (`schema.ts`) and so its ahead-of-time validator (`src/generated/validate-config.ts`);
 * - `DEFAULTS`, and the `RawConfig` (file) and `Config` (converted) types;
 * - the flag parser and `--help` (`src/cli/`), the `BULB_*` reader and the config file checks (`load.ts`);
 * - docs/configuration.md (`npm run docs:config`).
 *
 * Adding a setting is one entry here (in `--help` order; `duration`, `wholeNumber`, `oneOf` and `list` fill in
 * the schema, messages and conversion of the common kinds), `npm run generate` (the validator and
 * docs/configuration.md), and the code that reads `config.<field>`. examples/bulb.yaml and the full-config
 * expectations in test/unit/config/load.test.ts list every setting on purpose, so they get a line too.
 * Model: fastify's build-validation.js with `defaultInitOptions`, in one place rather than two.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import {
  DURATION_PATTERN,
  HEALTH_PATH_PATTERN,
  HEALTH_STATUS_PATTERN,
  parseBackendUrl,
  parseDuration,
  parseStatusRange,
} from '../values.js';
import {
  ADDRESS_PATTERN,
  ADMIN_PATTERN,
  ADMIN_TOKEN_PATTERN,
  BUILTIN_STRATEGIES,
  DNS_ADDRESS_PATTERN,
  DNS_NAME_PATTERN,
  DNS_SERVER_PATTERN,
  HASH_KEY_PATTERN,
  HEALTH_MODES,
  LOG_LEVELS,
  parseAddress,
  parseDnsServer,
  parseHashKey,
  resolveStrategy,
  show,
} from './formats.js';

/** A JSON Schema fragment (draft-07), as ajv compiles it. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** The nested objects of `Config`: a setting with a `group` is found at `config[group][field]`. */
export type SettingGroup = 'health' | 'outlier';

/** What a conversion may need besides the value. */
export interface ConvertContext {
  /**
   * Folder a relative path is resolved against: the config file's when the value came from the file, else the
   * current directory.
   */
  readonly base: string;
}

/**
 * One setting. `R` is its type in the config file (`RawConfig`), `V` its type in `Config`, `F` its field name
 * there (inside `G` when it has a group).
 */
export interface Setting<
  K extends string = string,
  R = unknown,
  V = unknown,
  F extends string = string,
  G extends SettingGroup | undefined = SettingGroup | undefined,
> {
  /** The config-file key, which is also the schema property. */
  readonly key: K;
  readonly flag: `--${string}`;
  /** `BULB_` and the flag in upper case, `-` as `_`: `--dns-min-interval` is `BULB_DNS_MIN_INTERVAL`. */
  readonly env: `BULB_${string}`;
  /** The value placeholder `--help` shows, e.g. `HOST:PORT`. */
  readonly value: string;
  /** A list: the flag may repeat, the env var is comma-separated, and either replaces the file's list. */
  readonly repeatable: boolean;
  /** What the setting does: the schema's description, and the text of `--help` and docs/configuration.md. */
  readonly help: string;
  readonly default: R;
  /** The value docs/configuration.md's example config file shows; the default when absent. */
  readonly example: R | undefined;
  /** Left out of the example config file: a secret belongs in the environment (flags show in `ps`). */
  readonly secret: boolean;
  /** The schema of the value, without `description` and `default` (taken from `help` and `default`). */
  readonly schema: JsonSchema;
  /** Noun phrase for flag/env errors: `--listen: "abc" is not HOST:PORT`. */
  readonly expected: string;
  /** Sentence for config-file errors: `bulb.yaml: /listen: must match HOST:PORT`. */
  readonly rule: string;
  /**
   * Why a value (a list's item, for a list) that matches the schema is still unusable, or undefined. Also run
   * on file values that fail the schema, so it must cope with any string or number; the reason quotes the value.
   */
  check(value: string | number): string | undefined;
  readonly field: F;
  readonly group: G;
  /** The schema-checked raw value (or the default) → the value in `Config`. */
  convert(raw: R, ctx: ConvertContext): V;
}

/** What a table entry spells out; the rest has a default. */
interface SettingInput<K extends string, R, V, F extends string, G extends SettingGroup | undefined> {
  readonly key: K;
  readonly flag: `--${string}`;
  readonly value: string;
  readonly repeatable?: boolean;
  readonly help: string;
  readonly default: R;
  readonly example?: R;
  readonly secret?: boolean;
  readonly schema: JsonSchema;
  readonly expected: string;
  readonly rule: string;
  readonly check?: (value: string | number) => string | undefined;
  /** Defaults to the key. */
  readonly field?: F;
  readonly group?: G;
  readonly convert: (raw: R, ctx: ConvertContext) => V;
}

function setting<const K extends string, R, V, F extends string = K, G extends SettingGroup | undefined = undefined>(
  s: SettingInput<K, R, V, F, G>,
): Setting<K, R, V, F, G> {
  return Object.freeze({
    key: s.key,
    flag: s.flag,
    env: `BULB_${s.flag.slice(2).toUpperCase().replace(/-/g, '_')}`,
    value: s.value,
    repeatable: s.repeatable ?? false,
    help: s.help,
    default: s.default,
    example: s.example,
    secret: s.secret ?? false,
    schema: s.schema,
    expected: s.expected,
    rule: s.rule,
    check: s.check ?? (() => undefined),
    field: (s.field ?? s.key) as F, // F defaults to K when no field is given
    group: s.group as G, // G defaults to undefined when no group is given
    convert: s.convert,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Kinds of setting: the schema, messages and conversion every setting of a kind shares

/** Longest delay `setTimeout` honours; anything above fires after 1ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration: `250ms`, `2s`, `1m`, `1h`, or a number of seconds. In `Config` it is whole milliseconds, in a field
 * named after the key with `Ms` (`upstreamTimeout` → `upstreamTimeoutMs`) unless `field` says otherwise.
 */
function duration<const K extends string, F extends string = `${K}Ms`, G extends SettingGroup | undefined = undefined>(s: {
  readonly key: K;
  readonly flag: `--${string}`;
  readonly help: string;
  readonly default: string;
  /** Shorter values are refused; the comment at the entry says why. */
  readonly minMs?: number;
  readonly field?: F;
  readonly group?: G;
}): Setting<K, string | number, number, F, G> {
  return setting<K, string | number, number, F, G>({
    key: s.key,
    flag: s.flag,
    value: 'DURATION',
    help: s.help,
    default: s.default,
    schema: {
      anyOf: [
        { type: 'string', pattern: DURATION_PATTERN },
        { type: 'number', minimum: 0 },
      ],
    },
    expected: 'a duration (use 250ms, 2s, 1m; a bare number means seconds)',
    rule: 'must be a duration like 250ms, 2s or 1m, or a number of seconds',
    check: (value) => {
      const ms = parseDuration(value);
      if (ms === undefined) return undefined;
      if (s.minMs !== undefined && ms < s.minMs) return `${show(value)} is too short (the minimum is ${s.minMs}ms)`;
      if (ms > MAX_TIMER_MS) return `${show(value)} is too long (the maximum is ${MAX_TIMER_MS}ms, about 24 days)`;
      return undefined;
    },
    field: (s.field ?? `${s.key}Ms`) as F, // F defaults to `${K}Ms` when no field is given
    ...(s.group !== undefined && { group: s.group }),
    // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- the schema admits only durations, so parseDuration finds one
    convert: (raw) => Math.round(parseDuration(raw)!),
  });
}

/**
 * A whole number from `min` to `max`. A string of digits is accepted too, since flags and env vars are strings;
 * the schema cannot bound a string's number, so `check` does.
 */
function wholeNumber<const K extends string, F extends string = K, G extends SettingGroup | undefined = undefined>(s: {
  readonly key: K;
  readonly flag: `--${string}`;
  readonly value: 'N' | 'PERCENT' | 'BYTES';
  readonly help: string;
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly field?: F;
  readonly group?: G;
}): Setting<K, string | number, number, F, G> {
  return setting<K, string | number, number, F, G>({
    key: s.key,
    flag: s.flag,
    value: s.value,
    help: s.help,
    default: s.default,
    schema: {
      anyOf: [
        { type: 'integer', minimum: s.min, maximum: s.max },
        { type: 'string', pattern: '^\\d{1,9}$' },
      ],
    },
    expected: `a whole number from ${s.min} to ${s.max}`,
    rule: `must be a whole number from ${s.min} to ${s.max}`,
    check: (value) => {
      const n = Number(value);
      return Number.isInteger(n) && n >= s.min && n <= s.max ? undefined : `${show(value)} is not a whole number from ${s.min} to ${s.max}`;
    },
    ...(s.field !== undefined && { field: s.field }),
    ...(s.group !== undefined && { group: s.group }),
    convert: Number,
  });
}

/** One of a few words, kept as the word. */
function oneOf<const K extends string, const T extends readonly string[], F extends string = K, G extends SettingGroup | undefined = undefined>(s: {
  readonly key: K;
  readonly flag: `--${string}`;
  readonly value: string;
  readonly help: string;
  readonly values: T;
  readonly default: T[number];
  readonly expected: string;
  readonly rule: string;
  readonly field?: F;
  readonly group?: G;
}): Setting<K, T[number], T[number], F, G> {
  return setting<K, T[number], T[number], F, G>({
    key: s.key,
    flag: s.flag,
    value: s.value,
    help: s.help,
    default: s.default,
    schema: { type: 'string', enum: s.values },
    expected: s.expected,
    rule: s.rule,
    ...(s.field !== undefined && { field: s.field }),
    ...(s.group !== undefined && { group: s.group }),
    convert: (raw) => raw,
  });
}

/** A list of strings, empty by default: a repeatable flag, a comma-separated env var, a YAML/JSON list. */
function list<const K extends string, V, F extends string = K>(s: {
  readonly key: K;
  readonly flag: `--${string}`;
  readonly value: string;
  readonly help: string;
  /** The schema of one item. */
  readonly items: JsonSchema;
  readonly example: string[];
  readonly expected: string;
  readonly rule: string;
  readonly check?: (item: string | number) => string | undefined;
  readonly field?: F;
  readonly convert: (raw: string[], ctx: ConvertContext) => V;
}): Setting<K, string[], V, F, undefined> {
  return setting<K, string[], V, F>({
    ...s,
    repeatable: true,
    default: [],
    schema: { type: 'array', items: s.items },
  });
}

// ---------------------------------------------------------------------------------------------------------
// The table, in `--help` order

export const SETTINGS = [
  setting({
    key: 'listen',
    flag: '--listen',
    value: 'HOST:PORT',
    help: 'Address the proxy listens on, HOST:PORT. Port 0 picks a free port; put an IPv6 host in brackets, e.g. [::1]:8080.',
    default: '0.0.0.0:8080',
    schema: { type: 'string', pattern: ADDRESS_PATTERN },
    expected: 'HOST:PORT',
    rule: 'must match HOST:PORT',
    convert: parseAddress,
  }),
  setting({
    key: 'admin',
    flag: '--admin',
    value: 'HOST:PORT|off',
    help: 'Address of the admin HTTP server (readiness and metrics), HOST:PORT, or off to disable it.',
    default: '127.0.0.1:9901',
    schema: { type: 'string', pattern: ADMIN_PATTERN },
    expected: 'HOST:PORT or off',
    rule: 'must match HOST:PORT or be off',
    // `undefined` when the admin server is off.
    convert: (raw) => (raw === 'off' ? undefined : parseAddress(raw)),
  }),
  setting({
    key: 'adminToken',
    flag: '--admin-token',
    value: 'TOKEN',
    help: 'Bearer token the admin API requires on every route but /healthz and /readyz (Authorization: Bearer TOKEN), compared in constant time. Printable ASCII, no spaces. Prefer the environment variable: flags show in ps.',
    // Empty means no token (the admin API is open to whoever reaches its address); an empty value given by
    // the user is refused instead, so `--admin-token "$UNSET"` cannot silently turn authentication off.
    default: '',
    secret: true,
    schema: { type: 'string', pattern: ADMIN_TOKEN_PATTERN },
    expected: 'a token of printable ASCII characters without spaces',
    rule: 'must be printable ASCII characters without spaces',
    check: (value) => (value === '' ? 'an empty token would leave the admin API open; leave the setting out instead' : undefined),
    convert: (raw) => (raw === '' ? undefined : raw),
  }),
  list({
    key: 'watchDirs',
    flag: '--watch-dir',
    value: 'DIR',
    help: "Directories to watch for backend files. In the config file, relative paths are resolved against the file's folder.",
    items: { type: 'string', minLength: 1 },
    example: ['/etc/bulb/backends'],
    expected: 'a directory path',
    rule: 'must be a list of directory paths',
    convert: (raw, { base }) => raw.map((d) => path.resolve(base, d)),
  }),
  list({
    key: 'backends',
    flag: '--backend',
    value: 'URL',
    help: 'Static backends, as http://, https:// or h2c:// (cleartext HTTP/2, e.g. gRPC) origins (HOST:PORT only: no path, query or credentials).',
    items: { type: 'string', minLength: 1 },
    example: ['http://10.0.0.5:8080'],
    expected: 'a backend URL',
    rule: 'must be a list of backend URLs',
    check: (item) => {
      if (typeof item !== 'string') return undefined;
      const parsed = parseBackendUrl(item);
      return 'error' in parsed ? parsed.error : undefined;
    },
    // Stored normalised (`http://host:port`) so every consumer sees the same id the static source will.
    convert: (raw) => raw.map((url) => {
      const parsed = parseBackendUrl(url);
      return 'error' in parsed ? url : parsed.url;
    }),
  }),
  list({
    key: 'dnsSrv',
    flag: '--dns-srv',
    value: 'NAME',
    help: 'DNS SRV names to follow (e.g. a Kubernetes headless Service, _http._tcp.web.default.svc.cluster.local). Each target address becomes a backend on the port of its record; RFC 2782 priority and weight apply.',
    items: { type: 'string', pattern: DNS_NAME_PATTERN },
    example: ['_http._tcp.web'],
    expected: 'a DNS name',
    rule: 'must be a list of DNS names',
    check: (item) =>
      typeof item === 'string' && item.replace(/\.$/, '').length > 253 ? `${show(item)} is longer than a DNS name may be (253 characters)` : undefined,
    convert: (raw) => [...raw],
  }),
  list({
    key: 'dnsA',
    flag: '--dns-a',
    value: 'HOST:PORT',
    help: 'DNS names to follow as HOST:PORT (e.g. a compose service with replicas, web:8080). Every A and AAAA address of HOST becomes a backend on PORT.',
    items: { type: 'string', pattern: DNS_ADDRESS_PATTERN },
    example: ['web:8080'],
    expected: 'HOST:PORT with HOST a DNS name',
    rule: 'must be a list of HOST:PORT with HOST a DNS name',
    check: (item) => {
      if (typeof item !== 'string') return undefined;
      const { host, port } = parseAddress(item);
      if (port === 0) return `${show(item)} has port 0; a backend needs a real port`;
      if (isIP(host) !== 0) return `${show(item)} is an IP address, which needs no DNS; use --backend http://${item}`;
      return undefined;
    },
    convert: (raw) => raw.map(parseAddress),
  }),
  setting({
    key: 'dnsServer',
    flag: '--dns-server',
    value: 'IP[:PORT]|system',
    help: 'DNS server for --dns-srv and --dns-a, IP[:PORT] (port 53 by default; names are then taken as absolute), or system for the servers and search domains of /etc/resolv.conf.',
    // `system` = the servers, search list and ndots of /etc/resolv.conf, as every other program in the container.
    default: 'system',
    schema: { type: 'string', pattern: DNS_SERVER_PATTERN },
    expected: 'IP[:PORT] or system',
    rule: 'must be IP[:PORT] or system',
    check: (value) => {
      if (typeof value !== 'string' || value === 'system') return undefined;
      const server = parseDnsServer(value);
      if (isIP(server.host) === 0) return `${show(value)} is not an IP address (the DNS server cannot be a name)`;
      if (server.port === 0) return `${show(value)} has port 0`;
      return undefined;
    },
    // `undefined` means the system resolver.
    convert: (raw) => (raw === 'system' ? undefined : parseDnsServer(raw)),
  }),
  setting({
    key: 'backendTlsCa',
    flag: '--backend-tls-ca',
    value: 'FILE',
    help: "CA bundle (PEM) that verifies https backends from --backend and DNS, and backend files without a tls block (nginx proxy_ssl_trusted_certificate); reloaded when it changes. Default: Node's bundled CAs.",
    default: '',
    example: '/etc/bulb/tls/ca.pem',
    schema: { type: 'string' },
    expected: 'a file path',
    rule: 'must be a file path',
    convert: (raw, { base }) => (raw === '' ? undefined : path.resolve(base, raw)),
  }),
  setting({
    key: 'backendTlsServerName',
    flag: '--backend-tls-server-name',
    value: 'NAME',
    help: 'Name sent as SNI to https backends and required in their certificates, instead of the URL host (nginx proxy_ssl_name); needed when backends are IP addresses.',
    default: '',
    example: 'api.internal',
    schema: { type: 'string', pattern: '^(?:|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?)$' },
    expected: 'a DNS name',
    rule: 'must be a DNS name',
    convert: (raw) => (raw === '' ? undefined : raw),
  }),
  setting({
    key: 'backendTlsCert',
    flag: '--backend-tls-cert',
    value: 'FILE',
    help: 'Client certificate (PEM) bulb presents to https backends that require mutual TLS (nginx proxy_ssl_certificate); needs --backend-tls-key; reloaded when it changes.',
    default: '',
    example: '/etc/bulb/tls/client.pem',
    schema: { type: 'string' },
    expected: 'a file path',
    rule: 'must be a file path',
    convert: (raw, { base }) => (raw === '' ? undefined : path.resolve(base, raw)),
  }),
  setting({
    key: 'backendTlsKey',
    flag: '--backend-tls-key',
    value: 'FILE',
    help: "The client certificate's private key (PEM, unencrypted; nginx proxy_ssl_certificate_key); reloaded when it changes.",
    default: '',
    example: '/etc/bulb/tls/client-key.pem',
    schema: { type: 'string' },
    expected: 'a file path',
    rule: 'must be a file path',
    convert: (raw, { base }) => (raw === '' ? undefined : path.resolve(base, raw)),
  }),
  setting({
    key: 'backendTlsInsecure',
    flag: '--backend-tls-insecure',
    value: 'on|off',
    help: 'on: accept any certificate from https backends of --backend and DNS (no verification; logged as a warning at start). For testing only.',
    default: 'off',
    schema: { type: 'string', enum: ['on', 'off'] },
    expected: 'on or off',
    rule: 'must be on or off',
    convert: (raw): boolean => raw === 'on',
  }),
  setting({
    key: 'backendHttp2',
    flag: '--backend-http2',
    value: 'on|off',
    help: 'on: https backends may negotiate HTTP/2 by ALPN (h2, else HTTP/1.1), for gRPC servers behind TLS; off: HTTP/1.1 over TLS. Cleartext HTTP/2 backends are h2c:// URLs either way (see docs/grpc.md).',
    // Off: an HTTP/1.1 keep-alive pool per backend is what bulb's figures measure; HTTP/2 puts every request to a
    // backend on one connection, and undici still counts its HTTP/2 client as experimental (docs/grpc.md).
    default: 'off',
    schema: { type: 'string', enum: ['on', 'off'] },
    expected: 'on or off',
    rule: 'must be on or off',
    convert: (raw): boolean => raw === 'on',
  }),
  oneOf({
    key: 'dnsScheme',
    flag: '--dns-scheme',
    value: 'http|https|h2c',
    help: 'Scheme of the backends --dns-srv and --dns-a find: http, https (verified as the --backend-tls-* settings say; see docs/backend-tls.md), or h2c (cleartext HTTP/2, e.g. gRPC servers; see docs/grpc.md).',
    values: ['http', 'https', 'h2c'],
    default: 'http',
    expected: 'http, https or h2c',
    rule: 'must be http, https or h2c',
  }),
  // Docker's embedded DNS answers with TTL 600 and CoreDNS with 5-30 s: the clamps keep bulb following
  // changes within 30 s, without asking more than once a second.
  duration({
    key: 'dnsMinInterval',
    flag: '--dns-min-interval',
    help: 'Shortest time between two lookups of a DNS name, however short its TTL (and the first retry after a failure).',
    default: '1s',
    // Below this, a TTL-0 answer (dnsmasq's default) would turn bulb into a DNS load generator.
    minMs: 100,
  }),
  duration({
    key: 'dnsMaxInterval',
    flag: '--dns-max-interval',
    help: 'Longest time between two lookups of a DNS name, however long its TTL (and the cap on retry backoff).',
    default: '30s',
  }),
  setting({
    key: 'dnsEmptyAfter',
    flag: '--dns-empty-after',
    value: 'N',
    help: "How many consecutive lookups must find no records (NXDOMAIN or an empty answer) before a DNS name's backends are removed, so one flap does not empty the pool.",
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- widens the literal: the setting's type comes from its default
    default: 2 as string | number,
    // Bounded by the pattern itself, strings included (unlike wholeNumber, whose strings `check` bounds).
    schema: {
      anyOf: [
        { type: 'integer', minimum: 1, maximum: 100 },
        { type: 'string', pattern: '^(?:[1-9]\\d?|100)$' },
      ],
    },
    expected: 'a whole number from 1 to 100',
    rule: 'must be a whole number from 1 to 100',
    convert: Number,
  }),
  setting({
    key: 'strategy',
    flag: '--strategy',
    value: 'NAME|PATH',
    help: `Load-balancing strategy: a built-in name (${BUILTIN_STRATEGIES.join(', ')}), or the path of a .js or .mjs module that exports a custom strategy.`,
    default: 'round-robin',
    example: 'least-connections',
    schema: { type: 'string', minLength: 1 },
    expected: 'a strategy name or module path',
    rule: 'must be a strategy name or module path',
    convert: (raw, { base }) => resolveStrategy(raw, base),
  }),
  setting({
    key: 'hashKey',
    flag: '--hash-key',
    value: 'client-ip|header:NAME',
    help: 'What consistent-hash keys on: client-ip, or header:NAME to use a request header.',
    default: 'client-ip',
    schema: { type: 'string', pattern: HASH_KEY_PATTERN },
    expected: 'client-ip or header:NAME',
    rule: 'must be client-ip or header:NAME',
    convert: parseHashKey,
  }),
  duration({
    key: 'upstreamTimeout',
    flag: '--upstream-timeout',
    help: 'How long a backend may take to answer a proxied request before bulb gives up on it.',
    default: '60s',
  }),
  duration({
    key: 'drainTimeout',
    flag: '--drain-timeout',
    help: 'How long in-flight requests may run to completion when bulb shuts down or a backend is removed.',
    default: '30s',
  }),
  duration({
    key: 'shutdownDelay',
    flag: '--shutdown-delay',
    help: 'On SIGTERM, how long to keep serving with /readyz failing before closing the listener, so the endpoint removal can reach whoever sends traffic (e.g. 5s in Kubernetes).',
    default: '0s',
  }),
  wholeNumber({
    key: 'retries',
    flag: '--retries',
    value: 'N',
    help: 'How many times a failed request may be retried on another backend: connection refused (any method), or a reset before any response byte or a 503 (idempotent methods only).',
    // nginx's proxy_next_upstream_tries is unlimited by default; two retries reach three backends, which is
    // enough to get past one dead and one dying backend without turning one request into a storm.
    default: 2,
    min: 0,
    max: 10,
  }),
  wholeNumber({
    key: 'retryBudget',
    flag: '--retry-budget',
    value: 'PERCENT',
    help: 'At most this percentage of recent requests (a 10 s window) may be retries, so a sick pool does not get a retry storm; 10 retries per window are always allowed.',
    // Envoy's retry budget default: retries may add at most 20% to the load.
    default: 20,
    min: 0,
    max: 100,
    field: 'retryBudgetPercent',
  }),
  wholeNumber({
    key: 'retryBodyLimit',
    flag: '--retry-body-limit',
    value: 'BYTES',
    help: 'Request bodies up to this many bytes are buffered so the request can be retried; larger or chunked bodies are streamed and never retried.',
    // Bodies up to 64 KiB are buffered so they can be retried (nginx buffers 8-16 KiB in memory; API requests
    // are mostly small); larger ones stream and are never retried.
    default: 65536,
    min: 0,
    max: 67108864,
  }),
  wholeNumber({
    key: 'panicThreshold',
    flag: '--panic-threshold',
    value: 'PERCENT',
    help: 'Panic mode (Envoy): when fewer than this percentage of backends is healthy, route across all of them rather than only the healthy ones. 0 turns it off: with nothing healthy, bulb answers 503 at once.',
    default: 0,
    min: 0,
    max: 100,
    field: 'panicThresholdPercent',
  }),
  duration({
    key: 'slowStart',
    flag: '--slow-start',
    help: "A new or recovered backend's weight ramps up linearly over this time (nginx Plus / HAProxy slowstart), for the weighted strategies. 0 turns it off. A backend file's slowStart overrides it.",
    default: '0s',
  }),
  oneOf({
    key: 'healthMode',
    flag: '--health-mode',
    value: 'auto|http|tcp|off',
    help: "Active health checks: http (GET the health path), tcp (connect only), grpc (grpc.health.v1.Health/Check over HTTP/2), off, or auto (http when a health path is set, else tcp). A backend file's health block overrides every health setting for its backends.",
    values: HEALTH_MODES,
    // With no health settings bulb still checks TCP reachability ('auto' without a path); a path turns on HTTP.
    default: 'auto',
    expected: `a health mode (${HEALTH_MODES.join(', ')})`,
    rule: `must be one of ${HEALTH_MODES.join(', ')}`,
    group: 'health',
    field: 'mode',
  }),
  setting({
    key: 'healthPath',
    flag: '--health-path',
    value: 'PATH',
    help: 'Path an HTTP health check GETs, e.g. /healthz. Setting it turns on HTTP checks (with --health-mode auto).',
    default: '',
    example: '/healthz',
    schema: { type: 'string', pattern: HEALTH_PATH_PATTERN },
    expected: 'a path starting with /',
    rule: 'must be a path starting with /',
    group: 'health',
    field: 'path',
    // `undefined` when no path is set.
    convert: (raw) => (raw === '' ? undefined : raw),
  }),
  setting({
    key: 'healthGrpcService',
    flag: '--health-grpc-service',
    value: 'NAME',
    help: 'Service name a gRPC health check (--health-mode grpc) asks about, e.g. my.pkg.Greeter; empty (the default) asks about the server as a whole.',
    default: '',
    example: '',
    schema: { type: 'string', maxLength: 1024 },
    expected: 'a gRPC service name',
    rule: 'must be a gRPC service name',
    group: 'health',
    field: 'grpcService',
    convert: (raw) => raw,
  }),
  setting({
    key: 'healthStatus',
    flag: '--health-status',
    value: 'CODE|FROM-TO',
    help: 'Statuses an HTTP health check accepts: one code or an inclusive range, e.g. 200 or 200-399.',
    // HAProxy's `http-check expect` default: any 2xx or 3xx is healthy.
    default: '200-399',
    schema: { type: 'string', pattern: HEALTH_STATUS_PATTERN },
    expected: 'a status code or range such as 200-399',
    rule: 'must be a status code or range such as 200-399',
    check: (value) => {
      if (typeof value !== 'string') return undefined;
      const [from, to] = parseStatusRange(value);
      return to < from ? `${show(value)} is an empty range (FROM must not exceed TO)` : undefined;
    },
    group: 'health',
    field: 'status',
    convert: (raw): readonly [number, number] => parseStatusRange(raw),
  }),
  duration({
    key: 'healthInterval',
    flag: '--health-interval',
    help: 'Time between two health checks of a backend (each one jittered by up to 10% so checks do not align). The first check runs as soon as a backend is added.',
    default: '2s',
    // A probe every few ms would load the backends more than the traffic does.
    minMs: 50,
    group: 'health',
    field: 'intervalMs',
  }),
  duration({
    key: 'healthTimeout',
    flag: '--health-timeout',
    help: 'How long a health check may take (connect, and for HTTP the response headers) before it counts as failed.',
    default: '1s',
    minMs: 10,
    group: 'health',
    field: 'timeoutMs',
  }),
  // HAProxy's defaults: 2 passes bring a backend back, 3 failures take it out.
  wholeNumber({
    key: 'healthRise',
    flag: '--health-rise',
    value: 'N',
    help: 'Consecutive passing checks that bring an unhealthy backend back (HAProxy rise).',
    default: 2,
    min: 1,
    max: 100,
    group: 'health',
    field: 'rise',
  }),
  wholeNumber({
    key: 'healthFall',
    flag: '--health-fall',
    value: 'N',
    help: 'Consecutive failing checks that take a healthy backend out (HAProxy fall).',
    default: 3,
    min: 1,
    max: 100,
    group: 'health',
    field: 'fall',
  }),
  oneOf({
    key: 'healthInitial',
    flag: '--health-initial',
    value: 'healthy|unhealthy',
    help: 'State of a new backend before its checks have decided: healthy (routable at once; fall failures take it out) or unhealthy (no traffic until rise checks pass).',
    values: ['healthy', 'unhealthy'],
    // Optimistic: a new backend is routable at once (see docs/health.md for why).
    default: 'healthy',
    expected: 'healthy or unhealthy',
    rule: 'must be healthy or unhealthy',
    group: 'health',
    field: 'initial',
  }),
  // Envoy's consecutive_5xx and base_ejection_time defaults.
  wholeNumber({
    key: 'outlierConsecutive',
    flag: '--outlier-consecutive',
    value: 'N',
    help: 'Outlier detection (Envoy): this many consecutive failures of real requests (connection errors, resets, timeouts, 5xx) eject a backend. 0 turns it off.',
    default: 5,
    min: 0,
    max: 1000,
    group: 'outlier',
    field: 'consecutive',
  }),
  duration({
    key: 'outlierBaseEjection',
    flag: '--outlier-base-ejection',
    help: 'How long an ejection lasts, multiplied by the number of times the backend has been ejected (at most 10x); the count decays while it behaves.',
    default: '30s',
    minMs: 100,
    group: 'outlier',
    field: 'baseEjectionMs',
  }),
  wholeNumber({
    key: 'outlierMaxEjectionPercent',
    flag: '--outlier-max-ejection-percent',
    value: 'PERCENT',
    help: 'At most this percentage of the backends may be ejected at once; one may always be ejected when there are two or more, and a lone backend never is.',
    // Envoy's 10% would never eject anything in a sidecar's pool of 2-5 backends (beyond the first); half of the
    // pool may be ejected, and one always may be when the pool has two or more.
    default: 50,
    min: 0,
    max: 100,
    group: 'outlier',
    field: 'maxEjectionPercent',
  }),
  setting({
    key: 'outlierUnejectOnCheck',
    flag: '--outlier-uneject-on-check',
    value: 'on|off',
    help: "on: a passing active health check ends an outlier ejection at once (Envoy's successful_active_health_check_uneject_host); off: an ejected backend stays out for its whole ejection time.",
    // Envoy's default: a recovered backend (or DNS SRV priority tier) gets its traffic back within one check.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- widens the literal: the setting's type comes from its default
    default: 'on' as 'on' | 'off',
    schema: { type: 'string', enum: ['on', 'off'] },
    expected: 'on or off',
    rule: 'must be on or off',
    group: 'outlier',
    field: 'unejectOnCheck',
    convert: (raw): boolean => raw === 'on',
  }),
  duration({
    key: 'headerTimeout',
    flag: '--header-timeout',
    help: 'A client must send its whole request head (request line and headers), counted from its first byte, within this time, or it gets 408 and its connection is closed (slowloris protection).',
    // HAProxy's usual `timeout http-request`: a client gets 10 s to send its headers (slowloris).
    default: '10s',
  }),
  duration({
    key: 'bodyTimeout',
    flag: '--body-timeout',
    help: 'While a client sends a request body, it may pause for at most this long before it gets 408 and its connection is closed.',
    default: '30s',
  }),
  duration({
    key: 'requestTimeout',
    flag: '--request-timeout',
    help: 'A whole request, head and body, must arrive within this time, counted from its first byte, or it gets 408 and its connection is closed (slow-body protection, however the bytes trickle in). At least --header-timeout; 0 turns it off.',
    // Node's own requestTimeout default: head and body of one request within 5 minutes (uploads included).
    default: '300s',
  }),
  duration({
    key: 'sendTimeout',
    flag: '--send-timeout',
    help: 'A client that accepts no response bytes for this long (nginx send_timeout: the time between two successful writes) is disconnected, and its upstream request released. 0 turns it off.',
    // nginx's send_timeout.
    default: '60s',
  }),
  duration({
    key: 'idleTimeout',
    flag: '--idle-timeout',
    help: 'An idle keep-alive client connection (no request in progress) is closed after this long.',
    // nginx's keepalive_timeout; at least 100ms, since 0 would mean never for Node.
    default: '75s',
    minMs: 100,
  }),
  wholeNumber({
    key: 'maxConnections',
    flag: '--max-connections',
    value: 'N',
    help: 'Most client connections open at once; further connections are closed at once rather than queued. 0 = no limit.',
    // Past this, new client connections are closed at once instead of queueing without bound.
    default: 10000,
    min: 0,
    max: 1000000,
  }),
  setting({
    key: 'tlsCert',
    flag: '--tls-cert',
    value: 'FILE',
    help: "PEM certificate chain for TLS on the traffic port (with --tls-key): clients then negotiate HTTP/2 (h2) or HTTP/1.1 by ALPN. Re-read when the file changes (a renewed Kubernetes Secret), without dropping connections. In the config file, a relative path is resolved against the file's folder.",
    // Empty: the traffic port speaks cleartext (HTTP/1.1, and HTTP/2 with prior knowledge).
    default: '',
    example: '/etc/bulb/tls/tls.crt',
    schema: { type: 'string' },
    expected: 'a file path',
    rule: 'must be a file path',
    convert: (raw, { base }) => (raw === '' ? undefined : path.resolve(base, raw)),
  }),
  setting({
    key: 'tlsKey',
    flag: '--tls-key',
    value: 'FILE',
    help: 'PEM private key of --tls-cert. Re-read with it when either file changes.',
    default: '',
    example: '/etc/bulb/tls/tls.key',
    schema: { type: 'string' },
    expected: 'a file path',
    rule: 'must be a file path',
    convert: (raw, { base }) => (raw === '' ? undefined : path.resolve(base, raw)),
  }),
  setting({
    key: 'workers',
    flag: '--workers',
    value: 'N|auto',
    help: 'Data-plane worker threads that serve traffic, or auto for one per CPU this process may use (a container CPU limit counts: 500m gives 1). With 1, traffic is served in the controller\'s own thread, as a single process.',
    // A sidecar shares its pod's CPU with the app it serves and is usually limited to one CPU or less; nginx's own
    // default is worker_processes 1. `auto` is there for a bulb that has cores of its own.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- widens the literal: the setting's type comes from its default
    default: 1 as number | 'auto',
    example: 'auto',
    schema: {
      anyOf: [
        { type: 'integer', minimum: 1, maximum: 256 },
        { type: 'string', pattern: '^(?:auto|\\d{1,9})$' },
      ],
    },
    expected: 'a whole number from 1 to 256, or auto',
    rule: 'must be a whole number from 1 to 256, or auto',
    check: (value) => {
      if (value === 'auto') return undefined;
      const n = Number(value);
      return Number.isInteger(n) && n >= 1 && n <= 256 ? undefined : `${show(value)} is not a whole number from 1 to 256, or auto`;
    },
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- raw is typed from the default, but a flag or env var gives a digit string
    convert: (raw): number | 'auto' => (raw === 'auto' ? 'auto' : Number(raw)),
  }),
  oneOf({
    key: 'logLevel',
    flag: '--log-level',
    value: 'LEVEL',
    help: `Log level: ${LOG_LEVELS.join(', ')}.`,
    values: LOG_LEVELS,
    default: 'info',
    expected: `a log level (${LOG_LEVELS.join(', ')})`,
    rule: `must be one of ${LOG_LEVELS.join(', ')}`,
  }),
] as const;

// ---------------------------------------------------------------------------------------------------------
// Derived from the table

export type AnySetting = (typeof SETTINGS)[number];
export type SettingKey = AnySetting['key'];

/**
 * The config file as written (and each layer, and the merged raw object before conversion): durations are still
 * strings or numbers of seconds, addresses still `HOST:PORT` text. Every key is optional; `DEFAULTS` fills the rest.
 */
export type RawConfig = { -readonly [S in AnySetting as S['key']]?: S['default'] };

/** The fields of `Config` the settings `S` become. */
type Fields<S extends AnySetting> = { readonly [T in S as T['field']]: ReturnType<T['convert']> };

/**
 * bulb's settings after the config file, `BULB_*` environment variables and flags have been merged (in that
 * order of precedence, flags last), validated, defaulted, converted and frozen. Durations are milliseconds here.
 * Each field is a setting's `convert` result; its help text says what it means.
 */
export type Config = Fields<Extract<AnySetting, { readonly group: undefined }>> & {
  readonly [G in SettingGroup]: Fields<Extract<AnySetting, { readonly group: G }>>;
} & {
  /** Path of the config file this came from, if any (relative paths in it are resolved against its folder). */
  readonly configFile: string | undefined;
};

/** Every default, in config-file form. */
export const DEFAULTS = Object.freeze(Object.fromEntries(SETTINGS.map((s) => [s.key, s.default]))) as Readonly<Required<RawConfig>>;

/** The variable `--config` falls back to; read by the loader, shown by `--help`. */
export const CONFIG_ENV = 'BULB_CONFIG';

/** Every environment variable bulb reads. */
export const ENV_VARS: readonly string[] = Object.freeze([...SETTINGS.map((s) => s.env), CONFIG_ENV]);

const BY_KEY = new Map<string, AnySetting>(SETTINGS.map((s) => [s.key, s]));

/** The setting a config-file key names, if any. */
export function settingByKey(key: string): AnySetting | undefined {
  return BY_KEY.get(key);
}
