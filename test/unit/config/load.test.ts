import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAddress, parseHashKey } from '../../../src/config/formats.js';
import type { Config } from '../../../src/config/types.js';
import { tmpDir } from '../../helpers/tmpdir.js';
import { config, failure, load } from './_load.js';

const DEFAULT_CONFIG: Config = {
  listen: { host: '0.0.0.0', port: 8080 },
  admin: { host: '127.0.0.1', port: 9901 },
  adminToken: undefined,
  watchDirs: [],
  backends: [],
  dnsSrv: [],
  dnsA: [],
  dnsServer: undefined,
  dnsMinIntervalMs: 1000,
  dnsMaxIntervalMs: 30_000,
  dnsEmptyAfter: 2,
  backendTlsCa: undefined,
  backendTlsServerName: undefined,
  backendTlsCert: undefined,
  backendTlsKey: undefined,
  backendTlsInsecure: false,
  backendHttp2: false,
  dnsScheme: 'http',
  strategy: 'round-robin',
  hashKey: { kind: 'client-ip' },
  upstreamTimeoutMs: 60_000,
  drainTimeoutMs: 30_000,
  shutdownDelayMs: 0,
  retries: 2,
  retryBudgetPercent: 20,
  retryBodyLimit: 65536,
  panicThresholdPercent: 0,
  slowStartMs: 0,
  health: { mode: 'auto', path: undefined, status: [200, 399], intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, initial: 'healthy', grpcService: '' },
  outlier: { consecutive: 5, baseEjectionMs: 30_000, maxEjectionPercent: 50, unejectOnCheck: true },
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  sendTimeoutMs: 60_000,
  idleTimeoutMs: 75_000,
  maxConnections: 10000,
  tlsCert: undefined,
  tlsKey: undefined,
  workers: 1,
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
      '--admin-token', 's3cr3t-T0ken',
      '--watch-dir', 'a',
      '--watch-dir=/abs/b',
      '--backend', 'http://10.0.0.5:8080',
      '--backend', 'https://api.example',
      '--dns-srv', '_http._tcp.web',
      '--dns-srv=_grpc._tcp.api.default.svc.cluster.local.',
      '--dns-a', 'web:8080',
      '--dns-server', '[::1]:5353',
      '--dns-min-interval', '200ms',
      '--dns-max-interval', '1m',
      '--dns-empty-after', '3',
      '--strategy', 'least-time',
      '--hash-key', 'header:X-User',
      '--upstream-timeout', '250ms',
      '--drain-timeout=1m',
      '--shutdown-delay', '5s',
      '--retries', '3',
      '--retry-budget', '25',
      '--retry-body-limit', '4096',
      '--panic-threshold', '50',
      '--slow-start', '30s',
      '--health-mode', 'http',
      '--health-path', '/ready?full=1',
      '--health-status', '200-299',
      '--health-interval', '500ms',
      '--health-timeout', '250ms',
      '--health-rise', '1',
      '--health-fall', '4',
      '--health-initial', 'unhealthy',
      '--health-grpc-service', 'my.pkg.Greeter',
      '--dns-scheme', 'https',
      '--backend-tls-ca', 'tls/ca.pem',
      '--backend-tls-server-name', 'api.internal',
      '--backend-tls-cert', '/etc/c.pem',
      '--backend-tls-key', 'k.pem',
      '--backend-tls-insecure', 'off',
      '--outlier-consecutive', '0',
      '--outlier-base-ejection', '10s',
      '--outlier-max-ejection-percent', '100',
      '--log-level', 'debug',
      '--tls-cert', 'tls/cert.pem',
      '--tls-key', '/abs/key.pem',
    ],
    {},
    '/srv',
  );
  assert.deepEqual(c, {
    listen: { host: '127.0.0.1', port: 0 },
    admin: undefined,
    adminToken: 's3cr3t-T0ken',
    watchDirs: ['/srv/a', '/abs/b'],
    backends: ['http://10.0.0.5:8080', 'https://api.example:443'],
    dnsSrv: ['_http._tcp.web', '_grpc._tcp.api.default.svc.cluster.local.'],
    dnsA: [{ host: 'web', port: 8080 }],
    dnsServer: { host: '::1', port: 5353 },
    dnsMinIntervalMs: 200,
    dnsMaxIntervalMs: 60_000,
    dnsEmptyAfter: 3,
    backendTlsCa: '/srv/tls/ca.pem',
    backendTlsServerName: 'api.internal',
    backendTlsCert: '/etc/c.pem',
    backendTlsKey: '/srv/k.pem',
    backendTlsInsecure: false,
    backendHttp2: false,
    dnsScheme: 'https',
    strategy: 'least-time',
    hashKey: { kind: 'header', name: 'x-user' },
    upstreamTimeoutMs: 250,
    drainTimeoutMs: 60_000,
    shutdownDelayMs: 5000,
    retries: 3,
    retryBudgetPercent: 25,
    retryBodyLimit: 4096,
    panicThresholdPercent: 50,
    slowStartMs: 30_000,
    health: { mode: 'http', path: '/ready?full=1', status: [200, 299], intervalMs: 500, timeoutMs: 250, rise: 1, fall: 4, initial: 'unhealthy', grpcService: 'my.pkg.Greeter' },
    outlier: { consecutive: 0, baseEjectionMs: 10_000, maxEjectionPercent: 100, unejectOnCheck: true },
    headerTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
    requestTimeoutMs: 300_000,
    sendTimeoutMs: 60_000,
    idleTimeoutMs: 75_000,
    maxConnections: 10000,
    tlsCert: '/srv/tls/cert.pem',
    tlsKey: '/abs/key.pem',
    workers: 1,
    logLevel: 'debug',
    configFile: undefined,
  });
});

test('every BULB_* variable sets its setting; lists are comma-separated', async () => {
  const c = await config([], {
    BULB_LISTEN: '[::1]:8081',
    BULB_ADMIN: 'localhost:0',
    BULB_ADMIN_TOKEN: 'from-a-secret',
    BULB_WATCH_DIR: 'one, /two,',
    BULB_BACKEND: 'http://a:1,http://b:2',
    BULB_DNS_SRV: '_http._tcp.a,_http._tcp.b',
    BULB_DNS_A: 'web:80, api.internal:9000',
    BULB_DNS_SERVER: '10.96.0.10',
    BULB_DNS_MIN_INTERVAL: '2',
    BULB_DNS_MAX_INTERVAL: '10s',
    BULB_DNS_EMPTY_AFTER: '1',
    BULB_STRATEGY: 'consistent-hash',
    BULB_HASH_KEY: 'client-ip',
    BULB_UPSTREAM_TIMEOUT: '1.5',
    BULB_DRAIN_TIMEOUT: '0',
    BULB_HEALTH_MODE: 'tcp',
    BULB_HEALTH_STATUS: '204',
    BULB_HEALTH_RISE: '3',
    BULB_OUTLIER_CONSECUTIVE: '7',
    BULB_OUTLIER_MAX_EJECTION_PERCENT: '34',
    BULB_OUTLIER_UNEJECT_ON_CHECK: 'off',
    BULB_REQUEST_TIMEOUT: '20s',
    BULB_SEND_TIMEOUT: '0',
    BULB_IDLE_TIMEOUT: '5s',
    BULB_LOG_LEVEL: 'silent',
  });
  assert.deepEqual(c, {
    ...DEFAULT_CONFIG,
    listen: { host: '::1', port: 8081 },
    admin: { host: 'localhost', port: 0 },
    adminToken: 'from-a-secret',
    watchDirs: ['/srv/one', '/two'],
    backends: ['http://a:1', 'http://b:2'],
    dnsSrv: ['_http._tcp.a', '_http._tcp.b'],
    dnsA: [{ host: 'web', port: 80 }, { host: 'api.internal', port: 9000 }],
    dnsServer: { host: '10.96.0.10', port: 53 },
    dnsMinIntervalMs: 2000,
    dnsMaxIntervalMs: 10_000,
    dnsEmptyAfter: 1,
    backendTlsCa: undefined,
    backendTlsServerName: undefined,
    backendTlsCert: undefined,
    backendTlsKey: undefined,
    backendTlsInsecure: false,
    backendHttp2: false,
    dnsScheme: 'http',
    strategy: 'consistent-hash',
    hashKey: { kind: 'client-ip' },
    upstreamTimeoutMs: 1500,
    drainTimeoutMs: 0,
    requestTimeoutMs: 20_000,
    sendTimeoutMs: 0,
    idleTimeoutMs: 5000,
    health: { mode: 'tcp', path: undefined, status: [204, 204], intervalMs: 2000, timeoutMs: 1000, rise: 3, fall: 3, initial: 'healthy', grpcService: '' },
    outlier: { consecutive: 7, baseEjectionMs: 30_000, maxEjectionPercent: 34, unejectOnCheck: false },
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
      ...DEFAULT_CONFIG,
      listen: { host: '10.0.0.1', port: 1000 },
      admin: { host: '10.0.0.1', port: 1001 },
      adminToken: undefined,
      watchDirs: [join(dir, 'from-file')], // against the file's folder, not cwd
      backends: ['http://file:1', 'http://file:2'],
      dnsSrv: [],
      dnsA: [],
      dnsServer: undefined,
      dnsMinIntervalMs: 1000,
      dnsMaxIntervalMs: 30_000,
      dnsEmptyAfter: 2,
      backendTlsCa: undefined,
      backendTlsServerName: undefined,
      backendTlsCert: undefined,
      backendTlsKey: undefined,
      backendTlsInsecure: false,
      backendHttp2: false,
      dnsScheme: 'http',
      strategy: 'random',
      hashKey: { kind: 'client-ip' },
      upstreamTimeoutMs: 5000,
      drainTimeoutMs: 5000,
      health: DEFAULT_CONFIG.health,
      outlier: DEFAULT_CONFIG.outlier,
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

test('an admin token must not be empty or contain spaces, wherever it comes from', async (t) => {
  const flag = await failure('BULB_E_INVALID_ARGUMENT', ['--admin-token', '']);
  assert.match(flag.message, /^--admin-token: an empty token would leave the admin API open/);
  const spaced = await failure('BULB_E_INVALID_ARGUMENT', [], { BULB_ADMIN_TOKEN: 'two words' });
  assert.match(spaced.message, /^BULB_ADMIN_TOKEN: "two words" is not a token of printable ASCII/);
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'bulb.yaml'), "adminToken: ''\n");
  const file = await failure('BULB_E_INVALID_CONFIG', ['--config', join(dir, 'bulb.yaml')]);
  assert.deepEqual(file.details, [`${join(dir, 'bulb.yaml')}: /adminToken: an empty token would leave the admin API open; leave the setting out instead`]);
  // An empty variable counts as unset, like every other BULB_* variable.
  assert.equal((await config([], { BULB_ADMIN_TOKEN: '' })).adminToken, undefined);
});

test('DNS settings: names, HOST:PORT, servers, intervals and the empty-after count are checked where they come from', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--dns-srv', 'bad name'], /^--dns-srv: "bad name" is not a DNS name$/],
    [['--dns-a', 'web'], /^--dns-a: "web" is not HOST:PORT with HOST a DNS name$/],
    [['--dns-a', 'web:0'], /^--dns-a: "web:0" has port 0/],
    [['--dns-a', '10.0.0.5:80'], /^--dns-a: "10.0.0.5:80" is an IP address, which needs no DNS; use --backend http:\/\/10.0.0.5:80$/],
    [['--dns-server', 'dns.example'], /^--dns-server: "dns.example" is not IP\[:PORT\] or system$/],
    [['--dns-server', '1.2.3:53'], /^--dns-server: "1.2.3:53" is not an IP address/],
    [['--dns-min-interval', '10ms'], /^--dns-min-interval: "10ms" is too short \(the minimum is 100ms\)$/],
    [['--dns-empty-after', '0'], /^--dns-empty-after: "0" is not a whole number from 1 to 100$/],
  ];
  for (const [argv, message] of cases) assert.match((await failure('BULB_E_INVALID_ARGUMENT', argv)).message, message, argv.join(' '));
  const crossed = await failure('BULB_E_INVALID_CONFIG', ['--dns-min-interval', '5s', '--dns-max-interval', '1s']);
  assert.match(crossed.message, /dnsMinInterval \("5s"\) is longer than dnsMaxInterval \("1s"\)/);
  assert.deepEqual((await config(['--dns-server', '127.0.0.1'])).dnsServer, { host: '127.0.0.1', port: 53 });
  assert.deepEqual((await config(['--dns-server', '::1'])).dnsServer, { host: '::1', port: 53 });
  assert.equal((await config(['--dns-server', 'system'])).dnsServer, undefined);
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'bulb.yaml'), 'dnsSrv: [_http._tcp.web]\ndnsA: ["web:8080"]\ndnsEmptyAfter: 4\ndnsMaxInterval: 5\n');
  const c = await config(['--config', join(dir, 'bulb.yaml')]);
  assert.deepEqual([c.dnsSrv, c.dnsA, c.dnsEmptyAfter, c.dnsMaxIntervalMs], [['_http._tcp.web'], [{ host: 'web', port: 8080 }], 4, 5000]);
});

test('retry, panic, slow-start and shutdown settings from flags, env and file, with bounds', async () => {
  const r = await load(['--retries', '0', '--retry-budget', '50', '--panic-threshold', '30', '--slow-start', '10s', '--shutdown-delay', '5s'], {
    BULB_RETRY_BODY_LIMIT: '1024',
  });
  assert.equal(r.kind, 'run');
  if (r.kind !== 'run') return;
  assert.equal(r.config.retries, 0);
  assert.equal(r.config.retryBudgetPercent, 50);
  assert.equal(r.config.retryBodyLimit, 1024);
  assert.equal(r.config.panicThresholdPercent, 30);
  assert.equal(r.config.slowStartMs, 10_000);
  assert.equal(r.config.shutdownDelayMs, 5000);
  const tooMany = await failure('BULB_E_INVALID_ARGUMENT', ['--retries', '11']);
  assert.equal(tooMany.message, '--retries: "11" is not a whole number from 0 to 10');
  const pct = await failure('BULB_E_INVALID_ARGUMENT', [], { BULB_PANIC_THRESHOLD: '101' });
  assert.equal(pct.message, 'BULB_PANIC_THRESHOLD: "101" is not a whole number from 0 to 100');
});

test('--request-timeout shorter than --header-timeout is refused with both named', async () => {
  await assert.rejects(config(['--header-timeout', '10s', '--request-timeout', '5s']), /requestTimeout \("5s"\) is shorter than headerTimeout \("10s"\)/);
  assert.equal((await config(['--header-timeout', '10s', '--request-timeout', '0'])).requestTimeoutMs, 0);
});

test('TLS needs both --tls-cert and --tls-key', async () => {
  assert.match((await failure('BULB_E_INVALID_CONFIG', ['--tls-cert', 'c.pem'])).message, /tlsCert is set without tlsKey; TLS needs both --tls-cert and --tls-key/);
  assert.match((await failure('BULB_E_INVALID_CONFIG', ['--tls-key', 'k.pem'])).message, /tlsKey is set without tlsCert/);
});
