import { test } from 'node:test';
import assert from 'node:assert/strict';
import { responseHeaderList } from '../../../src/proxy/headers.js';

const raw = (...pairs: string[]): Buffer[] => pairs.map((s) => Buffer.from(s, 'latin1'));

test('response headers keep the backend’s name case and order, repeated headers stay separate lines', () => {
  const out = responseHeaderList(raw('Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Trace', 'abc', 'Set-Cookie', 'b=2'), false);
  assert.deepEqual(out, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Trace', 'abc', 'Set-Cookie', 'b=2']);
});

test('hop-by-hop response headers are dropped whatever their case, Transfer-Encoding is left to Node', () => {
  const out = responseHeaderList(
    raw('CONNECTION', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Trailer', 'x', 'Upgrade', 'h2c', 'Proxy-Authenticate', 'Basic', 'TE', 'trailers', 'Server', 'nginx', 'Expires', '0'),
    false,
  );
  assert.deepEqual(out, ['Server', 'nginx', 'Expires', '0']);
});

test('headers the backend names in Connection are dropped, in any case; close and keep-alive tokens are not names', () => {
  const out = responseHeaderList(raw('Connection', 'close, X-Hop , keep-alive', 'x-hop', '1', 'X-Keep', '2', 'Close', 'not-a-hop'), false);
  assert.deepEqual(out, ['X-Keep', '2', 'Close', 'not-a-hop']);
});

test('a client that asked to close gets Connection: close', () => {
  assert.deepEqual(responseHeaderList(raw('Content-Length', '0'), true), ['Content-Length', '0', 'connection', 'close']);
});
