import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait-for.js';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: stops accepting, lets in-flight requests finish, exits 0`, async (t) => {
    const b = await startBackend('slow');
    b.delayMs = 1500;
    t.after(() => b.close());
    const bulb = await startBulb(t, ['--backend', b.url, '--drain-timeout', '20s']);
    const inflight = [request(`${bulb.url}/1`), request(`${bulb.url}/2`)];
    await waitFor(() => b.inflight === 2, 5000, 'two requests in flight');
    bulb.kill(signal);
    await bulb.waitForLog((l) => l.msg === 'shutting down: no new connections, draining in-flight requests');
    // New connections are refused once the listener is closed.
    const port = Number(new URL(bulb.url).port);
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
    const results = await Promise.all(inflight);
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow');
    }
    assert.equal(await bulb.exited, 0);
    assert.ok(bulb.logs.some((l) => l.msg === 'stopped: every request finished'));
  });
}

test('SIGTERM with a request that outlives --drain-timeout: exits 0 after the timeout', async (t) => {
  const b = await startBackend('stuck');
  b.mode = { kind: 'hang' };
  t.after(() => b.close());
  const bulb = await startBulb(t, ['--backend', b.url, '--drain-timeout', '500ms']);
  const pending = request(`${bulb.url}/`).catch((e: unknown) => e);
  await waitFor(() => b.seen.length === 1, 5000);
  const t0 = Date.now();
  bulb.kill('SIGTERM');
  assert.equal(await bulb.exited, 0);
  const took = Date.now() - t0;
  assert.ok(took >= 450, `waited for the drain timeout (${took} ms)`);
  await pending;
  assert.ok(bulb.logs.some((l) => l.msg === 'stopped: drain timeout passed with requests in flight'));
});
