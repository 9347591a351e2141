import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as admin from '../helpers/admin.js';
import { startBackend, startBackends } from '../helpers/backend.js';
import { startBulb, warnings } from '../helpers/bulb.js';
import { closedPort, rawRequest, request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait-for.js';

function assertNoStack(body: string): void {
  assert.doesNotMatch(body, /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(body, /Error:/);
}

test('empty pool: 503 with a short plain body, and bulb keeps running', async (t) => {
  const bulb = await startBulb(t, []);
  for (let i = 0; i < 3; i++) {
    const r = await request(`${bulb.url}/x`);
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no backend available\n');
    assert.match(String(r.headers['content-type']), /^text\/plain/);
  }
  assert.equal(bulb.proc.exitCode, null);
});

test('connection refused: an idempotent request is retried once on another backend', async (t) => {
  const good = await startBackend('good');
  t.after(() => good.close());
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const bulb = await startBulb(t, ['--backend', dead, '--backend', good.url]);
  // Round robin alternates, so half of these first go to the dead backend.
  for (let i = 0; i < 6; i++) {
    const r = await request(`${bulb.url}/r${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.body}`);
    assert.equal(r.body, 'good');
  }
  assert.equal(good.seen.length, 6);
  await bulb.waitForLog((l) => l.msg === 'retrying on another backend');
  const retried = bulb.logs.filter((l) => l.msg === 'retrying on another backend');
  assert.ok(retried.length >= 1, 'the dead backend was picked and the request retried');
  for (const l of retried) assert.equal(l['error'], 'ECONNREFUSED');
});

test('reset before any response byte: GET retried elsewhere; POST with a body gets 502 and is not replayed', async (t) => {
  const good = await startBackend('good');
  const bad = await startBackend('bad');
  bad.mode = { kind: 'reset' };
  t.after(() => Promise.all([good.close(), bad.close()]));
  const bulb = await startBulb(t, ['--backend', bad.url, '--backend', good.url]);
  const get = await request(`${bulb.url}/a`);
  assert.equal(get.status, 200);
  assert.equal(get.body, 'good');
  assert.equal(bad.seen.length, 1);
  // Round robin sends some of these to `bad`; each of those must fail with 502, not be replayed.
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const post = await request(`${bulb.url}/c${i}`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
    statuses.push(post.status);
    if (post.status === 502) {
      assert.match(post.body, /^bad gateway/);
      assertNoStack(post.body);
    } else assert.equal(post.body, 'good');
  }
  const failed = statuses.filter((s) => s === 502).length;
  assert.ok(failed >= 1, `some POSTs went to the resetting backend: ${statuses.join(',')}`);
  assert.equal(bad.seen.filter((s) => s.method === 'POST').length, failed, 'each failed POST reached the failing backend once');
  assert.equal(good.seen.filter((s) => s.method === 'POST').length, 4 - failed, 'no POST was replayed on the other backend');
});

test('upstream timeout: no response headers in time gives 504', async (t) => {
  const slow = await startBackend('slow');
  slow.mode = { kind: 'hang' };
  t.after(() => slow.close());
  const bulb = await startBulb(t, ['--backend', slow.url, '--upstream-timeout', '300ms']);
  const started = Date.now();
  const r = await request(`${bulb.url}/`);
  assert.equal(r.status, 504);
  assert.match(r.body, /^gateway timeout/);
  assertNoStack(r.body);
  assert.ok(Date.now() - started >= 290, 'waited for the timeout');
  await bulb.waitForLog((l) => l.msg === 'upstream timeout');
});

test('X-Forwarded-* are set (XFF appended) and hop-by-hop headers are not forwarded', async (t) => {
  const b = await startBackend('echo');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const raw = await rawRequest(
    bulb.url,
    [
      'GET /echo HTTP/1.1',
      'Host: app.example',
      'X-Forwarded-For: 203.0.113.7',
      'X-Forwarded-Proto: https',
      'Connection: keep-alive, x-secret',
      'X-Secret: hop',
      'Keep-Alive: timeout=5',
      'TE: trailers',
      'Trailer: x-checksum',
      'Proxy-Connection: keep-alive',
      'X-End-To-End: kept',
      '',
      '',
    ].join('\r\n'),
  );
  const [head, body] = raw.split('\r\n\r\n') as [string, string];
  assert.match(head, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(body) as { headers: Record<string, string> };
  const h = seen.headers;
  assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http', 'the client cannot claim https');
  assert.equal(h['x-forwarded-host'], 'app.example');
  assert.equal(h['host'], 'app.example', 'the Host header is passed through');
  assert.equal(h['x-end-to-end'], 'kept');
  for (const name of ['x-secret', 'keep-alive', 'te', 'trailer', 'proxy-connection']) assert.equal(h[name], undefined, `${name} must not be forwarded`);
  assert.equal(h['connection'], 'keep-alive', 'bulb speaks keep-alive to the backend, whatever the client said');
  // The backend's own `Keep-Alive: timeout=5` is about bulb's socket, not the client's; bulb states its own.
  assert.doesNotMatch(head, /\r\nkeep-alive: timeout=5\r\n/i);
  // bulb's own idle timeout (--idle-timeout, 75 s by default).
  assert.match(head, /\r\nkeep-alive: timeout=75/i);
  assert.match(head, /\r\nx-backend: echo/i);
  assert.equal(bulb.proc.exitCode, null, 'a Trailer request header does not crash http-proxy');

});

test('a client without X-Forwarded-For gets one with its own address', async (t) => {
  const b = await startBackend('echo');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const r = await request(`${bulb.url}/echo`);
  const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
});

test('request bodies and methods pass through unchanged', async (t) => {
  const b = await startBackend('echo');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const r = await request(`${bulb.url}/echo`, { method: 'PUT', body: 'x'.repeat(100_000) });
  const seen = JSON.parse(r.body) as { body: string };
  assert.equal(seen.body.length, 100_000);
  assert.equal(b.seen[0].method, 'PUT');
});

test('a happy path logs no warning or error: GETs, HEADs, small and streamed bodies, keep-alive and fresh connections', async (t) => {
  const [a, b] = await startBackends(t, 'a', 'b');
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const replies = await Promise.all([
    ...Array.from({ length: 40 }, (_, i) => request(`${bulb.url}/get/${i}`, { agent })),
    ...Array.from({ length: 10 }, () => request(`${bulb.url}/fresh`, { agent: false })),
    ...Array.from({ length: 5 }, () => request(`${bulb.url}/head`, { method: 'HEAD', agent })),
    ...Array.from({ length: 5 }, () => request(`${bulb.url}/echo`, { method: 'POST', body: 'small', agent })),
    // Over --retry-body-limit: streamed to the backend.
    ...Array.from({ length: 3 }, () => request(`${bulb.url}/echo`, { method: 'PUT', body: 'x'.repeat(200_000), agent })),
  ]);
  assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
  // Give asynchronous warnings (a socket error after the response) a moment to show.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(warnings(bulb), [], 'no warn or error log lines');
});

test('connections to backends are reused (keep-alive)', async (t) => {
  const b = await startBackend('ka');
  t.after(() => b.close());
  // One worker: each worker keeps its own upstream connections, and new client connections spread over workers.
  const bulb = await startBulb(t, ['--backend', b.url, '--workers', '1']);
  for (let i = 0; i < 20; i++) assert.equal((await request(`${bulb.url}/${i}`)).status, 200);
  assert.equal(b.seen.length, 20);
  // Each new client connection (agent: false) still shared one upstream socket. (Counted by the socket each
  // HTTP request arrived on, not by accepted connections, which include TCP health checks.)
  const sockets = new Set(b.seen.map((s) => s.socketId));
  assert.equal(sockets.size, 1, `20 sequential requests over ${sockets.size} backend connections`);
});

test('a client that hangs up mid-request frees the upstream request', async (t) => {
  const b = await startBackend('slow');
  b.delayMs = 60_000;
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const req = http.request(`${bulb.url}/slow`, { agent: false });
  req.on('error', () => {});
  req.end();
  await waitFor(async () => (await admin.backends(bulb))[0].activeRequests === 1, 10_000, 'request in flight');
  req.destroy();
  await waitFor(async () => (await admin.backends(bulb))[0].activeRequests === 0, 10_000, 'in-flight count back to 0 after the client left');
  await bulb.waitForLog((l) => l.msg === 'request' && l['status'] === 499);
});

test('Upgrade: h2c (curl --http2, Java HttpClient) is ignored and the request is served over HTTP/1.1', async (t) => {
  const b = await startBackend('echo');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  // What Java's built-in HttpClient sends on an http:// URL by default, with a body.
  const raw = await rawRequest(
    bulb.url,
    [
      'POST /echo HTTP/1.1',
      'Host: app.example',
      'Connection: Upgrade, HTTP2-Settings',
      'Upgrade: h2c',
      'HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA',
      'Content-Length: 5',
      '',
      'hello',
    ].join('\r\n'),
  );
  const [head, body] = raw.split('\r\n\r\n') as [string, string];
  assert.match(head, /^HTTP\/1\.1 200 /, `served over HTTP/1.1, not an empty reply: ${JSON.stringify(raw.slice(0, 200))}`);
  const seen = JSON.parse(body) as { body: string; headers: Record<string, string> };
  assert.equal(seen.body, 'hello');
  for (const name of ['upgrade', 'http2-settings']) assert.equal(seen.headers[name], undefined, `${name} is hop-by-hop and not forwarded`);
  // Any other protocol bulb does not tunnel is served the same way.
  const other = await rawRequest(bulb.url, 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo/2\r\n\r\n');
  assert.match(other, /^HTTP\/1\.1 200 /);
  // And the real clients: curl --http2 offers h2c on http:// and must get the backend's answer.
  // (Asynchronously: the backend runs in this process.)
  const curl = await promisify(execFile)('curl', ['-sS', '--http2', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${bulb.url}/echo`], { timeout: 30_000 });
  assert.equal(curl.stdout, '200 1.1');
  assert.equal(bulb.proc.exitCode, null);
});
