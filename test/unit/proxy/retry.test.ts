import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRetryable, RetryBudget } from '../../../src/proxy/retry.js';

test('connection refused is retryable for any method; a reset or a 503 only for idempotent ones', () => {
  for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'POST', 'PATCH']) {
    assert.equal(isRetryable(method, true, { kind: 'error', code: 'ECONNREFUSED' }), true, method);
  }
  for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']) {
    assert.equal(isRetryable(method, true, { kind: 'error', code: 'ECONNRESET' }), true, method);
    assert.equal(isRetryable(method, true, { kind: 'status', status: 503 }), true, method);
  }
  for (const method of ['POST', 'PATCH']) {
    assert.equal(isRetryable(method, true, { kind: 'error', code: 'ECONNRESET' }), false, method);
    assert.equal(isRetryable(method, true, { kind: 'status', status: 503 }), false, method);
  }
});

test('timeouts, other statuses and bodies that cannot be replayed are never retried', () => {
  assert.equal(isRetryable('GET', true, { kind: 'error', code: 'ETIMEDOUT' }), false);
  assert.equal(isRetryable('GET', true, { kind: 'status', status: 500 }), false);
  assert.equal(isRetryable('GET', true, { kind: 'status', status: 502 }), false);
  assert.equal(isRetryable('PUT', false, { kind: 'error', code: 'ECONNREFUSED' }), false);
});

test('the retry budget allows its percentage of recent requests, with a floor, over a rolling window', () => {
  let now = 1_000_000;
  const budget = new RetryBudget({ percent: 20, windowSeconds: 10, minRetries: 3, now: () => now });
  // Quiet: the floor of 3 retries applies.
  for (let i = 0; i < 3; i++) assert.equal(budget.tryRetry(), true, `floor retry ${i}`);
  assert.equal(budget.tryRetry(), false);
  // 100 requests: 20% = 20 retries in the window (3 already used).
  for (let i = 0; i < 100; i++) budget.request();
  let allowed = 0;
  while (budget.tryRetry()) allowed++;
  assert.equal(allowed, 17);
  // Eleven seconds later the window has rolled over: the floor again.
  now += 11_000;
  assert.equal(budget.tryRetry(), true);
  assert.equal(budget.tryRetry(), true);
  assert.equal(budget.tryRetry(), true);
  assert.equal(budget.tryRetry(), false);
});
