import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closedPort } from '../helpers/http.js';

// A short run of bench/soak.mjs (the 30-minute soak is run by hand; its figures are in SECURITY.md): steady
// load with backend churn, slowloris connections and slow readers, two data-plane workers, one killed every 15 s.
// The soak itself decides pass or fail (0 errors for well-behaved clients, every slowloris cut off with 408,
// every slow reader dropped, RSS and descriptors flat) and exits 1 otherwise.

const SOAK = fileURLToPath(new URL('../../bench/soak.mjs', import.meta.url));

test('a 60 s soak with churn, slowloris, slow readers and worker kills passes', async (t) => {
  const port = await closedPort();
  const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const p = spawn(process.execPath, [SOAK, '--duration', '60s', '--port', String(port), '--workers', '2', '--kill-worker-every', '15s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (c: Buffer) => (text += c.toString()));
    p.stderr.on('data', (c: Buffer) => (text += c.toString()));
    const timer = setTimeout(() => p.kill('SIGINT'), 150_000);
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, text });
    });
  });
  const summary = out.text.split('\n').filter((l) => /requests,|Workers:|Hostile:|PASS|FAIL/.test(l));
  for (const l of summary) t.diagnostic(l);
  assert.equal(out.code, 0, out.text.slice(-2000));
  assert.match(out.text, /^PASS$/m);
});
