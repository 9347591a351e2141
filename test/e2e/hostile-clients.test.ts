import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { rawRequest, request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait-for.js';

// Requests that try to smuggle a second request past a proxy, or to tie it up. Each is refused by bulb itself,
// and the test backend records that nothing reached it.

const SMUGGLING: [string, string][] = [
  ['Content-Length and Transfer-Encoding together', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['two different Content-Length headers', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 7\r\n\r\nabcdefg'],
  ['a malformed chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ['an obs-fold header line', 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n'],
  ['a bare LF line ending', 'GET / HTTP/1.1\nHost: x\n\n'],
  ['a Transfer-Encoding other than chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, identity\r\n\r\nabc'],
  ['a space before the header colon', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello'],
];

test('request smuggling attempts are refused with 400 and never forwarded', async (t) => {
  const b = await startBackend('recorder');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  for (const [what, raw] of SMUGGLING) {
    const reply = await rawRequest(bulb.url, raw, 500);
    assert.match(reply, /^HTTP\/1\.1 400 /, `${what}: ${JSON.stringify(reply.slice(0, 40))}`);
  }
  assert.deepEqual(b.seen, [], 'nothing reached the backend');
  // bulb is still up and serving.
  assert.equal((await request(`${bulb.url}/ok`)).body, 'recorder');
});

test('oversized headers and URLs get 431, not a crash', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const big = await rawRequest(bulb.url, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 500);
  assert.match(big, /^HTTP\/1\.1 431 /);
  const longUrl = await rawRequest(bulb.url, `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 500);
  assert.match(longUrl, /^HTTP\/1\.1 (431|414) /);
  assert.equal(b.seen.length, 0);
  assert.equal((await request(`${bulb.url}/ok`)).status, 200);
});

test('slowloris: a client that never finishes its headers is closed after --header-timeout; others are served meanwhile', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--header-timeout', '1s']);
  const { port } = new URL(bulb.url);
  const started = Date.now();
  const slow = net.connect(Number(port), '127.0.0.1');
  slow.on('error', () => {});
  slow.write('GET / HTTP/1.1\r\nHost: x\r\nX-Drip: ');
  const drip = setInterval(() => slow.writable && slow.write('a'), 200);
  t.after(() => clearInterval(drip));
  let reply = '';
  slow.on('data', (c: Buffer) => (reply += c.toString()));
  const closed = new Promise<number>((r) => slow.once('close', () => r(Date.now())));
  // Meanwhile a normal client is served.
  assert.equal((await request(`${bulb.url}/ok`)).status, 200);
  const closedAt = await closed;
  clearInterval(drip);
  assert.ok(closedAt - started >= 900, `closed after the timeout (${closedAt - started} ms)`);
  assert.ok(closedAt - started < 10_000, 'and not much later');
  assert.match(reply, /^HTTP\/1\.1 408 /);
  assert.equal(b.seen.length, 1, 'only the normal request reached the backend');
});

/** A raw client: what it received, when it saw the server's FIN, and when its socket closed. */
interface RawClient {
  readonly socket: net.Socket;
  received(): string;
  readonly ended: Promise<number>;
  readonly closed: Promise<number>;
}

function rawClient(port: number, opts: { allowHalfOpen?: boolean } = {}): RawClient {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
  socket.on('error', () => {});
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  return {
    socket,
    received: () => got,
    ended: new Promise((r) => socket.once('end', () => r(Date.now()))),
    closed: new Promise((r) => socket.once('close', () => r(Date.now()))),
  };
}

/** Writes `next(i)` every `everyMs` until the socket closes (or `max` writes); returns a stop function. */
function drip(c: RawClient, everyMs: number, next: (i: number) => string): () => void {
  let i = 0;
  const timer = setInterval(() => {
    if (c.socket.writable && !c.socket.destroyed) c.socket.write(next(i++));
  }, everyMs);
  c.socket.once('close', () => clearInterval(timer));
  return () => clearInterval(timer);
}

test('header drip: 40 clients sending one more header line at a time get 408 at --header-timeout, first and keep-alive requests alike; others are served', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--header-timeout', '2s']);
  const port = Number(new URL(bulb.url).port);
  const clients: { c: RawClient; startedAt: number; keepAlive: boolean }[] = [];
  t.after(() => clients.forEach(({ c }) => c.socket.destroy()));
  for (let i = 0; i < 40; i++) {
    const keepAlive = i % 2 === 1;
    const c = rawClient(port);
    await new Promise((r) => c.socket.once('connect', r));
    if (keepAlive) {
      // A complete first request, answered; the second one then drips.
      c.socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => c.received().includes('\r\n\r\nb'), 5000, 'first request answered');
    }
    const startedAt = Date.now();
    c.socket.write('GET /drip HTTP/1.1\r\nHost: x\r\n');
    // Never silent for long: a new header line every 300 ms, far below the timeout.
    drip(c, 300, (n) => `X-Drip-${n}: a\r\n`);
    clients.push({ c, startedAt, keepAlive });
  }
  // Normal clients are served meanwhile.
  const deadline = Date.now() + 2500;
  let served = 0;
  while (Date.now() < deadline) {
    assert.equal((await request(`${bulb.url}/ok`)).status, 200);
    served++;
  }
  for (const { c, startedAt, keepAlive } of clients) {
    const closedAt = await c.closed;
    const after = closedAt - startedAt;
    assert.ok(after >= 1900, `closed after the timeout (${after} ms)`);
    assert.ok(after < 6000, `and not much later (${after} ms, ${keepAlive ? 'keep-alive' : 'first'} request)`);
    assert.match(c.received(), /HTTP\/1\.1 408 /, keepAlive ? 'the keep-alive request gets 408' : 'the first request gets 408');
  }
  assert.ok(b.seen.every((r) => r.url !== '/drip'), 'no dripped request reached the backend');
  assert.equal(b.seen.filter((r) => r.url === '/ok').length, served);
});

test('a timed-out connection is gone: clients that never close their side do not keep their --max-connections slots', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--header-timeout', '1s', '--max-connections', '10']);
  const port = Number(new URL(bulb.url).port);
  // allowHalfOpen: these clients never send their FIN, even after bulb's 408.
  const stale = Array.from({ length: 10 }, () => rawClient(port, { allowHalfOpen: true }));
  t.after(() => stale.forEach((c) => c.socket.destroy()));
  stale.forEach((c, i) => c.socket.write(i % 2 ? 'GET / HTTP/1.1\r\nHost: x\r\n' : ''));
  await Promise.all(stale.map((c) => c.ended));
  for (const c of stale) assert.match(c.received(), /^HTTP\/1\.1 408 /);
  // Every slot is free again although no stale client closed its side: bulb closed the connections fully.
  const replies = await Promise.all(Array.from({ length: 5 }, () => request(`${bulb.url}/ok`, { agent: false, timeoutMs: 5000 })));
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200]);
  // And the stale sockets are closed at bulb's end: writing to them fails.
  for (const c of stale) {
    await new Promise<void>((resolve) => {
      c.socket.once('error', () => resolve());
      c.socket.once('close', () => resolve());
      c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => c.socket.write('x'), 100);
    });
  }
});

for (const [label, extra] of [
  ['streamed', ['--retry-body-limit', '0']],
  ['buffered for retries', []],
] as const) {
  test(`body drip (${label}): a body sent a byte every 200 ms ends at --request-timeout with 408; the upstream request is released`, async (t) => {
    const b = await startBackend('b');
    t.after(() => b.close());
    const bulb = await startBulb(t, ['--backend', b.url, '--header-timeout', '2s', '--body-timeout', '1s', '--request-timeout', '3s', ...extra]);
    const c = rawClient(Number(new URL(bulb.url).port));
    t.after(() => c.socket.destroy());
    const started = Date.now();
    c.socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
    // Each byte restarts --body-timeout (1 s); only the whole-request bound can end this.
    drip(c, 200, () => 'a');
    const closedAt = await c.closed;
    assert.ok(closedAt - started >= 2900, `closed at the request timeout (${closedAt - started} ms)`);
    assert.ok(closedAt - started < 8000, `not much later (${closedAt - started} ms)`);
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
    await bulb.waitForLog((l) => l.msg === 'client request timeout (--request-timeout); closing the connection');
    if (label === 'streamed') await waitFor(() => b.aborted === 1, 5000, 'the upstream request released');
    // A buffered body is sent only once complete: the backend never saw this one.
    else assert.equal(b.seen.filter((r) => r.url === '/upload').length, 0);
    assert.equal((await request(`${bulb.url}/ok`)).status, 200);
  });
}

test('a body that stops arriving gets 408 after --body-timeout (not a silent close), and the connection is closed fully', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--body-timeout', '1s', '--retry-body-limit', '0']);
  const c = rawClient(Number(new URL(bulb.url).port), { allowHalfOpen: true });
  t.after(() => c.socket.destroy());
  const started = Date.now();
  c.socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes');
  const endedAt = await c.ended;
  assert.ok(endedAt - started >= 900, `closed after the body timeout (${endedAt - started} ms)`);
  assert.match(c.received(), /^HTTP\/1\.1 408 /);
  await bulb.waitForLog((l) => l.msg === 'client body timeout; closing the connection');
  await waitFor(() => b.aborted === 1, 5000, 'the upstream request released');
  assert.equal((await request(`${bulb.url}/ok`)).status, 200);
});

test('an idle keep-alive connection is closed after --idle-timeout', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--idle-timeout', '1s']);
  const c = rawClient(Number(new URL(bulb.url).port));
  t.after(() => c.socket.destroy());
  c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => c.received().includes('\r\n\r\nb'), 5000, 'answered');
  const answeredAt = Date.now();
  const closedAt = await c.closed;
  assert.match(c.received(), /^HTTP\/1\.1 200 [\s\S]*keep-alive/i, 'the response kept the connection alive');
  assert.ok(closedAt - answeredAt >= 900, `closed after the idle timeout (${closedAt - answeredAt} ms)`);
  assert.ok(closedAt - answeredAt < 5000, `not much later (${closedAt - answeredAt} ms)`);
});

test('a slow reader: a client that reads nothing is disconnected after --send-timeout and its upstream request released', async (t) => {
  // A backend streaming 64 MiB with backpressure; it records when its response was closed under it.
  let upstreamClosed = false;
  let sent = 0;
  const big = http.createServer((req, res) => {
    if (req.url !== '/big') return void res.end('ok');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 << 20) });
    const chunk = Buffer.alloc(64 << 10, 97);
    const pump = (): void => {
      while (sent < 64 << 20) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.once('close', () => (upstreamClosed = !res.writableFinished));
    pump();
  });
  await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
  t.after(() => big.close());
  big.unref();
  const bulb = await startBulb(t, ['--backend', `http://127.0.0.1:${(big.address() as net.AddressInfo).port}`, '--send-timeout', '2s']);
  const c = rawClient(Number(new URL(bulb.url).port));
  t.after(() => c.socket.destroy());
  c.socket.pause();
  c.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  const started = Date.now();
  await bulb.waitForLog((l) => l.msg === 'client send timeout: the client stopped reading; closing the connection', 15_000);
  const after = Date.now() - started;
  assert.ok(after >= 1900, `not before the send timeout (${after} ms)`);
  await waitFor(() => upstreamClosed, 5000, 'the upstream response was aborted, not left streaming');
  assert.ok(sent < 64 << 20, `the backend was held back by backpressure (${sent} bytes produced)`);
  // The client, reading now, gets a cut-off response, never a clean-looking short one.
  let bytes = 0;
  c.socket.on('data', (d: Buffer) => (bytes += d.length));
  c.socket.resume();
  await c.closed;
  assert.ok(bytes < 64 << 20, `the response was cut off (${bytes} bytes)`);
  assert.equal((await request(`${bulb.url}/ok`, { timeoutMs: 20_000 })).status, 200);
});

test('--max-connections: connections past the limit are closed at once, not queued', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--max-connections', '3']);
  const { port } = new URL(bulb.url);
  const held: net.Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const s = net.connect(Number(port), '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    held.push(s);
  }
  // Give the server a moment to count them.
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  const extra = net.connect(Number(port), '127.0.0.1');
  extra.on('error', () => {});
  extra.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  let got = '';
  extra.on('data', (c: Buffer) => (got += c.toString()));
  await new Promise((r) => extra.once('close', r));
  assert.equal(got, '', 'no response: the connection was dropped');
  assert.ok(Date.now() - started < 2000, 'dropped fast');
  held.forEach((s) => s.destroy());
  await waitFor(async () => (await request(`${bulb.url}/ok`).catch(() => ({ status: 0 }))).status === 200, 5000, 'serving again once connections free up');
});

test('a Host header or absolute-form request naming another host is still served by the pool', async (t) => {
  const b = await startBackend('pool-member');
  t.after(() => b.close());
  // A listener standing in for "somewhere else": it must never be contacted.
  const elsewhere = await startBackend('elsewhere', { host: '127.0.0.9' });
  t.after(() => elsewhere.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const viaHost = await rawRequest(bulb.url, `GET / HTTP/1.1\r\nHost: ${elsewhere.host}:${elsewhere.port}\r\nConnection: close\r\n\r\n`);
  assert.match(viaHost, /pool-member$/);
  const absolute = await rawRequest(bulb.url, `GET http://${elsewhere.host}:${elsewhere.port}/steal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(absolute, /^HTTP\/1\.1 200 /);
  assert.match(absolute, /pool-member$/);
  assert.equal(elsewhere.seen.length, 0);
  assert.equal(elsewhere.connections, 0);
});
