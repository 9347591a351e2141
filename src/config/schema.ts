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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The config file as written (and the merged raw object before conversion): durations are still strings or
 * numbers of seconds, addresses still `HOST:PORT` text. Every key is optional; `DEFAULTS` fills the rest.
 */
export interface RawConfig {
  listen?: string;
  admin?: string;
  watchDirs?: string[];
  backends?: string[];
  strategy?: string;
  hashKey?: string;
  upstreamTimeout?: string | number;
  drainTimeout?: string | number;
  logLevel?: LogLevel;
}

export type SettingKey = keyof RawConfig;

/** Every default, in config-file form. The schema's `default`s and `--help` both come from here. */
export const DEFAULTS: Readonly<Required<RawConfig>> = Object.freeze({
  listen: '0.0.0.0:8080',
  admin: '127.0.0.1:9901',
  watchDirs: [],
  backends: [],
  strategy: 'round-robin',
  hashKey: 'client-ip',
  upstreamTimeout: '60s',
  drainTimeout: '30s',
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
  {
    key: 'upstreamTimeout',
    flag: '--upstream-timeout',
    env: 'BULB_UPSTREAM_TIMEOUT',
    value: 'DURATION',
    repeatable: false,
    expected: DURATION_EXPECTED,
    rule: DURATION_RULE,
  },
  {
    key: 'drainTimeout',
    flag: '--drain-timeout',
    env: 'BULB_DRAIN_TIMEOUT',
    value: 'DURATION',
    repeatable: false,
    expected: DURATION_EXPECTED,
    rule: DURATION_RULE,
  },
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
