/** Shared helpers for the config tests: run parseCommandLine and get either its Config or the error it throws. */
import assert from 'node:assert/strict';
import { parseCommandLine, type CommandLine } from '../../../src/cli/args.js';
import type { Config } from '../../../src/config/types.js';

export async function load(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = '/srv'): Promise<CommandLine> {
  return parseCommandLine({ argv, env, cwd });
}

/** The Config of a run (or check) result; fails the test for help/version. */
export async function config(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = '/srv'): Promise<Config> {
  const r = await load(argv, env, cwd);
  assert.ok(r.kind === 'run' || r.kind === 'check', `expected a config, got ${r.kind}`);
  return r.config;
}

/** The error parseCommandLine rejects with; asserts it is a BulbError with `code` and carries no stack lines in its message. */
export async function failure(
  code: 'BULB_E_INVALID_ARGUMENT' | 'BULB_E_INVALID_CONFIG',
  argv: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = '/srv',
): Promise<Error & { code: string; details?: readonly string[] }> {
  try {
    await parseCommandLine({ argv, env, cwd });
  } catch (err) {
    assert.ok(err instanceof Error);
    const e = err as Error & { code: string; details?: readonly string[] };
    assert.equal(e.code, code, e.message);
    assert.doesNotMatch(e.message, /\n\s+at /, 'no stack trace in the message');
    return e;
  }
  assert.fail(`expected ${code} for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}
