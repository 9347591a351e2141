import { BUILTIN_STRATEGIES } from '../../../src/config/formats.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidStrategyError } from '../../../src/errors.js';
import { createStrategy, defaultContext, isStrategyPath, strategyNames } from '../../../src/strategies/index.js';

// The config schema's list (what --help and docs/strategies.md name) must be exactly what the registry holds.
const BUILT_INS = BUILTIN_STRATEGIES;

test('every built-in registers under its --strategy name and creates a strategy of that name', async () => {
  assert.deepEqual([...strategyNames()].sort(), [...BUILT_INS].sort());
  for (const name of BUILT_INS) assert.equal((await createStrategy(name, defaultContext())).name, name);
});

test('each createStrategy call returns a fresh instance with its own state', async () => {
  const a = await createStrategy('round-robin', defaultContext());
  const b = await createStrategy('round-robin', defaultContext());
  assert.notEqual(a, b);
});

test('an unknown strategy name is rejected, listing the valid names', async () => {
  await assert.rejects(createStrategy('fastest', defaultContext()), (err: unknown) => {
    assert.ok(err instanceof InvalidStrategyError);
    assert.equal(
      err.message,
      `unknown strategy "fastest": expected one of ${strategyNames().join(', ')}, or a path to a .js/.mjs module`,
    );
    return true;
  });
});

test('values ending in .js/.mjs or containing a slash are module paths', async () => {
  for (const v of ['x.js', 'x.mjs', './x', 'strategies/x', '/abs/x.cjs']) assert.ok(isStrategyPath(v), v);
  for (const v of ['round-robin', 'x.json', 'least-time']) assert.ok(!isStrategyPath(v), v);
  await assert.rejects(createStrategy('./does-not-exist.mjs', defaultContext()), /file not found/);
});
