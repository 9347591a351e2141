import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { startBulb, type RunningBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { answers, count } from '../helpers/tally.js';
import { backendFile, tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

// End-to-end: each --strategy name is wired to its algorithm. The algorithms' edge cases are unit-tested in
// test/unit/strategies; here real requests go through a real bulb.

async function pool(t: import('node:test').TestContext, weights: number[], extra: string[]): Promise<{ bulb: RunningBulb; list: TestBackend[] }> {
  const names = ['a', 'b', 'c', 'd'];
  const list = await startBackends(t, ...names.slice(0, weights.length));
  const dir = await tmpDir(t);
  // Files sort in name order, which is the pool's order.
  await Promise.all(list.map((b, i) => writeFile(join(dir, `${i}-${b.name}.json`), backendFile(b.url, { weight: weights[i] }))));
  const bulb = await startBulb(t, ['--watch-dir', dir, ...extra]);
  return { bulb, list };
}

const sequence = (bulb: RunningBulb, n: number, headers: Record<string, string> = {}) => answers(bulb, n, { path: (i) => `/s${i}`, headers });

test('round-robin: exactly equal counts over k*n requests, weights ignored', async (t) => {
  const { bulb } = await pool(t, [1, 5, 1], ['--strategy', 'round-robin']);
  assert.deepEqual(count(await sequence(bulb, 30)), { a: 10, b: 10, c: 10 });
});

test('weighted-round-robin: weights 5,1,1 give the smooth sequence a a b a c a a, every cycle', async (t) => {
  const { bulb } = await pool(t, [5, 1, 1], ['--strategy', 'weighted-round-robin']);
  const seq = await sequence(bulb, 21);
  for (let cycle = 0; cycle < 3; cycle++) assert.deepEqual(seq.slice(cycle * 7, cycle * 7 + 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a'], `cycle ${cycle}: ${seq.join(' ')}`);
});

test('least-connections: new requests avoid the backend with requests in flight', async (t) => {
  const { bulb, list } = await pool(t, [1, 1], ['--strategy', 'least-connections']);
  const [a, b] = list as [TestBackend, TestBackend];
  a.delayMs = 3000;
  b.delayMs = 0;
  // Occupy a with one slow request (an idle tie may go either way, so send until a holds one).
  const slow: Promise<unknown>[] = [];
  while (a.inflight < 1) {
    slow.push(request(`${bulb.url}/slow`));
    await waitFor(() => a.inflight + b.seen.length >= slow.length, 5000);
  }
  const bBefore = b.seen.length;
  const seq = await sequence(bulb, 8);
  assert.deepEqual(count(seq), { b: 8 }, 'every new request went to the idle backend');
  assert.equal(b.seen.length, bBefore + 8);
  await Promise.all(slow);
});

test('least-time: traffic shifts to the backend that answers faster', async (t) => {
  const { bulb, list } = await pool(t, [1, 1], ['--strategy', 'least-time']);
  const [a] = list as [TestBackend, TestBackend];
  a.delayMs = 150;
  // Let both get sampled, then measure where traffic goes.
  await sequence(bulb, 6);
  const c = count(await sequence(bulb, 20));
  assert.ok((c['b'] ?? 0) >= 18, `fast backend got ${c['b'] ?? 0}/20 (${JSON.stringify(c)})`);
});

test('power-of-two and random: every backend gets traffic and no request fails', async (t) => {
  for (const strategy of ['power-of-two', 'random']) {
    const { bulb } = await pool(t, [1, 1, 1], ['--strategy', strategy]);
    const c = count(await sequence(bulb, 60));
    assert.deepEqual(Object.keys(c).sort(), ['a', 'b', 'c'], `${strategy}: ${JSON.stringify(c)}`);
  }
});

test('consistent-hash by header: a key stays on one backend; --hash-key header:NAME', async (t) => {
  const { bulb } = await pool(t, [1, 1, 1], ['--strategy', 'consistent-hash', '--hash-key', 'header:x-user']);
  const owners = new Map<string, Set<string>>();
  for (let u = 0; u < 30; u++) {
    const seq = await sequence(bulb, 3, { 'x-user': `user-${u}` });
    owners.set(`user-${u}`, new Set(seq));
  }
  for (const [user, set] of owners) assert.equal(set.size, 1, `${user} went to ${[...set].join(',')}`);
  const spread = new Set([...owners.values()].map((s) => [...s][0]));
  assert.ok(spread.size >= 2, 'keys spread over the pool');
});

test('a custom strategy module from examples/ is loaded by path', async (t) => {
  const mod = fileURLToPath(new URL('../../examples/strategies/pin-by-header.mjs', import.meta.url));
  const { bulb, list } = await pool(t, [1, 1, 1], ['--strategy', mod]);
  const started = await bulb.waitForLog((l) => l.msg === 'bulb started');
  assert.equal(started['strategy'], 'pin-by-header', 'the module\'s own name');
  // The module's one behaviour round robin does not have: a request naming a backend in X-Backend reaches only
  // that backend, every time. A bulb that ignored the module would spread these over a, b and c.
  const [, b, c] = list;
  assert.deepEqual(await sequence(bulb, 6, { 'x-backend': b.url }), ['b', 'b', 'b', 'b', 'b', 'b']);
  assert.deepEqual(await sequence(bulb, 6, { 'x-backend': `${c.host}:${c.port}` }), ['c', 'c', 'c', 'c', 'c', 'c']);
  // Without the header (or with a name not in the pool) it falls back to round robin.
  assert.deepEqual(count(await sequence(bulb, 6)), { a: 2, b: 2, c: 2 });
  assert.deepEqual(count(await sequence(bulb, 6, { 'x-backend': 'http://127.0.0.99:1' })), { a: 2, b: 2, c: 2 });
});
