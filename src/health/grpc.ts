/**
 * The gRPC health check: one unary call of the standard `grpc.health.v1.Health/Check`
 * (https://github.com/grpc/grpc/blob/master/doc/health-checking.md) over HTTP/2, on a connection of its own:
 * cleartext with prior knowledge for `http://` and `h2c://` backends (what a gRPC server without TLS speaks), TLS
 * with ALPN `h2` and the backend's TLS material for `https://`. Passing means grpc-status 0 and `status: SERVING`.
 *
 * The two messages are tiny, so they are encoded by hand rather than through a protobuf library:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }  // UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3
 * Each travels in a gRPC frame: 1 byte compressed flag (0), 4 bytes big-endian length, the message.
 */
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import type { TlsConnectOptions } from '../tls/material.js';
import type { CheckResult, ProbeSignal } from './active.js';

export const GRPC_HEALTH_PATH = '/grpc.health.v1.Health/Check';

const STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/** A protobuf varint. */
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** The framed `HealthCheckRequest` for `service` ('' = the server as a whole: field left out, proto3 default). */
export function encodeRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/**
 * The `status` of a framed `HealthCheckResponse`, or undefined when the bytes are not one. Unknown fields are
 * skipped, as protobuf requires; a missing `status` is its default, UNKNOWN (0).
 */
export function decodeStatus(body: Buffer): number | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return undefined;
  const msg = body.subarray(5, 5 + length);
  let i = 0;
  let status = 0;
  const readVarint = (): number | undefined => {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= msg.length) return undefined;
      const b = msg[i++];
      n += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return n;
    }
    return undefined;
  };
  while (i < msg.length) {
    const tag = readVarint();
    if (tag === undefined) return undefined;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = readVarint();
      if (v === undefined) return undefined;
      if (field === 1) status = v;
    } else if (wire === 2) {
      const len = readVarint();
      if (len === undefined || i + len > msg.length) return undefined;
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return undefined;
  }
  return status;
}

/** One health call to the backend at `url`. Settles through `finish`; `setCleanup` receives what frees the session. */
export function grpcProbe(
  url: URL,
  service: string,
  tls: TlsConnectOptions | undefined,
  finish: (r: CheckResult) => void,
  setCleanup: (cleanup: () => void) => void,
  _signal: ProbeSignal,
): void {
  const http2 = process.getBuiltinModule('node:http2');
  const secure = url.protocol === 'https:';
  // `h2c://` (and `http://`) mean cleartext HTTP/2 with prior knowledge: what a plain gRPC server speaks.
  const authority = `${secure ? 'https' : 'http'}://${url.host}`;
  let session: ClientHttp2Session;
  try {
    session = http2.connect(authority, secure ? { ...tls, ALPNProtocols: ['h2'] } : {});
  } catch (err) {
    finish({ ok: false, reason: err instanceof Error ? err.message : String(err) });
    return;
  }
  setCleanup(() => {
    session.removeAllListeners('error');
    session.on('error', () => {});
    session.destroy();
  });
  const failed = (err: NodeJS.ErrnoException): void => {
    // A stream cancelled because its session failed (a TLS verification error) carries the real error as cause.
    const cause = err.code === 'ERR_HTTP2_STREAM_CANCEL' ? (err.cause as NodeJS.ErrnoException | undefined) : undefined;
    finish({ ok: false, reason: cause?.code ?? err.code ?? err.message });
  };
  session.once('error', failed);
  const stream = session.request({
    ':method': 'POST',
    ':path': GRPC_HEALTH_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
    'user-agent': 'bulb-health-check',
  });
  stream.on('error', failed);
  const chunks: Buffer[] = [];
  let headerStatus: string | undefined;
  let trailerStatus: { status: string | undefined; message: string | undefined } | undefined;
  stream.on('response', (headers) => {
    const http = Number(headers[':status']);
    if (http !== 200) finish({ ok: false, reason: `HTTP status ${http} (not a gRPC server?)` });
    // A trailers-only response (an error) carries grpc-status in the headers.
    headerStatus = headers['grpc-status'] as string | undefined;
    if (headerStatus !== undefined) trailerStatus = { status: headerStatus, message: headers['grpc-message'] as string | undefined };
  });
  stream.on('trailers', (trailers: IncomingHttpHeaders) => {
    trailerStatus = { status: trailers['grpc-status'] as string | undefined, message: trailers['grpc-message'] as string | undefined };
  });
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    if (trailerStatus?.status !== '0') {
      const code = trailerStatus?.status ?? 'missing';
      const message = trailerStatus?.message ? `: ${decodeURIComponent(trailerStatus.message)}` : '';
      finish({ ok: false, reason: `grpc-status ${code}${message}` });
      return;
    }
    const status = decodeStatus(Buffer.concat(chunks));
    if (status === undefined) finish({ ok: false, reason: 'malformed HealthCheckResponse' });
    else if (status === 1) finish({ ok: true });
    else finish({ ok: false, reason: `gRPC health ${STATUS_NAMES[status] ?? `status ${status}`}` });
  });
  stream.end(encodeRequest(service));
}
