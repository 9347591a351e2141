import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeStatus, encodeRequest } from '../../../src/health/grpc.js';

const frame = (msg: number[]): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), Buffer.from(msg)]);

test('HealthCheckRequest: an empty service is an empty message; a name is field 1, length-delimited', () => {
  assert.deepEqual([...encodeRequest('')], [0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeRequest('a.B')], [0, 0, 0, 0, 5, 0x0a, 3, 0x61, 0x2e, 0x42]);
  const long = encodeRequest('x'.repeat(200));
  assert.deepEqual([...long.subarray(0, 8)], [0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01], 'a two-byte varint length');
});

test('HealthCheckResponse: status is field 1; missing means UNKNOWN; unknown fields are skipped; garbage is undefined', () => {
  assert.equal(decodeStatus(frame([0x08, 1])), 1);
  assert.equal(decodeStatus(frame([0x08, 2])), 2);
  assert.equal(decodeStatus(frame([])), 0);
  assert.equal(decodeStatus(frame([0x12, 2, 0x41, 0x42, 0x08, 1])), 1, 'a string field 2 before status');
  assert.equal(decodeStatus(Buffer.from([1, 0, 0, 0, 0])), undefined, 'compressed frames are not expected');
  assert.equal(decodeStatus(Buffer.from([0, 0, 0, 0, 9, 0x08])), undefined, 'truncated');
  assert.equal(decodeStatus(frame([0x08])), undefined, 'varint cut off');
});
