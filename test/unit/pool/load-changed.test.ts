import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { parseCommandLine } from '../../../src/cli/args.js';
import type { BackendSpec } from '../../../src/discovery/source.js';
import { createLogger } from '../../../src/log.js';
import { startBulb } from '../../../src/main.js';
import type { Backend } from '../../../src/pool/backend.js';
import { begin, newPool, target } from '../../helpers/plane.js';
import { leastTime, leastTimeCost } from '../../../src/strategies/least-time.js';
import { tmpDir } from '../../helpers/tmpdir.js';

// The pool's side of the strategies' contract: load changes are reported (least-time's heap depends on it) and
// every weight change comes with a new `routable` array (weighted-round-robin and least-time read weights then).

const spec = (id: string, extra: Partial<BackendSpec> = {}): BackendSpec => Object.freeze({ id, url: `http://${id}`, weight: 1, source: 'dir:/b', origin: `${id}.json`, ...extra });
const req = { clientIp: '192.0.2.1', method: 'GET', url: '/', headers: {} };

test('loadChanged is called after each change of inflight or ewmaMs, with the new values in place', (t) => {
  const seen: string[] = [];
  const pool = newPool({ drainTimeoutMs: 1000, loadChanged: (b) => seen.push(`${b.id} inflight=${b.inflight} ewma=${b.ewmaMs.toFixed(0)}`) });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1'));
  const first = begin(a);
  const second = begin(a);
  target(a).ewmaMs = 100;
  first.responded();
  second.done({ error: 'ECONNRESET' });
  first.done({ status: 200 });
  first.done({ status: 200 }); // a second done() changes nothing and reports nothing
  assert.equal(seen.length, 5);
  assert.deepEqual(seen.slice(0, 2), ['a:1 inflight=1 ewma=25', 'a:1 inflight=2 ewma=25']);
  assert.match(seen[2], /^a:1 inflight=2 ewma=(?!100$)\d+$/, 'the sample moved the estimate before the report');
  assert.match(seen[3], /^a:1 inflight=1 /);
  assert.match(seen[4], /^a:1 inflight=0 /);
});

test('a weight change and every slow-start step hand strategies a new routable array', async (t) => {
  const pool = newPool({ drainTimeoutMs: 1000, slowStartMs: 1000 });
  t.after(() => pool.close());
  const a = pool.add(spec('a:1', { weight: 4 }));
  let before = pool.routable;
  let weight = a.weight;
  for (let tick = 0; tick < 2; tick++) {
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(a.weight > weight, `ramped (${weight} → ${a.weight})`);
    assert.notEqual(pool.routable, before, 'new array with the ramped weight');
    before = pool.routable;
    weight = a.weight;
  }
  pool.update(spec('a:1', { weight: 7, slowStartMs: 0 }));
  assert.notEqual(pool.routable, before, 'new array with the updated weight');
});

test('least-time wired to a pool follows requests begun and finished on real backends', (t) => {
  const strategy = leastTime();
  const pool = newPool({ drainTimeoutMs: 1000, loadChanged: (b) => strategy.loadChanged!(b) });
  t.after(() => pool.close());
  for (let i = 0; i < 20; i++) pool.add(spec(`b${i}:1`, { weight: 1 + (i % 3) }));
  let seed = 3;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const open: { backend: Backend; responded: () => void; done: (o: { status: number }) => void; sampled?: true }[] = [];
  for (let k = 0; k < 2_000; k++) {
    const routable = pool.routable;
    const picked = strategy.pick(routable.map(target), req)!;
    const min = Math.min(...routable.map((b) => leastTimeCost(target(b))));
    assert.equal(leastTimeCost(picked), min, `request ${k}: picked ${picked.id} at ${leastTimeCost(picked)}, minimum ${min}`);
    const backend = pool.get(picked.id)!;
    open.push({ backend, ...begin(backend) });
    // Between picks, some requests get their response headers (a latency sample) and some finish, out of order,
    // so load falls as well as rises.
    while (open.length > 30 || (open.length > 0 && rand() < 0.6)) {
      const at = Math.floor(rand() * open.length);
      const r = open[at];
      if (r.sampled === undefined && rand() < 0.6) {
        r.responded();
        r.sampled = true;
      } else {
        open.splice(at, 1);
        r.done({ status: 200 });
      }
    }
  }
});

test('bulb wires the strategy\'s loadChanged to the data plane; a custom hook that throws is logged once and the request goes on', async (t) => {
  const dir = await tmpDir(t);
  const mod = join(dir, 'throws.mjs');
  await writeFile(mod, `export default { name: 'throws', pick: (cs) => cs[0], loadChanged() { throw new Error('boom'); } };`);
  const backend = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  t.after(() => backend.close());
  const r = await parseCommandLine({ argv: ['--strategy', mod, '--listen', '127.0.0.1:0', '--admin', 'off'], env: {}, cwd: dir });
  assert.equal(r.kind, 'run');
  const lines: string[] = [];
  const sink = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      lines.push(chunk.toString());
      cb();
    },
  });
  const bulb = await startBulb(r.kind === 'run' ? r.config : assert.fail(), createLogger('error', sink));
  t.after(() => bulb.shutdown('test'));
  const a = bulb.pool.add(spec('a:1', { url: `http://127.0.0.1:${(backend.address() as AddressInfo).port}` }));
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${bulb.address.port}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok');
  }
  assert.equal(a.inflight, 0);
  assert.equal(a.requests, 2);
  const errors = lines.filter((l) => l.includes('loadChanged threw'));
  assert.equal(errors.length, 1, lines.join(''));
  assert.match(errors[0], /boom/);
});
