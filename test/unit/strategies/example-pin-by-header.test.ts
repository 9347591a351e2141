// The shipped example custom strategy, loaded the way a user loads it: through createStrategy with a path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createStrategy, defaultContext } from '../../../src/strategies/index.js';
import { cand, picks, req } from './_candidates.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/strategies/pin-by-header.mjs', import.meta.url));

test('pin-by-header sends a request to the backend its X-Backend header names, by id or URL', async () => {
  const s = await createStrategy(EXAMPLE, defaultContext());
  assert.equal(s.name, 'pin-by-header');
  const cs = [cand('api-1'), cand('api-2'), cand('api-3')];
  for (let i = 0; i < 3; i++) assert.equal(s.pick(cs, req({ headers: { 'x-backend': 'api-2' } })), cs[1]);
  assert.equal(s.pick(cs, req({ headers: { 'x-backend': 'http://api-3:80' } })), cs[2]);
});

test('pin-by-header round-robins requests without the header or naming an unavailable backend', async () => {
  const s = await createStrategy(EXAMPLE, defaultContext());
  const cs = [cand('api-1'), cand('api-2'), cand('api-3')];
  const noHeader = picks(() => s.pick(cs, req()), 3);
  const unknown = picks(() => s.pick(cs, req({ headers: { 'x-backend': 'api-9' } })), 3);
  assert.deepEqual([...noHeader, ...unknown], ['api-1', 'api-2', 'api-3', 'api-1', 'api-2', 'api-3']);
  // The pool changed (api-2 gone): a pin to it falls back, and the index follows the new array.
  const without2 = [cs[0], cs[2]];
  assert.equal(s.pick(without2, req({ headers: { 'x-backend': 'api-3' } })), cs[2]);
  assert.deepEqual(picks(() => s.pick(without2, req({ headers: { 'x-backend': 'api-2' } })), 2), ['api-1', 'api-3']);
});
