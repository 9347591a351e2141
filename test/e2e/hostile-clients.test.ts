import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { rawRequest, request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait-for.js';

// Requests that try to smuggle a second request past a proxy, or to tie it up. Each is refused by bulb itself,
// and the test backend records that nothing reached it.

const SMUGGLING: Array<[string, string]> = [
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

test('a slow body: a client that stops sending its body is closed after --body-timeout', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--body-timeout', '1s', '--retry-body-limit', '0']);
  const { port } = new URL(bulb.url);
  const started = Date.now();
  const slow = net.connect(Number(port), '127.0.0.1');
  slow.on('error', () => {});
  slow.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes');
  const closedAt = await new Promise<number>((r) => slow.once('close', () => r(Date.now())));
  assert.ok(closedAt - started >= 900, `closed after the idle timeout (${closedAt - started} ms)`);
  await bulb.waitForLog((l) => l.msg === 'client body timeout; closing the connection');
  assert.equal((await request(`${bulb.url}/ok`)).status, 200);
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
