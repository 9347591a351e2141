import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startBulb, warnings } from '../helpers/bulb.js';
import { echoClient, grpc, startGrpcBackend, unary, type Msg } from '../helpers/grpc.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDnsmasq, ZONE } from '../helpers/dnsmasq.js';

const hostOf = (url: string): string => new URL(url).host;

test('gRPC: 300 unary calls on one client channel spread over 3 backends, trailers intact', async (t) => {
  const backends = await Promise.all(['a', 'b', 'c'].map((n) => startGrpcBackend(t, n)));
  const bulb = await startBulb(t, [...backends.flatMap((b) => ['--backend', b.url]), '--health-mode', 'off']);
  const client = echoClient(t, hostOf(bulb.url));
  const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => unary(client, { text: `m${i}` })));
  for (const [i, r] of replies.entries()) {
    assert.equal(r.res.text, `m${i}`);
    assert.deepEqual(r.trailers.get('x-backend-trailer'), [r.res.backend], 'the trailing metadata is the serving backend’s');
  }
  for (const b of backends) assert.ok(b.calls.Unary >= 80, `${b.name} served ${b.calls.Unary} of 300 (one connection, balanced per call)`);
  assert.deepEqual(warnings(bulb), []);
});

test('gRPC: server-streaming, client-streaming and bidi calls through bulb', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  const client = echoClient(t, hostOf(bulb.url));

  const got: Msg[] = [];
  const ss = client.ServerStream({ text: 's', n: 5, backend: '' });
  ss.on('data', (m: Msg) => got.push(m));
  const ssStatus = await new Promise<grpc.StatusObject>((r) => ss.on('status', r));
  assert.equal(ssStatus.code, grpc.status.OK);
  assert.deepEqual(got.map((m) => m.text), ['s-0', 's-1', 's-2', 's-3', 's-4']);
  assert.deepEqual(ssStatus.metadata.get('x-backend-trailer'), ['a']);

  const joined = await new Promise<Msg>((resolve, reject) => {
    const cs = client.ClientStream(new grpc.Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res!)));
    for (const text of ['x', 'y', 'z']) cs.write({ text, n: 0, backend: '' });
    cs.end();
  });
  assert.equal(joined.text, 'x,y,z');

  // Bidi: each answer arrives before the next message is sent, so the stream really is interactive.
  const bidi = client.Bidi();
  const answers: string[] = [];
  for (const text of ['one', 'two', 'three']) {
    const next = new Promise<Msg>((r) => bidi.once('data', r));
    bidi.write({ text, n: 0, backend: '' });
    answers.push((await next).text);
  }
  bidi.end();
  const bidiStatus = await new Promise<grpc.StatusObject>((r) => bidi.on('status', r));
  assert.equal(bidiStatus.code, grpc.status.OK);
  assert.deepEqual(answers, ['echo:one', 'echo:two', 'echo:three']);
  assert.deepEqual(warnings(bulb), []);
});

test('gRPC: a client cancellation reaches the backend', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  const client = echoClient(t, hostOf(bulb.url));
  const ss = client.ServerStream({ text: 'inf', n: 0, backend: '' });
  let n = 0;
  await new Promise<void>((resolve) =>
    ss.on('data', () => {
      if (++n === 3) resolve();
    }),
  );
  const status = new Promise<grpc.StatusObject>((r) => ss.on('status', r));
  ss.on('error', () => {});
  ss.cancel();
  assert.equal((await status).code, grpc.status.CANCELLED);
  await waitFor(() => a.cancelled === 1, 5_000, () => `the backend saw ${a.cancelled} cancellations`);

  // And a cancelled bidi call.
  const bidi = client.Bidi();
  bidi.on('error', () => {});
  const first = new Promise((r) => bidi.once('data', r));
  bidi.write({ text: 'x', n: 0, backend: '' });
  await first;
  bidi.cancel();
  await waitFor(() => a.cancelled === 2, 5_000, () => `the backend saw ${a.cancelled} cancellations`);
  // Nothing left in flight: the cancelled calls were reported back.
  await waitFor(async () => {
    const { backends } = (await (await fetch(`${bulb.adminUrl}/backends`)).json()) as { backends: { activeRequests: number; requests: number }[] };
    return backends[0].activeRequests === 0 && backends[0].requests === 2;
  }, 5_000, () => 'the two cancelled calls were reported back (in flight 0, 2 requests)');
});

test('gRPC: a backend status with message and trailing metadata arrives intact', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off']);
  const client = echoClient(t, hostOf(bulb.url));
  const err = await unary(client, { text: 'notfound' }).then(
    () => assert.fail('expected NOT_FOUND'),
    (e: unknown) => e as grpc.ServiceError,
  );
  assert.equal(err.code, grpc.status.NOT_FOUND);
  assert.equal(err.details, 'no such thing');
  assert.deepEqual(err.metadata.get('x-why'), ['missing']);
  // The access log says how the call ended, beside its HTTP status.
  const line = await bulb.waitForLog((l) => l.msg === 'request');
  assert.equal(line['status'], 200);
  assert.equal(line['grpcStatus'], grpc.status.NOT_FOUND);
});

test('gRPC: no backend is UNAVAILABLE in an HTTP 200 with trailers, not a 503 page', async (t) => {
  const bulb = await startBulb(t, []);
  const client = echoClient(t, hostOf(bulb.url));
  const err = await unary(client, { text: 'x' }).then(
    () => assert.fail('expected UNAVAILABLE'),
    (e: unknown) => e as grpc.ServiceError,
  );
  assert.equal(err.code, grpc.status.UNAVAILABLE);
  assert.equal(err.details, 'no backend available');
  assert.equal((await bulb.waitForLog((l) => l.msg === 'request'))['grpcStatus'], grpc.status.UNAVAILABLE);
  // On the wire: status 200, grpc-status 14 in a trailers-only response.
  const session = http2.connect(bulb.url);
  session.on('error', () => {});
  t.after(() => session.close());
  const req = session.request({ ':method': 'POST', ':path': '/bulbtest.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
  req.end();
  const headers = await new Promise<http2.IncomingHttpHeaders>((r) => req.on('response', r));
  assert.equal(headers[':status'], 200);
  assert.equal(headers['grpc-status'], '14');
});

test('gRPC: upstream timeout is DEADLINE_EXCEEDED; grpc-timeout is the call deadline, passed on and enforced', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off', '--upstream-timeout', '300ms']);
  const client = echoClient(t, hostOf(bulb.url));
  const err = await unary(client, { text: 'slow', n: 3000 }).then(
    () => assert.fail('expected DEADLINE_EXCEEDED'),
    (e: unknown) => e as grpc.ServiceError,
  );
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
  assert.match(err.details, /did not respond in time/, 'the deadline is bulb’s, not the client’s (it set none)');

  // A raw client (no deadline of its own) sends grpc-timeout: bulb answers DEADLINE_EXCEEDED when it passes and
  // cancels the backend's call; the backend saw the deadline too.
  const session = http2.connect(bulb.url);
  session.on('error', () => {});
  t.after(() => session.close());
  const started = Date.now();
  const frame = Buffer.from([0, 0, 0, 0, 6, 0x0a, 4, 0x68, 0x61, 0x6e, 0x67]); // Msg{text: "hang"}
  const req = session.request({ ':method': 'POST', ':path': '/bulbtest.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' });
  req.end(frame);
  const headers = await new Promise<http2.IncomingHttpHeaders>((r) => req.on('response', r));
  req.resume();
  assert.equal(headers['grpc-status'], '4');
  assert.ok(Date.now() - started >= 150, 'not before the deadline');
  const seen = a.deadlines.at(-1)!;
  assert.ok(seen > 0 && seen <= 200, `the backend saw a deadline of ${seen} ms`);
  await waitFor(() => a.hanging === 0, 5_000, () => 'the backend call was cancelled');
});

test('gRPC: a killed backend: calls it never received are retried, calls it had are not', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const b = await startGrpcBackend(t, 'b');
  // No ejection and no health checks: every other call keeps going to the dead backend, to be retried.
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url, '--health-mode', 'off', '--outlier-consecutive', '0']);
  const client = echoClient(t, hostOf(bulb.url));
  const held = Array.from({ length: 4 }, () => unary(client, { text: 'hang' }).then(() => 'ok', (e: unknown) => (e as grpc.ServiceError).code));
  await waitFor(() => a.hanging === 2 && b.hanging === 2, 5_000, () => `hanging: a ${a.hanging}, b ${b.hanging}`);
  b.kill();
  // b's two calls were sent: they fail, and are not replayed on a.
  const settled = await Promise.race([Promise.all(held.map((p) => Promise.race([p, new Promise((r) => setTimeout(() => r('pending'), 3_000))])))]);
  assert.deepEqual(settled.filter((s) => s !== 'pending').sort(), [grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE]);
  assert.equal(a.calls.Unary, 2, 'the calls b had received were not sent again');
  // Calls picked onto b now find it refusing connections: provably unsent, so they go to a.
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => unary(client, { text: `after${i}` })));
  assert.deepEqual(new Set(replies.map((r) => r.res.backend)), new Set(['a']));
  // Log lines arrive through a pipe, after the replies: wait for all ten access-log lines (2 failed, 8 served).
  await waitFor(() => bulb.logs.filter((l) => l.msg === 'request').length >= 10, 5_000);
  const retried = bulb.logs.filter((l) => l.msg === 'retrying on another backend');
  assert.ok(retried.length >= 3, `calls picked onto the dead backend were retried (${retried.length}): ${JSON.stringify(bulb.logs.slice(-12))}`);
  assert.ok(retried.every((l) => l['error'] === 'ECONNREFUSED'), JSON.stringify(retried.map((l) => l['error'])));
});

test('gRPC: a backend whose calls end UNAVAILABLE (HTTP 200) counts as failing for outlier detection', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const b = await startGrpcBackend(t, 'b');
  b.sick = true;
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url, '--health-mode', 'off', '--outlier-consecutive', '3']);
  const client = echoClient(t, hostOf(bulb.url));
  const codes: grpc.status[] = [];
  for (let i = 0; i < 12; i++) codes.push(await unary(client, { text: `c${i}` }).then(() => grpc.status.OK, (e: unknown) => (e as grpc.ServiceError).code));
  assert.equal(codes.filter((c) => c === grpc.status.UNAVAILABLE).length, 3, `b was ejected after its third UNAVAILABLE: ${codes.join(',')}`);
  const { backends } = (await (await fetch(`${bulb.adminUrl}/backends`)).json()) as { backends: { url: string; routable: boolean }[] };
  assert.equal(backends.find((x) => x.url === b.url)!.routable, false);
});

test('gRPC: SIGTERM drains: a call in flight completes, the connection gets GOAWAY, bulb exits 0', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--health-mode', 'off', '--shutdown-delay', '500ms', '--drain-timeout', '10s']);
  const session = http2.connect(bulb.url);
  session.on('error', () => {});
  t.after(() => session.destroy());
  let goaway = false;
  session.on('goaway', () => (goaway = true));
  const slow = unary(echoClient(t, hostOf(bulb.url)), { text: 'slow', n: 1500 });
  await waitFor(() => a.calls.Unary === 1, 5_000);
  bulb.kill('SIGTERM');
  // During the shutdown delay bulb still serves; the stream is answered and then the connection is told to go.
  await new Promise((r) => setTimeout(r, 100));
  const req = session.request({ ':method': 'POST', ':path': '/bulbtest.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
  req.end(Buffer.from([0, 0, 0, 0, 0]));
  const status = await new Promise<string>((resolve) => {
    req.on('trailers', (tr: http2.IncomingHttpHeaders) => resolve(String(tr['grpc-status'])));
    req.on('response', (h) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status'])));
  });
  req.resume();
  assert.equal(status, '0');
  await waitFor(() => goaway, 5_000, () => 'GOAWAY received');
  const done = await slow;
  assert.equal(done.res.text, 'slow', 'the call in flight finished');
  assert.equal(await bulb.exited, 0);
});

test('gRPC: --dns-srv with --dns-scheme h2c finds the gRPC servers (a headless Service’s _grpc._tcp records) and balances calls over them', async (t) => {
  const a = await startGrpcBackend(t, 'a');
  const b = await startGrpcBackend(t, 'b');
  const name = `_grpc._tcp.echo.${ZONE}`;
  const dns = await startDnsmasq(t, [`host-record=pod.${ZONE},127.0.0.1`, `srv-host=${name},pod.${ZONE},${a.port},0,1`, `srv-host=${name},pod.${ZONE},${b.port},0,1`].join('\n'));
  const bulb = await startBulb(t, ['--dns-srv', name, '--dns-server', dns.server, '--dns-scheme', 'h2c', '--health-mode', 'off']);
  const { backends } = (await (await fetch(`${bulb.adminUrl}/backends`)).json()) as { backends: { url: string }[] };
  assert.deepEqual(backends.map((x) => x.url).sort(), [a.url, b.url].sort());
  const client = echoClient(t, hostOf(bulb.url));
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => unary(client, { text: `d${i}` })));
  assert.deepEqual([a.calls.Unary, b.calls.Unary], [10, 10]);
  assert.equal(replies.length, 20);
});

test('gRPC: in-flight counts are per call: least-connections spreads six held calls of one channel 2/2/2', async (t) => {
  const backends = await Promise.all(['a', 'b', 'c'].map((n) => startGrpcBackend(t, n)));
  const bulb = await startBulb(t, [...backends.flatMap((b) => ['--backend', b.url]), '--health-mode', 'off', '--strategy', 'least-connections']);
  const client = echoClient(t, hostOf(bulb.url));
  const calls: grpc.ClientUnaryCall[] = [];
  for (let i = 0; i < 6; i++) {
    calls.push(client.Unary({ text: 'hang', n: 0, backend: '' }, new grpc.Metadata(), {}, () => {}));
    // One at a time, so each pick sees the calls before it in flight.
    await waitFor(() => backends.reduce((n, b) => n + b.hanging, 0) === i + 1, 5_000);
  }
  assert.deepEqual(backends.map((b) => b.hanging), [2, 2, 2]);
  const { backends: listed } = (await (await fetch(`${bulb.adminUrl}/backends`)).json()) as { backends: { activeRequests: number }[] };
  assert.deepEqual(listed.map((b) => b.activeRequests), [2, 2, 2]);
  for (const c of calls) c.cancel();
  await waitFor(() => backends.every((b) => b.hanging === 0), 5_000, () => 'every held call was cancelled at its backend');
});
