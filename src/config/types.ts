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
  readonly watchDirs: readonly string[];
  /** Static backends, as URLs. */
  readonly backends: readonly string[];
  /** A built-in strategy name, or a path to a `.js`/`.mjs` module. */
  readonly strategy: string;
  readonly hashKey: HashKey;
  readonly upstreamTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Path of the config file this came from, if any (relative paths in it are resolved against its folder). */
  readonly configFile: string | undefined;
}
