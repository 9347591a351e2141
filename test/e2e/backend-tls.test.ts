/**
 * TLS to backends, end to end: the built bulb in front of real node:https backends, with a PKI made at test time
 * by openssl (test/helpers/pki.ts). Verification on by default, 502 with the TLS reason when it fails (expired,
 * wrong name, unknown CA), SNI for IP targets, mutual TLS, a CA file replaced at run time, insecure per source with
 * a warning, bad tls blocks in backend files, health checks over the same TLS, and two workers.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { startBackends } from '../helpers/backend.js';
import { runBulb, startBulb, type LogLine } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';
import { makeCa, pem, type Ca, type Issued } from '../helpers/pki.js';
import { tmpDir } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

interface HttpsBackend {
  readonly url: string;
  readonly port: number;
  /** SNI names the backend saw, one per TLS connection. */
  readonly servernames: (string | false | null)[];
  /** Subject CN of the client certificate of each request, '' when none. */
  readonly clients: string[];
  /** Serve another certificate from now on (new connections). */
  setCert(issued: Issued): void;
}

/** An https backend answering `name` (and 200 on /health), optionally requiring a client certificate from `clientCa`. */
async function httpsBackend(t: TestContext, name: string, cert: Issued, opts: { host?: string; clientCa?: Ca } = {}): Promise<HttpsBackend> {
  const servernames: (string | false | null)[] = [];
  const clients: string[] = [];
  const server = https.createServer(
    {
      cert: pem(cert.cert),
      key: pem(cert.key),
      ...(opts.clientCa && { ca: pem(opts.clientCa.cert), requestCert: true, rejectUnauthorized: true }),
    },
    (req, res) => {
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- an https server's sockets are TLSSockets
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      clients.push(String(peer?.subject?.CN ?? ''));
      res.end(name);
    },
  );
  server.on('secureConnection', (s: TLSSocket) => servernames.push(s.servername));
  // Handshake failures are what these tests provoke; they are not errors of the test.
  server.on('tlsClientError', () => {});
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, host, r));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://${host}:${port}`,
    port,
    servernames,
    clients,
    setCert: (issued) => {
      server.setSecureContext({ cert: pem(issued.cert), key: pem(issued.key), ...(opts.clientCa && { ca: pem(opts.clientCa.cert) }) });
      // Kept-alive connections were made with the old certificate; the next request must handshake again.
      server.closeIdleConnections();
    },
  };
}

/** One PKI per test file (openssl takes a moment per certificate): three CAs that do not trust each other. */
let pkiDir: string | undefined;
let pki: { dir: string; ca: Ca; other: Ca; clientCa: Ca } | undefined;
function getPki(_t: TestContext) {
  pkiDir ??= mkdtempSync(join(tmpdir(), 'bulb-pki-'));
  pki ??= { dir: pkiDir, ca: makeCa(pkiDir, 'ca'), other: makeCa(pkiDir, 'other-ca'), clientCa: makeCa(pkiDir, 'client-ca') };
  return pki;
}
after(() => {
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

/** Writes a backend file `name.json` into a fresh watch dir and returns the dir. */
async function backendDir(t: TestContext, files: Record<string, unknown>): Promise<string> {
  const dir = await tmpDir(t);
  for (const [name, doc] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(doc));
  return dir;
}

const isTlsFailure = (l: LogLine): boolean => l.msg === 'backend TLS failed; answering 502';

test('a CA-verified https backend answers; the same backend with a CA that did not sign it gets 502 and the reason', async (t) => {
  const { ca, other } = getPki(t);
  const cert = ca.server('ok', ['localhost', '127.0.0.1']);
  const backend = await httpsBackend(t, 'tls-ok', cert);
  const good = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: ca.cert } } })]);
  const ok = await request(`${good.url}/`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'tls-ok');

  const bad = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: other.cert } } })]);
  const res = await request(`${bad.url}/`);
  assert.equal(res.status, 502);
  const line = await bad.waitForLog(isTlsFailure);
  assert.ok(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN'].includes(line['error'] as string), String(line['error']));
  assert.match(line['reason'] as string, /not signed by a trusted CA|untrusted self-signed CA/);
  assert.ok(backend.clients.length === 1, 'the rejected connection carried no request (no plaintext fallback either)');

  // Without any CA setting, Node's bundled roots verify: a private CA is unknown there too.
  const defaults = await startBulb(t, ['--backend', backend.url]);
  assert.equal((await request(`${defaults.url}/`)).status, 502);
  await defaults.waitForLog(isTlsFailure);
});

test('wrong name and expired certificates get 502 with ERR_TLS_CERT_ALTNAME_INVALID and CERT_HAS_EXPIRED', async (t) => {
  const { ca } = getPki(t);
  const wrongName = await httpsBackend(t, 'wrong-name', ca.server('wrong-name', ['other.example']));
  const expired = await httpsBackend(t, 'expired', ca.server('expired', ['127.0.0.1'], { expired: true }));
  for (const [backend, code, reason] of [
    [wrongName, 'ERR_TLS_CERT_ALTNAME_INVALID', /does not name this host/],
    [expired, 'CERT_HAS_EXPIRED', /has expired/],
  ] as const) {
    const bulb = await startBulb(t, ['--backend', backend.url, '--backend-tls-ca', ca.cert]);
    const res = await request(`${bulb.url}/`);
    assert.equal(res.status, 502, code);
    assert.match(res.body, /bad gateway/);
    const line = await bulb.waitForLog(isTlsFailure);
    assert.equal(line['error'], code);
    assert.match(line['reason'] as string, reason);
    assert.equal(backend.clients.length, 0, `${code}: no request reached the backend`);
  }
});

test('serverName: SNI and verification name for an IP target (127.0.0.2 with a certificate for api.internal)', async (t) => {
  const { ca } = getPki(t);
  const backend = await httpsBackend(t, 'api', ca.server('api', ['api.internal']), { host: '127.0.0.2' });
  const dir = await backendDir(t, {
    'named.json': { url: backend.url, id: 'named', tls: { ca: ca.cert, serverName: 'api.internal' } },
  });
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const res = await request(`${bulb.url}/`);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'api');
  assert.deepEqual(backend.servernames, ['api.internal'], 'the backend saw the SNI');

  // The same target without serverName: the IP is checked against the certificate, which does not carry it.
  const plain = await startBulb(t, ['--backend', backend.url, '--backend-tls-ca', ca.cert]);
  assert.equal((await request(`${plain.url}/`)).status, 502);
  assert.equal((await plain.waitForLog(isTlsFailure))['error'], 'ERR_TLS_CERT_ALTNAME_INVALID');
  // And through the global setting it works again.
  const global = await startBulb(t, ['--backend', backend.url, '--backend-tls-ca', ca.cert, '--backend-tls-server-name', 'api.internal']);
  assert.equal((await request(`${global.url}/`)).body, 'api');
});

test('mutual TLS: a backend that requires a client certificate refuses bulb without one, accepts it with one', async (t) => {
  const { ca, clientCa } = getPki(t);
  const backend = await httpsBackend(t, 'mtls', ca.server('mtls', ['127.0.0.1']), { clientCa });
  const client = clientCa.client('bulb-client', 'bulb-sidecar');
  const without = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: ca.cert } } })]);
  assert.equal((await request(`${without.url}/`)).status, 502);
  const line = await without.waitForLog((l) => l.msg === 'backend TLS failed; answering 502' || l.msg === 'backend failed before responding');
  t.diagnostic(`without a client certificate: ${String(line['error'])}`);
  assert.match(String(line['reason']), /client certificate/, 'the log line says why');
  assert.equal(backend.clients.length, 0);

  const withCert = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: ca.cert, cert: client.cert, key: client.key } } })]);
  const res = await request(`${withCert.url}/`);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'mtls');
  assert.deepEqual(backend.clients, ['bulb-sidecar'], 'the backend saw bulb\'s client certificate');
});

test('the CA file replaced at run time (a renewed Secret): new connections verify against the new CA, no restart', async (t) => {
  const { ca, other } = getPki(t);
  const backend = await httpsBackend(t, 'rotating', ca.server('rot-a', ['127.0.0.1']));
  const work = await tmpDir(t);
  const caFile = join(work, 'ca.pem');
  copyFileSync(ca.cert, caFile);
  const bulb = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: caFile } } })]);
  assert.equal((await request(`${bulb.url}/`)).status, 200);
  const pid = bulb.pid;

  // The backend moves to a certificate of the other CA: bulb, still trusting the first, refuses it.
  backend.setCert(other.server('rot-b', ['127.0.0.1']));
  await waitFor(async () => (await request(`${bulb.url}/`, { agent: false })).status === 502, 10_000, '502 once the backend cert changed');
  // The Secret is renewed: the CA file is replaced atomically (as the kubelet swaps ..data).
  const tmp = join(work, '.ca.tmp');
  copyFileSync(other.cert, tmp);
  renameSync(tmp, caFile);
  await bulb.waitForLog((l) => l.msg === 'backend TLS material reloaded; new connections use it', 10_000);
  await waitFor(async () => (await request(`${bulb.url}/`)).status === 200, 10_000, '200 with the new CA');
  assert.equal(bulb.pid, pid);
  assert.equal(bulb.proc.exitCode, null);

  // A broken replacement keeps the last good material: still 200, and the error names the file and the reason.
  writeFileSync(caFile, 'not a certificate\n');
  const err = await bulb.waitForLog((l) => l.msg === 'backend TLS files changed but cannot be loaded; keeping the last good material', 10_000);
  assert.match(err['reason'] as string, new RegExp(`${caFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} holds no PEM block`));
  assert.equal((await request(`${bulb.url}/`)).status, 200);
});

test('insecureSkipVerify per source: works against an untrusted certificate, and a warning is logged at start', async (t) => {
  const { other } = getPki(t);
  const backend = await httpsBackend(t, 'insecure', other.server('insecure', ['nothing.example']));
  const file = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { insecureSkipVerify: true } } })]);
  assert.equal((await request(`${file.url}/`)).body, 'insecure');
  const warn = file.logs.find((l) => l.level === 'warn' && l.msg.includes('verification of backends is OFF'));
  assert.ok(warn, 'a warning names the insecure source');
  assert.match(warn['origin'] as string, /b\.json$/);

  const flag = await startBulb(t, ['--backend', backend.url, '--backend-tls-insecure', 'on']);
  assert.equal((await request(`${flag.url}/`)).body, 'insecure');
  const startIdx = flag.logs.findIndex((l) => l.msg === 'bulb started');
  const warnIdx = flag.logs.findIndex((l) => l.level === 'warn' && l.msg.includes('verification of backends is OFF'));
  assert.ok(warnIdx >= 0 && warnIdx < startIdx, 'warned before "bulb started"');
  assert.equal(flag.logs[warnIdx]['origin'], '--backend-tls-*');

  // Only the source that says so is insecure: a verifying source next to it still refuses the same certificate.
  const mixed = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: other.cert } } })]);
  assert.equal((await request(`${mixed.url}/`)).status, 502);
});

test('bad tls in a backend file: a clear error naming the file and reason; bulb stays up with the rest and the last good', async (t) => {
  const { ca } = getPki(t);
  const backend = await httpsBackend(t, 'tls-good', ca.server('lkg', ['127.0.0.1']));
  const [plain] = await startBackends(t, 'plain');
  const missing = join(await tmpDir(t), 'no-such-ca.pem');
  const dir = await backendDir(t, {
    'a-plain.json': { url: plain.url },
    'b-tls.json': { url: backend.url, tls: { ca: ca.cert } },
    'c-missing.json': { url: 'https://127.0.0.3:1', tls: { ca: missing } },
    'd-typo.json': { url: 'https://127.0.0.3:2', tls: { caFile: 'x.pem' } },
  });
  const bulb = await startBulb(t, ['--watch-dir', dir]);
  const missingLine = await bulb.waitForLog((l) => l.level === 'error' && String(l['file']).endsWith('c-missing.json'));
  assert.equal(missingLine['pointer'], '/tls/ca');
  assert.equal(missingLine['reason'], `cannot read CA file ${missing}: no such file (ENOENT)`);
  const typo = await bulb.waitForLog((l) => l.level === 'error' && String(l['file']).endsWith('d-typo.json'));
  assert.match(typo['reason'] as string, /unknown field "caFile" in tls \(allowed: ca, serverName, cert, key, insecureSkipVerify\)/);
  // `bulb check` says the same, with the same code.
  const check = await runBulb(['check', '--watch-dir', dir]);
  assert.equal(check.code, 1);
  assert.ok(check.stdout.includes(`c-missing.json: /tls/ca: cannot read CA file ${missing}: no such file (ENOENT)`), check.stdout);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await request(`${bulb.url}/`)).body);
  assert.deepEqual(seen, new Set(['plain', 'tls-good']), 'the rejected files add nothing; the rest serves');

  // A valid file turns bad (its CA path now missing): it keeps its last good backend and material.
  writeFileSync(join(dir, 'b-tls.json'), JSON.stringify({ url: backend.url, tls: { ca: missing } }));
  await bulb.waitForLog((l) => l.msg === 'backend file rejected; keeping its last-known-good backends' && String(l['file']).endsWith('b-tls.json'));
  const after = new Set<string>();
  for (let i = 0; i < 6; i++) after.add((await request(`${bulb.url}/`)).body);
  assert.deepEqual(after, new Set(['plain', 'tls-good']));
  assert.equal(bulb.proc.exitCode, null);
});

test('a bad --backend-tls-* path stops start-up with the flag, the file and the reason', async (t) => {
  const missing = join(await tmpDir(t), 'nope.pem');
  const r = await runBulb(['--listen', '127.0.0.1:0', '--admin', 'off', '--backend', 'https://127.0.0.1:1', '--backend-tls-ca', missing]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`--backend-tls-ca: cannot read CA file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no such file \\(ENOENT\\)`));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const check = await runBulb(['check', '--backend-tls-ca', missing]);
  assert.equal(check.code, 1);
  assert.match(check.stdout, /error --backend-tls-ca: cannot read CA file .*nope\.pem: no such file \(ENOENT\)/);
  const { clientCa } = getPki(t);
  const c = clientCa.client('half', 'half');
  const half = await runBulb(['--listen', '127.0.0.1:0', '--admin', 'off', '--backend-tls-cert', c.cert]);
  assert.notEqual(half.code, 0);
  assert.match(half.stderr, /--backend-tls-key: --backend-tls-cert is set without --backend-tls-key/);
});

test('active health checks to https backends use the same TLS settings', async (t) => {
  const { ca, other } = getPki(t);
  const backend = await httpsBackend(t, 'checked', ca.server('hc', ['127.0.0.1']));
  const args = ['--health-path', '/health', '--health-interval', '100ms', '--health-fall', '1'];
  const good = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: ca.cert } } }), ...args]);
  await waitFor(() => backend.clients.length >= 3, 10_000, 'three checks over verified TLS');
  assert.equal(good.logs.filter((l) => l.msg === 'backend failing health checks; out of rotation').length, 0);

  const bad = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: other.cert } } }), ...args]);
  const line = await bad.waitForLog((l) => l.msg === 'backend failing health checks; out of rotation');
  assert.match(line['reason'] as string, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
});

test('--workers 2: every worker verifies with the same material (200 with the right CA, 502 with the reason otherwise)', async (t) => {
  const { ca, other } = getPki(t);
  const backend = await httpsBackend(t, 'workers', ca.server('w2', ['127.0.0.1']));
  const good = await startBulb(t, ['--workers', '2', '--watch-dir', await backendDir(t, { 'b.json': { url: backend.url, tls: { ca: ca.cert } } })]);
  for (let i = 0; i < 8; i++) assert.equal((await request(`${good.url}/`)).body, 'workers');
  const work = await tmpDir(t);
  const caFile = join(work, 'ca.pem');
  copyFileSync(other.cert, caFile);
  const bad = await startBulb(t, ['--workers', '2', '--backend', backend.url, '--backend-tls-ca', caFile]);
  for (let i = 0; i < 4; i++) assert.equal((await request(`${bad.url}/`)).status, 502);
  const line = await bad.waitForLog(isTlsFailure);
  assert.ok(typeof line['worker'] === 'number', 'logged by a worker thread');
  // The global CA file is renewed: the controller reloads it once and both workers connect with it.
  copyFileSync(ca.cert, join(work, '.tmp'));
  renameSync(join(work, '.tmp'), caFile);
  await bad.waitForLog((l) => l.msg === 'backend TLS material reloaded; new connections use it', 10_000);
  await waitFor(async () => (await request(`${bad.url}/`)).status === 200, 10_000, '200 after the reload');
  // New connections land on either worker (SO_REUSEPORT): every one of them must now verify.
  for (let i = 0; i < 12; i++) assert.equal((await request(`${bad.url}/`)).body, 'workers');
});

test('WebSocket upgrades to an https backend verify with the same TLS settings (SNI and CA), or get 502 with the reason', async (t) => {
  const { ca, other } = getPki(t);
  const cert = ca.server('wss', ['ws.internal']);
  const server = https.createServer({ cert: pem(cert.cert), key: pem(cert.key) });
  const wss = new WebSocketServer({ server });
  const snis: (string | false | null)[] = [];
  server.on('secureConnection', (s: TLSSocket) => snis.push(s.servername));
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${(m as Buffer).toString()}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.close();
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const open = (bulbUrl: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${bulbUrl.replace('http', 'ws')}/socket`);
      t.after(() => ws.terminate());
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
      ws.once('error', reject);
    });
  const good = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url, tls: { ca: ca.cert, serverName: 'ws.internal' } } })]);
  const ws = await open(good.url);
  const reply = new Promise<string>((resolve) => ws.once('message', (m) => resolve((m as Buffer).toString())));
  ws.send('hello');
  assert.equal(await reply, 'echo:hello');
  assert.deepEqual(snis, ['ws.internal']);

  const bad = await startBulb(t, ['--watch-dir', await backendDir(t, { 'b.json': { url, tls: { ca: other.cert, serverName: 'ws.internal' } } })]);
  await assert.rejects(open(bad.url), /status 502/);
  const line = await bad.waitForLog(isTlsFailure);
  assert.match(String(line['error']), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
});
