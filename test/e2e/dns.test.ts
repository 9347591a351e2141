/**
 * DNS discovery end to end: the built bulb, a real dnsmasq on a free port of 127.0.0.1, and backends on
 * 127.0.0.2/.3/.4 with the same port, the way containers have distinct IPs.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as admin from '../helpers/admin.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { startDnsmasq, ZONE } from '../helpers/dnsmasq.js';
import { request } from '../helpers/http.js';
import { tally } from '../helpers/tally.js';
import { waitFor } from '../helpers/wait-for.js';

/** Short clamps so a test sees a change within a second; dnsmasq's TTL is 0 unless a test sets it. */
const FAST = ['--dns-min-interval', '200ms', '--dns-max-interval', '1s'];
const SRV = `_http._tcp.web.${ZONE}`;

/** Backends a, b, c on 127.0.0.2, .3, .4, all on the same port. */
async function containers(t: TestContext): Promise<{ a: TestBackend; b: TestBackend; c: TestBackend; port: number }> {
  const a = await startBackend('a', { host: '127.0.0.2' });
  const [b, c] = await Promise.all([startBackend('b', { host: '127.0.0.3', port: a.port }), startBackend('c', { host: '127.0.0.4', port: a.port })]);
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  return { a, b, c, port: a.port };
}

const hosts = (...lines: string[]) => [`host-record=a.${ZONE},127.0.0.2`, `host-record=b.${ZONE},127.0.0.3`, `host-record=c.${ZONE},127.0.0.4`, ...lines].join('\n');
const srv = (target: string, port: number, priority: number, weight: number) => `srv-host=${SRV},${target}.${ZONE},${port},${priority},${weight}`;

test('SRV with three targets: all get traffic, in proportion to their SRV weights (weighted round robin)', async (t) => {
  const { port } = await containers(t);
  const dns = await startDnsmasq(t, hosts(srv('a', port, 0, 1), srv('b', port, 0, 2), srv('c', port, 0, 3)));
  const bulb = await startBulb(t, ['--dns-srv', SRV, '--dns-server', dns.server, '--strategy', 'weighted-round-robin', ...FAST]);
  const listed = await admin.backends(bulb);
  assert.deepEqual(listed.map((b) => [b.url, b.weight]).sort(), [[`http://127.0.0.2:${port}`, 1], [`http://127.0.0.3:${port}`, 2], [`http://127.0.0.4:${port}`, 3]]);
  assert.ok(listed.every((b) => b.source === `dns-srv:${SRV}`));
  // Smooth WRR repeats every 6 picks, so 60 picks are exactly 10 cycles.
  assert.deepEqual(await tally(bulb, 60), { a: 10, b: 20, c: 30 });
});

test('priority: only the lowest group gets traffic; when its backends are all out, the next group does, and gives it back', async (t) => {
  const { port } = await containers(t);
  const dns = await startDnsmasq(t, hosts(srv('a', port, 0, 1), srv('b', port, 0, 1), srv('c', port, 1, 5)));
  const bulb = await startBulb(t, ['--dns-srv', SRV, '--dns-server', dns.server, ...FAST]);
  assert.deepEqual(await tally(bulb, 10), { a: 5, b: 5 }, 'priority 1 (c) is a backup and gets nothing');

  // An operator's hand drain takes backends out of the group as failing health checks do (next test).
  const drain = (host: string, action: 'drain' | 'undrain') => admin.drain(bulb, `${host}:${port}`, action);
  assert.equal((await drain('127.0.0.2', 'drain')).status, 200);
  assert.deepEqual(await tally(bulb, 4), { b: 4 }, 'one backend left in the group: the group still serves');
  await drain('127.0.0.3', 'drain');
  assert.deepEqual(await tally(bulb, 4), { c: 4 }, 'whole group out: priority 1 takes over');
  await drain('127.0.0.2', 'undrain');
  assert.deepEqual(await tally(bulb, 4), { a: 4 }, 'a priority-0 backend is back: traffic returns to the group');
});

test('priority failover driven by health checks: the group fails its checks, priority 1 serves; one recovers, traffic returns', async (t) => {
  const { a, b, port } = await containers(t);
  const dns = await startDnsmasq(t, hosts(srv('a', port, 0, 1), srv('b', port, 0, 1), srv('c', port, 1, 5)));
  const health = ['--health-path', '/healthz', '--health-interval', '200ms', '--health-fall', '1', '--health-rise', '1', '--outlier-consecutive', '0'];
  const bulb = await startBulb(t, ['--dns-srv', SRV, '--dns-server', dns.server, ...health, ...FAST]);
  assert.deepEqual(await tally(bulb, 10), { a: 5, b: 5 });
  a.healthzStatus = 503;
  b.healthzStatus = 503;
  await waitFor(async () => (await admin.backends(bulb)).filter((x) => !x.healthy).length === 2, 10_000, 'group 0 marked down');
  assert.deepEqual(await tally(bulb, 4), { c: 4 }, 'the whole priority-0 group is down: priority 1 takes over');
  a.healthzStatus = 200;
  await waitFor(async () => (await admin.backends(bulb)).some((x) => x.url === a.url && x.healthy), 10_000, 'a healthy again');
  assert.deepEqual(await tally(bulb, 4), { a: 4 }, 'one priority-0 backend is back: traffic returns to the group');
});

test('records change: the pool follows within the refresh interval; a removed target drains; same PID', async (t) => {
  const { a, b, port } = await containers(t);
  const dns = await startDnsmasq(t, hosts(srv('a', port, 0, 1), srv('b', port, 0, 1)), { ttl: 1 });
  const bulb = await startBulb(t, ['--dns-srv', SRV, '--dns-server', dns.server, ...FAST]);
  const pid = bulb.pid;
  assert.deepEqual(await tally(bulb, 4), { a: 2, b: 2 });
  const bRequests = (await admin.backends(bulb)).find((x) => x.url === b.url)!.requests;

  // Hold one slow request on a, then drop a from DNS, re-weight b and add c.
  a.delayMs = 1500;
  let inflight: Promise<{ status: number; body: string }> | undefined;
  while (a.inflight === 0) {
    const seenByB = b.seen.length;
    inflight = request(`${bulb.url}/slow`);
    await waitFor(() => a.inflight > 0 || b.seen.length > seenByB, 5000);
  }
  const changed = Date.now();
  await dns.restart(hosts(srv('b', port, 0, 4), srv('c', port, 0, 1)), { ttl: 1 });
  await waitFor(async () => (await admin.backends(bulb)).some((x) => x.url.includes('127.0.0.2') && x.state === 'draining'), 10_000, 'a draining');
  t.diagnostic(`DNS change → drain in ${Date.now() - changed} ms`);
  const now = await admin.backends(bulb);
  const bNow = now.find((x) => x.url === b.url)!;
  assert.equal(bNow.weight, 4, 'b re-weighted in place');
  assert.ok(bNow.requests >= bRequests, 'b kept its counters');
  assert.ok(now.some((x) => x.url === `http://127.0.0.4:${port}` && x.state === 'active'), 'c added');
  const after = await tally(bulb, 10);
  assert.equal(after['a'], undefined, 'no new request reaches the removed target');
  assert.deepEqual(Object.keys(after).sort(), ['b', 'c']);
  const finished = await inflight!;
  assert.deepEqual([finished.status, finished.body], [200, 'a'], 'its in-flight request finished');
  await waitFor(async () => !(await admin.backends(bulb)).some((x) => x.url.includes('127.0.0.2')), 10_000, 'a removed once idle');
  assert.equal(bulb.pid, pid);
  assert.equal(bulb.proc.exitCode, null);
});

test('DNS server stopped: last-known-good keeps serving, one warning, changes picked up when it returns', async (t) => {
  const { port } = await containers(t);
  const config = hosts(srv('a', port, 0, 1), srv('b', port, 0, 1));
  const dns = await startDnsmasq(t, config);
  const bulb = await startBulb(t, ['--dns-srv', SRV, '--dns-server', dns.server, ...FAST]);
  assert.deepEqual(await tally(bulb, 4), { a: 2, b: 2 });

  await dns.stop();
  await bulb.waitForLog((l) => l.level === 'warn' && l.msg.startsWith('DNS lookup failed'), 10_000);
  await waitFor(async () => (await admin.sources(bulb)).some((s) => s.name === `dns-srv:${SRV}` && typeof s.error === 'string'), 10_000, 'the source shows its error');
  // Several backed-off retries fail meanwhile; traffic is unaffected.
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(await tally(bulb, 4), { a: 2, b: 2 }, 'last-known-good pool keeps serving');
  const warnings = bulb.logs.filter((l) => l.level === 'warn' && l.msg.startsWith('DNS lookup failed'));
  assert.equal(warnings.length, 1, 'one warning per failure streak');

  await dns.restart(hosts(srv('a', port, 0, 1), srv('b', port, 0, 1), srv('c', port, 0, 1)));
  await waitFor(async () => (await admin.backends(bulb)).length === 3, 10_000, 'c picked up after the server returned');
  assert.deepEqual(await tally(bulb, 6), { a: 2, b: 2, c: 2 });
  await bulb.waitForLog((l) => l.msg === 'DNS lookups answer again');
  assert.equal((await admin.sources(bulb)).find((s) => s.name === `dns-srv:${SRV}`)!.error ?? null, null, 'error cleared');
});

test('A-record mode: a compose service scaled from 3 replicas to 2', async (t) => {
  const { port } = await containers(t);
  const web = (...ips: string[]) => ips.map((ip) => `host-record=web.${ZONE},${ip}`).join('\n');
  const dns = await startDnsmasq(t, web('127.0.0.2', '127.0.0.3', '127.0.0.4'));
  const bulb = await startBulb(t, ['--dns-a', `web.${ZONE}:${port}`, '--dns-server', dns.server, ...FAST]);
  assert.deepEqual(await tally(bulb, 6), { a: 2, b: 2, c: 2 });
  await dns.restart(web('127.0.0.2', '127.0.0.3'));
  await waitFor(async () => (await admin.backends(bulb)).length === 2, 10_000, 'scaled down to 2');
  assert.deepEqual(await tally(bulb, 6), { a: 3, b: 3 });
});

test('a name that never resolved: bulb starts anyway, answers 503, and picks the backends up once it resolves', async (t) => {
  const { port } = await containers(t);
  const dns = await startDnsmasq(t, hosts());
  const bulb = await startBulb(t, ['--dns-srv', SRV, '--dns-server', dns.server, ...FAST]);
  assert.equal((await request(`${bulb.url}/`)).status, 503);
  assert.equal((await request(`${bulb.adminUrl}/readyz`)).status, 503);
  await dns.restart(hosts(srv('a', port, 0, 1)));
  await waitFor(async () => (await request(`${bulb.url}/`)).status === 200, 10_000, 'routable once the name resolves');
  assert.deepEqual(await tally(bulb, 3), { a: 3 });
});
