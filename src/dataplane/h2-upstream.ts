/**
 * Requests to an `h2c://` backend: cleartext HTTP/2 with prior knowledge, over node:http2, behind the same
 * `dispatch(options, handler)` surface as undici's Pool, so the proxy drives both the same way.
 *
 * Why node:http2 rather than undici's `H2CClient`/`allowH2`: the proxy must know *exactly* whether a request reached
 * the backend (a gRPC call is a POST with a streamed body, and is retried only when provably unsent), and must
 * pass on what HTTP/2 says about a stream: a trailers-only response (one HEADERS frame with END_STREAM, which gRPC
 * uses for every error status), the RST_STREAM code of a backend that cancels a call, and REFUSED_STREAM or a
 * GOAWAY below the stream's id (RFC 9113 §8.7: "not processed"). node:http2 gives all four as they are (the
 * response `flags`, `rstCode`, `goaway`'s last stream id); undici's dispatch handler API has no place for the
 * first and folds the others into one socket error.
 *
 * One session per backend per worker (HTTP/2 multiplexes; gRPC clients and Envoy do the same by default). A stream
 * is only opened once the session is connected, so an error before that is a connection that never carried it.
 */
import { STATUS_CODES } from 'node:http';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/* eslint-disable @typescript-eslint/no-deprecated -- this is a Dispatcher, so it calls the handler callbacks bulb's
   proxy implements (onConnect/onHeaders/onData/onComplete/onError, undici's pre-7 handler API); moving both
   sides to onRequestStart/onResponseStart is a change of its own. */

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/**
 * Connection-specific headers (RFC 9113 §8.2.2): an HTTP/2 message must not carry them (node:http2 throws), and
 * `TE` only as `trailers`. `host` becomes `:authority`.
 */
const NOT_SENT_OVER_H2 = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']);

/** The error code bulb's retry rules read as "the stream never reached the application" (see retry.ts). */
export const REFUSED_STREAM_CODE = 'H2_REFUSED_STREAM';

/** The handler as the proxy implements it: undici's, plus the END_STREAM flag of the response head. */
export interface H2Handler extends Dispatcher.DispatchHandler {
  onHeaders?(statusCode: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string, endStream?: boolean): boolean;
}

/** An error that carries the RST_STREAM code the backend (or its connection) closed the stream with. */
export class StreamResetError extends Error {
  constructor(
    readonly code: string,
    readonly rstCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  readonly go: (session: ClientHttp2Session) => void;
  readonly fail: (err: Error) => void;
}

export class H2Upstream {
  private session: ClientHttp2Session | undefined;
  private connected = false;
  private waiters: Waiter[] = [];
  private closed = false;
  /** Streams open on `session`, so an idle session (and only an idle one) is closed after the idle timeout. */
  private open = 0;
  private readonly authority: string;

  constructor(
    /** `h2c://host:port`. */
    url: string,
    private readonly settings: { readonly idleTimeoutMs: number; readonly connectTimeoutMs: number },
  ) {
    this.authority = new URL(url).host;
  }

  private get origin(): string {
    return `http://${this.authority}`;
  }

  private connect(): ClientHttp2Session {
    const s = http2.connect(this.origin, { settings: { enablePush: false } });
    this.session = s;
    this.connected = false;
    this.open = 0;
    const timer = setTimeout(() => s.destroy(Object.assign(new Error(`connect timeout after ${this.settings.connectTimeoutMs}ms`), { code: 'ETIMEDOUT' })), this.settings.connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      if (this.session !== s) return;
      this.connected = true;
      for (const w of this.waiters.splice(0)) w.go(s);
    });
    const gone = (err?: Error): void => {
      clearTimeout(timer);
      if (this.session !== s) return;
      this.session = undefined;
      // Requests still waiting for this connection were never sent anywhere.
      if (!this.connected) {
        const e = err ?? Object.assign(new Error('connection closed before it was established'), { code: 'ECONNREFUSED' });
        for (const w of this.waiters.splice(0)) w.fail(e);
      }
    };
    s.on('error', gone);
    s.once('close', () => gone());
    // After a GOAWAY the session takes no new streams; the next request opens a new connection.
    s.once('goaway', () => {
      if (this.session === s && this.connected) this.session = undefined;
    });
    s.setTimeout(this.settings.idleTimeoutMs, () => {
      if (this.open === 0) s.close();
    });
    return s;
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: H2Handler): boolean {
    if (this.closed) {
      queueMicrotask(() => handler.onError?.(Object.assign(new Error('backend removed'), { code: 'UND_ERR_CLOSED' })));
      return false;
    }
    // Until the stream exists, an abort ends the request at once; `go` and `fail` then do nothing.
    let settled = false;
    handler.onConnect?.((err?: Error) => {
      if (settled) return;
      settled = true;
      handler.onError?.(err ?? Object.assign(new Error('request aborted'), { code: 'UND_ERR_ABORTED' }));
    });
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      handler.onError?.(err);
    };
    const go = (s: ClientHttp2Session): void => {
      if (settled) return;
      let stream: ClientHttp2Stream;
      try {
        stream = s.request(requestHeaders(opts, this.authority), { endStream: opts.body === null || opts.body === undefined });
      } catch (err) {
        // A session that got GOAWAY or closed in between: nothing was sent, so one new connection may carry it.
        if (this.session === s) this.session = undefined;
        this.waitForSession({ go: (s2) => (s2 === s ? fail(err as Error) : go(s2)), fail });
        return;
      }
      settled = true;
      this.open++;
      stream.once('close', () => {
        this.open--;
      });
      new UpstreamStream(stream, opts, handler);
    };
    this.waitForSession({ go, fail });
    return true;
  }

  private waitForSession(w: Waiter): void {
    const s = this.session ?? this.connect();
    if (this.connected && !s.closed && !s.destroyed) w.go(s);
    else this.waiters.push(w);
  }

  /** Lets open streams finish; no new ones. */
  async close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    for (const w of this.waiters.splice(0)) w.fail(Object.assign(new Error('backend removed'), { code: 'UND_ERR_CLOSED' }));
    if (s !== undefined && !s.destroyed) await new Promise<void>((r) => s.close(() => r()));
  }

  destroy(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    for (const w of this.waiters.splice(0)) w.fail(Object.assign(new Error('backend removed'), { code: 'UND_ERR_DESTROYED' }));
    s?.destroy();
    return Promise.resolve();
  }
}

/** undici's headers (an object here: the proxy passes Node's) → an HTTP/2 request head. */
function requestHeaders(opts: Dispatcher.DispatchOptions, backendAuthority: string): OutgoingHttpHeaders {
  const src = (opts.headers ?? {}) as Record<string, string | string[] | undefined>;
  const host = src['host'];
  const out: OutgoingHttpHeaders = {
    ':method': opts.method,
    ':path': opts.path,
    ':scheme': 'http',
    ':authority': typeof host === 'string' && host !== '' ? host : backendAuthority,
  };
  for (const name in src) {
    const v = src[name];
    if (v === undefined || name.startsWith(':') || NOT_SENT_OVER_H2.has(name)) continue;
    if (name === 'te') {
      if (typeof v === 'string' && v.trim().toLowerCase() === 'trailers') out.te = 'trailers';
      continue;
    }
    out[name] = v;
  }
  return out;
}

/** One request on one stream: the events of a node:http2 client stream, told to an undici-style handler. */
class UpstreamStream {
  private responded = false;
  private done = false;
  private trailers: IncomingHttpHeaders | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ClientHttp2Stream,
    opts: Dispatcher.DispatchOptions,
    private readonly handler: H2Handler,
  ) {
    // Replace the placeholder abort: now there is a stream to reset (RST_STREAM CANCEL, as gRPC cancels a call).
    handler.onConnect?.((err?: Error) => this.abort(err));
    const timeout = opts.headersTimeout ?? 0;
    if (timeout > 0) {
      this.timer = setTimeout(() => this.fail(Object.assign(new Error(`no response headers within ${timeout}ms`), { code: 'ETIMEDOUT' }), NGHTTP2_CANCEL), timeout);
    }
    stream.on('response', (headers, flags) => this.onResponse(headers, flags));
    stream.on('data', (chunk: Buffer) => {
      if (this.handler.onData?.(chunk) === false) stream.pause();
    });
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      this.trailers = t;
    });
    stream.on('end', () => this.complete());
    stream.on('error', () => {});
    stream.once('close', () => this.onClose());
    const body = opts.body;
    if (body === null || body === undefined) return;
    if (Buffer.isBuffer(body) || typeof body === 'string' || body instanceof Uint8Array) {
      stream.end(body);
      return;
    }
    const readable = body as Readable;
    readable.pipe(stream);
    // The client gave up on its body: the backend must not wait for the rest.
    readable.once('error', () => this.abort());
    readable.once('close', () => {
      if (!readable.readableEnded) this.abort();
    });
    stream.once('close', () => readable.unpipe(stream));
  }

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    const status = Number(headers[':status']);
    if (status < 200) return;
    clearTimeout(this.timer);
    this.responded = true;
    const raw: string[] = [];
    for (const name in headers) {
      if (name.startsWith(':')) continue;
      const v = headers[name];
      if (Array.isArray(v)) for (const x of v) raw.push(name, x);
      else if (v !== undefined) raw.push(name, v);
    }
    // HTTP/2 has no reason phrase; an HTTP/1.1 client gets the standard one.
    this.handler.onHeaders?.(status, raw, () => this.stream.resume(), STATUS_CODES[status] ?? '', (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  }

  private complete(): void {
    if (this.done) return;
    if (!this.responded) return; // an END_STREAM without a response head is an error, reported at close
    this.done = true;
    clearTimeout(this.timer);
    const raw: string[] = [];
    const t = this.trailers;
    if (t !== undefined) {
      for (const name in t) {
        const v = t[name];
        if (Array.isArray(v)) for (const x of v) raw.push(name, x);
        else if (v !== undefined) raw.push(name, v);
      }
    }
    this.handler.onComplete?.(raw.length > 0 ? raw : null);
  }

  private onClose(): void {
    clearTimeout(this.timer);
    if (this.done) return;
    const code = this.stream.rstCode ?? NGHTTP2_NO_ERROR;
    // A stream the backend refused, or one above a GOAWAY's last stream id (nghttp2 closes those with
    // REFUSED_STREAM), was never processed: safe to send elsewhere, whatever the method.
    const err =
      code === NGHTTP2_REFUSED_STREAM && !this.responded
        ? new StreamResetError(REFUSED_STREAM_CODE, code, 'the backend refused the stream (not processed)')
        : new StreamResetError('ECONNRESET', code, `the backend closed the stream (HTTP/2 error code ${code})`);
    this.fail(err, undefined);
  }

  private fail(err: Error, rst: number | undefined): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (rst !== undefined && !this.stream.destroyed) this.stream.close(rst);
    this.handler.onError?.(err);
  }

  /** The proxy gave up on this request (client gone, deadline): cancel the stream, report nothing more. */
  private abort(err?: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    this.handler.onError?.(err ?? Object.assign(new Error('request aborted'), { code: 'UND_ERR_ABORTED' }));
  }
}
