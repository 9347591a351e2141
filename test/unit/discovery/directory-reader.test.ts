/**
 * The directory source's capped reader on real files in a temp dir, once with the synchronous file-system calls
 * (the scan at start-up) and once with the asynchronous ones (every later scan): the outcomes must be the same.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ASYNC_FS, readFile, SYNC_FS, type ReadOutcome, type ReaderFs } from '../../../src/discovery/directory/reader.js';

const MODES: [string, ReaderFs][] = [
  ['sync', SYNC_FS],
  ['async', ASYNC_FS],
];

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bulb-reader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The outcome of reading `file` in both modes; asserts they agree and returns it. */
async function readBoth(file: string, maxBytes: number, knownKey?: string): Promise<ReadOutcome> {
  const [[, sync], [, async]] = await Promise.all(MODES.map(async ([mode, fs]) => [mode, await readFile(fs, file, maxBytes, knownKey)] as const));
  assert.deepEqual(async, sync, `sync and async disagree on ${path.basename(file)}`);
  return sync;
}

test('a file within the limit is read, with a key; the same key again means unchanged; a rewrite is read again', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'a.json');
  await writeFile(file, '{"url":"http://127.0.0.1:1"}');
  const first = await readBoth(file, 1024);
  assert.equal(first.kind, 'read');
  assert.equal(first.kind === 'read' && first.text, '{"url":"http://127.0.0.1:1"}');
  const key = first.kind === 'read' ? first.key : '';
  assert.deepEqual(await readBoth(file, 1024, key), { kind: 'unchanged' });
  await writeFile(file, '{"url":"http://127.0.0.1:22"}');
  const second = await readBoth(file, 1024, key);
  assert.equal(second.kind === 'read' && second.text, '{"url":"http://127.0.0.1:22"}');
});

test('a file that does not change while being read takes one read call (the end is where the stat said)', async (t) => {
  const file = path.join(await tempDir(t), 'a.json');
  await writeFile(file, 'x'.repeat(1000));
  for (const [mode, fs] of MODES) {
    let reads = 0;
    const counting: ReaderFs = { ...fs, read: (...args) => (reads++, fs.read(...args)) };
    const outcome = await readFile(counting, file, 1024, undefined);
    assert.equal(outcome.kind === 'read' && outcome.text.length, 1000, mode);
    assert.equal(reads, 1, mode);
  }
});

test('exactly the limit is read; one byte more is refused from the stat, without reading', async (t) => {
  const dir = await tempDir(t);
  const exact = path.join(dir, 'exact.json');
  const over = path.join(dir, 'over.json');
  await writeFile(exact, 'x'.repeat(1024));
  await writeFile(over, 'x'.repeat(1025));
  const read = await readBoth(exact, 1024);
  assert.equal(read.kind === 'read' && read.text.length, 1024);
  assert.deepEqual(await readBoth(over, 1024), { kind: 'failed', message: 'file is 1025 bytes; the limit is 1 KiB' });
});

/** `fs` with the file really appended to right after the open descriptor's stat was taken; counts bytes read. */
function growingAfterFstat(fs: ReaderFs, file: string, bytes: number): { fs: ReaderFs; bytesRead: () => number } {
  let total = 0;
  return {
    bytesRead: () => total,
    fs: {
      ...fs,
      fstat: async (fd) => {
        const st = await fs.fstat(fd);
        appendFileSync(file, 'y'.repeat(bytes));
        return st;
      },
      read: async (fd, buf, offset, length, position) => {
        const n = await fs.read(fd, buf, offset, length, position);
        total += n;
        return n;
      },
    },
  };
}

test('a file at the limit that grows while being read is refused, having read at most limit + 1 bytes', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'growing.json');
  for (const [mode, fs] of MODES) {
    await writeFile(file, 'x'.repeat(1024));
    const growing = growingAfterFstat(fs, file, 5000);
    assert.deepEqual(await readFile(growing.fs, file, 1024, undefined), { kind: 'failed', message: 'file is larger than the limit of 1 KiB' }, mode);
    assert.equal(growing.bytesRead(), 1025, mode);
  }
});

test('a smaller file that grows while being read: what was read carries the key of the stat before, so the next check does not take it as unchanged', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'growing.json');
  for (const [mode, fs] of MODES) {
    await writeFile(file, 'x'.repeat(100));
    const first = await readFile(growingAfterFstat(fs, file, 5000).fs, file, 1024, undefined);
    assert.equal(first.kind, 'read', mode);
    assert.equal(first.kind === 'read' && first.text.length, 101, `${mode}: one byte past the size the stat gave`);
    const again = await readFile(fs, file, 1024, first.kind === 'read' ? first.key : undefined);
    assert.deepEqual(again, { kind: 'failed', message: 'file is 5100 bytes; the limit is 1 KiB' }, mode);
  }
});

test('gone, not a regular file, dangling symlink, symlink loop', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'sub.json'));
  execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
  await symlink(path.join(dir, 'nowhere'), path.join(dir, 'dangling.json'));
  await symlink('loop-b.json', path.join(dir, 'loop-a.json'));
  await symlink('loop-a.json', path.join(dir, 'loop-b.json'));
  assert.deepEqual(await readBoth(path.join(dir, 'missing.json'), 1024), { kind: 'gone' });
  assert.deepEqual(await readBoth(path.join(dir, 'sub.json'), 1024), { kind: 'gone' });
  assert.deepEqual(await readBoth(path.join(dir, 'fifo.json'), 1024), { kind: 'gone' });
  assert.deepEqual(await readBoth(path.join(dir, 'dangling.json'), 1024), { kind: 'failed', message: 'dangling symlink: its target does not exist' });
  const loop = await readBoth(path.join(dir, 'loop-a.json'), 1024);
  assert.equal(loop.kind, 'failed');
  assert.match(loop.kind === 'failed' ? loop.message : '', /^cannot stat file: ELOOP/);
});
