import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peakEwma } from '../../../src/pool/load.js';

test('a slower sample replaces the estimate at once (peak)', () => {
  assert.equal(peakEwma(10, 80, 1, 10_000), 80);
});

test('a faster sample decays the estimate by exp(-elapsed/decay)', () => {
  const decay = 10_000;
  // After one decay period, about 63% of the way to the new sample.
  const v = peakEwma(100, 0, decay, decay);
  assert.ok(Math.abs(v - 100 * Math.exp(-1)) < 1e-9, String(v));
  // A sample right after the last one barely moves it.
  assert.ok(peakEwma(100, 0, 1, decay) > 99.98);
  // Repeated fast samples converge toward the sample.
  let est = 100;
  for (let i = 0; i < 100; i++) est = peakEwma(est, 10, 1000, decay);
  assert.ok(est < 10.01 && est >= 10, String(est));
});
