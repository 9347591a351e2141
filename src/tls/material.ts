/**
 * TLS to backends: what a source declares (`BackendTlsSpec`: file paths and names), and the material read from
 * those files (`TlsMaterial`: PEM text and connect options), which the controller hands to every data plane inside
 * its pool snapshots (see `TlsStore` for reloading).
 *
 * Decisions (docs/backend-tls.md repeats them):
 * - Verification is on unless a source says `insecureSkipVerify`; there is no fallback to plaintext, ever: an
 *   https backend whose material cannot be read gets a 502 with the reason, never an http request.
 * - Without `ca`, Node's bundled trust store (Mozilla's) verifies, as for any https client.
 * - `serverName` is both the SNI and the name the certificate must carry, as nginx's `proxy_ssl_name`; without
 *   it, the URL's host is (an IP host is then matched against the certificate's IP addresses, and no SNI is sent).
 * - A client certificate needs its key and the key its certificate: one without the other is a problem, not a
 *   silent plain handshake.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** A source's TLS settings for its https backends. Paths are absolute. Frozen. */
export interface BackendTlsSpec {
  /** CA bundle (PEM) that verifies the backend's certificate, instead of Node's bundled roots. */
  readonly ca?: string;
  /** SNI and verification name, instead of the URL's host. */
  readonly serverName?: string;
  /** Client certificate chain (PEM) for mutual TLS. */
  readonly cert?: string;
  /** The client certificate's private key (PEM, unencrypted). */
  readonly key?: string;
  /** Accept any certificate. Explicit, per source, and logged as a warning. */
  readonly insecureSkipVerify?: boolean;
}

/** What a data plane connects with: Node `tls.connect` options, as plain data (it crosses threads). */
export interface TlsConnectOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly servername?: string;
  readonly rejectUnauthorized: boolean;
}

/**
 * The material of one spec as last loaded: `version` changes whenever the material does (a data plane opens new
 * connections with it then), `error` is set when it has never loaded (requests then fail with it as the reason).
 */
export type TlsMaterial =
  | { readonly version: string; readonly options: TlsConnectOptions; readonly error?: undefined }
  | { readonly version: string; readonly error: string; readonly options?: undefined };

/** The spec fields that name files, with how a problem names each. */
const FILE_FIELDS = [
  ['ca', 'CA file'],
  ['cert', 'client certificate file'],
  ['key', 'client key file'],
] as const;

/** A read error as a short reason: `ENOENT (no such file or directory)`. */
function readReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file (ENOENT)';
  if (e.code === 'EACCES') return 'permission denied (EACCES)';
  if (e.code === 'EISDIR') return 'it is a directory (EISDIR)';
  return e.code ?? (err instanceof Error ? err.message : String(err));
}

/** Problems of a spec's shape alone (no I/O): [field, message] pairs. */
export function tlsSpecProblems(spec: BackendTlsSpec): [string, string][] {
  const out: [string, string][] = [];
  if (spec.cert !== undefined && spec.key === undefined) out.push(['key', 'tls.cert is set without tls.key (a client certificate needs its private key)']);
  if (spec.key !== undefined && spec.cert === undefined) out.push(['cert', 'tls.key is set without tls.cert (a private key needs its client certificate)']);
  if (spec.insecureSkipVerify === true && spec.ca !== undefined) out.push(['ca', 'tls.ca is set but insecureSkipVerify turns verification off; drop one of them']);
  return out;
}

/**
 * Reads a spec's files and checks that Node accepts them (PEM that parses, a key that matches its certificate).
 * Returns the connect options, or the problems as [field, message] pairs, each naming the file and the reason.
 * Synchronous: a few small files, read by the controller thread off the request path.
 */
export function loadTlsMaterial(spec: BackendTlsSpec): { options: TlsConnectOptions } | { problems: [string, string][] } {
  const problems = tlsSpecProblems(spec);
  if (problems.length > 0) return { problems };
  const text: Partial<Record<'ca' | 'cert' | 'key', string>> = {};
  for (const [field, what] of FILE_FIELDS) {
    const path = spec[field];
    if (path === undefined) continue;
    try {
      text[field] = readFileSync(path, 'utf8');
    } catch (err) {
      problems.push([field, `cannot read ${what} ${path}: ${readReason(err)}`]);
      continue;
    }
    if (!text[field].includes('-----BEGIN ')) problems.push([field, `${what} ${path} holds no PEM block (expected -----BEGIN ...)`]);
  }
  if (problems.length > 0) return { problems };
  try {
    createSecureContext({ ...(text.ca !== undefined && { ca: text.ca }), ...(text.cert !== undefined && { cert: text.cert, key: text.key }) });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // OpenSSL does not say which input it choked on; the message does (`no start line` for a garbled CA, a key
    // mismatch for the pair), so name every file given.
    const files = FILE_FIELDS.flatMap(([f, what]) => (spec[f] !== undefined ? [`${what} ${spec[f]}`] : [])).join(', ');
    const field = /key|private/i.test(reason) && spec.key !== undefined ? 'key' : spec.ca !== undefined ? 'ca' : 'cert';
    problems.push([field, `TLS material not usable (${files}): ${reason}`]);
    return { problems };
  }
  return {
    options: Object.freeze({
      ...(text.ca !== undefined && { ca: text.ca }),
      ...(text.cert !== undefined && { cert: text.cert, key: text.key }),
      ...(spec.serverName !== undefined && { servername: spec.serverName }),
      rejectUnauthorized: spec.insecureSkipVerify !== true,
    }),
  };
}

/** Human words for the TLS verification codes people meet, for the 502 log line. */
const REASONS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'the backend certificate has expired',
  CERT_NOT_YET_VALID: 'the backend certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the backend certificate does not name this host (check tls.serverName)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the backend certificate is not signed by a trusted CA (check tls.ca)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the backend certificate is not signed by a trusted CA (check tls.ca)',
  UNABLE_TO_GET_ISSUER_CERT: 'the backend certificate is not signed by a trusted CA (check tls.ca)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the backend certificate chain ends in an untrusted self-signed CA (check tls.ca)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the backend certificate is self-signed and not trusted (check tls.ca)',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the backend requires a client certificate (set tls.cert and tls.key)',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the backend refused the client certificate',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the backend does not trust the client certificate',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the backend does not speak TLS on this port (is it http?)',
  BULB_TLS_MATERIAL: 'the TLS files for this backend could not be loaded',
};

/** Why a TLS error happened, in words, or undefined when `code` is not a TLS error bulb knows. */
export function tlsReason(code: string): string | undefined {
  return REASONS[code] ?? (/^ERR_SSL_|^ERR_TLS_|CERT/.test(code) ? 'TLS handshake with the backend failed' : undefined);
}
