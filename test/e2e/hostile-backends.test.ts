import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import * as admin from '../helpers/admin.js';
import { startBulb, type RunningBulb } from '../helpers/bulb.js';
import { waitFor } from '../helpers/wait-for.js';

// Backends that answer with broken HTTP. The client gets 502 when no response byte was sent yet, or an aborted
// response (never a clean-looking truncated one); the backend's failure is counted; bulb keeps serving.

/** A raw TCP "backend" that reads a request head and writes `reply` (then closes when `close`). */
async function brokenBackend(t: import('node:test').TestContext, reply: string | Buffer, close = true): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    let head = '';
    s.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      head = '';
      s.write(reply);
      if (close) s.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const failuresOf = async (bulb: RunningBulb) => (await admin.backends(bulb))[0];

/** GETs through a fresh connection; the outcome a client sees: a status and body, or the error that cut it off. */
function get(url: string): Promise<{ status: number; body: string } | { error: string; status?: number }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message, status: res.statusCode! }));
      res.on('aborted', () => resolve({ error: 'aborted', status: res.statusCode! }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.setTimeout(20_000, () => req.destroy(new Error('client timeout')));
  });
}

const BEFORE_ANY_BYTE: [string, string][] = [
  ['an invalid status line', 'HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['a malformed header line', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nNo colon here\r\n\r\nok'],
  ['Content-Length and Transfer-Encoding together', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
  ['response headers over the 16 KiB limit', `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\nok`],
  ['a close before any response', ''],
];

for (const [what, reply] of BEFORE_ANY_BYTE) {
  test(`a backend sending ${what}: the client gets 502 and the failure is counted`, async (t) => {
    const url = await brokenBackend(t, reply);
    const bulb = await startBulb(t, ['--backend', url, '--health-mode', 'off']);
    const r = await get(`${bulb.url}/x`);
    assert.deepEqual(r, { status: 502, body: 'bad gateway: the backend failed before responding\n' });
    const f = await failuresOf(bulb);
    assert.equal(f.failures, 1, `counted once (${f.lastError})`);
    assert.equal(bulb.proc.exitCode, null, 'bulb still runs');
  });
}

const MID_BODY: [string, string][] = [
  ['a bad chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n'],
  ['a close in the middle of a Content-Length body', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b'],
  ['a close in the middle of a chunked body', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'],
];

for (const [what, reply] of MID_BODY) {
  test(`a backend sending ${what}: the client's response is aborted, not ended cleanly, and the failure is counted`, async (t) => {
    const url = await brokenBackend(t, reply);
    const bulb = await startBulb(t, ['--backend', url, '--health-mode', 'off']);
    const r = await get(`${bulb.url}/x`);
    assert.ok('error' in r, `the client sees the response cut off, not a clean end: ${JSON.stringify(r).slice(0, 200)}`);
    assert.equal(r.status, 200, 'the status line had gone out');
    await waitFor(async () => (await failuresOf(bulb)).failures === 1, 5000, 'the failure counted');
    assert.equal(bulb.proc.exitCode, null, 'bulb still runs');
  });
}

test('a hundred broken responses in a row: each aborted and counted, nothing left in flight', async (t) => {
  const url = await brokenBackend(t, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort');
  const bulb = await startBulb(t, ['--backend', url, '--health-mode', 'off', '--outlier-consecutive', '0']);
  const results = await Promise.all(Array.from({ length: 100 }, () => get(`${bulb.url}/x`)));
  assert.ok(results.every((r) => 'error' in r), 'every one aborted');
  await waitFor(async () => (await failuresOf(bulb)).failures === 100, 5000, 'each counted');
  assert.equal((await admin.backends(bulb))[0].activeRequests, 0, 'nothing left in flight');
});
