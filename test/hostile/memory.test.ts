import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { rssMb } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait-for.js';

// Memory under hostile clients, measured as bulb's RSS (/proc/<pid>/status).


test('a slow reader of a 200 MB response: bulb buffers almost nothing (backpressure) for 30 s, then drops it at --send-timeout', async (t) => {
  const SIZE = 200 << 20;
  let produced = 0;
  let aborted = false;
  const server = http.createServer((req, res) => {
    if (req.url !== '/big') return void res.end('ok');
    res.writeHead(200, { 'content-length': String(SIZE) });
    const chunk = Buffer.alloc(256 << 10, 120);
    const pump = (): void => {
      while (produced < SIZE) {
        produced += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.once('close', () => (aborted = !res.writableFinished));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const bulb = await startBulb(t, ['--backend', `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, '--health-mode', 'off', '--send-timeout', '35s']);
  await request(`${bulb.url}/ok`);
  const before = rssMb(bulb.pid);
  const c = net.connect(Number(new URL(bulb.url).port), '127.0.0.1');
  c.on('error', () => {});
  t.after(() => c.destroy());
  c.pause(); // reads nothing
  c.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  let peak = before;
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    await new Promise((r) => setTimeout(r, 1000));
    peak = Math.max(peak, rssMb(bulb.pid));
  }
  t.diagnostic(`slow reader, 200 MB response: RSS ${before.toFixed(1)} MB before, peak ${peak.toFixed(1)} MB over 30 s; the backend produced ${(produced / 1048576).toFixed(1)} MB`);
  assert.ok(peak - before < 30, `RSS stayed within 30 MB of the start (${before.toFixed(1)} → peak ${peak.toFixed(1)} MB)`);
  assert.ok(produced < 32 << 20, `the backend was paused, not drained into bulb (${(produced / 1048576).toFixed(1)} MB produced)`);
  await bulb.waitForLog((l) => l.msg === 'client send timeout: the client stopped reading; closing the connection', 20_000);
  await waitFor(() => aborted, 5000, 'the upstream request released');
});

test('10,000 idle keep-alive connections: bounded memory per connection, new clients served, --max-connections holds', async (t) => {
  const N = 10_000;
  const b = await startBackend('b');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--health-mode', 'off', '--max-connections', String(N + 1), '--idle-timeout', '10m']);
  const port = Number(new URL(bulb.url).port);
  await request(`${bulb.url}/ok`);
  const before = rssMb(bulb.pid);
  const idle: net.Socket[] = [];
  t.after(() => idle.forEach((s) => s.destroy()));
  // Each connection sends one request, gets its answer, then stays idle (keep-alive).
  for (let i = 0; i < N; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, N - i) }, () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1');
          idle.push(s);
          s.once('error', reject);
          s.once('data', () => resolve());
          s.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
        }),
      ),
    );
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMb(bulb.pid);
  const perConnKb = ((after - before) * 1024) / N;
  t.diagnostic(`10,000 idle keep-alive connections: RSS ${before.toFixed(1)} MB → ${after.toFixed(1)} MB (${perConnKb.toFixed(1)} KiB per connection)`);
  assert.ok(perConnKb < 40, `at most 40 KiB per idle connection (${perConnKb.toFixed(1)} KiB)`);
  // New clients are served meanwhile (each on a connection of its own, which frees the last slot again).
  for (let i = 0; i < 20; i++) assert.equal((await request(`${bulb.url}/ok`, { agent: false, timeoutMs: 10_000 })).status, 200);
  // The last slot taken, one more connection is closed at once.
  const last = net.connect(port, '127.0.0.1');
  idle.push(last);
  await new Promise((r) => last.once('connect', r));
  await new Promise((r) => setTimeout(r, 300));
  const extra = net.connect(port, '127.0.0.1');
  extra.on('error', () => {});
  let got = '';
  extra.on('data', (d: Buffer) => (got += d.toString()));
  extra.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => extra.once('close', r));
  assert.equal(got, '', 'past --max-connections the connection is dropped');
  assert.equal(bulb.proc.exitCode, null);
});
