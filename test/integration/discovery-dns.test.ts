/**
 * The DNS source against a real dnsmasq (no bulb process): what it reads from the DNS message (TTLs, the
 * additional section, truncation), and its failure semantics, observed through the snapshots it reports.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { DnsSource, type DnsSourceOptions } from '../../src/discovery/dns/source.js';
import { query } from '../../src/discovery/dns/client.js';
import type { Snapshot } from '../../src/discovery/source.js';
import { startDnsmasq, ZONE } from '../helpers/dnsmasq.js';
import { waitFor } from '../helpers/wait-for.js';

interface Logged {
  readonly level: 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

/** Starts a source and collects its snapshots and log lines; stopped when the test ends. */
async function run(t: TestContext, opts: Omit<DnsSourceOptions, 'log'>) {
  const logs: Logged[] = [];
  const snapshots: Snapshot[] = [];
  const log = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', obj, msg }),
  };
  const source = new DnsSource({ minIntervalMs: 100, maxIntervalMs: 1000, rand: () => 0, ...opts, log });
  t.after(() => source.stop());
  const started = Date.now();
  await source.start((s) => snapshots.push(s));
  const last = () => snapshots[snapshots.length - 1];
  const brief = () => last().backends.map((b) => `${b.url} w${b.weight} p${b.priority ?? 0}`);
  return { source, logs, snapshots, last, brief, startMs: Date.now() - started };
}

const server = (port: number) => ({ host: '127.0.0.1', port });

test('SRV: RFC 2782 priority and weight, targets from the additional section or their own lookup, TTL from the message', async (t) => {
  const dns = await startDnsmasq(
    t,
    [
      `host-record=a.${ZONE},127.0.0.2`,
      `host-record=b.${ZONE},127.0.0.3`,
      `address=/t.${ZONE}/127.0.0.4`, // dnsmasq sends no additional record for this one
      `srv-host=_http._tcp.web.${ZONE},a.${ZONE},8080,0,3`,
      `srv-host=_http._tcp.web.${ZONE},t.${ZONE},8081,0,1`,
      `srv-host=_http._tcp.web.${ZONE},b.${ZONE},8080,1,0`,
    ].join('\n'),
    { ttl: 3 },
  );
  const s = await run(t, { target: { kind: 'srv', name: `_http._tcp.web.${ZONE}` }, server: server(dns.port), maxIntervalMs: 10_000 });
  assert.deepEqual(s.brief(), ['http://127.0.0.2:8080 w3 p0', 'http://127.0.0.4:8081 w1 p0', 'http://127.0.0.3:8080 w1 p1']);
  assert.equal(s.last().error, undefined);
  assert.equal(s.last().source, `dns-srv:_http._tcp.web.${ZONE}`);
  assert.equal(s.source.lastDelayMs, 3000, 'next lookup when the 3 s TTL runs out');
  assert.match(dns.log(), new RegExp(`query\\[A\\] t\\.${ZONE}`), 'a target missing from the additional section is looked up');
  assert.doesNotMatch(dns.log(), new RegExp(`query\\[A\\] a\\.${ZONE}`), 'a target in the additional section is not');
});

test('TTLs are clamped: 0 → min interval, 600 (Docker) → max interval', async (t) => {
  const config = `host-record=web.${ZONE},127.0.0.2`;
  const dns = await startDnsmasq(t, config, { ttl: 0 });
  const target = { kind: 'a', host: `web.${ZONE}`, port: 80 } as const;
  const zero = await run(t, { target, server: server(dns.port), minIntervalMs: 250, maxIntervalMs: 5000 });
  assert.equal(zero.source.lastDelayMs, 250);
  await dns.restart(config, { ttl: 600 });
  const long = await run(t, { target, server: server(dns.port), minIntervalMs: 250, maxIntervalMs: 5000 });
  assert.equal(long.source.lastDelayMs, 5000);
});

test('a truncated UDP answer is asked again over TCP', async (t) => {
  const lines = Array.from({ length: 40 }, (_, i) => `host-record=big.${ZONE},127.0.1.${i + 1}`);
  const dns = await startDnsmasq(t, lines.join('\n'));
  const opts = { servers: [server(dns.port)], timeoutMs: 2000, attempts: 1 };
  const classic = await query(`big.${ZONE}`, 'A', { ...opts, udpPayloadSize: 0 });
  assert.equal(classic.transport, 'tcp', '40 A records do not fit in 512 bytes');
  assert.equal(classic.reply.answers?.length, 40);
  const edns = await query(`big.${ZONE}`, 'A', opts);
  assert.equal(edns.transport, 'udp', 'with EDNS(0) 1232 bytes they fit in one datagram');
  const s = await run(t, { target: { kind: 'a', host: `big.${ZONE}`, port: 80 }, server: server(dns.port), udpPayloadSize: 0 });
  assert.equal(s.last().backends.length, 40);
});

test('server down: last-known-good kept with an error, one warning per streak, backoff, changes picked up on return', async (t) => {
  const dns = await startDnsmasq(t, `host-record=web.${ZONE},127.0.0.2`);
  const s = await run(t, { target: { kind: 'a', host: `web.${ZONE}`, port: 80 }, server: server(dns.port), minIntervalMs: 100, maxIntervalMs: 400 });
  assert.deepEqual(s.brief(), ['http://127.0.0.2:80 w1 p0']);
  await dns.stop();
  await waitFor(() => s.last().error !== undefined, 5000, 'an error snapshot');
  assert.deepEqual(s.brief(), ['http://127.0.0.2:80 w1 p0'], 'last-known-good kept');
  assert.match(s.last().error!, /ECONNREFUSED/);
  // Let several retries fail: 100, 200, 400, 400 ms...
  const failedSince = s.snapshots.length;
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(s.source.lastDelayMs, 400, 'backoff reached the max interval');
  assert.equal(s.logs.filter((l) => l.level === 'warn').length, 1, 'one warning for the whole streak');
  assert.equal(s.snapshots.length, failedSince, 'a failing streak is one report, not one per retry');
  await dns.restart(`host-record=web.${ZONE},127.0.0.2\nhost-record=web.${ZONE},127.0.0.3`);
  await waitFor(() => s.last().backends.length === 2 && s.last().error === undefined, 5000, 'recovery');
  assert.ok(s.logs.some((l) => l.msg === 'DNS lookups answer again'));
});

test('NXDOMAIN empties a known name only after consecutive lookups agree', async (t) => {
  const dns = await startDnsmasq(t, `host-record=web.${ZONE},127.0.0.2`);
  const s = await run(t, { target: { kind: 'a', host: `web.${ZONE}`, port: 80 }, server: server(dns.port), minIntervalMs: 300, maxIntervalMs: 300, emptyAfter: 2 });
  await dns.restart(`host-record=other.${ZONE},127.0.0.9`);
  await waitFor(() => s.last().backends.length === 0, 5000, 'emptied');
  // (A lookup may also land in the restart's gap and fail; that keeps the backends too and is not counted.)
  const pending = s.snapshots.filter((x) => x.error?.includes('NXDOMAIN'));
  assert.equal(pending.length, 1, 'one report keeping the backends after the first NXDOMAIN');
  assert.equal(pending[0].backends.length, 1);
  assert.match(pending[0].error!, /NXDOMAIN; keeping the last-known-good backends until 2 consecutive lookups agree/);
  assert.equal(s.snapshots.filter((x) => x.backends.length === 0).length, 1, 'emptied once, by the second NXDOMAIN');
  assert.equal(s.last().error, undefined, 'an authoritative empty answer is not an error');
  assert.match(s.last().problems[0].message, /NXDOMAIN/);
});

test('a name that never resolved: start() reports promptly, whether the server refuses, never answers, or says NXDOMAIN', async (t) => {
  // Nothing listens on this port: ICMP port unreachable, ECONNREFUSED at once.
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
  const closedPort = closed.address().port;
  await new Promise<void>((r) => closed.close(() => r()));
  const refused = await run(t, { target: { kind: 'srv', name: `_http._tcp.web.${ZONE}` }, server: server(closedPort) });
  assert.deepEqual(refused.last().backends, []);
  assert.match(refused.last().error!, /ECONNREFUSED/);

  // A server that swallows queries: start() gives up waiting after firstSyncTimeoutMs, not after every retry.
  const blackhole = dgram.createSocket('udp4');
  await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => blackhole.close(() => r())));
  const silent = await run(t, { target: { kind: 'srv', name: `_http._tcp.web.${ZONE}` }, server: server(blackhole.address().port), firstSyncTimeoutMs: 300 });
  assert.ok(silent.startMs < 2000, `start() took ${silent.startMs} ms`);
  assert.deepEqual(silent.last().backends, []);
  assert.match(silent.last().error!, /no answer from DNS yet/);

  const dns = await startDnsmasq(t, '');
  const missing = await run(t, { target: { kind: 'srv', name: `_http._tcp.late.${ZONE}` }, server: server(dns.port), minIntervalMs: 100, maxIntervalMs: 200 });
  assert.deepEqual(missing.last().backends, []);
  assert.equal(missing.last().error, undefined);
  assert.match(missing.last().problems[0].message, /NXDOMAIN/);
  await dns.restart(`host-record=a.${ZONE},127.0.0.2\nsrv-host=_http._tcp.late.${ZONE},a.${ZONE},8080,0,1`);
  await waitFor(() => missing.last().backends.length === 1, 5000, 'picked up once it resolves');
});

test('--dns-scheme https|h2c: SRV and A backends are https or h2c origins (default http)', async (t) => {
  const dns = await startDnsmasq(t, [`host-record=a.${ZONE},127.0.0.2`, `srv-host=_https._tcp.web.${ZONE},a.${ZONE},8443,0,1`].join('\n'));
  const srv = await run(t, { target: { kind: 'srv', name: `_https._tcp.web.${ZONE}` }, server: server(dns.port), scheme: 'https' });
  assert.deepEqual(srv.brief(), ['https://127.0.0.2:8443 w1 p0']);
  const a = await run(t, { target: { kind: 'a', host: `a.${ZONE}`, port: 443 }, server: server(dns.port), scheme: 'https' });
  assert.deepEqual(a.brief(), ['https://127.0.0.2:443 w1 p0']);
  assert.equal(a.last().backends[0].id, '127.0.0.2:443', 'the id is host:port whatever the scheme');
  const plain = await run(t, { target: { kind: 'a', host: `a.${ZONE}`, port: 80 }, server: server(dns.port) });
  assert.deepEqual(plain.brief(), ['http://127.0.0.2:80 w1 p0']);
  const h2c = await run(t, { target: { kind: 'srv', name: `_https._tcp.web.${ZONE}` }, server: server(dns.port), scheme: 'h2c' });
  assert.deepEqual(h2c.brief(), ['h2c://127.0.0.2:8443 w1 p0'], 'cleartext HTTP/2 (gRPC) replicas');
});
