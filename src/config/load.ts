/**
 * Turns the layers of settings into one frozen `Config`: the flags (as `src/cli/` parsed them from argv), the
 * `BULB_*` environment variables and, optionally, a config file.
 *
 * Precedence is config file < `BULB_*` environment variables < flags. A list given by flags or env replaces
 * the file's list; it does not append. Each layer is validated on its own first, so an error names the place
 * the bad value came from (`--listen`, `BULB_LISTEN`, `bulb.yaml: /listen`). The layers are then merged over
 * `DEFAULTS` into one raw object, cloned, validated once more, converted by each setting's `convert` (durations
 * to ms, addresses to `{host, port}`, relative paths to absolute) and deep-frozen. Model: fastify's
 * initial-config-validation.js (clone → validate → deepFreeze).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { InvalidArgumentError, InvalidConfigError } from '../errors.js';
import validateGenerated from '../generated/validate-config.js';
import { show } from './formats.js';
import { CONFIG_ENV, DEFAULTS, SETTINGS, settingByKey, type AnySetting, type Config, type RawConfig, type Setting } from './settings.js';
import { closest } from './suggest.js';

export interface LoadOptions {
  /**
   * The flags' values as given on the command line, by setting, in the order the flags first appear; a list
   * setting's values in order, any other setting's last value only.
   */
  readonly flags: ReadonlyMap<AnySetting, readonly string[]>;
  /** `--config` as given; `undefined` falls back to `BULB_CONFIG`. */
  readonly configFile: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** Base for relative paths given by flags, env vars and `--config`. */
  readonly cwd: string;
}

/**
 * Validates and merges everything; throws `InvalidArgumentError` for a bad flag or env var and
 * `InvalidConfigError` for a bad config file. Never partially applies anything.
 */
export async function loadConfig(opts: LoadOptions): Promise<Config> {
  const envLayer = readEnv(opts.env);
  const flagLayer = stringLayer(opts.flags, (s) => s.flag);

  const configArg = opts.configFile ?? nonEmpty(opts.env[CONFIG_ENV]);
  let fileLayer: RawConfig = {};
  let configFile: string | undefined;
  if (configArg !== undefined) {
    configFile = path.resolve(opts.cwd, configArg);
    fileLayer = await readConfigFile(configFile, configArg);
  }

  // Later layers win key by key; lists are whole values, so a flag list replaces the file's list.
  const merged: RawConfig = structuredClone({ ...DEFAULTS, ...fileLayer, ...envLayer, ...flagLayer });
  if (!validate(merged)) {
    // Every layer and every default passed on its own, so this is a bug in bulb rather than in the user's input.
    const lines = readableErrors(validate.errors ?? [], merged).map((p) => `${p.pointer}: ${p.message}`);
    throw new InvalidConfigError('invalid settings after merging', lines);
  }
  const raw = merged as Required<RawConfig>; // DEFAULTS has every key

  // A relative path is resolved against the config file's folder only when the file is where it came from.
  const fromFile = (key: string): boolean => key in fileLayer && !(key in envLayer) && !(key in flagLayer);
  const baseFor = (key: string): string => (fromFile(key) && configFile !== undefined ? path.dirname(configFile) : opts.cwd);

  const out: Record<string, unknown> = {};
  // Widened to the plain `Setting`: each entry's convert takes its own raw type, which raw[key] is.
  for (const s of SETTINGS as readonly Setting[]) {
    const value = s.convert(raw[s.key as keyof RawConfig], { base: baseFor(s.key) });
    if (s.group === undefined) out[s.field] = value;
    else ((out[s.group] ??= {}) as Record<string, unknown>)[s.field] = value;
  }
  out['configFile'] = configFile;
  const config = out as Config; // every field of Config is a setting's field, filled just above

  if (config.requestTimeoutMs > 0 && config.requestTimeoutMs < config.headerTimeoutMs) {
    // The head is part of the request (and Node refuses a headersTimeout above its requestTimeout).
    throw new InvalidConfigError(
      `requestTimeout (${show(raw.requestTimeout)}) is shorter than headerTimeout (${show(raw.headerTimeout)}); ` +
        'set --request-timeout to at least --header-timeout, or 0 to turn it off',
    );
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new InvalidConfigError(
      config.tlsCert === undefined ? 'tlsKey is set without tlsCert; TLS needs both --tls-cert and --tls-key' : 'tlsCert is set without tlsKey; TLS needs both --tls-cert and --tls-key',
    );
  }
  if (config.dnsMinIntervalMs > config.dnsMaxIntervalMs) {
    throw new InvalidConfigError(
      `dnsMinInterval (${show(raw.dnsMinInterval)}) is longer than dnsMaxInterval (${show(raw.dnsMaxInterval)}); ` +
        'set --dns-min-interval to at most --dns-max-interval',
    );
  }
  return deepFreeze(config);
}

// ---------------------------------------------------------------------------------------------------------
// Flags and environment

/**
 * The layer of values given as strings (flags, env vars), each checked against its setting's schema and checks.
 * `name` is how the user gave the setting, for the error: `--listen` or `BULB_LISTEN`.
 */
function stringLayer(values: ReadonlyMap<AnySetting, readonly string[]>, name: (s: AnySetting) => string): RawConfig {
  const layer: Record<string, unknown> = {};
  for (const [s, list] of values) {
    for (const v of list) {
      const problem = valueProblem(s, v);
      if (problem) throw new InvalidArgumentError(`${name(s)}: ${problem}`);
    }
    layer[s.key] = s.repeatable ? [...list] : list[list.length - 1];
  }
  return layer; // each value was validated against its schema property just above
}

/**
 * Reads the `BULB_*` variables of the settings table. Other `BULB_*` names are ignored, not refused: Kubernetes
 * injects `BULB_PORT`, `BULB_SERVICE_HOST`, … into every pod when a Service is named bulb. An empty variable
 * counts as unset.
 */
function readEnv(env: NodeJS.ProcessEnv): RawConfig {
  const values = new Map<AnySetting, readonly string[]>();
  for (const s of SETTINGS) {
    const text = nonEmpty(env[s.env]);
    if (text === undefined) continue;
    const list = s.repeatable
      ? text
          .split(',')
          .map((v) => v.trim())
          .filter((v) => v !== '')
      : [text.trim()];
    values.set(s, list);
  }
  return stringLayer(values, (s) => s.env);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** Why one flag or env value is not acceptable, or undefined when it is. */
function valueProblem(s: AnySetting, value: string): string | undefined {
  const candidate = { [s.key]: s.repeatable ? [value] : value };
  if (!validate(candidate)) return `${JSON.stringify(value)} is not ${s.expected}`;
  return s.check(value);
}

// ---------------------------------------------------------------------------------------------------------
// Config file

async function readConfigFile(file: string, shown: string): Promise<RawConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(`${shown}: cannot read config file (${fsReason(err)})`);
  }
  // Loaded only here: without a config file (the usual sidecar case) bulb never needs a YAML parser.
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const details = doc.errors.slice(0, 5).map((e) => {
      const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : '';
      // yaml's message is "<reason> at line L, column C:\n\n<code frame>"; keep the reason, place it ourselves.
      const reason = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?\s*$/, '');
      return `${shown}: ${where}${reason}`;
    });
    throw new InvalidConfigError(`${shown}: cannot parse config file (YAML or JSON)`, details);
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    throw new InvalidConfigError(`${shown}: cannot parse config file (${firstLine(err)})`);
  }
  if (data === null || data === undefined) return {}; // an empty file sets nothing

  const ok = validate(data);
  const problems = ok ? [] : readableErrors(validate.errors ?? [], data);
  problems.push(...fileSemanticProblems(data));
  if (problems.length > 0) {
    const seen = new Set<string>();
    const lines = sortProblems(problems, data)
      .filter((p) => (seen.has(p.pointer) ? false : (seen.add(p.pointer), true)))
      .map((p) => (p.pointer === '' ? `${shown}: ${p.message}` : `${shown}: ${p.pointer}: ${p.message}`));
    throw new InvalidConfigError(`${shown}: invalid config file`, lines);
  }
  return data; // validated by the schema and the settings' checks above
}

function fsReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return firstLine(err);
  }
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

interface Problem {
  /** JSON pointer into the config file, `""` for the whole document. */
  readonly pointer: string;
  readonly message: string;
}

const KEYS = SETTINGS.map((s) => s.key);

/** One readable line per ajv error, phrased for the setting it is about rather than in schema terms. */
function readableErrors(errors: readonly ErrorObject[], data: unknown): Problem[] {
  const out: Problem[] = [];
  for (const e of errors) {
    if (e.keyword === 'additionalProperties') {
      const name = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      const guess = closest(name, KEYS);
      out.push({
        pointer: `${e.instancePath}/${escapePointer(name)}`,
        message: `unknown setting` + (guess ? `; did you mean ${guess}?` : '') + ` (allowed: ${KEYS.join(', ')})`,
      });
      continue;
    }
    if (e.instancePath === '') {
      out.push({ pointer: '', message: `must be a mapping of settings (got ${show(data)})` });
      continue;
    }
    const segments = e.instancePath.split('/').slice(1).map(unescapePointer);
    const s = settingByKey(segments[0] ?? '');
    const value = valueAt(data, segments);
    if (segments.length > 1 || s === undefined) {
      out.push({ pointer: e.instancePath, message: `must be a non-empty string (got ${show(value)})` });
    } else {
      out.push({ pointer: e.instancePath, message: `${s.rule} (got ${show(value)})` });
    }
  }
  return out;
}

/** The settings' own checks, on whichever values already have the right type. */
function fileSemanticProblems(data: unknown): Problem[] {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return [];
  const out: Problem[] = [];
  for (const [key, value] of Object.entries(data)) {
    const s = settingByKey(key);
    if (s === undefined) continue;
    const items = Array.isArray(value) ? value.map((v, i) => [`/${key}/${i}`, v] as const) : [[`/${key}`, value] as const];
    for (const [pointer, v] of items) {
      if (typeof v !== 'string' && typeof v !== 'number') continue;
      const problem = s.check(v);
      if (problem) out.push({ pointer, message: problem });
    }
  }
  return out;
}

/** Document order: top-level keys as they appear in the file, then list positions. */
function sortProblems(problems: Problem[], data: unknown): Problem[] {
  const keys = typeof data === 'object' && data !== null ? Object.keys(data) : [];
  const rank = (p: Problem): [number, number] => {
    const [key, index] = p.pointer.split('/').slice(1);
    return [key === undefined ? -1 : keys.indexOf(unescapePointer(key)), index === undefined ? -1 : Number(index)];
  };
  return problems
    .map((p, i) => ({ p, r: rank(p), i }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.i - b.i)
    .map((x) => x.p);
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/**
 * CONFIG_SCHEMA's validator, generated ahead of time by ajv's standalone code (scripts/generate-validators.ts):
 * the same code `new Ajv({ allErrors: true, strict: true }).compile(CONFIG_SCHEMA)` builds, without compiling
 * anything at start-up. It fills in nothing: defaults come from `DEFAULTS`, merged in above.
 */
const validate = validateGenerated as unknown as ValidateFunction<RawConfig>;

function valueAt(data: unknown, segments: readonly string[]): unknown {
  let cur: unknown = data;
  for (const s of segments) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
