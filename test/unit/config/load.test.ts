import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAddress, parseHashKey } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { tmpDir } from '../../helpers/tmpdir.js';
import { config, load } from './_load.js';

const DEFAULT_CONFIG: Config = {
  listen: { host: '0.0.0.0', port: 8080 },
  admin: { host: '127.0.0.1', port: 9901 },
  watchDirs: [],
  backends: [],
  strategy: 'round-robin',
  hashKey: { kind: 'client-ip' },
  upstreamTimeoutMs: 60_000,
  drainTimeoutMs: 30_000,
  logLevel: 'info',
  configFile: undefined,
};

test('no flags, no env, no file: the full default config', async () => {
  const r = await load([]);
  assert.deepEqual(r, { kind: 'run', config: DEFAULT_CONFIG });
});

test('the config is deep-frozen', async () => {
  const c = await config(['--watch-dir', 'd', '--backend', 'http://a:1', '--hash-key', 'header:x']);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.listen));
  assert.ok(Object.isFrozen(c.admin));
  assert.ok(Object.isFrozen(c.watchDirs));
  assert.ok(Object.isFrozen(c.backends));
  assert.ok(Object.isFrozen(c.hashKey));
});

test('every flag sets its setting', async () => {
  const c = await config(
    [
      '--listen', '127.0.0.1:0',
      '--admin', 'off',
      '--watch-dir', 'a',
      '--watch-dir=/abs/b',
      '--backend', 'http://10.0.0.5:8080',
      '--backend', 'https://api.example',
      '--strategy', 'least-time',
      '--hash-key', 'header:X-User',
      '--upstream-timeout', '250ms',
      '--drain-timeout=1m',
      '--log-level', 'debug',
    ],
    {},
    '/srv',
  );
  assert.deepEqual(c, {
    listen: { host: '127.0.0.1', port: 0 },
    admin: undefined,
    watchDirs: ['/srv/a', '/abs/b'],
    backends: ['http://10.0.0.5:8080', 'https://api.example:443'],
    strategy: 'least-time',
    hashKey: { kind: 'header', name: 'x-user' },
    upstreamTimeoutMs: 250,
    drainTimeoutMs: 60_000,
    logLevel: 'debug',
    configFile: undefined,
  });
});

test('every BULB_* variable sets its setting; lists are comma-separated', async () => {
  const c = await config([], {
    BULB_LISTEN: '[::1]:8081',
    BULB_ADMIN: 'localhost:0',
    BULB_WATCH_DIR: 'one, /two,',
    BULB_BACKEND: 'http://a:1,http://b:2',
    BULB_STRATEGY: 'consistent-hash',
    BULB_HASH_KEY: 'client-ip',
    BULB_UPSTREAM_TIMEOUT: '1.5',
    BULB_DRAIN_TIMEOUT: '0',
    BULB_LOG_LEVEL: 'silent',
  });
  assert.deepEqual(c, {
    listen: { host: '::1', port: 8081 },
    admin: { host: 'localhost', port: 0 },
    watchDirs: ['/srv/one', '/two'],
    backends: ['http://a:1', 'http://b:2'],
    strategy: 'consistent-hash',
    hashKey: { kind: 'client-ip' },
    upstreamTimeoutMs: 1500,
    drainTimeoutMs: 0,
    logLevel: 'silent',
    configFile: undefined,
  });
});

test('empty variables count as unset; unrelated BULB_* variables (Kubernetes service env) are ignored', async () => {
  const c = await config([], { BULB_LISTEN: '', BULB_LOG_LEVEL: '  ', BULB_PORT: 'tcp://10.0.0.1:80', BULB_SERVICE_HOST: '10.0.0.1' });
  assert.deepEqual(c, DEFAULT_CONFIG);
});

for (const format of ['yaml', 'json'] as const) {
  test(`precedence with a ${format} file: file < env < flags, and flag lists replace file lists`, async (t) => {
    const dir = await tmpDir(t);
    const settings = {
      listen: '10.0.0.1:1000',
      admin: '10.0.0.1:1001',
      watchDirs: ['from-file'],
      backends: ['http://file:1', 'http://file:2'],
      strategy: 'random',
      upstreamTimeout: 5,
      drainTimeout: '5s',
      logLevel: 'warn',
    };
    const file = join(dir, `bulb.${format}`);
    const text =
      format === 'json'
        ? JSON.stringify(settings)
        : Object.entries(settings)
            .map(([k, v]) => (Array.isArray(v) ? `${k}:\n${v.map((x) => `  - ${x}`).join('\n')}` : `${k}: ${v}`))
            .join('\n') + '\n';
    await writeFile(file, text);

    // File alone.
    const fromFile = await config(['--config', file], {}, '/elsewhere');
    assert.deepEqual(fromFile, {
      listen: { host: '10.0.0.1', port: 1000 },
      admin: { host: '10.0.0.1', port: 1001 },
      watchDirs: [join(dir, 'from-file')], // against the file's folder, not cwd
      backends: ['http://file:1', 'http://file:2'],
      strategy: 'random',
      hashKey: { kind: 'client-ip' },
      upstreamTimeoutMs: 5000,
      drainTimeoutMs: 5000,
      logLevel: 'warn',
      configFile: file,
    });

    // Env over file, flags over env; the file path may come from BULB_CONFIG.
    const env = { BULB_CONFIG: file, BULB_LISTEN: '10.0.0.2:2000', BULB_ADMIN: '10.0.0.2:2001', BULB_WATCH_DIR: 'from-env' };
    const c = await config(['--listen', '10.0.0.3:3000', '--backend', 'http://flag:9'], env, '/cwd');
    assert.deepEqual(c.listen, { host: '10.0.0.3', port: 3000 }, 'flag beats env and file');
    assert.deepEqual(c.admin, { host: '10.0.0.2', port: 2001 }, 'env beats file');
    assert.deepEqual(c.watchDirs, ['/cwd/from-env'], 'env list replaces the file list, resolved against cwd');
    assert.deepEqual(c.backends, ['http://flag:9'], 'flag list replaces the file list');
    assert.equal(c.strategy, 'random', 'file value kept when nothing overrides it');
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.configFile, file);
  });
}

test('--config beats BULB_CONFIG; a relative --config is resolved against cwd', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.yaml'), 'logLevel: error\n');
  await writeFile(join(dir, 'b.yaml'), 'logLevel: trace\n');
  const c = await config(['--config', 'b.yaml'], { BULB_CONFIG: join(dir, 'a.yaml') }, dir);
  assert.equal(c.logLevel, 'trace');
  assert.equal(c.configFile, join(dir, 'b.yaml'));
});

test('an empty config file sets nothing', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'empty.yaml'), '# nothing yet\n');
  const c = await config(['--config', join(dir, 'empty.yaml')]);
  assert.deepEqual({ ...c, configFile: undefined }, DEFAULT_CONFIG);
});

test('a custom strategy path is made absolute: against the file folder from the file, against cwd from flags', async (t) => {
  const dir = await tmpDir(t);
  await mkdir(join(dir, 'conf'));
  const file = join(dir, 'conf', 'bulb.yaml');
  await writeFile(file, 'strategy: ./mine.mjs\n');
  assert.equal((await config(['--config', file], {}, '/cwd')).strategy, join(dir, 'conf', 'mine.mjs'));
  assert.equal((await config(['--config', file, '--strategy', 'x/theirs.js'], {}, '/cwd')).strategy, '/cwd/x/theirs.js');
  assert.equal((await config(['--strategy', 'file:///opt/s.mjs'])).strategy, 'file:///opt/s.mjs');
  // Any other string passes through for the strategy loader to judge.
  assert.equal((await config(['--strategy', 'no-such-strategy'])).strategy, 'no-such-strategy');
});

test('bulb check and --check give a check result; help and version short-circuit', async () => {
  assert.equal((await load(['check'])).kind, 'check');
  assert.equal((await load(['check', '--listen', '127.0.0.1:0'])).kind, 'check');
  assert.equal((await load(['--check'])).kind, 'check');
  assert.equal((await load(['--listen', '127.0.0.1:0', '--check'])).kind, 'check');
  assert.equal((await load(['--listen', '127.0.0.1:0'])).kind, 'run');
  for (const h of ['--help', '-h']) {
    const r = await load(['--listen', 'nonsense', h]);
    assert.equal(r.kind, 'help', 'help wins even over a bad flag');
    assert.ok(r.kind === 'help' && r.text.includes('Usage:'));
  }
  assert.equal((await load(['check', '--help'])).kind, 'help');
  for (const v of ['--version', '-v']) {
    const r = await load([v]);
    assert.ok(r.kind === 'version');
    assert.match(r.text, /^bulb \d+\.\d+\.\d+/);
  }
});

test('admin: off in a YAML file turns the admin server off (YAML 1.2 keeps off a string)', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'bulb.yaml'), 'admin: off\n');
  assert.equal((await config(['--config', join(dir, 'bulb.yaml')])).admin, undefined);
});

test('help and version do not read the config file or the environment', async () => {
  const env = { BULB_CONFIG: '/no/such/file.yaml', BULB_LISTEN: 'bad' };
  assert.equal((await load(['--help'], env)).kind, 'help');
  assert.equal((await load(['--version'], env)).kind, 'version');
});

test('a non-repeatable flag given twice keeps the last value', async () => {
  assert.deepEqual((await config(['--listen', '1.2.3.4:1', '--listen', '1.2.3.4:2'])).listen, { host: '1.2.3.4', port: 2 });
});

test('addresses: IPv4, names, bracketed IPv6, port 0 and 65535', async () => {
  const cases: [string, string, number][] = [
    ['0.0.0.0:8080', '0.0.0.0', 8080],
    ['localhost:0', 'localhost', 0],
    ['my-host.internal:65535', 'my-host.internal', 65535],
    ['[::1]:8080', '::1', 8080],
    ['[::]:1', '::', 1],
  ];
  for (const [text, host, port] of cases) {
    assert.deepEqual(parseAddress(text), { host, port }, text);
    assert.deepEqual((await config(['--listen', text])).listen, { host, port }, text);
  }
});

test('hash keys: client-ip, and header:NAME lower-cased', async () => {
  assert.deepEqual(parseHashKey('client-ip'), { kind: 'client-ip' });
  assert.deepEqual(parseHashKey('header:X-Session-Id'), { kind: 'header', name: 'x-session-id' });
  assert.deepEqual((await config(['--hash-key', 'client-ip'])).hashKey, { kind: 'client-ip' });
  assert.deepEqual((await config(['--hash-key', 'header:Cookie'])).hashKey, { kind: 'header', name: 'cookie' });
  assert.deepEqual((await config([], { BULB_HASH_KEY: 'header:x-tenant' })).hashKey, { kind: 'header', name: 'x-tenant' });
});

test('backends are stored as normalised origins', async () => {
  const c = await config(['--backend', 'http://Example.com', '--backend', 'http://10.0.0.5:8080/']);
  assert.deepEqual(c.backends, ['http://example.com:80', 'http://10.0.0.5:8080']);
});
