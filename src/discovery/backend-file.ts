/**
 * The backend file format: one JSON or YAML file holds one backend object or an array of them,
 *
 *     { "url": "http://10.0.0.5:8080", "weight": 3, "id": "optional" }
 *
 * validated against {@link BACKEND_FILE_SCHEMA} and the URL rule in `src/values.ts`.
 *
 * Decisions (docs/backend-files.md repeats them):
 * - A file is all-or-nothing. If any entry is bad the file contributes no *new* backends and the directory source
 *   keeps that file's last-known-good set as a whole. A half-applied file surprises people: removing a typo'd
 *   entry from rotation silently is worse than reporting it and keeping what was working.
 * - Unknown fields are errors (`additionalProperties: false`): a typo such as `wieght` silently ignored would
 *   quietly give the backend weight 1.
 * - `weight` is an integer from 1 to {@link MAX_WEIGHT}; the bound keeps weighted strategies' arithmetic exact.
 * - Two entries with the same id in one file are a problem (and so, by the rule above, reject the file).
 *
 * Pure: no I/O. The caller reads the file and passes its text.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type * as Yaml from 'yaml';
import { parseBackendUrl, parseDuration } from '../values.js';
import { dirname, resolve } from 'node:path';
import { BACKEND_FILE_SCHEMA, HEALTH_BLOCK_SCHEMA, MAX_WEIGHT, TLS_BLOCK_SCHEMA } from './backend-file-schema.js';
import { tlsSpecProblems, type BackendTlsSpec } from '../tls/material.js';
import type { BackendHealthSpec, BackendSpec, SourceProblem } from './source.js';
import validateGenerated from '../generated/validate-backend-file.js';

/** BACKEND_FILE_SCHEMA's validator, generated ahead of time by ajv (see scripts/generate-validators.ts). */
const validate = validateGenerated as unknown as ValidateFunction;

const require = createRequire(import.meta.url);
let yaml: typeof Yaml | undefined;
/** `yaml`'s parse, loaded the first time a YAML backend file is read (most directories hold only JSON). */
function parseYaml(text: string, options: Yaml.ParseOptions & Yaml.DocumentOptions & Yaml.SchemaOptions & Yaml.ToJSOptions): unknown {
  yaml ??= require('yaml') as typeof Yaml;
  return yaml.parse(text, options);
}

/** What each `health` field must be, for problems (ajv's anyOf and pattern errors say nothing useful). */
const HEALTH_FIELD_RULES: Readonly<Record<string, string>> = {
  mode: 'must be http, tcp, grpc or off',
  service: 'must be a gRPC service name (a string, "" for the whole server)',
  path: 'must be a path starting with /',
  status: 'must be a status code or range such as 200-399',
  interval: 'must be a duration like 250ms, 2s or 1m, or a number of seconds (at least 50ms)',
  timeout: 'must be a duration like 250ms, 2s or 1m, or a number of seconds (at least 10ms)',
  rise: 'must be a whole number from 1 to 100',
  fall: 'must be a whole number from 1 to 100',
};

/** The raw `health` block (already validated by the schema) → a frozen spec; durations in ms. */
function healthSpec(raw: Record<string, unknown>): BackendHealthSpec {
  const status = typeof raw['status'] === 'string' ? raw['status'].split('-').map(Number) : undefined;
  const ms = (v: unknown): number | undefined => (typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined);
  const spec: BackendHealthSpec = {
    ...(raw['mode'] !== undefined && { mode: raw['mode'] as 'http' | 'tcp' | 'grpc' | 'off' }),
    ...(raw['path'] !== undefined && { path: raw['path'] as string }),
    ...(raw['service'] !== undefined && { service: raw['service'] as string }),
    ...(status !== undefined && { status: Object.freeze([status[0], status[1] ?? status[0]] as const) }),
    ...(raw['interval'] !== undefined && { intervalMs: ms(raw['interval']) }),
    ...(raw['timeout'] !== undefined && { timeoutMs: ms(raw['timeout']) }),
    ...(raw['rise'] !== undefined && { rise: raw['rise'] as number }),
    ...(raw['fall'] !== undefined && { fall: raw['fall'] as number }),
  };
  return Object.freeze(spec);
}

/** What each `tls` field must be, for problems. */
const TLS_FIELD_RULES: Readonly<Record<string, string>> = {
  ca: 'must be the path of a PEM file',
  serverName: 'must be a DNS name',
  cert: 'must be the path of a PEM file',
  key: 'must be the path of a PEM file',
  insecureSkipVerify: 'must be true or false',
};

/** The raw `tls` block (already validated by the schema) → a frozen spec, paths resolved against the file's folder. */
function tlsSpec(raw: Record<string, unknown>, file: string): BackendTlsSpec {
  const at = (v: unknown): string => resolve(dirname(file), v as string);
  return Object.freeze({
    ...(raw['ca'] !== undefined && { ca: at(raw['ca']) }),
    ...(raw['serverName'] !== undefined && { serverName: raw['serverName'] as string }),
    ...(raw['cert'] !== undefined && { cert: at(raw['cert']) }),
    ...(raw['key'] !== undefined && { key: at(raw['key']) }),
    ...(raw['insecureSkipVerify'] === true && { insecureSkipVerify: true }),
  });
}

/** Checks on a valid `health` block the schema cannot express; returns [field, message] pairs. */
function healthProblems(raw: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  const interval = typeof raw['interval'] === 'string' || typeof raw['interval'] === 'number' ? parseDuration(raw['interval']) : undefined;
  const timeout = typeof raw['timeout'] === 'string' || typeof raw['timeout'] === 'number' ? parseDuration(raw['timeout']) : undefined;
  if (interval !== undefined && (interval < 50 || interval > 2 ** 31 - 1)) out.push(['interval', `interval ${HEALTH_FIELD_RULES['interval']} (got ${show(raw['interval'])})`]);
  if (timeout !== undefined && (timeout < 10 || timeout > 2 ** 31 - 1)) out.push(['timeout', `timeout ${HEALTH_FIELD_RULES['timeout']} (got ${show(raw['timeout'])})`]);
  if (typeof raw['status'] === 'string') {
    const [from, to] = raw['status'].split('-').map(Number);
    if (to !== undefined && to < from) out.push(['status', `status range ${raw['status']} is empty (FROM must not exceed TO)`]);
  }
  if (raw['mode'] === 'tcp' && raw['path'] !== undefined) out.push(['path', 'path is set but mode is tcp (a TCP check sends no request)']);
  if (raw['mode'] === 'grpc' && raw['path'] !== undefined) out.push(['path', 'path is set but mode is grpc (a gRPC check calls grpc.health.v1.Health/Check; name the service in service)']);
  if (raw['service'] !== undefined && raw['mode'] !== undefined && raw['mode'] !== 'grpc') out.push(['service', `service is set but mode is ${typeof raw['mode'] === 'string' ? raw['mode'] : JSON.stringify(raw['mode'])} (only a grpc check asks about a service)`]);
  if (raw['service'] !== undefined && raw['path'] !== undefined && raw['mode'] === undefined) out.push(['service', 'service (a gRPC check) and path (an HTTP check) are both set; set mode to say which']);
  return out;
}

/** Extensions a backend file may have (matched case-insensitively), and how each is parsed. */
export const BACKEND_FILE_EXTENSIONS = ['.json', '.yaml', '.yml'] as const;

/** Result of {@link parseBackendFile}. `pointers[i]` is the JSON pointer of the entry `backends[i]` came from. */
export interface BackendFileResult {
  /** Empty whenever `problems` is not (a file is all-or-nothing). Each spec is frozen. */
  backends: BackendSpec[];
  problems: SourceProblem[];
  /** Parallel to `backends`: `""` for a single-object file, `/2` for the third array element. */
  pointers: string[];
}

/**
 * Parse and validate one backend file. `file` is the path (its extension picks the parser and it is copied into
 * problems and into each spec's `origin`); `source` is the discovery source's name, copied into each spec.
 * Never throws for bad input: every rejection is a {@link SourceProblem}.
 */
export function parseBackendFile(file: string, text: string, source: string): BackendFileResult {
  const fail = (pointer: string, message: string): BackendFileResult => ({
    backends: [],
    problems: [problem(file, pointer, message)],
    pointers: [],
  });

  const ext = extensionOf(file);
  if (ext === undefined) return fail('', `unsupported file extension; expected one of ${BACKEND_FILE_EXTENSIONS.join(', ')}`);
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  if (text.trim() === '') return fail('', 'file is empty; expected a backend object or an array of them');
  if (text.includes('\u0000')) return fail('', 'file is not text (it contains NUL bytes)');

  let doc: unknown;
  if (ext === '.json') {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return fail('', `invalid JSON: ${jsonErrorMessage(err, text)}`);
    }
  } else {
    try {
      // The core schema: no YAML 1.1 surprises (`no` as false, sexagesimal numbers), duplicate keys are errors.
      doc = parseYaml(text, { schema: 'core', uniqueKeys: true, maxAliasCount: 100 });
    } catch (err) {
      return fail('', `invalid YAML: ${firstLine(err)}`);
    }
  }

  if (doc === null || typeof doc !== 'object') {
    return fail('', `expected a backend object or an array of them (got ${describe(doc)})`);
  }

  const problems: SourceProblem[] = [];
  if (!validate(doc)) {
    for (const e of validate.errors ?? []) {
      const p = schemaProblem(file, e, doc);
      if (p && !problems.some((q) => q.pointer === p.pointer && q.message === p.message)) problems.push(p);
    }
  }

  // Entries that passed the schema still get the URL and duplicate-id checks, so one pass over a file reports
  // everything wrong with it, not only the first kind of mistake.
  const isArray = Array.isArray(doc);
  const entries: unknown[] = isArray ? (doc as unknown[]) : [doc];
  const backends: BackendSpec[] = [];
  const pointers: string[] = [];
  const firstById = new Map<string, string>();
  entries.forEach((raw, i) => {
    const at = isArray ? `/${i}` : '';
    if (problems.some((p) => p.pointer === at || p.pointer.startsWith(`${at}/`))) return;
    // The schema passed for this entry: an object with a string url and a valid optional weight and id.
    const entry = raw as { url: string; weight?: number; id?: string; maxConnections?: number; slowStart?: string | number; health?: Record<string, unknown>; tls?: Record<string, unknown> };
    const parsed = parseBackendUrl(entry.url);
    if ('error' in parsed) {
      problems.push(problem(file, `${at}/url`, `url: ${parsed.error}`));
      return;
    }
    const id = entry.id ?? parsed.id;
    const earlier = firstById.get(id);
    if (earlier !== undefined) {
      const where = entry.id === undefined ? `${at}/url` : `${at}/id`;
      problems.push(problem(file, where, `duplicate id "${id}": entry ${earlier} already uses it`));
      return;
    }
    if (entry.health !== undefined) {
      const bad = healthProblems(entry.health);
      for (const [field, message] of bad) problems.push(problem(file, `${at}/health/${field}`, message));
      if (bad.length > 0) return;
    }
    const tls = entry.tls === undefined ? undefined : tlsSpec(entry.tls, file);
    if (tls !== undefined) {
      const bad = tlsSpecProblems(tls);
      if (!parsed.url.startsWith('https:')) bad.push(['', `tls is set but the url is ${parsed.url.slice(0, parsed.url.indexOf(':'))}; TLS settings apply to https backends only`]);
      for (const [field, message] of bad) problems.push(problem(file, field === '' ? `${at}/tls` : `${at}/tls/${field}`, message));
      if (bad.length > 0) return;
    }
    firstById.set(id, at);
    const spec: BackendSpec = {
      id,
      url: parsed.url,
      weight: entry.weight ?? 1,
      source,
      origin: file,
      ...(entry.maxConnections !== undefined && { maxConnections: entry.maxConnections }),
      ...(entry.slowStart !== undefined && { slowStartMs: parseDuration(entry.slowStart) ?? 0 }),
      ...(entry.health !== undefined && { health: healthSpec(entry.health) }),
      ...(tls !== undefined && { tls }),
    };
    backends.push(Object.freeze(spec));
    pointers.push(at);
  });

  if (problems.length > 0) {
    // Document order (by entry index); the sort is stable, so problems within one entry keep their order.
    const entryIndex = (p: SourceProblem): number => Number(/^\/(\d+)/.exec(p.pointer)?.[1] ?? -1);
    problems.sort((a, b) => entryIndex(a) - entryIndex(b));
    return { backends: [], problems, pointers: [] };
  }
  return { backends, problems, pointers };
}

/** The lower-cased backend-file extension of `file`, or undefined when it is not one. */
export function extensionOf(file: string): (typeof BACKEND_FILE_EXTENSIONS)[number] | undefined {
  const lower = file.toLowerCase();
  return BACKEND_FILE_EXTENSIONS.find((ext) => lower.endsWith(ext));
}

function problem(file: string, pointer: string, message: string): SourceProblem {
  // One line, printable: parser messages quote the input, which may hold newlines or binary bytes.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this escapes
  const printable = message.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Object.freeze({ file, pointer, message: printable });
}

/** Turn one ajv error into a readable problem, or undefined for ajv's bookkeeping errors (`if` failed). */
function schemaProblem(file: string, e: ErrorObject, doc: unknown): SourceProblem | undefined {
  const at = e.instancePath;
  const value = valueAt(doc, at);
  const field = at.slice(at.lastIndexOf('/') + 1);
  // Every keyword failing inside slowStart's anyOf says the same thing; problems are de-duplicated by the caller.
  if (field === 'slowStart') return problem(file, at, `slowStart must be a duration like 250ms, 2s or 1m, or a number of seconds (got ${show(value)})`);
  // Inside a tls block: one message per field, phrased for it.
  const inTls = /\/tls(?:\/([^/]+))?$/.exec(at);
  if (inTls && e.keyword !== 'if') {
    if (e.keyword === 'additionalProperties') {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      return problem(file, `${at}/${escapePointer(name)}`, `unknown field "${name}" in tls (allowed: ${Object.keys(TLS_BLOCK_SCHEMA.properties).join(', ')})`);
    }
    const tf = inTls[1];
    if (tf === undefined) return problem(file, at, `tls must be an object like {"ca": "/etc/bulb/tls/ca.pem"} (got ${describe(value)})`);
    return problem(file, at, `tls.${tf} ${TLS_FIELD_RULES[tf] ?? 'is invalid'} (got ${show(value)})`);
  }
  // Inside a health block: one message per field, phrased for it.
  const inHealth = /\/health(?:\/([^/]+))?$/.exec(at);
  if (inHealth && e.keyword !== 'if') {
    if (e.keyword === 'additionalProperties') {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      return problem(file, `${at}/${escapePointer(name)}`, `unknown field "${name}" in health (allowed: ${Object.keys(HEALTH_BLOCK_SCHEMA.properties).join(', ')})`);
    }
    const hf = inHealth[1];
    if (hf === undefined) return problem(file, at, `health must be an object like {"path": "/ready"} (got ${describe(value)})`);
    return problem(file, at, `health.${hf} ${HEALTH_FIELD_RULES[hf] ?? 'is invalid'} (got ${show(value)})`);
  }
  switch (e.keyword) {
    case 'if':
      return undefined;
    case 'additionalProperties': {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      return problem(file, `${at}/${escapePointer(name)}`, `unknown field "${name}" (allowed: ${Object.keys(BACKEND_FILE_SCHEMA.definitions.backend.properties).join(', ')})`);
    }
    case 'required': {
      const name = (e.params as { missingProperty: string }).missingProperty;
      return problem(file, at, `missing required field "${name}"`);
    }
    case 'type':
      if (field === 'weight' || field === 'maxConnections') return problem(file, at, `${field} must be an integer >= 1 (got ${show(value)})`);
      if (field === 'url' || field === 'id') return problem(file, at, `${field} must be a string (got ${show(value)})`);
      return problem(file, at, `expected a backend object like {"url": "http://10.0.0.5:8080"} (got ${describe(value)})`);
    case 'minimum':
      return problem(file, at, `${field} must be an integer >= 1 (got ${show(value)})`);
    case 'maximum':
      return problem(file, at, `${field} must be an integer <= ${MAX_WEIGHT} (got ${show(value)})`);
    case 'pattern':
      return problem(file, at, `id must be 1 to 128 characters from A-Z a-z 0-9 . _ : - (got ${show(value)})`);
    default:
      return problem(file, at, `${field || 'document'} ${e.message ?? 'is invalid'}`);
  }
}

function valueAt(doc: unknown, pointer: string): unknown {
  let cur: unknown = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A value as it would appear in the file, shortened for a log line. */
function show(value: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  return t === 'object' ? 'an object' : `a ${t} ${show(value)}`;
}

/** Node's JSON errors give a character position; people want a line and column. */
function jsonErrorMessage(err: unknown, text: string): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /at position (\d+)/.exec(msg);
  if (!m) return msg;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `${msg} (line ${line}, column ${column})`;
}

/** yaml's pretty errors append a code excerpt on later lines; a problem is one line. */
function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n')[0] ?? '').trim().replace(/:$/, '');
}
