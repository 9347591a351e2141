/**
 * The gRPC health mode against real `@grpc/grpc-js` servers serving a hand-written `grpc.health.v1.Health`
 * service (the protocol's two one-field messages, encoded by hand as bulb does): a backend reporting NOT_SERVING
 * is taken out of rotation and comes back on SERVING; a named service is asked about by name; cleartext HTTP/2
 * with prior knowledge (h2c) for http backends, TLS with ALPN h2 and the backend's TLS material for https.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startBulb, type RunningBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { makeCa, pem } from '../helpers/pki.js';
import { tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

const SERVING = 1;
const NOT_SERVING = 2;

interface HealthServer {
  readonly port: number;
  /** Status per service name ('' = the whole server); a name not in the map answers NOT_FOUND, as the spec says. */
  readonly statuses: Map<string, number>;
  /** Service names asked about, in order. */
  readonly asked: string[];
}

/** HealthCheckRequest { string service = 1; } */
function decodeRequest(buf: Buffer): { service: string } {
  let i = 0;
  let service = '';
  while (i < buf.length) {
    const tag = buf[i++];
    let len = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++];
      len |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    if (tag === 0x0a) service = buf.subarray(i, i + len).toString('utf8');
    i += len;
  }
  return { service };
}

/** HealthCheckResponse { ServingStatus status = 1; } */
const encodeResponse = (r: { status: number }): Buffer => Buffer.from([0x08, r.status]);

async function startHealthServer(t: TestContext, opts: { credentials?: grpc.ServerCredentials } = {}): Promise<HealthServer> {
  const statuses = new Map<string, number>([['', SERVING]]);
  const asked: string[] = [];
  const server = new grpc.Server();
  server.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: decodeRequest,
        responseSerialize: encodeResponse,
        responseDeserialize: () => ({ status: 0 }),
      },
    },
    {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, { status: number }>, callback: grpc.sendUnaryData<{ status: number }>) => {
        asked.push(call.request.service);
        const status = statuses.get(call.request.service);
        if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        else callback(null, { status });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.after(() => new Promise<void>((r) => server.tryShutdown(() => r())));
  return { port, statuses, asked };
}

interface AdminBackend { id: string; healthy: boolean }
async function healthy(bulb: RunningBulb, id: string): Promise<boolean | undefined> {
  const list = (JSON.parse((await request(`${bulb.adminUrl}/backends`)).body) as { backends: AdminBackend[] }).backends;
  return list.find((b) => b.id === id)?.healthy;
}

const FAST = { interval: '100ms', timeout: '1s', rise: 1, fall: 1 };

test('grpc health over h2c: NOT_SERVING takes the backend out, SERVING brings it back', async (t) => {
  const hs = await startHealthServer(t);
  const dir = await tmpDir(t);
  const id = `127.0.0.1:${hs.port}`;
  writeFileSync(join(dir, 'g.json'), JSON.stringify({ url: `http://${id}`, health: { mode: 'grpc', service: '', ...FAST } }));
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  await waitFor(() => hs.asked.length >= 2, 10_000, 'health checks arriving');
  assert.equal(await healthy(bulb, id), true);

  hs.statuses.set('', NOT_SERVING);
  const out = await bulb.waitForLog((l) => l.msg === 'backend failing health checks; out of rotation');
  assert.equal(out['reason'], 'gRPC health NOT_SERVING');
  assert.equal(await healthy(bulb, id), false);
  assert.equal((await request(`${bulb.url}/`)).status, 503, 'out of rotation: nothing to route to');

  hs.statuses.set('', SERVING);
  await bulb.waitForLog((l) => l.msg === 'backend passing health checks; back in rotation');
  assert.equal(await healthy(bulb, id), true);
  assert.ok(hs.asked.every((s) => s === ''), 'the whole server was asked about');
});

test('grpc health of an h2c:// backend (cleartext HTTP/2 with prior knowledge), the gRPC traffic routed too', async (t) => {
  const hs = await startHealthServer(t);
  const id = `127.0.0.1:${hs.port}`;
  const bulb = await startBulb(t, ['--backend', `h2c://${id}`, '--health-mode', 'grpc', '--health-interval', '100ms', '--health-fall', '1', '--health-rise', '1']);
  await waitFor(() => hs.asked.length >= 2, 10_000, 'checks of the h2c backend');
  assert.equal(await healthy(bulb, id), true);
  // A real client's call through bulb reaches the same server: the health service answers it.
  const client = new grpc.Client(bulb.url.replace('http://', ''), grpc.credentials.createInsecure());
  t.after(() => client.close());
  const call = (): Promise<number> =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b[1] ?? 0, {}, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  assert.equal(await call(), SERVING);
  hs.statuses.set('', NOT_SERVING);
  await bulb.waitForLog((l) => l.msg === 'backend failing health checks; out of rotation');
  assert.equal(await healthy(bulb, id), false);
});

test('--health-mode grpc --health-grpc-service: the named service is asked about; an unknown one fails with its grpc-status', async (t) => {
  const hs = await startHealthServer(t);
  hs.statuses.set('shop.v1.Cart', SERVING);
  const id = `127.0.0.1:${hs.port}`;
  const args = ['--backend', `http://${id}`, '--health-mode', 'grpc', '--health-interval', '100ms', '--health-fall', '1', '--health-rise', '1'];
  const bulb = await startBulb(t, [...args, '--health-grpc-service', 'shop.v1.Cart']);
  await waitFor(() => hs.asked.includes('shop.v1.Cart'), 10_000, 'the service asked about');
  assert.equal(await healthy(bulb, id), true);

  const unknown = await startBulb(t, [...args, '--health-grpc-service', 'shop.v1.Nope']);
  const line = await unknown.waitForLog((l) => l.msg === 'backend failing health checks; out of rotation');
  assert.match(line['reason'] as string, /^grpc-status 5/, 'NOT_FOUND, as the health protocol answers for an unknown service');
});

let pkiDir: string | undefined;
after(() => {
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

test('grpc health over TLS (ALPN h2) uses the backend\'s tls block: verified with its CA, refused with another', async (t) => {
  pkiDir = mkdtempSync(join(tmpdir(), 'bulb-pki-'));
  const ca = makeCa(pkiDir, 'ca');
  const other = makeCa(pkiDir, 'other');
  const cert = ca.server('grpc', ['127.0.0.1']);
  const hs = await startHealthServer(t, { credentials: grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(pem(cert.cert)), private_key: Buffer.from(pem(cert.key)) }]) });
  const id = `127.0.0.1:${hs.port}`;
  const good = await tmpDir(t);
  writeFileSync(join(good, 'g.json'), JSON.stringify({ url: `https://${id}`, tls: { ca: ca.cert }, health: { mode: 'grpc', ...FAST } }));
  const bulb = await startBulb(t, ['--watch-dir', good]);
  await waitFor(() => hs.asked.length >= 2, 10_000, 'checks over TLS');
  assert.equal(await healthy(bulb, id), true);

  const bad = await tmpDir(t);
  writeFileSync(join(bad, 'g.json'), JSON.stringify({ url: `https://${id}`, tls: { ca: other.cert }, health: { mode: 'grpc', ...FAST } }));
  const refused = await startBulb(t, ['--watch-dir', bad]);
  const line = await refused.waitForLog((l) => l.msg === 'backend failing health checks; out of rotation');
  assert.match(line['reason'] as string, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
});
