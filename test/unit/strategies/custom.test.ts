import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { InvalidStrategyError } from '../../../src/errors.js';
import { loadCustomStrategy } from '../../../src/strategies/custom.js';
import { defaultContext } from '../../../src/strategies/strategy.js';
import { cand, req } from './_candidates.js';

const ctx = defaultContext({ rand: () => 0.99 });

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bulb-strategy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a module into `dir` and returns its path. */
async function module(dir: string, name: string, source: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, source);
  return file;
}

function rejectsWith(path: string, reason: string | RegExp) {
  const message =
    typeof reason === 'string'
      ? `strategy module ${path}: ${reason}`
      : new RegExp(`^strategy module ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${reason.source}`);
  return assert.rejects(loadCustomStrategy(path, ctx), (err: unknown) => {
    assert.ok(err instanceof InvalidStrategyError);
    assert.equal(err.code, 'BULB_E_INVALID_STRATEGY');
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

const cs = [cand('a'), cand('b')];

test('custom: a default-exported strategy object is used as is', async (t) => {
  const dir = await tempDir(t);
  const file = await module(dir, 'first.mjs', `export default { name: 'first', pick: (cs) => cs[0] };`);
  const s = await loadCustomStrategy(file, ctx);
  assert.equal(s.name, 'first');
  assert.equal(s.pick(cs, req()), cs[0]);
});

test('custom: a default-exported factory gets the context; async factories are awaited', async (t) => {
  const dir = await tempDir(t);
  const sync = await module(
    dir,
    'sync.mjs',
    `export default (ctx) => ({ name: 'by-rand', pick: (cs) => cs[Math.floor(ctx.rand() * cs.length)] });`,
  );
  assert.equal((await loadCustomStrategy(sync, ctx)).pick(cs, req()), cs[1]);
  const asyncFile = await module(
    dir,
    'async.mjs',
    `export default async function () { await null; return { name: 'later', pick: (cs) => cs[1] }; }`,
  );
  const s = await loadCustomStrategy(asyncFile, ctx);
  assert.equal(s.name, 'later');
  assert.equal(s.pick(cs, req()), cs[1]);
});

test('custom: a module exporting pick is the strategy, named after its file when it has no name', async (t) => {
  const dir = await tempDir(t);
  const file = await module(
    dir,
    'last-one.mjs',
    `let calls = 0; export function pick(cs) { calls++; return cs[cs.length - 1]; }`,
  );
  const s = await loadCustomStrategy(file, ctx);
  assert.equal(s.name, 'last-one');
  assert.equal(s.pick(cs, req()), cs[1]);
  // `this` inside an unnamed default object still refers to the user's object after wrapping.
  const self = await module(
    dir,
    'self.mjs',
    `export default { i: 1, pick(cs) { return cs[this.i]; } };`,
  );
  const t2 = await loadCustomStrategy(self, ctx);
  assert.equal(t2.name, 'self');
  assert.equal(t2.pick(cs, req()), cs[1]);
});

test('custom: a relative path is resolved against the current directory', async (t) => {
  const dir = await tempDir(t);
  const file = await module(dir, 'rel.mjs', `export default { name: 'rel', pick: (cs) => cs[0] };`);
  const rel = relative(process.cwd(), file);
  assert.equal((await loadCustomStrategy(rel, ctx)).name, 'rel');
});

test('custom: a missing file is rejected with the path and where it was looked for', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'nope.mjs');
  await rejectsWith(file, `file not found (resolved to ${file})`);
  await mkdir(join(dir, 'adir.mjs'));
  await rejectsWith(join(dir, 'adir.mjs'), `not a file (resolved to ${join(dir, 'adir.mjs')})`);
});

test('custom: a module that fails to import is rejected with the import error', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(await module(dir, 'syntax.mjs', `export default {`), /failed to import: .+/);
  await rejectsWith(
    await module(dir, 'throws.mjs', `throw new Error('no config');`),
    'failed to import: no config',
  );
});

test('custom: a module without a pick function is rejected', async (t) => {
  const dir = await tempDir(t);
  const reason =
    'does not export a pick function (expected `export default { name, pick }`, ' +
    '`export default (ctx) => ({ name, pick })` or `export function pick`)';
  await rejectsWith(await module(dir, 'empty.mjs', `export const x = 1;`), reason);
  await rejectsWith(await module(dir, 'nopick.mjs', `export default { name: 'x', choose() {} };`), reason);
  await rejectsWith(await module(dir, 'notfn.mjs', `export default { name: 'x', pick: 3 };`), reason);
});

test('custom: a factory that throws or returns the wrong shape is rejected', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(
    await module(dir, 'boom.mjs', `export default () => { throw new Error('boom'); };`),
    'factory threw: boom',
  );
  await rejectsWith(
    await module(dir, 'reject.mjs', `export default async () => { throw new Error('later boom'); };`),
    'factory threw: later boom',
  );
  await rejectsWith(
    await module(dir, 'shape.mjs', `export default () => ({ name: 'x' });`),
    'factory did not return an object with a pick function',
  );
});

test('custom: a name that is not a non-empty string is rejected', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(
    await module(dir, 'badname.mjs', `export default { name: 42, pick: (cs) => cs[0] };`),
    'name must be a non-empty string, got 42',
  );
});

test('custom: an optional loadChanged is kept (with its `this`, also when the name is defaulted); a non-function is rejected', async (t) => {
  const dir = await tempDir(t);
  const named = await loadCustomStrategy(
    await module(dir, 'named.mjs', `export default { name: 'n', seen: [], pick: (cs) => cs[0], loadChanged(c) { this.seen.push(c.id); } };`),
    ctx,
  );
  named.loadChanged!(cs[1]);
  assert.deepEqual((named as unknown as { seen: string[] }).seen, ['b']);
  const file = await module(dir, 'unnamed.mjs', `export const seen = []; export function pick(cs) { return cs[0]; } export function loadChanged(c) { seen.push(c.id); }`);
  const unnamed = await loadCustomStrategy(file, ctx);
  assert.equal(unnamed.name, 'unnamed');
  unnamed.loadChanged!(cs[0]);
  assert.deepEqual(((await import(file)) as { seen: string[] }).seen, ['a']);
  // eslint-disable-next-line @typescript-eslint/unbound-method -- compared with undefined, never called
  assert.equal((await loadCustomStrategy(await module(dir, 'none.mjs', `export function pick(cs) { return cs[0]; }`), ctx)).loadChanged, undefined);
  await rejectsWith(
    await module(dir, 'badhook.mjs', `export default { name: 'x', pick: (cs) => cs[0], loadChanged: 'yes' };`),
    'loadChanged must be a function, got string',
  );
});
