import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answer } from 'dns-packet';
import {
  addressesOf,
  backoffMs,
  mapSrvWeights,
  negativeTtl,
  refreshDelayMs,
  srvBackends,
  srvRecordsOf,
  type SrvRecord,
} from '../../../src/discovery/dns/records.js';

const ADDRS: Record<string, string[]> = {
  'a.svc': ['10.0.0.1'],
  'b.svc': ['10.0.0.2'],
  'c.svc': ['10.0.0.3'],
  'twin.svc': ['10.0.0.1'], // another name for a.svc's address
  'multi.svc': ['10.0.0.8', 'fd00::8'],
};
const lookup = (t: string) => ADDRS[t] ?? [];
const srv = (target: string, priority: number, weight: number, port = 8080): SrvRecord => ({ target, port, priority, weight });
const brief = (rs: SrvRecord[]) => srvBackends(rs, lookup).map((b) => `${b.address}:${b.port} p${b.priority} w${b.weight}`);

test('RFC 2782 weights: used as written when no record in the group has weight 0', () => {
  assert.deepEqual(mapSrvWeights([5, 3, 2]), [5, 3, 2]);
  assert.deepEqual(mapSrvWeights([65535, 1]), [65535, 1]);
});

test('RFC 2782 weights: all 0 gives equal shares', () => {
  assert.deepEqual(mapSrvWeights([0, 0, 0]), [1, 1, 1]);
});

test('RFC 2782 weights: a weight-0 target beside weighted ones gets a very small share, never none', () => {
  const w = mapSrvWeights([0, 1, 3]);
  assert.deepEqual(w, [1, 100, 300]);
  // Its share is under 1 % of the lightest weighted target's, as the RFC's "very small chance" asks.
  assert.ok(w[0] / w[1] <= 0.01);
});

test('weights are mapped per priority group, not across groups', () => {
  assert.deepEqual(brief([srv('a.svc', 0, 0), srv('b.svc', 0, 2), srv('c.svc', 1, 0)]), [
    '10.0.0.1:8080 p0 w1',
    '10.0.0.2:8080 p0 w200',
    '10.0.0.3:8080 p1 w1', // alone in its group: all-zero rule, weight 1
  ]);
});

test('the port comes from each record; one target on two ports is two backends', () => {
  assert.deepEqual(brief([srv('a.svc', 0, 1, 8080), srv('a.svc', 0, 1, 9090)]), ['10.0.0.1:8080 p0 w1', '10.0.0.1:9090 p0 w1']);
});

test('a target named by several records is one backend: lowest priority wins, weights at that priority add up', () => {
  assert.deepEqual(brief([srv('a.svc', 1, 7), srv('a.svc', 0, 2), srv('twin.svc', 0, 3), srv('b.svc', 0, 5)]), [
    '10.0.0.1:8080 p0 w5',
    '10.0.0.2:8080 p0 w5',
  ]);
  const [merged] = srvBackends([srv('a.svc', 0, 2), srv('twin.svc', 0, 3)], lookup);
  assert.deepEqual(merged.targets, ['a.svc', 'twin.svc']);
});

test('a "." target means not available; a target without addresses contributes nothing; every address counts', () => {
  assert.deepEqual(brief([srv('.', 0, 1)]), []);
  assert.deepEqual(brief([srv('gone.svc', 0, 1), srv('multi.svc', 0, 1)]), ['10.0.0.8:8080 p0 w1', 'fd00::8:8080 p0 w1']);
});

test('backends come out in a stable order: priority, address, port', () => {
  const shuffled = [srv('c.svc', 1, 1), srv('b.svc', 0, 1), srv('a.svc', 0, 1)];
  assert.deepEqual(brief(shuffled), brief([...shuffled].reverse()));
  assert.deepEqual(brief(shuffled), ['10.0.0.1:8080 p0 w1', '10.0.0.2:8080 p0 w1', '10.0.0.3:8080 p1 w1']);
});

test('TTL clamping: the record TTL within [min, max]; no TTL means the min', () => {
  assert.equal(refreshDelayMs(5, 1000, 30_000), 5000);
  assert.equal(refreshDelayMs(0, 1000, 30_000), 1000, 'dnsmasq default TTL 0 → min interval');
  assert.equal(refreshDelayMs(600, 1000, 30_000), 30_000, "Docker's TTL 600 → max interval");
  assert.equal(refreshDelayMs(undefined, 200, 1000), 200);
});

test('backoff doubles from the min interval per failure, capped at the max, with up to 20 % jitter', () => {
  const none = () => 0;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(n, 1000, 30_000, none)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  assert.equal(backoffMs(2, 1000, 30_000, () => 0.5), 2200);
  assert.equal(backoffMs(5, 1000, 30_000, () => 0.99), 19_168);
  assert.equal(backoffMs(6, 1000, 30_000, () => 0.99), 30_000, 'jitter never exceeds the cap');
  assert.equal(backoffMs(1000, 1000, 30_000, none), 30_000, 'no overflow after a long outage');
});

test('reading a reply: SRV records and their TTL, addresses through a CNAME, negative TTL from the SOA', () => {
  const answers: Answer[] = [
    { type: 'SRV', name: '_http._tcp.web.ns.svc', ttl: 30, data: { target: 'a.svc', port: 80, priority: 0, weight: 1 } },
    { type: 'SRV', name: '_HTTP._tcp.web.ns.svc.', ttl: 10, data: { target: 'b.svc', port: 80, priority: 0, weight: 1 } },
    { type: 'SRV', name: '_other._tcp.web.ns.svc', ttl: 1, data: { target: 'x.svc', port: 80, priority: 0, weight: 1 } },
  ];
  const got = srvRecordsOf('_http._tcp.web.ns.svc', answers);
  assert.deepEqual(got.records.map((r) => r.target), ['a.svc', 'b.svc'], 'owner names compare case-insensitively; other owners ignored');
  assert.equal(got.ttl, 10);

  const viaCname: Answer[] = [
    { type: 'CNAME', name: 'web', ttl: 5, data: 'web.real' },
    { type: 'A', name: 'web.real', ttl: 60, data: '10.0.0.1' },
    { type: 'AAAA', name: 'web.real', ttl: 60, data: 'fd00::1' },
    { type: 'A', name: 'unrelated', ttl: 1, data: '10.9.9.9' },
  ];
  assert.deepEqual(addressesOf('web', viaCname), { addresses: ['10.0.0.1', 'fd00::1'], ttl: 5 });
  assert.deepEqual(addressesOf('nothing', viaCname), { addresses: [], ttl: undefined });

  const loop: Answer[] = [
    { type: 'CNAME', name: 'x', ttl: 5, data: 'y' },
    { type: 'CNAME', name: 'y', ttl: 5, data: 'x' },
  ];
  assert.deepEqual(addressesOf('x', loop).addresses, [], 'a CNAME loop ends');

  assert.equal(negativeTtl([{ type: 'SOA', name: 'svc', ttl: 30, data: { mname: 'ns', rname: 'h', minimum: 5 } }]), 5);
  assert.equal(negativeTtl([]), undefined);
});
