import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTlsMaterial, tlsReason } from '../../../src/tls/material.js';
import { TlsStore } from '../../../src/tls/store.js';
import { makeCa, pem } from '../../helpers/pki.js';
import { tmpDir } from '../../helpers/tmpdir.js';

function logger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

test('loadTlsMaterial: PEM text and connect options; each bad file named with its reason', async (t) => {
  const dir = await tmpDir(t);
  const ca = makeCa(dir, 'ca');
  const client = ca.client('c', 'bulb');
  const ok = loadTlsMaterial({ ca: ca.cert, cert: client.cert, key: client.key, serverName: 'api.internal' });
  assert.ok('options' in ok);
  assert.deepEqual(ok.options, { ca: pem(ca.cert), cert: pem(client.cert), key: pem(client.key), servername: 'api.internal', rejectUnauthorized: true });
  assert.deepEqual(loadTlsMaterial({ insecureSkipVerify: true }), { options: { rejectUnauthorized: false } });

  const missing = join(dir, 'missing.pem');
  assert.deepEqual(loadTlsMaterial({ ca: missing }), { problems: [['ca', `cannot read CA file ${missing}: no such file (ENOENT)`]] });
  assert.deepEqual(loadTlsMaterial({ ca: dir }), { problems: [['ca', `cannot read CA file ${dir}: it is a directory (EISDIR)`]] });
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'hello\n');
  assert.deepEqual(loadTlsMaterial({ ca: junk }), { problems: [['ca', `CA file ${junk} holds no PEM block (expected -----BEGIN ...)`]] });
  // A key that is not the certificate's: OpenSSL's reason, with both files named.
  const otherClient = ca.client('c2', 'other');
  const mismatch = loadTlsMaterial({ cert: client.cert, key: otherClient.key });
  assert.ok('problems' in mismatch);
  assert.equal(mismatch.problems[0][0], 'key');
  assert.match(mismatch.problems[0][1], /TLS material not usable \(client certificate file .*c\.pem, client key file .*c2-key\.pem\): .*key values mismatch/);
});

test('TlsStore: a changed file bumps the version and calls onChange; a broken one keeps the last good material', async (t) => {
  const dir = await tmpDir(t);
  const a = makeCa(dir, 'a');
  const b = makeCa(dir, 'b');
  const caFile = join(dir, 'ca.pem');
  copyFileSync(a.cert, caFile);
  const { lines, log } = logger();
  let changes = 0;
  const store = new TlsStore({ log, onChange: () => changes++, pollMs: 60_000 });
  t.after(() => store.stop());
  const first = store.material({ ca: caFile }, 'f.json');
  assert.equal(first.options?.ca, pem(a.cert));
  assert.equal(store.material({ ca: caFile }, 'f.json'), first, 'the same object until it changes');

  store.poll();
  assert.equal(changes, 0, 'nothing changed, nothing reloaded');
  copyFileSync(b.cert, join(dir, 'tmp.pem'));
  renameSync(join(dir, 'tmp.pem'), caFile);
  store.poll();
  assert.equal(changes, 1);
  const second = store.material({ ca: caFile }, 'f.json');
  assert.notEqual(second.version, first.version);
  assert.equal(second.options?.ca, pem(b.cert));

  writeFileSync(caFile, 'garbage\n');
  store.poll();
  assert.equal(changes, 1, 'a broken file changes nothing');
  assert.equal(store.material({ ca: caFile }, 'f.json'), second, 'the last good material stays');
  assert.ok(lines.some((l) => l.level === 'error' && l.msg.includes('keeping the last good material') && String(l.obj['reason']).includes(caFile)));

  rmSync(caFile);
  store.poll();
  assert.equal(store.material({ ca: caFile }, 'f.json'), second);
});

test('TlsStore: material that never loaded is an error (requests fail with it); it loads when the file appears', async (t) => {
  const dir = await tmpDir(t);
  const a = makeCa(dir, 'a');
  const caFile = join(dir, 'late.pem');
  const { lines, log } = logger();
  let changes = 0;
  const store = new TlsStore({ log, onChange: () => changes++, pollMs: 60_000 });
  t.after(() => store.stop());
  const m = store.material({ ca: caFile }, 'f.json');
  assert.match(m.error!, /cannot read CA file .*late\.pem: no such file \(ENOENT\)/);
  assert.equal(m.options, undefined, 'no options: never a connection without the CA');
  assert.ok(lines.some((l) => l.level === 'error' && l.obj['origin'] === 'f.json'));
  copyFileSync(a.cert, caFile);
  store.poll();
  assert.equal(changes, 1);
  assert.equal(store.material({ ca: caFile }, 'f.json').options?.ca, pem(a.cert));
});

test('TlsStore: insecureSkipVerify is warned about once, naming who asked for it', () => {
  const { lines, log } = logger();
  const store = new TlsStore({ log });
  store.material({ insecureSkipVerify: true }, 'dev.json');
  store.material({ insecureSkipVerify: true }, 'dev.json');
  store.stop();
  const warns = lines.filter((l) => l.level === 'warn');
  assert.equal(warns.length, 1);
  assert.equal(warns[0].obj['origin'], 'dev.json');
});

test('tlsReason: words for the codes people meet, nothing for non-TLS errors', () => {
  assert.match(tlsReason('CERT_HAS_EXPIRED')!, /expired/);
  assert.match(tlsReason('ERR_TLS_CERT_ALTNAME_INVALID')!, /does not name this host/);
  assert.match(tlsReason('UNABLE_TO_VERIFY_LEAF_SIGNATURE')!, /trusted CA/);
  assert.match(tlsReason('SELF_SIGNED_CERT_IN_CHAIN')!, /self-signed/);
  assert.match(tlsReason('ERR_SSL_SOMETHING_NEW')!, /handshake/);
  assert.equal(tlsReason('ECONNREFUSED'), undefined);
  assert.equal(tlsReason('ETIMEDOUT'), undefined);
});

test('TlsStore: material no longer in use is dropped at the next poll (its files are not polled forever)', async (t) => {
  const dir = await tmpDir(t);
  const a = makeCa(dir, 'a');
  const { log } = logger();
  let inUse = [{ ca: a.cert }, { ca: a.cert, serverName: 'x' }];
  const store = new TlsStore({ log, pollMs: 60_000, inUse: () => inUse });
  t.after(() => store.stop());
  const kept = store.material(inUse[0], 'f.json');
  const dropped = store.material(inUse[1], 'g.json');
  inUse = [inUse[0]];
  store.poll();
  assert.equal(store.material({ ca: a.cert }, 'f.json'), kept, 'still in use: the same entry');
  const again = store.material({ ca: a.cert, serverName: 'x' }, 'g.json');
  assert.notEqual(again.version, dropped.version, 'dropped, so loaded afresh when used again');
});
