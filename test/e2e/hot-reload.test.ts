import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as admin from '../helpers/admin.js';
import { startBackends } from '../helpers/backend.js';
import { logText, startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { sample } from '../helpers/prom.js';
import { answers } from '../helpers/tally.js';
import { backendFile, tmpDir, writeAtomic } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

test('a dropped file becomes routable within a moment, without a restart', async (t) => {
  const dir = await tmpDir(t);
  const [a, b] = await startBackends(t, 'a', 'b');
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  assert.deepEqual(new Set(await answers(bulb, 4)), new Set(['a']));

  const written = Date.now();
  await writeFile(join(dir, 'b.yaml'), `url: ${b.url}\nweight: 1\n`);
  // The requirement is 500 ms; a shared two-core machine gets a generous bound here (benchmarks measure it).
  await waitFor(async () => (await request(`${bulb.url}/probe`)).body === 'b' || (await request(`${bulb.url}/probe`)).body === 'b', 5000, 'b routable');
  t.diagnostic(`file → routed in ${Date.now() - written} ms`);
  assert.deepEqual(new Set(await answers(bulb, 6)), new Set(['a', 'b']));
  const change = await bulb.waitForLog((l) => l.msg === 'pool changed' && (l['added'] as string[]).includes(b.url.slice(7)));
  assert.deepEqual(change['drained'], []);
  assert.equal(bulb.proc.exitCode, null);
});

test('a deleted file drains: no new requests reach it, in-flight ones finish, same PID', async (t) => {
  const dir = await tmpDir(t);
  const [a, b] = await startBackends(t, 'a', 'b');
  b.delayMs = 1500;
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  await writeFile(join(dir, 'b.json'), backendFile(b.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const pid = bulb.pid;

  // Put one slow request in flight on b.
  const inflight: Promise<{ body: string; status: number }>[] = [];
  while (b.inflight === 0) {
    inflight.push(request(`${bulb.url}/slow`));
    await waitFor(() => b.inflight > 0 || a.seen.length >= inflight.length, 5000);
  }
  await unlink(join(dir, 'b.json'));
  await waitFor(async () => (await admin.backends(bulb)).some((x) => x.url === b.url && x.state === 'draining'), 5000, 'b draining');
  const seenByB = b.seen.length;
  const after = await answers(bulb, 10);
  assert.deepEqual(new Set(after), new Set(['a']), 'no new request reached the removed backend');
  assert.equal(b.seen.length, seenByB);
  const results = await Promise.all(inflight);
  assert.ok(results.some((r) => r.status === 200 && r.body === 'b'), 'the in-flight request to b completed');
  await waitFor(async () => !(await admin.backends(bulb)).some((x) => x.url === b.url), 5000, 'b removed once idle');
  assert.equal(bulb.pid, pid);
  assert.equal(bulb.proc.exitCode, null);
  await bulb.waitForLog((l) => l.msg === 'backend drained and removed');
});

test('a changed file: new weight applies in place; a new URL replaces the old backend', async (t) => {
  const dir = await tmpDir(t);
  const [a, b] = await startBackends(t, 'a', 'b');
  await writeFile(join(dir, 'svc.json'), backendFile(a.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  await answers(bulb, 3);
  await writeAtomic(join(dir, 'svc.json'), backendFile(a.url, { weight: 4 }));
  await waitFor(async () => (await admin.backends(bulb))[0]?.weight === 4, 5000, 'weight 4');
  // Counters survived the update: the backend object was not rebuilt.
  const update = await bulb.waitForLog((l) => l.msg === 'pool changed' && (l['updated'] as string[]).length === 1);
  assert.deepEqual(update['added'], []);
  await writeFile(join(dir, 'svc.json'), backendFile(b.url));
  await waitFor(async () => (await request(`${bulb.url}/x`)).body === 'b', 5000, () => `b serving; logs: ${JSON.stringify(bulb.logs.filter((l) => l.msg !== 'request'))}`);
  await waitFor(async () => (await admin.backends(bulb)).every((x) => x.url === b.url), 5000, 'a gone');
});

test('a bad file is rejected with one log line naming file, pointer and reason; others keep serving; last-known-good stays', async (t) => {
  const dir = await tmpDir(t);
  const [a, b] = await startBackends(t, 'a', 'b');
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  await writeFile(join(dir, 'b.json'), backendFile(b.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  // b.json turns invalid: b keeps serving from its last-known-good version.
  await writeFile(join(dir, 'b.json'), JSON.stringify({ url: b.url, weight: 0 }));
  const err = await bulb.waitForLog((l) => l.level === 'error' && logText(l['file']).endsWith('b.json'));
  assert.equal(err['pointer'], '/weight');
  assert.match(logText(err['reason'] ?? err['message'] ?? err.msg), /weight/);
  // A brand-new bad file contributes nothing and breaks nothing.
  await writeFile(join(dir, 'c.json'), '{ not json');
  await bulb.waitForLog((l) => l.level === 'error' && logText(l['file']).endsWith('c.json'));
  assert.deepEqual(new Set(await answers(bulb, 6)), new Set(['a', 'b']));
  assert.equal((await admin.backends(bulb)).length, 2);
  assert.equal(bulb.proc.exitCode, null);
  // Fixing it applies the new content.
  await writeFile(join(dir, 'b.json'), JSON.stringify({ url: b.url, weight: 2 }));
  await waitFor(async () => (await admin.backends(bulb)).find((x) => x.url === b.url)?.weight === 2, 5000);
});

test('a Kubernetes ConfigMap update (the ..data symlink swap) is seen', async (t) => {
  const dir = await tmpDir(t);
  const [a, b] = await startBackends(t, 'a', 'b');
  await mkdir(join(dir, '..2026_11_24_00_00_00.1'));
  await writeFile(join(dir, '..2026_11_24_00_00_00.1', 'svc.json'), backendFile(a.url));
  await symlink('..2026_11_24_00_00_00.1', join(dir, '..data'));
  await symlink('..data/svc.json', join(dir, 'svc.json'));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  assert.deepEqual(new Set(await answers(bulb, 3)), new Set(['a']));
  // What the kubelet does: write a new timestamped dir, point ..data_tmp at it, rename over ..data, delete the old dir.
  await mkdir(join(dir, '..2026_11_24_00_01_00.2'));
  await writeFile(join(dir, '..2026_11_24_00_01_00.2', 'svc.json'), backendFile(b.url));
  await symlink('..2026_11_24_00_01_00.2', join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await rm(join(dir, '..2026_11_24_00_00_00.1'), { recursive: true });
  await waitFor(async () => (await request(`${bulb.url}/x`)).body === 'b', 5000, 'ConfigMap swap applied');
  await waitFor(async () => (await admin.backends(bulb)).length === 1, 5000);
});

test('the watched directory disappears: last-known-good backends keep serving; when it returns, watching resumes', async (t) => {
  const parent = await tmpDir(t);
  const dir = join(parent, 'backends');
  await mkdir(dir);
  const [a, b] = await startBackends(t, 'a', 'b');
  await writeFile(join(dir, 'a.json'), backendFile(a.url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  await rm(dir, { recursive: true });
  await bulb.waitForLog((l) => l.level === 'warn' && /does not exist|missing|gone/.test(logText(l['error'] ?? l.msg)), 10_000);
  assert.deepEqual(new Set(await answers(bulb, 3)), new Set(['a']), 'still serving the last-known-good set');
  await mkdir(dir);
  await writeFile(join(dir, 'b.json'), backendFile(b.url));
  await waitFor(async () => (await admin.backends(bulb)).some((x) => x.url === b.url && x.state === 'active'), 10_000, 'b seen after the directory came back');
  // The directory now holds only b.json, so a drains away.
  await waitFor(async () => (await admin.backends(bulb)).length === 1, 10_000);
});

test('ten seconds of load while backend files are added and removed every 200 ms: zero errors', async (t) => {
  const dir = await tmpDir(t);
  const list = await startBackends(t, 'b0', 'b1', 'b2', 'b3', 'b4');
  // b0 stays; the others come and go.
  await writeFile(join(dir, 'b0.json'), backendFile(list[0].url));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  t.after(() => agent.destroy());
  let stop = false;
  const errors: string[] = [];
  let ok = 0;
  const seenBy = new Set<string>();
  const client = async () => {
    while (!stop) {
      try {
        const r = await request(`${bulb.url}/churn`, { agent });
        if (r.status !== 200) errors.push(`status ${r.status}: ${r.body}`);
        else {
          ok++;
          seenBy.add(r.body);
        }
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  const clients = Array.from({ length: 10 }, client);
  const started = Date.now();
  let i = 0;
  while (Date.now() - started < 10_000) {
    const b = list[1 + (i % 4)];
    const file = join(dir, `${b.name}.json`);
    if (Math.floor(i / 4) % 2 === 0) await writeFile(file, backendFile(b.url));
    else await unlink(file).catch(() => {});
    i++;
    await new Promise((r) => setTimeout(r, 200));
  }
  stop = true;
  await Promise.all(clients);
  t.diagnostic(`${ok} requests, ${i} file changes, answered by ${[...seenBy].sort().join(' ')}`);
  // Every client-visible failure counts, and none may hide behind a retry: a request cut off when its backend was
  // removed would show up as a retry (or an error), not as a clean 200.
  assert.deepEqual(errors, []);
  const metrics = await admin.metrics(bulb);
  const retried = list.reduce((n, x) => n + (sample(metrics, 'bulb_retries_total', { backend: `${x.host}:${x.port}` }) ?? 0), 0);
  assert.equal(retried, 0, 'no request was retried: removals drained in-flight requests instead of cutting them off');
  assert.deepEqual(bulb.logs.filter((l) => l.msg === 'retrying on another backend'), []);
  assert.ok(ok > 100);
  assert.ok(seenBy.size >= 3, 'traffic reached backends that came and went');
});

test('every request writes one access log line with method, path, status, backend and duration', async (t) => {
  const [a] = await startBackends(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url]);
  await request(`${bulb.url}/hello?x=1`, { method: 'DELETE' });
  const line = await bulb.waitForLog((l) => l.msg === 'request');
  assert.equal(line['method'], 'DELETE');
  assert.equal(line['path'], '/hello?x=1');
  assert.equal(line['status'], 200);
  assert.equal(line['backend'], a.url.slice('http://'.length));
  assert.equal(typeof line['durationMs'], 'number');
  assert.equal(line.level, 'info');
});
