import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { rssMb } from '../helpers/proc.js';

// Fuzzing the traffic port: fast-check generates request bytes (methods, targets, header names and values,
// framing: Content-Length, chunked, both, garbage) for a bounded time. bulb must never crash, must answer each
// request or close the connection (never hang), and its memory must be flat afterwards.

const TOKEN = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const ANY = fc.string({ unit: 'binary', maxLength: 40 });
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'), TOKEN, ANY);
const target = fc.oneof(fc.constantFrom('/', '*', '/a?b=c', 'http://127.0.0.9/x', '//x', '/%00', '/../../etc/passwd'), fc.webPath(), ANY);
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'http/1.1', '');
const header = fc.tuple(fc.oneof(TOKEN, ANY, fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Host', 'Connection', 'Upgrade', 'Expect')), fc.oneof(ANY, fc.constantFrom('chunked', '0', '5', '-1', '99999999999', 'close', 'keep-alive', 'websocket', '100-continue', 'gzip, chunked')));
const body = fc.oneof(fc.constant(''), ANY, fc.constantFrom('0\r\n\r\n', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', 'hello'));
const eol = fc.constantFrom('\r\n', '\n', '\r');
const requestBytes = fc
  .tuple(method, target, version, fc.array(header, { maxLength: 8 }), eol, body)
  .map(([m, tgt, v, hs, nl, b]) => Buffer.from(`${m} ${tgt} ${v}${nl}${hs.map(([k, val]) => `${k}: ${val}${nl}`).join('')}${nl}${b}`, 'latin1'));

/** Sends `bytes`, then half-closes; resolves with what came back once bulb closes (or 'hang' after 10 s). */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(`hang: ${JSON.stringify(got.slice(0, 80))}`);
    }, 10_000);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.once('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.end(bytes);
  });
}


test('fuzzed request bytes: no crash, every connection answered or closed, memory flat afterwards', async (t) => {
  const b = await startBackend('b');
  t.after(() => b.close());
  // Short timeouts so a request that leaves its framing open ends quickly.
  const bulb = await startBulb(t, ['--backend', b.url, '--header-timeout', '2s', '--body-timeout', '1s', '--request-timeout', '3s', '--health-mode', 'off']);
  const port = Number(new URL(bulb.url).port);
  const round = async (ms: number): Promise<number> => {
    const until = Date.now() + ms;
    let runs = 0;
    while (Date.now() < until) {
      const batch = fc.sample(requestBytes, 25);
      const replies = await Promise.all(batch.map((bytes) => exchange(port, bytes)));
      replies.forEach((r, i) => assert.ok(!r.startsWith('hang'), `no answer and no close for ${JSON.stringify(batch[i].toString('latin1'))}: ${r}`));
      for (const r of replies) if (r !== '') assert.match(r, /^HTTP\/1\.[01] \d{3} /, 'an answer is an HTTP response');
      runs += batch.length;
    }
    return runs;
  };
  await round(10_000); // warm-up: JIT, pools, buffers
  const rssWarm = rssMb(bulb.pid);
  const runs = await round(40_000);
  await new Promise((r) => setTimeout(r, 4000)); // let the last timeouts fire
  const rssAfter = rssMb(bulb.pid);
  t.diagnostic(`${runs} fuzzed requests; RSS ${rssWarm.toFixed(1)} MB after warm-up, ${rssAfter.toFixed(1)} MB after`);
  assert.equal(bulb.proc.exitCode, null, 'bulb still runs');
  assert.equal((await request(`${bulb.url}/ok`)).status, 200);
  assert.ok(rssAfter - rssWarm < 25, `memory flat: ${rssWarm.toFixed(1)} → ${rssAfter.toFixed(1)} MB`);
  assert.ok(!bulb.logs.some((l) => l.level === 'raw' || (l.level as unknown) === 50 || l.level === 'error' || l.level === 'fatal'), 'no error lines');
});
