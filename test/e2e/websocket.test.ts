import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { rawRequest } from '../helpers/http.js';
import { backendFile, tmpDir } from '../helpers/tmpdir.js';
import { openWs, sendAndReceive, startWsEcho } from '../helpers/ws.js';

// WebSocket through bulb: the upgrade is tunnelled to a backend, a malformed one is refused, and a tunnel to a
// drained backend ends at the drain timeout.

test('WebSocket upgrades are proxied both ways', async (t) => {
  const echo = await startWsEcho(t);
  const bulb = await startBulb(t, ['--backend', echo.url]);
  const ws = await openWs(t, `${bulb.url}/socket`);
  assert.equal(await sendAndReceive(ws, 'hello'), 'echo:hello');
});

test('a malformed WebSocket upgrade gets a 4xx, never silence; nothing reaches the backend', async (t) => {
  const b = await startBackend('echo');
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url]);
  const ws = (extra: string[], method = 'GET') =>
    rawRequest(bulb.url, [`${method} /socket HTTP/1.1`, 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket', ...extra, '', ''].join('\r\n'));
  const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';
  const noKey = await ws(['Sec-WebSocket-Version: 13']);
  assert.match(noKey, /^HTTP\/1\.1 400 /, noKey);
  assert.match(noKey, /Sec-WebSocket-Key/);
  const badKey = await ws(['Sec-WebSocket-Key: short', 'Sec-WebSocket-Version: 13']);
  assert.match(badKey, /^HTTP\/1\.1 400 /, badKey);
  const post = await ws([key, 'Sec-WebSocket-Version: 13'], 'POST');
  assert.match(post, /^HTTP\/1\.1 400 /, post);
  const version = await ws([key, 'Sec-WebSocket-Version: 8']);
  assert.match(version, /^HTTP\/1\.1 426 /, version);
  assert.match(version, /\r\nSec-WebSocket-Version: 13\r\n/i);
  assert.equal(b.seen.length, 0, 'no refused handshake reached the backend');
});

test('a drained backend\'s open WebSocket is closed when the drain timeout passes, and the backend leaves', async (t) => {
  const echo = await startWsEcho(t, '127.0.0.2');
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'ws.json'), backendFile(echo.url));
  const bulb = await startBulb(t, ['--watch-dir', dir, '--drain-timeout', '1s']);
  const ws = await openWs(t, `${bulb.url}/socket`);
  const closed = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
  const removedAt = Date.now();
  await unlink(join(dir, 'ws.json'));
  // The tunnel still works while draining.
  await bulb.waitForLog((l) => l.msg === 'pool changed' && (l['drained'] as string[]).length === 1);
  assert.equal(await sendAndReceive(ws, 'still there?'), 'echo:still there?');
  const closedAt = await closed;
  assert.ok(closedAt - removedAt >= 900, 'closed at the drain timeout, not before');
  await bulb.waitForLog((l) => l.msg === 'backend removed at drain timeout');
});
