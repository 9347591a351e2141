import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DURATION_PATTERN, parseDuration } from '../../../src/values.js';
import { tmpDir } from '../../helpers/tmpdir.js';
import { config, failure } from './_load.js';

const GOOD: [string, number][] = [
  ['250ms', 250],
  ['2s', 2000],
  ['1m', 60_000],
  ['1.5m', 90_000],
  ['1h', 3_600_000],
  ['1.5', 1500],
  ['0', 0],
  ['30', 30_000],
];
const BAD = ['5x', '-1s', '1 s', 's', '', '1.s', '1e3', 'ms'];

test('good durations from a flag, an env var and a file string all give milliseconds', async (t) => {
  const dir = await tmpDir(t);
  for (const [text, ms] of GOOD) {
    assert.equal(parseDuration(text), ms, text);
    assert.equal((await config(['--upstream-timeout', text])).upstreamTimeoutMs, ms, `flag ${text}`);
    assert.equal((await config([], { BULB_DRAIN_TIMEOUT: text })).drainTimeoutMs, ms, `env ${text}`);
    const file = join(dir, 'bulb.yaml');
    await writeFile(file, `drainTimeout: "${text}"\n`);
    assert.equal((await config(['--config', file])).drainTimeoutMs, ms, `file ${text}`);
  }
});

test('a number in the file means seconds', async (t) => {
  const dir = await tmpDir(t);
  const file = join(dir, 'bulb.json');
  await writeFile(file, JSON.stringify({ upstreamTimeout: 1.5, drainTimeout: 0 }));
  const c = await config(['--config', file]);
  assert.equal(c.upstreamTimeoutMs, 1500);
  assert.equal(c.drainTimeoutMs, 0);
});

test('bad durations are refused by flag, with the syntax in the message', async () => {
  const re = new RegExp(DURATION_PATTERN);
  for (const text of BAD) {
    if (text !== '') assert.ok(!re.test(text) || parseDuration(text) === undefined, text);
    const e = await failure('BULB_E_INVALID_ARGUMENT', [`--drain-timeout=${text}`]);
    assert.equal(e.message, `--drain-timeout: ${JSON.stringify(text)} is not a duration (use 250ms, 2s, 1m; a bare number means seconds)`);
  }
});

test('a duration longer than Node timers support is refused', async () => {
  const e = await failure('BULB_E_INVALID_ARGUMENT', ['--upstream-timeout', '1000h']);
  assert.equal(e.message, '--upstream-timeout: "1000h" is too long (the maximum is 2147483647ms, about 24 days)');
  assert.equal((await config(['--upstream-timeout', '596h'])).upstreamTimeoutMs, 596 * 3_600_000);
});
