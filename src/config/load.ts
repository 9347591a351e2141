/**
 * Turns a command line, an environment and (optionally) a config file into one frozen `Config`.
 *
 * Precedence is config file < `BULB_*` environment variables < flags. A list given by flags or env replaces
 * the file's list; it does not append. Each layer is validated on its own first, so an error names the place
 * the bad value came from (`--listen`, `BULB_LISTEN`, `bulb.yaml: /listen`). The layers are then merged into
 * one raw object, cloned, validated once more with ajv filling in `DEFAULTS`, converted (durations to ms,
 * addresses to `{host, port}`, relative paths to absolute) and deep-frozen. Model: fastify's
 * initial-config-validation.js (clone → validate → deepFreeze).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { helpText } from '../cli/help.js';
import { parseBackendUrl } from '../discovery/backend-url.js';
import { InvalidArgumentError, InvalidConfigError } from '../errors.js';
import type { HashKey } from '../strategies/strategy.js';
import { parseDuration } from './duration.js';
import {
  BUILTIN_STRATEGIES,
  CONFIG_SCHEMA,
  OPTIONS,
  type RawConfig,
  type SettingKey,
  type SettingOption,
} from './schema.js';
import type { Address, Config } from './types.js';
import validateFinalGenerated from './validate-config-final.generated.js';
import validateLayerGenerated from './validate-config-layer.generated.js';

export interface LoadOptions {
  /** The arguments after the command, e.g. `['check', '--listen', '127.0.0.1:0']`. */
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Base for relative paths given by flags, env vars and `--config`. */
  readonly cwd: string;
}

/** What the command line asks for. `help` and `version` do not read the config at all. */
export type LoadResult =
  | { readonly kind: 'run'; readonly config: Config }
  | { readonly kind: 'check'; readonly config: Config }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string };

/**
 * Parses and validates everything; throws `InvalidArgumentError` for a bad flag or env var and
 * `InvalidConfigError` for a bad config file. Never partially applies anything.
 */
export async function loadConfig(opts: LoadOptions): Promise<LoadResult> {
  const args = parseArgv(opts.argv);
  if (args.mode === 'help') return { kind: 'help', text: helpText() };
  if (args.mode === 'version') return { kind: 'version', text: `bulb ${await packageVersion()}` };

  const envLayer = readEnv(opts.env);
  const flagLayer = readFlags(args.values);

  const configArg = args.config ?? nonEmpty(opts.env['BULB_CONFIG']);
  let fileLayer: RawConfig = {};
  let configFile: string | undefined;
  if (configArg !== undefined) {
    configFile = path.resolve(opts.cwd, configArg);
    fileLayer = await readConfigFile(configFile, configArg);
  }

  // Later layers win key by key; lists are whole values, so a flag list replaces the file's list.
  const merged: RawConfig = structuredClone({ ...fileLayer, ...envLayer, ...flagLayer });
  const validateFinal = validators().final;
  if (!validateFinal(merged)) {
    // Every layer passed on its own, so this is a bug in bulb rather than in the user's input.
    const lines = readableErrors(validateFinal.errors ?? [], merged).map((p) => `${p.pointer}: ${p.message}`);
    throw new InvalidConfigError('invalid settings after merging', lines);
  }
  const raw = merged as Required<RawConfig>; // useDefaults filled every key the schema has a default for

  // A relative path is resolved against the config file's folder only when the file is where it came from.
  const fromFile = (key: SettingKey): boolean => key in fileLayer && !(key in envLayer) && !(key in flagLayer);
  const baseFor = (key: SettingKey): string =>
    fromFile(key) && configFile !== undefined ? path.dirname(configFile) : opts.cwd;

  const config: Config = {
    listen: parseAddress(raw.listen),
    admin: raw.admin === 'off' ? undefined : parseAddress(raw.admin),
    adminToken: raw.adminToken === '' ? undefined : raw.adminToken,
    watchDirs: raw.watchDirs.map((d) => path.resolve(baseFor('watchDirs'), d)),
    backends: raw.backends.map(normaliseBackend),
    dnsSrv: [...raw.dnsSrv],
    dnsA: raw.dnsA.map(parseAddress),
    dnsServer: raw.dnsServer === 'system' ? undefined : parseDnsServer(raw.dnsServer),
    dnsMinIntervalMs: durationMs(raw.dnsMinInterval),
    dnsMaxIntervalMs: durationMs(raw.dnsMaxInterval),
    dnsEmptyAfter: Number(raw.dnsEmptyAfter),
    strategy: resolveStrategy(raw.strategy, baseFor('strategy')),
    hashKey: parseHashKey(raw.hashKey),
    upstreamTimeoutMs: durationMs(raw.upstreamTimeout),
    drainTimeoutMs: durationMs(raw.drainTimeout),
    shutdownDelayMs: durationMs(raw.shutdownDelay),
    retries: Number(raw.retries),
    retryBudgetPercent: Number(raw.retryBudget),
    retryBodyLimit: Number(raw.retryBodyLimit),
    panicThresholdPercent: Number(raw.panicThreshold),
    slowStartMs: durationMs(raw.slowStart),
    headerTimeoutMs: durationMs(raw.headerTimeout),
    bodyTimeoutMs: durationMs(raw.bodyTimeout),
    maxConnections: Number(raw.maxConnections),
    health: {
      mode: raw.healthMode,
      path: raw.healthPath === '' ? undefined : raw.healthPath,
      status: parseStatusRange(raw.healthStatus),
      intervalMs: durationMs(raw.healthInterval),
      timeoutMs: durationMs(raw.healthTimeout),
      rise: Number(raw.healthRise),
      fall: Number(raw.healthFall),
      initial: raw.healthInitial,
    },
    outlier: {
      consecutive: Number(raw.outlierConsecutive),
      baseEjectionMs: durationMs(raw.outlierBaseEjection),
      maxEjectionPercent: Number(raw.outlierMaxEjectionPercent),
    },
    logLevel: raw.logLevel,
    configFile,
  };
  if (config.dnsMinIntervalMs > config.dnsMaxIntervalMs) {
    throw new InvalidConfigError(
      `dnsMinInterval (${show(raw.dnsMinInterval)}) is longer than dnsMaxInterval (${show(raw.dnsMaxInterval)}); ` +
        'set --dns-min-interval to at most --dns-max-interval',
    );
  }
  return { kind: args.mode, config: deepFreeze(config) };
}

// ---------------------------------------------------------------------------------------------------------
// Command line

interface ParsedArgs {
  readonly mode: 'run' | 'check' | 'help' | 'version';
  readonly config: string | undefined;
  /** Raw flag values in order; a non-repeatable flag given twice keeps its last value. */
  readonly values: ReadonlyMap<SettingOption, readonly string[]>;
}

const OPTION_BY_FLAG = new Map<string, SettingOption>(OPTIONS.map((o) => [o.flag, o]));
const OPTION_BY_KEY = new Map<string, SettingOption>(OPTIONS.map((o) => [o.key, o]));
const ALL_FLAGS = [...OPTIONS.map((o) => o.flag), '--config', '--check', '--help', '--version'];

/**
 * A small loop rather than `util.parseArgs`: parseArgs's own messages ("Unknown option '--x'. To specify a
 * positional argument starting with a '-', place it at the end…") are not the ones bulb wants to show, and it
 * cannot suggest the flag the user meant.
 */
function parseArgv(argv: readonly string[]): ParsedArgs {
  // --help and --version win over everything else on the line, including mistakes.
  if (argv.some((a) => a === '--help' || a === '-h')) return { mode: 'help', config: undefined, values: new Map() };
  if (argv.some((a) => a === '--version' || a === '-v')) return { mode: 'version', config: undefined, values: new Map() };

  let mode: 'run' | 'check' = 'run';
  let config: string | undefined;
  const values = new Map<SettingOption, string[]>();
  let i = 0;
  if (argv[0] === 'check') {
    mode = 'check';
    i = 1;
  }
  for (; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith('-') || token === '-') {
      if (token === 'check') throw new InvalidArgumentError('check: must come first, as in: bulb check [flags]');
      throw new InvalidArgumentError(`unexpected argument "${token}": bulb takes flags only (see bulb --help)`);
    }
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const name = eq === -1 ? token : token.slice(0, eq);
    const inline = eq === -1 ? undefined : token.slice(eq + 1);

    if (name === '--check') {
      if (inline !== undefined) throw new InvalidArgumentError('--check: takes no value');
      mode = 'check';
      continue;
    }
    const option = OPTION_BY_FLAG.get(name);
    if (option === undefined && name !== '--config') {
      const guess = closest(name, ALL_FLAGS);
      throw new InvalidArgumentError(
        `${name}: unknown flag${guess ? ` (did you mean ${guess}?)` : ''}; see bulb --help for the list`,
      );
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A value never starts with "-" for bulb's settings; a flag there means this one's value was forgotten.
      if (next !== undefined && !(next.startsWith('-') && next.length > 1)) {
        value = next;
        i++;
      }
    }
    const placeholder = option ? option.value : 'FILE';
    if (value === undefined) throw new InvalidArgumentError(`${name}: missing value (expected ${placeholder})`);
    if (option === undefined) {
      if (value === '') throw new InvalidArgumentError(`--config: missing value (expected FILE)`);
      config = value;
    } else if (option.repeatable) {
      values.set(option, [...(values.get(option) ?? []), value]);
    } else {
      values.set(option, [value]);
    }
  }
  return { mode, config, values };
}

function readFlags(values: ReadonlyMap<SettingOption, readonly string[]>): RawConfig {
  const layer: Record<string, unknown> = {};
  for (const [option, list] of values) {
    for (const v of list) {
      const problem = valueProblem(option, v);
      if (problem) throw new InvalidArgumentError(`${option.flag}: ${problem}`);
    }
    layer[option.key] = option.repeatable ? [...list] : list[list.length - 1];
  }
  return layer as RawConfig; // each value was validated against its schema property just above
}

// ---------------------------------------------------------------------------------------------------------
// Environment

/**
 * Reads the `BULB_*` variables named in `OPTIONS`. Other `BULB_*` names are ignored, not refused: Kubernetes
 * injects `BULB_PORT`, `BULB_SERVICE_HOST`, … into every pod when a Service is named bulb. An empty variable
 * counts as unset.
 */
function readEnv(env: NodeJS.ProcessEnv): RawConfig {
  const layer: Record<string, unknown> = {};
  for (const option of OPTIONS) {
    const text = nonEmpty(env[option.env]);
    if (text === undefined) continue;
    const list = option.repeatable
      ? text
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : [text.trim()];
    for (const v of list) {
      const problem = valueProblem(option, v);
      if (problem) throw new InvalidArgumentError(`${option.env}: ${problem}`);
    }
    layer[option.key] = option.repeatable ? list : list[0];
  }
  return layer as RawConfig; // each value was validated against its schema property just above
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** Why one flag or env value is not acceptable, or undefined when it is. */
function valueProblem(option: SettingOption, value: string): string | undefined {
  const candidate = { [option.key]: option.repeatable ? [value] : value };
  if (!validators().layer(candidate)) return `${JSON.stringify(value)} is not ${option.expected}`;
  return semanticProblem(option.key, value);
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

  const validateLayer = validators().layer;
  const ok = validateLayer(data);
  const problems = ok ? [] : readableErrors(validateLayer.errors ?? [], data);
  problems.push(...fileSemanticProblems(data));
  if (problems.length > 0) {
    const seen = new Set<string>();
    const lines = sortProblems(problems, data)
      .filter((p) => (seen.has(p.pointer) ? false : (seen.add(p.pointer), true)))
      .map((p) => (p.pointer === '' ? `${shown}: ${p.message}` : `${shown}: ${p.pointer}: ${p.message}`));
    throw new InvalidConfigError(`${shown}: invalid config file`, lines);
  }
  return data as RawConfig; // validated by the schema and the semantic checks above
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

/** One readable line per ajv error, phrased for the setting it is about rather than in schema terms. */
function readableErrors(errors: readonly ErrorObject[], data: unknown): Problem[] {
  const out: Problem[] = [];
  for (const e of errors) {
    if (e.keyword === 'additionalProperties') {
      const name = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      const guess = closest(name, OPTIONS.map((o) => o.key));
      out.push({
        pointer: `${e.instancePath}/${escapePointer(name)}`,
        message:
          `unknown setting` +
          (guess ? `; did you mean ${guess}?` : '') +
          ` (allowed: ${OPTIONS.map((o) => o.key).join(', ')})`,
      });
      continue;
    }
    if (e.instancePath === '') {
      out.push({ pointer: '', message: `must be a mapping of settings (got ${show(data)})` });
      continue;
    }
    const segments = e.instancePath.split('/').slice(1).map(unescapePointer);
    const option = OPTION_BY_KEY.get(segments[0] ?? '');
    const value = valueAt(data, segments);
    if (segments.length > 1 || option === undefined) {
      out.push({ pointer: e.instancePath, message: `must be a non-empty string (got ${show(value)})` });
    } else {
      out.push({ pointer: e.instancePath, message: `${option.rule} (got ${show(value)})` });
    }
  }
  return out;
}

/** Checks the schema cannot express, on whichever values already have the right type. */
function fileSemanticProblems(data: unknown): Problem[] {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return [];
  const out: Problem[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (!OPTION_BY_KEY.has(key)) continue;
    const items = Array.isArray(value) ? value.map((v, i) => [`/${key}/${i}`, v] as const) : [[`/${key}`, value] as const];
    for (const [pointer, v] of items) {
      if (typeof v !== 'string' && typeof v !== 'number') continue;
      const problem = semanticProblem(key as SettingKey, v);
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
// Shared checks and conversions

/** Longest delay `setTimeout` honours; anything above fires after 1ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Bounds of the whole-number settings whose string form (from flags and env) the schema cannot bound. */
const WHOLE_NUMBER_BOUNDS: Partial<Record<SettingKey, readonly [number, number]>> = Object.fromEntries(
  (['retries', 'retryBudget', 'retryBodyLimit', 'panicThreshold', 'healthRise', 'healthFall', 'outlierConsecutive', 'outlierMaxEjectionPercent'] as const).map((k) => {
    const branch = CONFIG_SCHEMA.properties[k].anyOf[0];
    return [k, [branch.minimum, branch.maximum] as const];
  }),
);

/** Why a value that matches the schema is still unusable, or undefined. The reason quotes the value. */
function semanticProblem(key: SettingKey, value: string | number): string | undefined {
  const bounds = WHOLE_NUMBER_BOUNDS[key];
  if (bounds !== undefined) {
    const n = Number(value);
    if (!Number.isInteger(n) || n < bounds[0] || n > bounds[1]) return `${show(value)} is not a whole number from ${bounds[0]} to ${bounds[1]}`;
  }
  if (key === 'adminToken' && value === '') {
    return 'an empty token would leave the admin API open; leave the setting out instead';
  }
  if (key === 'backends' && typeof value === 'string') {
    const parsed = parseBackendUrl(value);
    return 'error' in parsed ? parsed.error : undefined;
  }
  if (key === 'dnsA' && typeof value === 'string') {
    const { host, port } = parseAddress(value);
    if (port === 0) return `${show(value)} has port 0; a backend needs a real port`;
    if (isIP(host) !== 0) return `${show(value)} is an IP address, which needs no DNS; use --backend http://${value}`;
  }
  if (key === 'dnsServer' && typeof value === 'string' && value !== 'system') {
    const server = parseDnsServer(value);
    if (isIP(server.host) === 0) return `${show(value)} is not an IP address (the DNS server cannot be a name)`;
    if (server.port === 0) return `${show(value)} has port 0`;
  }
  if (key === 'dnsSrv' && typeof value === 'string' && value.replace(/\.$/, '').length > 253) {
    return `${show(value)} is longer than a DNS name may be (253 characters)`;
  }
  if (key === 'healthStatus' && typeof value === 'string') {
    const [from, to] = parseStatusRange(value);
    if (to < from) return `${show(value)} is an empty range (FROM must not exceed TO)`;
  }
  // A probe every few ms would load the backends more than the traffic does.
  const minimumMs = key === 'healthInterval' ? 50 : key === 'healthTimeout' ? 10 : key === 'outlierBaseEjection' ? 100 : undefined;
  if (minimumMs !== undefined) {
    const ms = parseDuration(value);
    if (ms !== undefined && ms < minimumMs) return `${show(value)} is too short (the minimum is ${minimumMs}ms)`;
  }
  if (key === 'dnsMinInterval') {
    const ms = parseDuration(value);
    // Below this, a TTL-0 answer (dnsmasq's default) would turn bulb into a DNS load generator.
    if (ms !== undefined && ms < 100) return `${show(value)} is too short (the minimum is 100ms)`;
  }
  if (
    key === 'upstreamTimeout' ||
    key === 'drainTimeout' ||
    key === 'shutdownDelay' ||
    key === 'slowStart' ||
    key === 'headerTimeout' ||
    key === 'bodyTimeout' ||
    key === 'healthInterval' ||
    key === 'healthTimeout' ||
    key === 'outlierBaseEjection' ||
    key === 'dnsMinInterval' ||
    key === 'dnsMaxInterval'
  ) {
    const ms = parseDuration(value);
    if (ms !== undefined && ms > MAX_TIMER_MS) {
      return `${show(value)} is too long (the maximum is ${MAX_TIMER_MS}ms, about 24 days)`;
    }
  }
  return undefined;
}

/** `200` or `200-399` (already matched against the schema's pattern) → an inclusive `[from, to]`. */
export function parseStatusRange(text: string): [number, number] {
  const [from, to] = text.split('-').map(Number);
  return [from!, to ?? from!];
}

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

function durationMs(value: string | number): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidConfigError(`${show(value)} is not a duration`); // unreachable after validation
  return Math.round(ms);
}

/** Stored normalised (`http://host:port`) so every consumer sees the same id the static source will. */
function normaliseBackend(url: string): string {
  const parsed = parseBackendUrl(url);
  return 'error' in parsed ? url : parsed.url;
}

/** A custom strategy module path is made absolute here, against the right base; names and file: URLs pass through. */
function resolveStrategy(value: string, base: string): string {
  if ((BUILTIN_STRATEGIES as readonly string[]).includes(value) || value.startsWith('file:')) return value;
  return /\.m?js$/.test(value) ? path.resolve(base, value) : value;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface Validators {
  /** Checks one layer as given: no defaults are filled in, so the layer keeps only what the user set. */
  readonly layer: ValidateFunction<RawConfig>;
  /** Checks the merged object and fills in `DEFAULTS` through the schema's `default`s. */
  readonly final: ValidateFunction<RawConfig>;
}

/**
 * CONFIG_SCHEMA's validators, generated ahead of time by ajv's standalone code (src/config/generate-validators.ts):
 * the same code `new Ajv({ allErrors: true, strict: true }).compile(CONFIG_SCHEMA)` (and with `useDefaults` for
 * `final`) builds, without compiling anything at start-up.
 */
const VALIDATORS: Validators = {
  layer: validateLayerGenerated as unknown as ValidateFunction<RawConfig>,
  final: validateFinalGenerated as unknown as ValidateFunction<RawConfig>,
};

function validators(): Validators {
  return VALIDATORS;
}

/** The flag or key the user most likely meant: same letters ignoring case and punctuation, or 2 edits away. */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const want = norm(input);
  if (want === '') return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  let tie = false;
  for (const c of candidates) {
    const d = levenshtein(want, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
      tie = false;
    } else if (d === bestDistance) {
      tie = true;
    }
  }
  const limit = Math.min(2, Math.floor(want.length / 3));
  return best !== undefined && (bestDistance === 0 || (bestDistance <= limit && !tie)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  if (Array.isArray(value)) text = 'a list';
  else if (typeof value === 'object' && value !== null) text = 'a mapping';
  else text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}

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

/** bulb's version, from the nearest package.json named bulb above this file (works from src/ and dist/src/). */
export async function packageVersion(): Promise<string> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg: unknown = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && (pkg as { name?: unknown }).name === 'bulb') {
        const version = (pkg as { version?: unknown }).version;
        if (typeof version === 'string') return version;
      }
    } catch {
      // no package.json here; keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
