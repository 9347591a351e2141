/**
 * bulb's coded errors. Each failure a user can cause has one class with a stable `code`, so scripts and tests
 * can tell them apart and docs/operating.md can list them. Messages name the thing and the reason; they never carry
 * a stack trace to a user (the CLI prints `message` only).
 */
export class BulbError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'BulbError';
  }
}

/** A command-line flag or environment variable is unknown or has a bad value. */
export class InvalidArgumentError extends BulbError {
  constructor(message: string) {
    super('BULB_E_INVALID_ARGUMENT', message);
  }
}

/** The `--config` file cannot be read, parsed or validated. */
export class InvalidConfigError extends BulbError {
  /** One readable line per problem, e.g. `bulb.yaml: /listen: must match "HOST:PORT"`. */
  readonly details: readonly string[];
  constructor(message: string, details: readonly string[] = []) {
    super('BULB_E_INVALID_CONFIG', details.length ? `${message}\n  ${details.join('\n  ')}` : message);
    this.details = details;
  }
}

/** A `--strategy` name is unknown, or a custom strategy module does not load or has the wrong shape. */
export class InvalidStrategyError extends BulbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BULB_E_INVALID_STRATEGY', message, options);
  }
}

/** A listen address cannot be bound (in use, not permitted). */
export class ListenError extends BulbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BULB_E_LISTEN', message, options);
  }
}

/** Every error code bulb can report; the docs drift test checks docs/operating.md lists exactly these. */
export const ERROR_CODES = [
  'BULB_E_INVALID_ARGUMENT',
  'BULB_E_INVALID_CONFIG',
  'BULB_E_INVALID_STRATEGY',
  'BULB_E_LISTEN',
] as const;
