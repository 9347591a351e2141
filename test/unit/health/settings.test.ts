import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseBackendFile } from '../../../src/discovery/backend-file.js';
import { tmpDir } from '../../helpers/tmpdir.js';
import { config, failure } from '../config/_load.js';

// The health settings as users write them: flags, env, config file, and a backend file's health block.

test('health flags are checked one by one, with the reason', async () => {
  const cases: [string[], RegExp][] = [
    [['--health-mode', 'icmp'], /--health-mode: "icmp" is not a health mode \(auto, http, tcp, grpc, off\)/],
    [['--health-path', 'healthz'], /--health-path: "healthz" is not a path starting with \//],
    [['--health-status', '2xx'], /--health-status: "2xx" is not a status code or range/],
    [['--health-status', '399-200'], /--health-status: "399-200" is an empty range/],
    [['--health-interval', '10ms'], /--health-interval: "10ms" is too short \(the minimum is 50ms\)/],
    [['--health-timeout', '1ms'], /--health-timeout: "1ms" is too short \(the minimum is 10ms\)/],
    [['--health-rise', '0'], /--health-rise: "0" is not a whole number from 1 to 100/],
    [['--health-fall', '101'], /--health-fall: "101" is not a whole number from 1 to 100/],
    [['--health-initial', 'maybe'], /--health-initial: "maybe" is not healthy or unhealthy/],
    [['--outlier-max-ejection-percent', '101'], /not a whole number from 0 to 100/],
    [['--outlier-base-ejection', '10ms'], /is too short \(the minimum is 100ms\)/],
  ];
  for (const [argv, message] of cases) {
    const e = await failure('BULB_E_INVALID_ARGUMENT', argv);
    assert.match(e.message, message);
  }
});

test('health settings from a config file', async (t) => {
  const dir = await tmpDir(t);
  const file = join(dir, 'bulb.yaml');
  await writeFile(file, 'healthPath: /ready\nhealthInterval: 500ms\nhealthFall: 1\noutlierConsecutive: 0\n');
  const c = await config(['--config', file]);
  assert.deepEqual(c.health, { mode: 'auto', path: '/ready', status: [200, 399], intervalMs: 500, timeoutMs: 1000, rise: 2, fall: 1, initial: 'healthy', grpcService: '' });
  assert.equal(c.outlier.consecutive, 0);
});

test('a backend file health block is parsed, frozen and carried on the spec', () => {
  const r = parseBackendFile('/b/a.json', JSON.stringify({ url: 'http://10.0.0.5:8080', health: { path: '/ready', mode: 'http', interval: '1s', timeout: '500ms', rise: 2, fall: 3, status: '200-299' } }), 'dir:/b');
  assert.deepEqual(r.problems, []);
  const spec = r.backends[0];
  assert.deepEqual(spec.health, { mode: 'http', path: '/ready', status: [200, 299], intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 });
  assert.ok(Object.isFrozen(spec.health));
  assert.ok(Object.isFrozen(spec.health.status));
  const bare = parseBackendFile('/b/a.json', JSON.stringify({ url: 'http://10.0.0.5:8080' }), 'dir:/b');
  assert.equal('health' in bare.backends[0], false, 'no block, no field: specs stay comparable');
});

test('a bad health block rejects the file, naming the field', () => {
  const problems = (health: unknown) =>
    parseBackendFile('/b/a.json', JSON.stringify({ url: 'http://10.0.0.5:8080', health }), 'dir:/b').problems.map((p) => `${p.pointer}: ${p.message}`);
  assert.deepEqual(problems({ pth: '/x' }), ['/health/pth: unknown field "pth" in health (allowed: mode, service, path, status, interval, timeout, rise, fall)']);
  assert.deepEqual(problems({ interval: 'often' }), ['/health/interval: health.interval must be a duration like 250ms, 2s or 1m, or a number of seconds (at least 50ms) (got "often")']);
  assert.deepEqual(problems({ rise: 0 }), ['/health/rise: health.rise must be a whole number from 1 to 100 (got 0)']);
  assert.deepEqual(problems({ mode: 'udp' }), ['/health/mode: health.mode must be http, tcp, grpc or off (got "udp")']);
  assert.deepEqual(problems({ interval: '10ms' }), ['/health/interval: interval must be a duration like 250ms, 2s or 1m, or a number of seconds (at least 50ms) (got "10ms")']);
  assert.deepEqual(problems({ mode: 'tcp', path: '/x' }), ['/health/path: path is set but mode is tcp (a TCP check sends no request)']);
  assert.deepEqual(problems({ mode: 'grpc', path: '/x' }), ['/health/path: path is set but mode is grpc (a gRPC check calls grpc.health.v1.Health/Check; name the service in service)']);
  assert.deepEqual(problems({ mode: 'http', service: 'a.B' }), ['/health/service: service is set but mode is http (only a grpc check asks about a service)']);
  assert.deepEqual(problems({ service: 7 }), ['/health/service: health.service must be a gRPC service name (a string, "" for the whole server) (got 7)']);
  assert.deepEqual(problems({ mode: 'grpc', service: '' }), []);
  assert.deepEqual(problems('/ready'), ['/health: health must be an object like {"path": "/ready"} (got a string "/ready")']);
});
