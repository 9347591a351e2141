import { CONFIG_SCHEMA } from '../../../src/config/schema.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpDir } from '../../helpers/tmpdir.js';
import { failure } from './_load.js';

const ALLOWED = `allowed: ${Object.keys(CONFIG_SCHEMA.properties).join(', ')}`;

test('flag errors name the flag and the reason', async () => {
  const cases: [string[], string][] = [
    [['--listen', 'abc'], '--listen: "abc" is not HOST:PORT'],
    [['--listen', '1.2.3.4:65536'], '--listen: "1.2.3.4:65536" is not HOST:PORT'],
    [['--listen', ':8080'], '--listen: ":8080" is not HOST:PORT'],
    [['--listen', '::1:8080'], '--listen: "::1:8080" is not HOST:PORT'],
    [['--listen='], '--listen: "" is not HOST:PORT'],
    [['--admin', 'no'], '--admin: "no" is not HOST:PORT or off'],
    [['--hash-key', 'cookie'], '--hash-key: "cookie" is not client-ip or header:NAME'],
    [['--hash-key', 'header:'], '--hash-key: "header:" is not client-ip or header:NAME'],
    [['--log-level', 'verbose'], '--log-level: "verbose" is not a log level (fatal, error, warn, info, debug, trace, silent)'],
    [['--strategy='], '--strategy: "" is not a strategy name or module path'],
    [['--backend', 'ftp://x:21'], '--backend: "ftp://x:21" has scheme ftp; only http, https and h2c are allowed'],
    [['--backend', 'http://a:1', '--backend', 'http://b/path'], '--backend: "http://b/path" has a path; a backend URL is an origin only'],
    [['--backend', 'nope'], '--backend: "nope" is not a URL (expected http://HOST:PORT)'],
    [['--listen'], '--listen: missing value (expected HOST:PORT)'],
    [['--watch-dir', '--listen', '1.2.3.4:1'], '--watch-dir: missing value (expected DIR)'],
    [['--config'], '--config: missing value (expected FILE)'],
    [['--config='], '--config: missing value (expected FILE)'],
    [['--check=yes'], '--check: takes no value'],
    [['--lisen', 'x'], '--lisen: unknown flag (did you mean --listen?); see bulb --help for the list'],
    [['--watchdir', 'x'], '--watchdir: unknown flag (did you mean --watch-dir?); see bulb --help for the list'],
    [['--watch-dirs', 'x'], '--watch-dirs: unknown flag (did you mean --watch-dir?); see bulb --help for the list'],
    [['--upstream_timeout', '1s'], '--upstream_timeout: unknown flag (did you mean --upstream-timeout?); see bulb --help for the list'],
    [['-listen', 'x'], '-listen: unknown flag (did you mean --listen?); see bulb --help for the list'],
    [['--colour'], '--colour: unknown flag; see bulb --help for the list'],
    [['-x'], '-x: unknown flag; see bulb --help for the list'],
    [['serve'], 'unexpected argument "serve": bulb takes flags only (see bulb --help)'],
    [['--listen', '1.2.3.4:1', 'check'], 'check: must come first, as in: bulb check [flags]'],
  ];
  for (const [argv, message] of cases) {
    const e = await failure('BULB_E_INVALID_ARGUMENT', argv);
    assert.equal(e.message, message, JSON.stringify(argv));
  }
});

test('env errors name the variable and the reason', async () => {
  const cases: [NodeJS.ProcessEnv, string][] = [
    [{ BULB_LISTEN: 'abc' }, 'BULB_LISTEN: "abc" is not HOST:PORT'],
    [{ BULB_DRAIN_TIMEOUT: '5x' }, 'BULB_DRAIN_TIMEOUT: "5x" is not a duration (use 250ms, 2s, 1m; a bare number means seconds)'],
    [{ BULB_BACKEND: 'http://a:1,ftp://b' }, 'BULB_BACKEND: "ftp://b" has scheme ftp; only http, https and h2c are allowed'],
    [{ BULB_LOG_LEVEL: 'loud' }, 'BULB_LOG_LEVEL: "loud" is not a log level (fatal, error, warn, info, debug, trace, silent)'],
  ];
  for (const [env, message] of cases) {
    const e = await failure('BULB_E_INVALID_ARGUMENT', [], env);
    assert.equal(e.message, message, JSON.stringify(env));
  }
});

test('a flag error is reported even when the env var for the same setting is fine, and the other way round', async () => {
  const e = await failure('BULB_E_INVALID_ARGUMENT', ['--listen', 'abc'], { BULB_LISTEN: '1.2.3.4:5' });
  assert.match(e.message, /^--listen:/);
  const e2 = await failure('BULB_E_INVALID_ARGUMENT', ['--listen', '1.2.3.4:5'], { BULB_LISTEN: 'abc' });
  assert.match(e2.message, /^BULB_LISTEN:/, 'a bad variable is an error even when a flag overrides it');
});

test('config file validation errors: one line per problem, file and JSON pointer first', async (t) => {
  const dir = await tmpDir(t);
  const file = join(dir, 'bulb.yaml');
  await writeFile(
    file,
    [
      'listen: abc',
      'colour: blue',
      'admin: 9901',
      'watchDirs: ./backends',
      'backends:',
      '  - http://ok:1',
      '  - 42',
      '  - ftp://bad',
      'upstreamTimeout: 5x',
      'drainTimeout: -1',
      'logLevel: verbose',
      'hashKey: cookie',
      'lisen: 1.2.3.4:5',
      '',
    ].join('\n'),
  );
  const e = await failure('BULB_E_INVALID_CONFIG', ['--config', file]);
  assert.deepEqual(e.details, [
    `${file}: /listen: must match HOST:PORT (got "abc")`,
    `${file}: /colour: unknown setting (${ALLOWED})`,
    `${file}: /admin: must match HOST:PORT or be off (got 9901)`,
    `${file}: /watchDirs: must be a list of directory paths (got "./backends")`,
    `${file}: /backends/1: must be a non-empty string (got 42)`,
    `${file}: /backends/2: "ftp://bad" has scheme ftp; only http, https and h2c are allowed`,
    `${file}: /upstreamTimeout: must be a duration like 250ms, 2s or 1m, or a number of seconds (got "5x")`,
    `${file}: /drainTimeout: must be a duration like 250ms, 2s or 1m, or a number of seconds (got -1)`,
    `${file}: /logLevel: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")`,
    `${file}: /hashKey: must be client-ip or header:NAME (got "cookie")`,
    `${file}: /lisen: unknown setting; did you mean listen? (${ALLOWED})`,
  ]);
  assert.equal(e.message, `${file}: invalid config file\n  ${e.details.join('\n  ')}`);
});

test('the file is named as the user gave it', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'bulb.yaml'), 'listen: abc\n');
  const e = await failure('BULB_E_INVALID_CONFIG', ['--config', 'bulb.yaml'], {}, dir);
  assert.deepEqual(e.details, ['bulb.yaml: /listen: must match HOST:PORT (got "abc")']);
});

test('a config file that is not a mapping', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'list.yaml'), '- listen\n- admin\n');
  const e = await failure('BULB_E_INVALID_CONFIG', ['--config', 'list.yaml'], {}, dir);
  assert.deepEqual(e.details, ['list.yaml: must be a mapping of settings (got a list)']);
});

test('an unreadable config file names the file and the reason', async (t) => {
  const dir = await tmpDir(t);
  const missing = await failure('BULB_E_INVALID_CONFIG', ['--config', 'nope.yaml'], {}, dir);
  assert.equal(missing.message, 'nope.yaml: cannot read config file (no such file)');
  const isDir = await failure('BULB_E_INVALID_CONFIG', [], { BULB_CONFIG: dir });
  assert.equal(isDir.message, `${dir}: cannot read config file (it is a directory)`);
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked.yaml');
    await writeFile(locked, 'listen: 1.2.3.4:5\n');
    await chmod(locked, 0o000);
    const e = await failure('BULB_E_INVALID_CONFIG', ['--config', locked]);
    assert.equal(e.message, `${locked}: cannot read config file (permission denied)`);
  }
});

test('an unparsable YAML file names the file and the line', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'bad.yaml'), 'listen: 1.2.3.4:5\nbackends: [http://a:1\nadmin: off\n');
  const e = await failure('BULB_E_INVALID_CONFIG', ['--config', 'bad.yaml'], {}, dir);
  assert.match(e.message, /^bad\.yaml: cannot parse config file \(YAML or JSON\)\n {2}bad\.yaml: line \d+, column \d+: \S/);
  assert.ok(e.details!.length >= 1);
  for (const line of e.details!) assert.match(line, /^bad\.yaml: line \d+, column \d+: [^\n]+$/);
});

test('duplicate keys and broken JSON are parse errors', async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'dup.yaml'), 'listen: 1.2.3.4:5\nlisten: 1.2.3.4:6\n');
  const dup = await failure('BULB_E_INVALID_CONFIG', ['--config', 'dup.yaml'], {}, dir);
  assert.match(dup.details![0], /^dup\.yaml: line 2, column 1: Map keys must be unique/);
  await writeFile(join(dir, 'bad.json'), '{"listen": "1.2.3.4:5",\n "admin": "off"\n');
  const json = await failure('BULB_E_INVALID_CONFIG', ['--config', 'bad.json'], {}, dir);
  assert.match(json.details![0], /^bad\.json: line 3, column 1: Flow map must end with a \}/);
});

// Every whole-number setting shares one rule in the settings table, so a flag or variable (always text) is held
// to the same bounds as a number in the file. --max-connections once slipped through: "5000000" was accepted.
test('a whole number given as text is bounded like the same number in a file', async (t) => {
  const e1 = await failure('BULB_E_INVALID_ARGUMENT', ['--max-connections', '5000000']);
  assert.equal(e1.message, '--max-connections: "5000000" is not a whole number from 0 to 1000000');
  const e2 = await failure('BULB_E_INVALID_ARGUMENT', [], { BULB_MAX_CONNECTIONS: '5000000' });
  assert.equal(e2.message, 'BULB_MAX_CONNECTIONS: "5000000" is not a whole number from 0 to 1000000');
  const file = join(await tmpDir(t), 'bulb.yaml');
  await writeFile(file, 'maxConnections: 5000000\n');
  const e3 = await failure('BULB_E_INVALID_CONFIG', ['--config', file]);
  assert.deepEqual(e3.details, [`${file}: /maxConnections: must be a whole number from 0 to 1000000 (got 5000000)`]);
});
