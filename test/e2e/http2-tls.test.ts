import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import tls from 'node:tls';
import { execFile } from 'node:child_process';
import { copyFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startBackends } from '../helpers/backend.js';
import { runBulb, startBulb, warnings } from '../helpers/bulb.js';
import { makeCa, pem } from '../helpers/pki.js';

/** A server certificate for 127.0.0.1 and localhost with CN `name`, from a CA of its own; `pem` is that CA (the trust anchor). */
function makeCert(dir: string, name: string): { certFile: string; keyFile: string; pem: string } {
  const ca = makeCa(dir, `${name}-ca`);
  const leaf = ca.server(name, ['127.0.0.1', 'localhost'], { cn: name });
  return { certFile: leaf.cert, keyFile: leaf.key, pem: pem(ca.cert) };
}
import { parseExposition, select } from '../helpers/prom.js';
import { echoClient, grpc, startGrpcBackend, unary } from '../helpers/grpc.js';
import { tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const httpsUrl = (url: string): string => url.replace(/^http:/, 'https:');

/** The CN of the certificate a new TLS connection to `port` is given. */
function servedCn(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'] }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.end();
    });
    s.on('error', reject);
  });
}

/** Moves a new pair into place the way a Secret update does: written aside, then renamed over the old files. */
async function replaceCert(to: { certFile: string; keyFile: string }, from: { certFile: string; keyFile: string }): Promise<void> {
  await copyFile(from.certFile, `${to.certFile}.new`);
  await copyFile(from.keyFile, `${to.keyFile}.new`);
  await rename(`${to.keyFile}.new`, to.keyFile);
  await rename(`${to.certFile}.new`, to.certFile);
}

test('TLS: ALPN gives HTTP/2 or HTTP/1.1 on one port; gRPC over TLS; the certificate is reloaded without dropping connections', async (t) => {
  const dir = await tmpDir(t);
  const one = makeCert(dir, 'one');
  const two = makeCert(dir, 'two');
  const live = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await replaceCert(live, one);
  const [web] = await startBackends(t, 'web');
  const g = await startGrpcBackend(t, 'g');
  const bulb = await startBulb(t, ['--backend', web.url, '--tls-cert', live.certFile, '--tls-key', live.keyFile, '--health-mode', 'off']);
  const url = httpsUrl(bulb.url);
  const port = Number(new URL(url).port);
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, one.pem + two.pem);

  const h2 = await run('curl', ['-sS', '--cacert', caFile, '-o', '-', '-w', '\n%{http_version} %{http_code}', `${url}/a`]);
  assert.equal(h2.stdout, 'web\n2 200', 'curl negotiates h2 by ALPN');
  const h1 = await run('curl', ['-sS', '--http1.1', '--cacert', caFile, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${url}/b`]);
  assert.equal(h1.stdout, '1.1 200');
  assert.equal(web.seen.at(-1)!.headers['x-forwarded-proto'], 'https');
  const ng = await run('nghttp', ['-n', '-s', '-m', '4', `${url}/c`]);
  assert.match(ng.stdout, /200/);

  // Hold an HTTP/2 connection open across the reload.
  const held = http2.connect(url, { ca: one.pem + two.pem });
  held.on('error', () => {});
  t.after(() => held.close());
  const get = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const r = held.request({ ':path': path });
      r.on('response', (h) => resolve(Number(h[':status'])));
      r.on('error', reject);
      r.resume();
    });
  assert.equal(await get('/before'), 200);
  assert.equal(await servedCn(port, one.pem), 'one');

  await replaceCert(live, two);
  await waitFor(async () => (await servedCn(port, one.pem + two.pem)) === 'two', 10_000, () => 'the new certificate is served');
  await bulb.waitForLog((l) => l.msg === 'TLS certificate reloaded; new connections use it');
  assert.equal(await get('/after'), 200, 'the connection opened before the reload still works');

  // A broken update keeps the current certificate.
  await writeFile(live.certFile, 'not a certificate');
  await bulb.waitForLog((l) => l.msg === 'TLS certificate files changed but cannot be used; keeping the current certificate');
  assert.equal(await servedCn(port, one.pem + two.pem), 'two');
  assert.equal(await get('/still'), 200);
  await replaceCert(live, two);

  // gRPC over TLS (bulb terminates TLS; the backend is h2c).
  const gbulb = await startBulb(t, ['--backend', g.url, '--tls-cert', live.certFile, '--tls-key', live.keyFile, '--health-mode', 'off']);
  const client = echoClient(t, new URL(gbulb.url).host, grpc.credentials.createSsl(Buffer.from(one.pem + two.pem)));
  const r = await unary(client, { text: 'over tls' });
  assert.equal(r.res.text, 'over tls');
  assert.equal(r.res.backend, 'g');
  assert.deepEqual(warnings(gbulb), []);
});

test('TLS: missing or mismatched files, or only one of the pair, stop bulb with the file named', async (t) => {
  const dir = await tmpDir(t);
  const one = makeCert(dir, 'one');
  const two = makeCert(dir, 'two');
  const missing = await runBulb(['--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', join(dir, 'nope.crt'), '--tls-key', one.keyFile]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /tlsCert .*nope\.crt cannot be read \(no such file\)/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /);
  const mismatched = await runBulb(['--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', one.certFile, '--tls-key', two.keyFile]);
  assert.equal(mismatched.code, 1);
  assert.match(mismatched.stderr, /not a usable PEM certificate and matching key/);
  const half = await runBulb(['--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', one.certFile]);
  assert.notEqual(half.code, 0);
  assert.match(half.stderr, /TLS needs both --tls-cert and --tls-key/);
});

test('--workers 2: gRPC over h2c and over TLS is served by both workers, each balancing per call; a reload reaches both', async (t) => {
  const dir = await tmpDir(t);
  const one = makeCert(dir, 'one');
  const two = makeCert(dir, 'two');
  const live = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await replaceCert(live, one);
  const backends = await Promise.all(['a', 'b'].map((n) => startGrpcBackend(t, n)));
  const args = [...backends.flatMap((b) => ['--backend', b.url]), '--health-mode', 'off', '--workers', '2'];
  const plain = await startBulb(t, args);
  const secure = await startBulb(t, [...args, '--tls-cert', live.certFile, '--tls-key', live.keyFile]);
  const ca = Buffer.from(one.pem + two.pem);

  // 16 channels (connections) per bulb, 4 calls each: the kernel spreads the connections over both workers.
  for (const [bulb, creds] of [
    [plain, grpc.credentials.createInsecure()],
    [secure, grpc.credentials.createSsl(ca)],
  ] as const) {
    const before = backends.map((b) => b.calls.Unary);
    const clients = Array.from({ length: 16 }, (_, i) => echoClient(t, new URL(bulb.url).host, creds, { 'grpc.use_local_subchannel_pool': 1, 'grpc.primary_user_agent': `c${i}` }));
    const replies = await Promise.all(clients.flatMap((c, i) => Array.from({ length: 4 }, (_, j) => unary(c, { text: `${i}.${j}` }))));
    assert.equal(replies.length, 64);
    for (const [i, b] of backends.entries()) assert.ok(b.calls.Unary - before[i] >= 16, `${b.name} served ${b.calls.Unary - before[i]} of 64`);
    const m = parseExposition(await (await fetch(`${bulb.adminUrl}/metrics`)).text());
    const perWorker = select(m, 'bulb_worker_requests_total').map((s) => s.value);
    assert.equal(perWorker.length, 2);
    assert.ok(perWorker.every((n) => n > 0), `both workers served calls: ${perWorker.join(', ')}`);
    assert.equal(perWorker.reduce((x, y) => x + y, 0), 64, 'each call counted once');
  }

  await replaceCert(live, two);
  // Every worker re-reads the files: ten new connections (spread over both) all get the new certificate.
  const port = Number(new URL(secure.url).port);
  await waitFor(async () => {
    const cns = await Promise.all(Array.from({ length: 10 }, () => servedCn(port, one.pem + two.pem)));
    return cns.every((cn) => cn === 'two');
  }, 10_000, () => 'both workers serve the new certificate');
});

test('--backend-http2 on: a gRPC server behind TLS is an https:// backend (ALPN h2), trailers and statuses intact; off: HTTP/1.1, which it refuses', async (t) => {
  const dir = await tmpDir(t);
  const ca = makeCa(dir, 'backend-ca');
  const leaf = ca.server('grpc-tls', ['127.0.0.1']);
  const g = await startGrpcBackend(t, 'g', { tls: { cert: Buffer.from(pem(leaf.cert)), key: Buffer.from(pem(leaf.key)) } });
  assert.match(g.url, /^https:/);
  const on = await startBulb(t, ['--backend', g.url, '--backend-tls-ca', ca.cert, '--backend-http2', 'on', '--health-mode', 'off']);
  const client = echoClient(t, new URL(on.url).host);
  const r = await unary(client, { text: 'alpn' });
  assert.equal(r.res.backend, 'g');
  assert.deepEqual(r.trailers.get('x-backend-trailer'), ['g'], 'trailers through undici’s HTTP/2 client');
  const err = await unary(client, { text: 'notfound' }).then(
    () => assert.fail('expected NOT_FOUND'),
    (e: unknown) => e as grpc.ServiceError,
  );
  assert.equal(err.code, grpc.status.NOT_FOUND, 'a trailers-only answer stays one');
  assert.equal(err.details, 'no such thing');
  const got: string[] = [];
  const ss = client.ServerStream({ text: 's', n: 3, backend: '' });
  ss.on('data', (m: { text: string }) => got.push(m.text));
  assert.equal((await new Promise<grpc.StatusObject>((res) => ss.on('status', res))).code, grpc.status.OK);
  assert.deepEqual(got, ['s-0', 's-1', 's-2']);

  const off = await startBulb(t, ['--backend', g.url, '--backend-tls-ca', ca.cert, '--health-mode', 'off']);
  const failing = await unary(echoClient(t, new URL(off.url).host), { text: 'x' }).then(
    () => 'ok',
    (e: unknown) => (e as grpc.ServiceError).code,
  );
  assert.notEqual(failing, 'ok', 'without --backend-http2 the gRPC server (HTTP/2 only) cannot be reached over HTTP/1.1');
});
