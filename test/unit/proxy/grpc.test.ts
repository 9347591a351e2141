import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grpcMessage, isGrpc, parseGrpcTimeout } from '../../../src/proxy/h2-streams.js';

test('grpc-timeout: every unit, and anything else is no deadline', () => {
  assert.equal(parseGrpcTimeout('2H'), 7_200_000);
  assert.equal(parseGrpcTimeout('3M'), 180_000);
  assert.equal(parseGrpcTimeout('1S'), 1000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('1500u'), 1.5);
  assert.equal(parseGrpcTimeout('2000000n'), 2);
  assert.equal(parseGrpcTimeout('99999999S'), 99_999_999_000);
  for (const bad of ['', '1', 'S', '123456789S', '1s', '-1S', '1.5S', ' 1S', undefined, ['1S']]) assert.equal(parseGrpcTimeout(bad), undefined, String(bad));
});

test('isGrpc: application/grpc and its +proto/+json forms, not grpc-web', () => {
  for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc+json', 'APPLICATION/GRPC', 'application/grpc;charset=utf-8']) assert.equal(isGrpc(ct), true, ct);
  for (const ct of ['application/grpc-web', 'application/grpc-web+proto', 'application/json', '', undefined]) assert.equal(isGrpc(ct), false, String(ct));
});

test('grpc-message: printable ASCII as is, % and everything else percent-encoded (UTF-8)', () => {
  assert.equal(grpcMessage('no backend available'), 'no backend available');
  assert.equal(grpcMessage('100% done'), '100%25 done');
  assert.equal(grpcMessage('café\nnext'), 'caf%C3%A9%0Anext');
  assert.equal(decodeURIComponent(grpcMessage('ünïcødé % ok')), 'ünïcødé % ok');
});
