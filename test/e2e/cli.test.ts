import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBackend } from '../helpers/backend.js';
import { runBulb, startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { backendFile, tmpDir } from '../helpers/tmpdir.js';

const noStack = (s: string) => assert.doesNotMatch(s, /\n\s+at .+:\d+:\d+/, `no stack trace in: ${s}`);

test('--help lists every flag and exits 0; --version prints the version', async () => {
  const help = await runBulb(['--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--listen', '--watch-dir', '--backend', '--strategy', '--hash-key', '--admin', '--config', '--upstream-timeout', '--drain-timeout', '--log-level', '--check', '--version']) {
    assert.ok(help.stdout.includes(flag), `help mentions ${flag}`);
  }
  const version = await runBulb(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^bulb \d+\.\d+\.\d+/);
});

test('a bad flag fails start-up with a readable message, exit code 2, no stack trace', async () => {
  for (const [args, expected] of [
    [['--listen', 'nowhere'], /--listen: "nowhere" is not HOST:PORT/],
    [['--drain-timeout', '5x'], /--drain-timeout: "5x" is not a duration/],
    [['--lisen', '1.2.3.4:5'], /unknown flag.*--listen/],
    [['--backend', 'ftp://127.0.0.1:21'], /--backend.*ftp/],
  ] as const) {
    const r = await runBulb([...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    noStack(r.stderr);
  }
});

test('an unknown strategy or a broken strategy module fails start-up cleanly', async (t) => {
  const r = await runBulb(['--strategy', 'fastest', '--listen', '127.0.0.1:0', '--admin', 'off']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown strategy "fastest"/);
  noStack(r.stderr);
  const dir = await tmpDir(t);
  const mod = join(dir, 'broken.mjs');
  await writeFile(mod, 'export default { name: "x" };\n');
  const r2 = await runBulb(['--strategy', mod, '--listen', '127.0.0.1:0', '--admin', 'off']);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /pick/);
  noStack(r2.stderr);
});

test('a port already in use is a readable start-up error', async (t) => {
  const b = await startBackend('busy');
  t.after(() => b.close());
  const r = await runBulb(['--listen', `127.0.0.1:${b.port}`, '--admin', 'off']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot listen for traffic on 127\.0\.0\.1:\d+: the address is already in use/);
  noStack(r.stderr);
  // With a directory watched and backends health-checked, every one of them must be stopped, or the process
  // would say it cannot start and then never exit (runBulb fails after its timeout).
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.json'), backendFile(b.url));
  const r2 = await runBulb(['--listen', `127.0.0.1:${b.port}`, '--admin', 'off', '--watch-dir', dir, '--backend', b.url]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /the address is already in use/);
});

test('a bad --config fails start-up naming the file, the pointer and the reason', async (t) => {
  const dir = await tmpDir(t);
  const cfg = join(dir, 'bulb.yaml');
  await writeFile(cfg, 'listen: 127.0.0.1:0\nstrategy: round-robin\ncolour: blue\ndrainTimeout: soon\n');
  const r = await runBulb(['--config', cfg]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /bulb\.yaml: \/colour: unknown setting/);
  assert.match(r.stderr, /bulb\.yaml: \/drainTimeout:/);
  noStack(r.stderr);
});

test('config file, BULB_* env and flags: flags override env, env overrides the file', async (t) => {
  const dir = await tmpDir(t);
  const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  t.after(() => Promise.all([a.close(), b.close()]));
  const cfg = join(dir, 'bulb.yaml');
  await writeFile(cfg, `backends:\n  - ${a.url}\nstrategy: least-connections\nlogLevel: warn\n`);
  // env changes the strategy; the flag changes the backend list.
  const bulb = await startBulb(t, ['--config', cfg, '--backend', b.url, '--log-level', 'info'], { env: { BULB_STRATEGY: 'random' } });
  const started = bulb.logs.find((l) => l.msg === 'bulb started')!;
  assert.equal(started['strategy'], 'random');
  assert.equal((await request(`${bulb.url}/`)).body, 'b');
  // `check` reads the same sources of settings, env included.
  const check = await runBulb(['check', '--config', cfg], { env: { BULB_STRATEGY: 'no-such-strategy' } });
  assert.equal(check.code, 1);
  assert.match(check.stdout, /unknown strategy "no-such-strategy"/);
});

test('bulb check: valid files pass with exit 0; a bad backend file is named with pointer and reason, exit 1', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'good.json'), backendFile('http://127.0.0.2:8080', { weight: 2 }));
  const ok = await runBulb(['check', '--watch-dir', dir]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /check passed/);
  await writeFile(join(dir, 'bad.yaml'), 'url: http://127.0.0.3:8080\nweight: -1\n');
  const bad = await runBulb(['--check', '--watch-dir', dir]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /bad\.yaml: \/weight: .*weight/);
  assert.match(bad.stdout, /check failed: 1 problem/);
  noStack(bad.stdout + bad.stderr);
});
