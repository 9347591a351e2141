import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { accessLogWriter, createLogger, flushLogs, type Logger } from '../../../src/log.js';
import { tmpDir } from '../../helpers/tmpdir.js';
import { waitFor } from '../../helpers/wait-for.js';

const LOG_MODULE = fileURLToPath(new URL('../../../src/log.ts', import.meta.url));

const record = (i: number) => ({ method: 'GET', path: `/r/${i}`, status: 200, backend: 'b:1', attempts: 1, durationMs: 1.5 });

/** A logger writing to a file in a fresh temp dir (the synchronous path: regular files). */
async function fileLogger(t: TestContext): Promise<{ file: string; log: Logger }> {
  const file = path.join(await tmpDir(t), 'out.log');
  const fd = openSync(file, 'a');
  t.after(() => closeSync(fd));
  return { file, log: createLogger('info', fd) };
}

function lines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('access-log lines are the JSON pino would write, and a quiet logger still writes them within moments', async (t) => {
  const { file, log } = await fileLogger(t);
  accessLogWriter(log)!(record(1));
  // Not flushed by hand: the batch goes out on its timer.
  await waitFor(() => readFileSync(file, 'utf8').includes('"msg":"request"'), 5000);
  const [line] = lines(file);
  assert.deepEqual(Object.keys(line), ['level', 'time', 'pid', 'method', 'path', 'status', 'backend', 'attempts', 'durationMs', 'msg']);
  assert.equal(line['path'], '/r/1');
  assert.equal(line['level'], 'info');
  assert.equal(line['pid'], process.pid);
  assert.ok(!Number.isNaN(Date.parse(String(line['time']))));
});

test('a child logger\'s bindings (a worker\'s index) appear in its access-log lines where pino puts them', async (t) => {
  const { file, log } = await fileLogger(t);
  const child = log.child({ worker: 3 });
  accessLogWriter(child)!(record(7));
  child.info('plain');
  flushLogs(child);
  await waitFor(() => lines(file).length === 2, 5000);
  const [access, plain] = lines(file);
  assert.deepEqual(Object.keys(access), ['level', 'time', 'pid', 'worker', 'method', 'path', 'status', 'backend', 'attempts', 'durationMs', 'msg']);
  assert.equal(access['worker'], 3);
  // The same key order as pino's own line from the same child.
  assert.deepEqual(Object.keys(plain).slice(0, 4), ['level', 'time', 'pid', 'worker']);
});

test('access-log lines and other lines (info and warnings) keep their order in the batched output', async (t) => {
  const { file, log } = await fileLogger(t);
  const access = accessLogWriter(log)!;
  for (let i = 0; i < 3; i++) access(record(i));
  log.info({ n: 1 }, 'between');
  for (let i = 3; i < 5; i++) access(record(i));
  log.warn('a warning');
  await waitFor(() => readFileSync(file, 'utf8').includes('a warning'), 5000);
  const msgs = lines(file).map((l) => (l['msg'] === 'request' ? l['path'] : l['msg']));
  assert.deepEqual(msgs, ['/r/0', '/r/1', '/r/2', 'between', '/r/3', '/r/4', 'a warning']);
  flushLogs(log);
});

test('many lines go out in large batches, none lost, none out of order', async (t) => {
  const { file, log } = await fileLogger(t);
  const access = accessLogWriter(log)!;
  const n = 5000;
  for (let i = 0; i < n; i++) access(record(i));
  await waitFor(() => lines(file).length === n, 10_000, () => `${lines(file).length} of ${n} lines written`);
  assert.deepEqual(lines(file).map((l) => l['path']), Array.from({ length: n }, (_, i) => `/r/${i}`));
});

test('lines still buffered when the process exits are written out, even without flushLogs', async (t) => {
  const dir = await tmpDir(t);
  const file = path.join(dir, 'out.log');
  // A child writes a few lines (well under a batch) and exits at once: nothing may be lost.
  const script = `
    import { openSync } from 'node:fs';
    import { accessLogWriter, createLogger } from ${JSON.stringify(LOG_MODULE)};
    const log = createLogger('info', openSync(${JSON.stringify(file)}, 'a'));
    const access = accessLogWriter(log);
    for (let i = 0; i < 7; i++) access({ method: 'GET', path: '/exit/' + i, status: 200, backend: null, attempts: 0, durationMs: 0 });
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(file).map((l) => l['path']), Array.from({ length: 7 }, (_, i) => `/exit/${i}`));
});

test('to a pipe (written asynchronously) every line arrives in order, the buffered ones at exit too', () => {
  const script = `
    import { accessLogWriter, createLogger } from ${JSON.stringify(LOG_MODULE)};
    const log = createLogger('info', 1);
    const access = accessLogWriter(log);
    for (let i = 0; i < 3000; i++) access({ method: 'GET', path: '/pipe/' + i, status: 200, backend: null, attempts: 0, durationMs: 0 });
    log.warn('last');
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  const got = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    got.map((l) => (l['msg'] === 'request' ? l['path'] : l['msg'])),
    [...Array.from({ length: 3000 }, (_, i) => `/pipe/${i}`), 'last'],
  );
});
