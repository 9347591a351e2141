import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { adminRequest, backends as adminBackends, type AdminBackend, type AdminOptions } from '../helpers/admin.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startBulb, type RunningBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { answers } from '../helpers/tally.js';
import { backendFile, tmpDir, writeAtomic } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

/** Every admin call in this file carries the token unless a test says otherwise (`token: null` sends none). */
const admin = (bulb: RunningBulb, path: string, opts: AdminOptions = {}) => adminRequest(bulb, path, { ...opts, token: opts.token === undefined ? TOKEN : opts.token });
const backends = (bulb: RunningBulb) => adminBackends(bulb, { token: TOKEN });

const servedBy = (bulb: RunningBulb, n: number) => answers(bulb, n, { path: '/' });

/** Two backends from a watched directory, bulb with a token; everything the tests in this file share. */
async function setup(t: import('node:test').TestContext): Promise<{ bulb: RunningBulb; a: TestBackend; b: TestBackend; dir: string }> {
  const a = await startBackend('a', { host: '127.0.0.2' });
  const b = await startBackend('b', { host: '127.0.0.3' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  await writeFile(join(dir, 'b.json'), backendFile(b.url));
  await writeFile(join(dir, 'broken.yaml'), 'url: http://127.0.0.9:1\nweight: 0\n');
  const bulb = await startBulb(t, ['--watch-dir', dir, '--admin-token', TOKEN]);
  return { bulb, a, b, dir };
}

test('every admin route answers with JSON (metrics in text), with the full backend and source state', async (t) => {
  const { bulb, a, dir } = await setup(t);
  await servedBy(bulb, 4);

  const healthz = await admin(bulb, '/healthz', { token: null });
  assert.equal(healthz.status, 200);
  assert.deepEqual(healthz.json, { status: 'ok' });
  const readyz = await admin(bulb, '/readyz', { token: null });
  assert.equal(readyz.status, 200);
  assert.deepEqual(readyz.json, { ready: true, shuttingDown: false, synced: true, routable: 2 });

  const list = (await admin(bulb, '/backends')).json as { backends: Record<string, unknown>[] };
  assert.equal(list.backends.length, 2);
  const first = list.backends.find((x) => x['url'] === a.url)!;
  assert.deepEqual(Object.keys(first).sort(), [
    'activeRequests', 'adminDrained', 'effectiveWeight', 'ejections', 'failures', 'health', 'healthy', 'id', 'lastError',
    'latencyMs', 'origin', 'requests', 'responses', 'routable', 'source', 'state', 'url', 'weight',
  ]);
  assert.equal(first['id'], `127.0.0.2:${a.port}`);
  assert.equal(first['weight'], 1);
  assert.equal(first['effectiveWeight'], 1);
  assert.equal(first['source'], `dir:${dir}`);
  assert.equal(first['origin'], join(dir, 'a.json'));
  assert.equal(first['state'], 'active');
  assert.equal(first['healthy'], true);
  assert.equal(first['health'], null);
  assert.equal(first['ejections'], 0);
  assert.equal(first['requests'], 2);
  assert.deepEqual(first['responses'], { '1xx': 0, '2xx': 2, '3xx': 0, '4xx': 0, '5xx': 0 });
  assert.equal(first['lastError'], null);
  assert.equal(typeof first['latencyMs'], 'number');

  const one = await admin(bulb, `/backends/${encodeURIComponent(first['id'])}`);
  assert.equal(one.status, 200);
  assert.equal((one.json as { backend: { url: string } }).backend.url, a.url);

  const sources = (await admin(bulb, '/sources')).json as { sources: Record<string, unknown>[] };
  assert.equal(sources.sources.length, 1);
  const s = sources.sources[0];
  assert.equal(s['name'], `dir:${dir}`);
  assert.equal(s['synced'], true);
  assert.equal(s['backends'], 2);
  assert.ok(!Number.isNaN(Date.parse(String(s['lastSyncAt']))), 'last successful sync is a timestamp');
  assert.equal(s['error'], null);
  assert.equal(s['lastError'], null);
  assert.equal(s['errors'], 0);
  assert.deepEqual(s['rejected'], [{ path: join(dir, 'broken.yaml'), pointer: '/weight', message: (s['rejected'] as { message: string }[])[0].message }]);
  assert.match((s['rejected'] as { message: string }[])[0].message, /weight/);

  const metrics = await admin(bulb, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.body, /^bulb_requests_total\{/m);

  const unknown = await admin(bulb, '/nope');
  assert.equal(unknown.status, 404);
  assert.ok((unknown.json as { routes: string[] }).routes.includes('POST /backends/{id}/drain'));
  const wrongMethod = await admin(bulb, '/backends', { method: 'DELETE' });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.allow, 'GET, HEAD');
  assert.equal((await admin(bulb, `/backends/${first['id']}/drain`)).status, 405, 'drain is a POST');
});

test('drain and undrain by hand: out of rotation without touching the file, and a reconcile does not undo it', async (t) => {
  const { bulb, a, b, dir } = await setup(t);
  const idA = `127.0.0.2:${a.port}`;

  const drained = await admin(bulb, `/backends/${idA}/drain`, { method: 'POST' });
  assert.equal(drained.status, 200);
  const view = (drained.json as { backend: AdminBackend }).backend;
  assert.equal(view.adminDrained, true);
  assert.equal(view.routable, false);
  assert.equal(view.state, 'active', 'the source still declares it');
  await bulb.waitForLog((l) => l.msg === 'backend drained by operator' && l['backend'] === idA);
  assert.deepEqual(await servedBy(bulb, 4), ['b', 'b', 'b', 'b']);

  // A reconcile: a's file changes weight. The pool updates a in place and a stays out of rotation.
  await writeAtomic(join(dir, 'a.json'), backendFile(a.url, { weight: 3 }));
  await waitFor(async () => (await backends(bulb)).find((x) => x.id === idA)?.weight === 3, 10_000, 'weight 3 applied');
  assert.equal((await backends(bulb)).find((x) => x.id === idA)?.adminDrained, true);
  assert.deepEqual(await servedBy(bulb, 4), ['b', 'b', 'b', 'b']);

  // Draining every backend by hand makes bulb not ready, as nothing is routable.
  assert.equal((await admin(bulb, `/backends/127.0.0.3:${b.port}/drain`, { method: 'POST' })).status, 200);
  assert.equal((await admin(bulb, '/readyz', { token: null })).status, 503);
  assert.equal((await request(`${bulb.url}/`)).status, 503);

  const undrained = await admin(bulb, `/backends/${idA}/undrain`, { method: 'POST' });
  assert.equal(undrained.status, 200);
  assert.equal((undrained.json as { backend: AdminBackend }).backend.adminDrained, false);
  assert.deepEqual(await servedBy(bulb, 3), ['a', 'a', 'a']);
  assert.equal((await admin(bulb, '/readyz', { token: null })).status, 200);

  for (const path of ['/backends/127.0.0.9:1/drain', '/backends/127.0.0.9:1/undrain']) {
    const r = await admin(bulb, path, { method: 'POST' });
    assert.equal(r.status, 404, path);
    assert.deepEqual(r.json, { error: 'no backend with id "127.0.0.9:1"' });
  }
  assert.equal((await admin(bulb, '/backends/127.0.0.9:1')).status, 404);
});

test('the admin token: refused without it or with a wrong one, accepted with it; probes stay open', async (t) => {
  const { bulb } = await setup(t);
  for (const path of ['/backends', '/backends/x', '/sources', '/metrics', '/nope']) {
    const missing = await admin(bulb, path, { token: null });
    assert.equal(missing.status, 401, `${path} without a token`);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="bulb admin"');
    const wrong = await admin(bulb, path, { token: `${TOKEN}x` });
    assert.equal(wrong.status, 401, `${path} with a wrong token`);
    assert.match(String(wrong.headers['www-authenticate']), /error="invalid_token"/);
    assert.equal((await admin(bulb, path, { token: TOKEN.slice(0, -1) })).status, 401, 'a prefix is not the token');
  }
  const basic = await request(`${bulb.adminUrl}/backends`, { headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
  assert.equal(basic.status, 401, 'only the Bearer scheme');
  assert.equal((await admin(bulb, '/backends/127.0.0.9:1/drain', { method: 'POST', token: null })).status, 401, 'actions too');
  assert.equal((await admin(bulb, '/backends')).status, 200);
  assert.equal((await request(`${bulb.adminUrl}/backends`, { headers: { authorization: `bearer ${TOKEN}` } })).status, 200, 'the scheme is case-insensitive');
  assert.equal((await admin(bulb, '/healthz', { token: null })).status, 200);
  assert.equal((await admin(bulb, '/readyz', { token: null })).status, 200);
  assert.equal((await admin(bulb, '/healthz', { token: 'wrong' })).status, 200, 'probes ignore the header');
});

test('admin routes are not reachable through the traffic port: those paths go to a backend', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  t.after(() => a.close());
  // The token comes from the environment here, as it does from a Kubernetes Secret.
  const bulb = await startBulb(t, ['--backend', a.url], { env: { BULB_ADMIN_TOKEN: TOKEN } });
  for (const [method, path] of [['GET', '/backends'], ['GET', '/metrics'], ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/sources'], ['POST', `/backends/127.0.0.2:${a.port}/drain`]] as const) {
    const r = await request(`${bulb.url}${path}`, { method, headers: auth });
    assert.equal(r.status, 200, path);
    assert.equal(r.body, 'a', `${path} was answered by the backend`);
    assert.equal(a.seen.at(-1)?.url, path);
  }
  assert.equal((await backends(bulb))[0]?.adminDrained, false, 'the POST through the traffic port drained nothing');
});

test('--admin off: no admin server at all', async (t) => {
  const a = await startBackend('a', { host: '127.0.0.2' });
  t.after(() => a.close());
  const bulb = await startBulb(t, ['--backend', a.url, '--admin', 'off']);
  assert.equal(bulb.adminUrl, '');
  assert.equal((await request(`${bulb.url}/healthz`)).body, 'a');
});
