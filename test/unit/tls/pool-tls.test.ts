import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendSpec } from '../../../src/discovery/source.js';
import type { TlsMaterial } from '../../../src/tls/material.js';
import { newPool, target } from '../../helpers/plane.js';

const spec = (id: string, url: string): BackendSpec => Object.freeze({ id, url, weight: 1, source: 'dir:/b', origin: `${id}.json` });

test('https targets carry their TLS material in every snapshot; http ones none; refresh() sends new material', () => {
  let material: TlsMaterial = { version: '0:0', options: { ca: 'PEM-A', rejectUnauthorized: true } };
  const asked: string[] = [];
  const pool = newPool({ drainTimeoutMs: 50, tls: (s) => (asked.push(s.id), material) });
  const secure = pool.add(spec('s', 'https://127.0.0.2:8443'));
  const plain = pool.add(spec('p', 'http://127.0.0.2:8080'));
  const snap = pool.snapshot();
  assert.deepEqual(snap.targets.find((t) => t.id === 's')!.tls, material);
  assert.equal(snap.targets.find((t) => t.id === 'p')!.tls, undefined);
  assert.ok(!asked.includes('p'), 'material is looked up for https backends only');
  assert.equal(target(secure).tls, material);
  assert.equal(target(plain).tls, undefined);

  material = { version: '0:1', options: { ca: 'PEM-B', rejectUnauthorized: true } };
  assert.equal(pool.snapshot(), snap, 'cached until something changes');
  pool.refresh();
  const next = pool.snapshot();
  assert.ok(next.version > snap.version);
  assert.equal(target(secure).tls?.version, '0:1', 'the data plane took the new material');
});

test('a target whose material never loaded fails each request with BULB_TLS_MATERIAL, never a plaintext dispatch', async () => {
  const pool = newPool({ drainTimeoutMs: 50, tls: () => ({ version: '0:0', error: 'cannot read CA file /x: no such file (ENOENT)' }) });
  const b = pool.add(spec('s', 'https://127.0.0.2:8443'));
  const err = await new Promise<Error>((resolve) => {
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- the handler API bulb's proxy implements (undici's pre-7 one)
    target(b).dispatcher.dispatch({ path: '/', method: 'GET' }, { onError: resolve });
  });
  assert.equal((err as Error & { code: string }).code, 'BULB_TLS_MATERIAL');
  assert.match(err.message, /cannot read CA file \/x/);
  pool.close();
});
