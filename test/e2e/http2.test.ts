import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startBackends } from '../helpers/backend.js';
import { rawRequest } from '../helpers/http.js';
import { startBulb, warnings } from '../helpers/bulb.js';
import { startH2Backend } from '../helpers/h2.js';
import { tmpDir, backendFile } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

/** An HTTP/1.1 request that also collects the response's trailers. */
function get1(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, trailers: res.trailers }));
      })
      .on('error', reject);
  });
}

test('h2c:// backends: an HTTP/1.1 client reaches an HTTP/2-only backend, trailers included, over one connection', async (t) => {
  const a = await startH2Backend(t, 'a');
  // No TCP health probes: they would count as connections too.
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  for (let i = 0; i < 5; i++) {
    const r = await get1(`${bulb.url}/x${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, `a /x${i} `);
    assert.equal(r.headers['x-backend'], 'a');
    assert.equal(r.trailers['x-trailer'], 'done-a', 'the HTTP/2 trailer reaches the HTTP/1.1 client');
  }
  const s = a.seen[0];
  assert.equal(s.headers[':scheme'], 'http');
  assert.equal(s.headers[':authority'], new URL(bulb.url).host, "the client's Host becomes :authority");
  assert.equal(s.headers['x-forwarded-proto'], 'http');
  assert.equal(s.headers.connection, undefined);
  assert.equal(a.sessions, 1, 'the five requests share one HTTP/2 connection');
  const status = await get1(`${bulb.url}/status/404`);
  assert.equal(status.status, 404);
  assert.deepEqual(warnings(bulb), []);
});

test('h2c:// in a backend file; a bad scheme names the allowed ones', async (t) => {
  const a = await startH2Backend(t, 'a');
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  await writeFile(join(dir, 'bad.json'), backendFile('h2://127.0.0.1:1'));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  await waitFor(async () => (await get1(`${bulb.url}/`)).status === 200, 10_000);
  const problem = await bulb.waitForLog((l) => JSON.stringify(l).includes('only http, https and h2c are allowed'));
  assert.ok(problem);
});

const run = promisify(execFile);

test('HTTP/2 clients with prior knowledge share the port with HTTP/1.1: curl and nghttp; every stream is balanced on its own', async (t) => {
  const backends = await startBackends(t, 'a', 'b', 'c');
  const bulb = await startBulb(t, [...backends.flatMap((b) => ['--backend', b.url]), '--health-mode', 'off']);
  const curl = await run('curl', ['-sS', '--http2-prior-knowledge', '-o', '-', '-w', '\n%{http_version} %{http_code}', `${bulb.url}/hello`]);
  assert.match(curl.stdout, /^[abc]\n2 200$/, curl.stdout);
  const post = await run('curl', ['-sS', '--http2-prior-knowledge', '-d', 'payload', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${bulb.url}/up`]);
  assert.equal(post.stdout, '2 200');
  // The same port still speaks HTTP/1.1.
  const h1 = await run('curl', ['-sS', '--http1.1', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${bulb.url}/one`]);
  assert.equal(h1.stdout, '1.1 200');

  // nghttp: 30 requests multiplexed on one connection land on all three backends, 10 each (round robin per stream).
  for (const b of backends) b.seen.length = 0;
  const ng = await run('nghttp', ['-n', '-s', '-m', '30', `${bulb.url}/multi`]);
  assert.match(ng.stdout, /200/);
  assert.deepEqual(backends.map((b) => b.seen.length), [10, 10, 10], 'one connection, per-stream balancing');
  const seen = backends[0].seen[0];
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers.host, new URL(bulb.url).host, ':authority becomes Host for an HTTP/1.1 backend');
  assert.equal(seen.headers.connection, 'keep-alive', 'no HTTP/2 artefacts, only undici’s own connection header');
  assert.deepEqual(warnings(bulb), []);
});

test('HTTP/2 client to an h2c:// backend: no backend is a plain 503; nghttp sees the backend’s trailer', async (t) => {
  const empty = await startBulb(t, []);
  const none = await run('curl', ['-sS', '--http2-prior-knowledge', '-o', '-', '-w', '\n%{http_code}', `${empty.url}/x`]);
  assert.equal(none.stdout, 'no backend available\n\n503');
  const a = await startH2Backend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  const ng = await run('nghttp', ['-v', `${bulb.url}/t`]);
  assert.match(ng.stdout, /a \/t /);
  assert.match(ng.stdout, /x-trailer: done-a/, 'the trailer frame is forwarded');
  assert.equal(a.seen[0].headers.connection, undefined);
});

test('hop-by-hop rules hold across HTTP versions: nothing connection-specific reaches an HTTP/2 peer, either way', async (t) => {
  // HTTP/1.1 client → h2c backend: the client's hop-by-hop headers (and any it names in Connection) are dropped,
  // a chunked body arrives whole, and `te: trailers` is the one TE that goes through.
  const a = await startH2Backend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  const { port } = new URL(bulb.url);
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () =>
      s.write(
        'POST /up HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n' +
          'TE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      ),
    );
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\r\n0\r\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
  const seen = a.seen.at(-1)!;
  assert.equal(seen.body, 'hello');
  for (const h of ['connection', 'x-hop', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te']) assert.equal(seen.headers[h], undefined, h);
  // HTTP/2 client → h2c backend: `te: trailers` (which gRPC requires) is passed on.
  const s1 = http2.connect(bulb.url);
  s1.on('error', () => {});
  t.after(() => s1.close());
  const r1 = s1.request({ ':path': '/te', te: 'trailers' });
  r1.resume();
  await new Promise((r) => r1.on('end', r));
  assert.equal(a.seen.at(-1)!.path, '/te');
  assert.equal(a.seen.at(-1)!.headers['te'], 'trailers');

  // HTTP/2 client → HTTP/1.1 backend answering with hop-by-hop headers: the client gets none of them (node:http2
  // would refuse to send them, so this fails as a 502 if one slips through).
  let backendSaw: http.IncomingHttpHeaders = {};
  const backend = http.createServer((req, res) => {
    backendSaw = req.headers;
    res.writeHead(200, { Connection: 'keep-alive, X-Drop', 'X-Drop': '1', 'Keep-Alive': 'timeout=5', 'Proxy-Connection': 'keep-alive', 'X-Kept': 'yes', 'Content-Length': '2' });
    res.end('ok');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  t.after(() => backend.close());
  const b2 = await startBulb(t, ['--backend', `http://127.0.0.1:${(backend.address() as net.AddressInfo).port}`, '--health-mode', 'off']);
  const session = http2.connect(b2.url);
  session.on('error', () => {});
  t.after(() => session.close());
  const req = session.request({ ':path': '/', te: 'trailers' });
  const headers = await new Promise<http2.IncomingHttpHeaders>((r) => req.on('response', r));
  req.resume();
  assert.equal(headers[':status'], 200);
  assert.equal(backendSaw['te'], undefined, 'TE is hop-by-hop on HTTP/1.1');
  assert.equal(headers['x-kept'], 'yes');
  for (const h of ['connection', 'x-drop', 'keep-alive', 'proxy-connection']) assert.equal(headers[h], undefined, h);
});

test('HTTP/2 client streaming a body without content-length to an HTTP/1.1 backend: it arrives whole (chunked), the response comes back', async (t) => {
  const [web] = await startBackends(t, 'web');
  const bulb = await startBulb(t, ['--backend', web.url, '--health-mode', 'off']);
  const session = http2.connect(bulb.url);
  session.on('error', () => {});
  t.after(() => session.close());
  const req = session.request({ ':method': 'POST', ':path': '/echo' });
  for (let i = 0; i < 20; i++) req.write(Buffer.alloc(10_000, 'a'));
  req.end();
  const status = await new Promise<number>((r) => req.on('response', (h) => r(Number(h[':status']))));
  let body = '';
  req.setEncoding('utf8').on('data', (c: string) => (body += c));
  await new Promise((r) => req.on('end', r));
  assert.equal(status, 200);
  const echoed = JSON.parse(body) as { body: string; headers: Record<string, string> };
  assert.equal(echoed.body.length, 200_000);
  assert.equal(echoed.headers['transfer-encoding'], 'chunked');
});

test('HTTP/2: a buffered body that stops arriving gets 408 after --body-timeout; the connection keeps serving', async (t) => {
  const [web] = await startBackends(t, 'web');
  const bulb = await startBulb(t, ['--backend', web.url, '--health-mode', 'off', '--body-timeout', '500ms']);
  const session = http2.connect(bulb.url);
  session.on('error', () => {});
  t.after(() => session.close());
  const req = session.request({ ':method': 'POST', ':path': '/slow', 'content-length': '100' });
  req.write('only ten b');
  const started = Date.now();
  const status = await new Promise<number>((r) => req.on('response', (h) => r(Number(h[':status']))));
  req.resume();
  assert.equal(status, 408);
  assert.ok(Date.now() - started >= 400, 'not before the timeout');
  assert.equal(web.seen.filter((r) => r.url === '/slow').length, 0, 'the partial body never reached the backend');
  const ok = session.request({ ':path': '/fine' });
  ok.resume();
  assert.equal(await new Promise<number>((r) => ok.on('response', (h) => r(Number(h[':status'])))), 200);
});

test('h2c backends: a stream the backend refuses (REFUSED_STREAM) is retried even for a POST; one it reset after taking it is not', async (t) => {
  const a = await startH2Backend(t, 'a');
  const b = await startH2Backend(t, 'b');
  a.mode = 'refuse';
  // One worker: the exact 3-of-6 shares below follow one round-robin rotation (each worker has its own).
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url, '--health-mode', 'off', '--outlier-consecutive', '0', '--workers', '1']);
  const post = async (): Promise<{ status: number; body: string }> => {
    const session = http2.connect(bulb.url);
    session.on('error', () => {});
    try {
      const req = session.request({ ':method': 'POST', ':path': '/call', 'content-type': 'application/octet-stream' });
      req.end('payload');
      const status = await new Promise<number>((r) => req.on('response', (h) => r(Number(h[':status']))));
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      await new Promise((r) => req.on('end', r));
      return { status, body };
    } finally {
      session.close();
    }
  };
  const refused = await Promise.all(Array.from({ length: 6 }, post));
  assert.deepEqual(refused.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.ok(refused.every((r) => r.body === 'b /call payload'), 'served by b, with the whole body');
  await waitFor(() => bulb.logs.filter((l) => l.msg === 'request').length >= 6, 5_000);
  const retried = bulb.logs.filter((l) => l.msg === 'retrying on another backend');
  assert.ok(retried.length >= 3 && retried.every((l) => l['error'] === 'H2_REFUSED_STREAM'), JSON.stringify(retried));

  // Reset (CANCEL) after the backend took the stream: it may have acted on it, so a POST is not sent again.
  a.mode = 'reset';
  const before = b.seen.length;
  const reset = await Promise.all(Array.from({ length: 6 }, post));
  assert.equal(reset.filter((r) => r.status === 502).length, 3, reset.map((r) => r.status).join(','));
  assert.equal(b.seen.length - before, 3, 'b got only its own share');
});

test('a WebSocket upgrade to an h2c:// backend (HTTP/2 only) is a 502, and bulb keeps serving', async (t) => {
  const a = await startH2Backend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  const reply = await rawRequest(
    bulb.url,
    'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  assert.match(reply, /^HTTP\/1\.1 502 /);
  assert.equal((await get1(`${bulb.url}/after`)).status, 200);
  assert.equal(bulb.proc.exitCode, null);
});
