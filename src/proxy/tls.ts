/**
 * TLS on the traffic port: the certificate and key files, checked at start and re-read when they change.
 *
 * A Kubernetes Secret volume is updated by swapping a `..data` symlink, which an inotify watch on the old file
 * does not see; the files are therefore polled (`fs.watchFile`, a stat per file per second, following symlinks), as
 * kubelet's own certificate manager does. A new pair applies to new handshakes (`setSecureContext`); connections
 * already open keep theirs, so a renewal drops nothing. A pair that does not load (a half-written update, a key
 * that does not match) is logged and the current certificate is kept until the files are fixed.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import type https from 'node:https';
import tls from 'node:tls';
import { InvalidConfigError } from '../errors.js';
import type { Logger } from '../log.js';

export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** How often the files are checked for a change. */
const POLL_MS = 1_000;

/** Reads the pair and proves it loads (PEM, key matching the certificate); the error names the file and why. */
export function readTlsFiles(certFile: string, keyFile: string): TlsFiles {
  const read = (file: string, setting: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InvalidConfigError(`${setting} ${file} cannot be read (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`);
    }
  };
  const cert = read(certFile, 'tlsCert');
  const key = read(keyFile, 'tlsKey');
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new InvalidConfigError(`tlsCert ${certFile} and tlsKey ${keyFile} are not a usable PEM certificate and matching key (${why})`);
  }
  return { cert, key };
}

/** What the logs say about a certificate: whom it names and until when. */
export function describeCertificate(cert: Buffer): { subject: string; names: string; notAfter: string } {
  try {
    const x = new X509Certificate(cert);
    return { subject: x.subject.replace(/\n/g, ', '), names: x.subjectAltName ?? '', notAfter: new Date(x.validTo).toISOString() };
  } catch {
    return { subject: '?', names: '', notAfter: '?' };
  }
}

/** Re-reads the pair whenever either file changes; returns the function that stops watching. */
export function watchTlsFiles(server: https.Server, certFile: string, keyFile: string, log: Logger): () => void {
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    try {
      const { cert, key } = readTlsFiles(certFile, keyFile);
      server.setSecureContext({ cert, key });
      log.info({ tlsCert: certFile, ...describeCertificate(cert) }, 'TLS certificate reloaded; new connections use it');
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'TLS certificate files changed but cannot be used; keeping the current certificate');
    }
  };
  const onChange = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return;
    // A renewal writes two files: load them once both have settled.
    clearTimeout(timer);
    timer = setTimeout(reload, 200);
  };
  watchFile(certFile, { interval: POLL_MS, persistent: false }, onChange);
  watchFile(keyFile, { interval: POLL_MS, persistent: false }, onChange);
  return () => {
    clearTimeout(timer);
    unwatchFile(certFile, onChange);
    unwatchFile(keyFile, onChange);
  };
}
