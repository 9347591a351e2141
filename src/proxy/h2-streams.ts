/**
 * Clients over HTTP/2: every stream (every gRPC call) is an exchange of its own, picked by the strategy and sent
 * through `Target.tryStart/responded/finish` exactly like an HTTP/1.1 request, so the calls of one client connection
 * spread over the pool, and in-flight counts, retries, passive health and metrics count calls, not connections.
 *
 * gRPC (a request whose content-type is application/grpc*) gets gRPC's answers where bulb itself answers: a
 * trailers-only response (HTTP 200, `grpc-status`, `grpc-message`) with UNAVAILABLE (14) when no backend can take
 * the call, DEADLINE_EXCEEDED (4) when the backend does not answer in time or the call's `grpc-timeout` passes, as
 * Envoy does; a gRPC client would read an HTTP 503 page as a protocol error. Cancellation travels both ways as
 * RST_STREAM: a client that cancels resets the backend's stream (CANCEL), a backend that resets the stream after
 * its response began has the client's stream reset with the same code.
 */
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { PassThrough, type Readable } from 'node:stream';
import type { Target } from '../dataplane/target.js';
import { StreamResetError, type H2Handler } from '../dataplane/h2-upstream.js';
import type { AccessRecord } from '../log.js';
import type { PickRequest } from '../strategies/strategy.js';
import type { ProxyOptions, RetryState } from './proxy.js';
import { trailerPairs } from './headers.js';
import { errorCode, type Failure, type RetryBudget } from './retry.js';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

/** The part of the HTTP/1.1 forwarder a stream shares: picking, claiming, the retry rules and budget, the log. */
export interface StreamCore {
  readonly opts: ProxyOptions;
  readonly budget: RetryBudget;
  readonly writeAccessLog: ((r: AccessRecord) => void) | undefined;
  claim(req: PickRequest, tried: readonly Target[]): { target: Target; started: number } | undefined;
  retry(ex: RetryState, failure: Failure): boolean;
}

/** gRPC status codes bulb itself answers with (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = { DEADLINE_EXCEEDED: 4, UNAVAILABLE: 14 } as const;

/**
 * Connection-specific headers (RFC 9113 §8.2.2) and the hop-by-hop ones bulb drops on HTTP/1.1 too: never passed
 * on, either way. `te` is handled apart: `te: trailers` is the one value HTTP/2 allows, and gRPC requires it.
 */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
  'trailer',
  'proxy-authorization',
  'proxy-authenticate',
  'expect',
]);

/** application/grpc, application/grpc+proto, application/grpc-web is not gRPC over HTTP/2 (it has no trailers). */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && /^application\/grpc(?:$|[+;])/i.test(contentType);
}

/** `grpc-timeout` (`1S`, `250m`, `100u`: at most 8 digits and a unit) in milliseconds, or undefined. */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as 'H' | 'M' | 'S' | 'm' | 'u' | 'n'];
  return n * unit;
}

/**
 * A gRPC status as the HTTP status passive health and outlier detection read (Envoy's `grpcToHttpStatus`): a call
 * that ended UNAVAILABLE or INTERNAL is a 5xx of that backend even though its HTTP status was 200.
 */
const GRPC_TO_HTTP: Readonly<Record<string, number>> = {
  0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};

/** One client stream, across its attempts. */
class StreamExchange implements RetryState {
  readonly started = performance.now();
  readonly tried: Target[] = [];
  current: StreamAttempt | undefined = undefined;
  body: Buffer | undefined = undefined;
  streamBody = false;
  /** A response (or bulb's own answer) has begun: no other answer may follow. */
  answered = false;
  /** The response is complete, or bulb gave up on it: a stream close from here on is not a cancellation. */
  over = false;
  clientGone = false;
  deadlineHit = false;
  status = 0;
  /** The call's gRPC status as it ended (for the access log); undefined for other requests or while unknown. */
  grpcStatus: number | undefined = undefined;
  deadlineTimer: NodeJS.Timeout | undefined = undefined;
  /** When the call's `grpc-timeout` ends (performance.now() time), if it has one. */
  readonly deadlineAt: number | undefined;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly headers: Record<string, string | string[]>,
    readonly method: string,
    readonly path: string,
    readonly grpc: boolean,
    readonly pick: PickRequest,
    deadlineMs: number | undefined,
  ) {
    this.deadlineAt = deadlineMs === undefined ? undefined : this.started + deadlineMs;
  }

  /** The current attempt's copy of a streamed body (see `StreamForwarder.feed`). */
  feed: PassThrough | undefined = undefined;
  /**
   * What has been read of a streamed body so far, kept (up to `--retry-body-limit`) until a backend answers, so a
   * call refused unprocessed can be sent elsewhere whole; `undefined` once it can no longer be replayed.
   */
  recorded: Buffer[] | undefined = [];
  recordedBytes = 0;
  clientEnded = false;

  /** The body can be sent again: none, buffered whole, or streamed and still wholly recorded. */
  get replayable(): boolean {
    return !this.streamBody || this.recorded !== undefined;
  }
}

/** One try of a stream exchange on one backend: the handler for its dispatcher (undici's, or the h2c one). */
class StreamAttempt implements H2Handler {
  abort: ((err?: Error) => void) | undefined = undefined;
  resume: (() => void) | undefined = undefined;
  discard = false;
  finished = false;
  status = 0;
  trailers: OutgoingHttpHeaders | undefined = undefined;
  /** The response head carried END_STREAM (a gRPC trailers-only response): it is forwarded as one. */
  endStream = false;
  /** `grpc-status` of a trailers-only response. */
  headGrpcStatus: string | undefined = undefined;

  constructor(
    readonly sf: StreamForwarder,
    readonly ex: StreamExchange,
    readonly backend: Target,
    readonly started: number,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    if (this.ex.clientGone || this.ex.over) abort();
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[], resume: () => void, _statusText: string, endStream?: boolean): boolean {
    if (statusCode < 200) return true;
    this.backend.responded(this.started);
    this.resume = resume;
    this.sf.onResponse(this, statusCode, rawHeaders, endStream === true);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discard) return true;
    const s = this.ex.stream;
    if (s.destroyed || s.writableEnded) return true;
    if (s.write(chunk)) return true;
    // HTTP/2 flow control: the client's window is full; hold the backend until it drains.
    // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- onHeaders, which sets resume, always comes before onData
    s.once('drain', this.resume!);
    return false;
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.sf.onComplete(this, trailers);
  }

  onError(err: Error): void {
    this.sf.onAttemptError(this, err);
  }
}

function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** Raw `[name, value, ...]` from a backend → HTTP/2 headers: lower-case names, connection-specific ones dropped. */
function h2Headers(raw: readonly (Buffer | string)[] | null, into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (raw === null) return into;
  let named: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = latin1(raw[i]).toLowerCase();
    const value = latin1(raw[i + 1]);
    if (name === 'connection') (named ??= []).push(...value.split(',').map((t) => t.trim().toLowerCase()));
    if (name.startsWith(':') || name === 'te' || CONNECTION_SPECIFIC.has(name)) continue;
    const prev = into[name];
    if (prev === undefined) into[name] = value;
    else into[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- header names are data: removing the ones Connection names is the job
  if (named !== undefined) for (const n of named) delete into[n];
  return into;
}

export class StreamForwarder {
  constructor(private readonly core: StreamCore) {}

  /** The HTTP/2 server's 'stream' handler. */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const method = headers[':method'] ?? 'GET';
    if (method === 'CONNECT') {
      // No extended CONNECT (RFC 8441) is offered, so this is a tunnel request bulb does not serve.
      answerPlain(stream, 501, 'CONNECT is not supported\n');
      return;
    }
    const path = headers[':path'] ?? '/';
    const authority = headers[':authority'] ?? headers.host;
    const fwd: Record<string, string | string[]> = {};
    for (const name in headers) {
      if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name)) continue;
      const v = headers[name];
      if (v === undefined) continue;
      if (name === 'te') {
        if (typeof v === 'string' && v.trim().toLowerCase() === 'trailers') fwd['te'] = 'trailers';
        continue;
      }
      fwd[name] = v;
    }
    const ip = stream.session?.socket?.remoteAddress ?? '';
    const prior = fwd['x-forwarded-for'];
    fwd['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${ip}` : ip;
    fwd['x-forwarded-proto'] = stream.session?.encrypted ? 'https' : 'http';
    if (typeof authority === 'string') {
      fwd['host'] = authority;
      fwd['x-forwarded-host'] = authority;
    } else delete fwd['x-forwarded-host'];
    const grpc = isGrpc(headers['content-type']);
    const grpcTimeout = grpc ? parseGrpcTimeout(headers['grpc-timeout']) : undefined;
    const pick: PickRequest = { clientIp: ip, method, url: path, headers: fwd };
    const ex = new StreamExchange(stream, fwd, method, path, grpc, pick, grpcTimeout);
    this.core.budget.request();
    stream.once('close', () => this.streamClosed(ex));
    if (ex.deadlineAt !== undefined) ex.deadlineTimer = setTimeout(() => this.deadline(ex), Math.max(0, ex.deadlineAt - ex.started));

    if (stream.endAfterHeaders) {
      this.attempt(ex);
      return;
    }
    const length = Number(headers['content-length']);
    const opts = this.core.opts;
    if (opts.retries > 0 && length >= 0 && length <= opts.retryBodyLimit) {
      // A small body with a declared length is read whole first, so a retry can send it again (as on HTTP/1.1).
      const chunks: Buffer[] = [];
      // A body that stops arriving holds the stream, so --body-timeout applies, as on HTTP/1.1.
      const timer = setTimeout(() => {
        if (ex.over) return;
        this.core.opts.log.warn({ client: ip, path, timeoutMs: opts.bodyTimeoutMs }, 'client body timeout; closing the stream');
        ex.over = true;
        ex.status = 408;
        answerPlain(stream, 408, 'request timeout: the request did not arrive in time\n');
      }, opts.bodyTimeoutMs);
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        timer.refresh();
      });
      stream.once('close', () => clearTimeout(timer));
      stream.once('end', () => {
        clearTimeout(timer);
        ex.body = Buffer.concat(chunks);
        if (!ex.clientGone && !ex.over) this.attempt(ex);
      });
      return;
    }
    // Streamed (gRPC streams, large uploads): each attempt reads it through a feed of its own, and what was read
    // is kept until a backend answers (up to --retry-body-limit), so a call refused unprocessed can be replayed.
    ex.streamBody = true;
    if (opts.retries === 0) ex.recorded = undefined;
    stream.on('data', (c: Buffer) => {
      if (ex.recorded !== undefined) {
        ex.recordedBytes += c.length;
        if (ex.recordedBytes > opts.retryBodyLimit) ex.recorded = undefined;
        else ex.recorded.push(c);
      }
      const feed = ex.feed;
      if (feed === undefined || feed.destroyed) return;
      if (!feed.write(c)) {
        // Backpressure from the backend (HTTP/2 flow control) reaches the client through its stream's window.
        stream.pause();
        feed.once('drain', () => {
          if (ex.feed === feed) stream.resume();
        });
      }
    });
    stream.once('end', () => {
      ex.clientEnded = true;
      ex.feed?.end();
    });
    this.attempt(ex);
  }

  /** A new copy of the streamed body for the next attempt: what was recorded, then the rest as it arrives. */
  private feed(ex: StreamExchange): PassThrough {
    ex.feed?.destroy();
    const feed = new PassThrough();
    ex.feed = feed;
    for (const c of ex.recorded ?? []) feed.write(c);
    if (ex.clientEnded) feed.end();
    else if (ex.stream.isPaused()) ex.stream.resume();
    return feed;
  }

  private attempt(ex: StreamExchange): void {
    const claimed = this.core.claim(ex.pick, ex.tried);
    if (!claimed) {
      ex.current = undefined;
      this.answer(ex, 503, GRPC_STATUS.UNAVAILABLE, 'no backend available');
      return;
    }
    const backend = claimed.target;
    ex.tried.push(backend);
    const attempt = new StreamAttempt(this, ex, backend, claimed.started);
    ex.current = attempt;
    let headersTimeout = this.core.opts.upstreamTimeoutMs;
    if (ex.deadlineAt !== undefined) {
      // The backend is told what is left of the call's deadline, as a gRPC client tells a server.
      const left = Math.max(1, Math.ceil(ex.deadlineAt - performance.now()));
      ex.headers['grpc-timeout'] = `${left}m`;
      headersTimeout = Math.min(headersTimeout, left);
    }
    // A feed rather than the client's stream itself: undici destroys a body stream it is done with, which for
    // this Duplex would reset the client's stream before the response.
    const body: Buffer | Readable | null = ex.body ?? (ex.streamBody ? this.feed(ex) : null);
    // TE is hop-by-hop on HTTP/1.1 (it would need `Connection: TE`); only an HTTP/2 backend gets `te: trailers`.
    let headers = ex.headers;
    if (headers['te'] !== undefined && !backend.url.startsWith('h2c:')) {
      headers = { ...headers };
      delete headers['te'];
    }
    backend.dispatcher.dispatch(
      {
        path: ex.path,
        method: ex.method,
        headers,
        body,
        headersTimeout,
        bodyTimeout: 0,
      },
      attempt,
    );
  }

  onResponse(attempt: StreamAttempt, status: number, raw: Buffer[] | string[], endStream: boolean): void {
    const ex = attempt.ex;
    if (ex.clientGone || ex.over || ex.current !== attempt) {
      attempt.discard = true;
      return;
    }
    if (status === 503 && this.core.retry(ex, { kind: 'status', status })) {
      attempt.discard = true;
      this.finishAttempt(attempt, { status });
      this.attempt(ex);
      return;
    }
    // A backend answered: the call is no longer replayable, and what was kept for a replay is let go.
    ex.recorded = undefined;
    attempt.status = status;
    attempt.endStream = endStream;
    const headers = h2Headers(raw, { ':status': status });
    // grpc-status in the response head is a trailers-only response (gRPC over HTTP/2 allows it nowhere else): it
    // stays one even when the upstream client (undici's HTTP/2) does not say the head carried END_STREAM.
    if (!endStream && isGrpc(headers['content-type']) && headers['grpc-status'] !== undefined) {
      endStream = true;
      attempt.discard = true;
    }
    if (endStream && headers['grpc-status'] !== undefined) attempt.headGrpcStatus = String(headers['grpc-status']);
    // Whether trailers follow is known only at the end (an HTTP/2 backend need not announce them), so the stream
    // is held open for them; with none, `sendTrailers({})` ends it with an empty END_STREAM DATA frame.
    const wantTrailers = !endStream;
    try {
      ex.stream.respond(headers, { endStream, waitForTrailers: wantTrailers });
    } catch (err) {
      this.core.opts.log.warn({ backend: attempt.backend.id, error: errorCode(err) }, 'backend sent a response bulb cannot forward');
      attempt.discard = true;
      attempt.abort?.();
      this.answer(ex, 502, GRPC_STATUS.UNAVAILABLE, 'bad gateway: the backend sent a response bulb cannot forward');
      return;
    }
    ex.answered = true;
    ex.status = status;
    if (endStream) {
      // Trailers-only: the exchange is complete now; the client's stream may close before the backend's 'end'.
      ex.over = true;
      const gs = attempt.headGrpcStatus;
      if (gs !== undefined) ex.grpcStatus = Number(gs);
      this.finishAttempt(attempt, { status: (gs !== undefined && GRPC_TO_HTTP[gs]) || status });
      return;
    }
    if (wantTrailers) {
      ex.stream.once('wantTrailers', () => {
        try {
          ex.stream.sendTrailers(attempt.trailers ?? {});
        } catch {
          ex.stream.close(NGHTTP2_NO_ERROR);
        }
      });
    }
  }

  onComplete(attempt: StreamAttempt, trailers: Buffer[] | string[] | null): void {
    const ex = attempt.ex;
    const t = h2Headers(trailerPairs(trailers).flat(), {});
    const grpcStatus = t['grpc-status'] ?? attempt.headGrpcStatus;
    this.finishAttempt(attempt, { status: (grpcStatus !== undefined && GRPC_TO_HTTP[String(grpcStatus)]) || attempt.status });
    if (attempt.discard || ex.clientGone || ex.current !== attempt || ex.over) return;
    ex.over = true;
    if (grpcStatus !== undefined) ex.grpcStatus = Number(grpcStatus);
    attempt.trailers = t;
    if (!attempt.endStream && !ex.stream.destroyed) ex.stream.end();
  }

  onAttemptError(attempt: StreamAttempt, err: Error): void {
    const ex = attempt.ex;
    const code = errorCode(err);
    // A client that left, or a deadline the client set, says nothing about the backend.
    this.finishAttempt(attempt, ex.clientGone || ex.deadlineHit ? {} : { error: code });
    if (ex.clientGone || ex.over || ex.current !== attempt || attempt.discard) return;
    const backend = attempt.backend;
    if (ex.answered) {
      // The backend failed mid-response: the client's stream is reset too, with the backend's code when it sent
      // one (CANCEL stays CANCEL), so the client sees a broken call, never a clean end.
      ex.over = true;
      this.core.opts.log.warn({ backend: backend.id, error: code }, 'backend failed mid-response');
      const rst = err instanceof StreamResetError && err.rstCode !== NGHTTP2_NO_ERROR ? err.rstCode : NGHTTP2_INTERNAL_ERROR;
      if (!ex.stream.destroyed) ex.stream.close(rst);
      return;
    }
    if (code === 'ETIMEDOUT') {
      this.core.opts.log.warn({ backend: backend.id, timeoutMs: this.core.opts.upstreamTimeoutMs }, 'upstream timeout');
      this.answer(ex, 504, GRPC_STATUS.DEADLINE_EXCEEDED, 'gateway timeout: the backend did not respond in time');
      return;
    }
    if (this.core.retry(ex, { kind: 'error', code })) {
      this.attempt(ex);
      return;
    }
    this.core.opts.log.warn({ backend: backend.id, error: code }, 'backend failed before responding');
    this.answer(ex, 502, GRPC_STATUS.UNAVAILABLE, 'bad gateway: the backend failed before responding');
  }

  /** The call's `grpc-timeout` passed: cancel the backend's stream and answer DEADLINE_EXCEEDED. */
  private deadline(ex: StreamExchange): void {
    ex.deadlineTimer = undefined;
    if (ex.over || ex.clientGone) return;
    ex.deadlineHit = true;
    ex.grpcStatus = GRPC_STATUS.DEADLINE_EXCEEDED;
    const attempt = ex.current;
    if (!ex.answered) {
      this.answer(ex, 504, GRPC_STATUS.DEADLINE_EXCEEDED, 'deadline exceeded');
    } else if (attempt !== undefined && !attempt.endStream) {
      // The response has begun: end it with the status in its trailers.
      ex.over = true;
      attempt.trailers = { 'grpc-status': String(GRPC_STATUS.DEADLINE_EXCEEDED), 'grpc-message': 'deadline exceeded' };
      attempt.discard = true;
      if (!ex.stream.destroyed) ex.stream.end();
    }
    attempt?.abort?.();
  }

  /**
   * bulb's own answer when no backend response can be forwarded: for gRPC a trailers-only response with a
   * gRPC status, else a short plain body with the HTTP status.
   */
  private answer(ex: StreamExchange, status: 502 | 503 | 504, grpcStatus: number, message: string): void {
    ex.over = true;
    ex.answered = true;
    const s = ex.stream;
    if (s.destroyed || s.headersSent) {
      if (!s.destroyed) s.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (ex.grpc) {
      ex.status = 200;
      ex.grpcStatus = grpcStatus;
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': grpcMessage(message) }, { endStream: true });
      closeUnread(s);
      return;
    }
    ex.status = status;
    answerPlain(s, status, `${message}\n`);
  }

  private finishAttempt(attempt: StreamAttempt, outcome: { error?: string; status?: number }): void {
    if (attempt.finished) return;
    attempt.finished = true;
    attempt.backend.finish(outcome);
  }

  private streamClosed(ex: StreamExchange): void {
    clearTimeout(ex.deadlineTimer);
    ex.recorded = undefined;
    if (ex.feed !== undefined && !ex.feed.writableEnded) ex.feed.destroy();
    if (!ex.over) {
      // The client reset the stream (a cancelled call) or its connection went: cancel the backend's stream.
      ex.clientGone = true;
      ex.over = true;
    }
    const attempt = ex.current;
    if (attempt !== undefined && !attempt.finished) {
      if (ex.clientGone) {
        this.finishAttempt(attempt, {});
        attempt.abort?.();
      } else {
        // Our side of the stream closed before the backend's response ended (an RST the proxy sent).
        this.finishAttempt(attempt, { status: attempt.status });
        attempt.abort?.();
      }
    }
    const status = ex.deadlineHit ? 504 : ex.clientGone ? 499 : ex.status;
    const durationMs = Math.round((performance.now() - ex.started) * 100) / 100;
    this.core.opts.reporter.exchangeDone(ex.current?.backend.id, status, durationMs);
    // A cancelled call is CANCELLED (1) whatever had arrived; a call cut off mid-response has no status.
    const grpcStatus = !ex.grpc ? undefined : ex.clientGone ? 1 : ex.grpcStatus;
    this.core.writeAccessLog?.({ method: ex.method, path: ex.path, status, backend: ex.current?.backend.id ?? null, attempts: ex.tried.length, durationMs, grpcStatus });
  }
}

/** gRPC's grpc-message encoding: printable ASCII but `%` as is, everything else percent-encoded as UTF-8. */
export function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]+/g, (run) => encodeURIComponent(run));
}

function answerPlain(s: ServerHttp2Stream, status: number, body: string): void {
  if (s.destroyed || s.headersSent) return;
  s.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  s.end(body);
  closeUnread(s);
}

/**
 * After a complete answer to a request whose body is still arriving, RST_STREAM(NO_ERROR) tells the client to
 * stop sending (RFC 9113 §8.1) instead of leaving the stream half-open.
 */
function closeUnread(s: ServerHttp2Stream): void {
  if (s.readableEnded) return;
  s.once('finish', () => {
    if (!s.destroyed && !s.readableEnded) s.close(NGHTTP2_NO_ERROR);
  });
}

