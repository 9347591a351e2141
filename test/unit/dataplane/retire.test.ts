import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request, type Dispatcher } from 'undici';
import { DataPool } from '../../../src/dataplane/data-pool.js';
import { LoadSlots } from '../../../src/pool/load-slots.js';
import type { PoolSnapshot, TargetSnapshot } from '../../../src/pool/snapshot.js';

/** A backend that holds every request until `release()`; resolves its URL once listening. */
async function holdingBackend(t: TestContext): Promise<{ url: string; release: () => void; arrived: Promise<void> }> {
  const held: http.ServerResponse[] = [];
  let arrive!: () => void;
  const arrived = new Promise<void>((r) => (arrive = r));
  const srv = http.createServer((_req, res) => {
    held.push(res);
    arrive();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, release: () => held.forEach((r) => r.end('done')), arrived };
}

function plane(): DataPool {
  const load = new LoadSlots(2);
  const noop = (): void => {};
  return new DataPool({ counters: load.counters, stride: load.stride, worker: 1, reporter: { attemptDone: noop, exchangeDone: noop, retried: noop, retryRefused: noop }, drainTimeoutMs: 30_000 });
}

const snap = (version: number, targets: TargetSnapshot[]): PoolSnapshot => ({ version, targets });

/** Sends one request through the target's connection pool, as the proxy does; resolves to its body or its error code. */
async function send(pool: DataPool, id: string): Promise<string> {
  const t = pool.get(id)!;
  assert.ok(t.tryStart() >= 0);
  try {
    // undici's `request` over the target's own pool (bulb loads the Pool class alone, without its helpers);
    // `request` only calls `dispatch`, which is all a target exposes.
    const { body } = await request(t.url, { dispatcher: t.dispatcher as Dispatcher });
    return await body.text();
  } catch (err) {
    return `error: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  } finally {
    t.finish({});
  }
}

test('a backend that leaves the snapshot while a request started here is in flight lets that request finish (it raced the removal)', async (t) => {
  const b = await holdingBackend(t);
  const pool = plane();
  pool.apply(snap(1, [{ id: 'a', url: b.url, weight: 1, maxConnections: undefined, slot: 0, routable: true, tls: undefined }]));
  const answer = send(pool, 'a');
  await b.arrived;
  // The controller read no request in flight anywhere and removed it; this worker had just started one.
  pool.apply(snap(2, []));
  assert.equal(pool.get('a'), undefined);
  b.release();
  assert.equal(await answer, 'done');
});

test('a backend removed at its drain timeout (cutAt passed) has what is still in flight here cut', async (t) => {
  const b = await holdingBackend(t);
  const pool = plane();
  const spec = { id: 'a', url: b.url, weight: 1, maxConnections: undefined, slot: 0, tls: undefined };
  pool.apply(snap(1, [{ ...spec, routable: true }]));
  const answer = send(pool, 'a');
  await b.arrived;
  pool.apply(snap(2, [{ ...spec, routable: false, cutAt: Date.now() + 200 }]));
  // Still draining: nothing is cut yet.
  await new Promise((r) => setTimeout(r, 50));
  pool.apply(snap(3, []));
  // Gone before its cutAt: let finish until then, and cut at it; the backend never answers.
  const settled = await Promise.race([answer, new Promise((r) => setTimeout(() => r('still open'), 5_000))]);
  assert.match(String(settled), /^error: /);
});
