/**
 * Loads a user's strategy module named by path (`--strategy ./my-strategy.mjs`).
 *
 * The module is checked once, at startup, so a typo or a wrong export fails `bulb` (and `bulb check`) with an
 * `InvalidStrategyError` naming the file and the reason, instead of a 503 or a TypeError on the first request.
 * Accepted shapes, in order:
 *   - `export default { name, pick }`: a Strategy object;
 *   - `export default (ctx) => ({ name, pick })`: a factory, called once with the StrategyContext (may be async);
 *   - `export function pick(...)` (and optionally `export const name`): the module itself is the strategy.
 * `name` is optional; it defaults to the file name without extension, for logs and /metrics. `loadChanged`
 * is optional; when present it must be a function.
 */
import { stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidStrategyError } from '../errors.js';
import type { Candidate, PickRequest, Strategy, StrategyContext } from './strategy.js';

/** Resolves `path` against the current directory, imports it and returns the strategy it exports. */
export async function loadCustomStrategy(path: string, ctx: StrategyContext): Promise<Strategy> {
  const fail = (reason: string, cause?: unknown): InvalidStrategyError =>
    new InvalidStrategyError(`strategy module ${path}: ${reason}`, cause === undefined ? undefined : { cause });

  const file = path.startsWith('file:') ? fileURLToPath(path) : resolve(process.cwd(), path);
  try {
    const st = await stat(file);
    if (!st.isFile()) throw fail(`not a file (resolved to ${file})`);
  } catch (err) {
    if (err instanceof InvalidStrategyError) throw err;
    throw fail(`file not found (resolved to ${file})`, err);
  }

  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw fail(`failed to import: ${messageOf(err)}`, err);
  }

  const fallbackName = basename(file, extname(file));
  const exported = mod.default;
  let candidate: unknown;
  if (typeof exported === 'function') {
    try {
      candidate = await (exported as (ctx: StrategyContext) => unknown)(ctx);
    } catch (err) {
      throw fail(`factory threw: ${messageOf(err)}`, err);
    }
    if (!hasPick(candidate)) throw fail('factory did not return an object with a pick function');
  } else if (hasPick(exported)) {
    candidate = exported;
  } else if (typeof mod.pick === 'function') {
    candidate = mod;
  } else {
    throw fail(
      'does not export a pick function (expected `export default { name, pick }`, ' +
        '`export default (ctx) => ({ name, pick })` or `export function pick`)',
    );
  }
  return asStrategy(candidate as StrategyLike, fallbackName, fail);
}

interface StrategyLike {
  readonly name?: unknown;
  readonly loadChanged?: unknown;
  pick(candidates: readonly Candidate[], req: PickRequest): Candidate | undefined;
}

function hasPick(v: unknown): v is StrategyLike {
  return typeof v === 'object' && v !== null && typeof (v as { pick?: unknown }).pick === 'function';
}

function asStrategy(
  s: StrategyLike,
  fallbackName: string,
  fail: (reason: string) => InvalidStrategyError,
): Strategy {
  // The pool calls loadChanged on every request; a non-function there would fail on the first one.
  const hook = s.loadChanged;
  if (hook !== undefined && typeof hook !== 'function') throw fail(`loadChanged must be a function, got ${typeof hook}`);
  if (typeof s.name === 'string' && s.name !== '') return s as Strategy;
  if (s.name !== undefined) throw fail(`name must be a non-empty string, got ${JSON.stringify(s.name)}`);
  // Wrap rather than add `name` to the user's object (a module namespace is frozen anyway); bind keeps `this`.
  const wrapped: Strategy = { name: fallbackName, pick: s.pick.bind(s) };
  if (typeof hook === 'function') wrapped.loadChanged = (hook as (c: Candidate) => void).bind(s);
  return wrapped;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
