import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import httpProxy from 'http-proxy';
import type { Dispatcher } from 'undici';
import { accessLogWriter, type AccessRecord, type Logger } from '../log.js';
import type { DataPool } from '../dataplane/data-pool.js';
import type { Target } from '../dataplane/target.js';
import type { Reporter } from '../pool/snapshot.js';
import type { Candidate, PickRequest, Strategy } from '../strategies/strategy.js';
import type { IncomingHttpHeaders as H2IncomingHeaders, ServerHttp2Stream } from 'node:http2';
import { StreamForwarder } from './h2-streams.js';
import { prepareRequestHeaders, responseHeaderList, trailerPairs } from './headers.js';
import { errorCode, hasBody, isRetryable, RetryBudget, type Failure } from './retry.js';
import { tlsReason } from '../tls/material.js';

export interface ProxyOptions {
  readonly pool: DataPool;
  readonly strategy: Strategy;
  /** No response headers from the backend within this → 504. */
  readonly upstreamTimeoutMs: number;
  /** How many times a failed attempt may be sent to another backend. */
  readonly retries: number;
  /** At most this percentage of recent requests may be retries. */
  readonly retryBudgetPercent: number;
  /** Request bodies up to this many bytes are buffered so the request can be retried; larger ones are streamed. */
  readonly retryBodyLimit: number;
  /** A client sending a body may pause this long at most (slow-body protection). */
  readonly bodyTimeoutMs: number;
  /** A client that accepts no response bytes for this long is dropped, and its upstream request released; 0 = never. */
  readonly sendTimeoutMs: number;
  readonly log: Logger;
  /** Told about every finished exchange and retry (metrics); attempts report through their target. */
  readonly reporter: Reporter;
}

const BODIES = {
  408: 'request timeout: the request did not arrive in time\n',
  502: 'bad gateway: the backend failed before responding\n',
  503: 'no backend available\n',
  504: 'gateway timeout: the backend did not respond in time\n',
} as const;

/** Answers with a short plain body; never a stack trace. */
function reply(res: ServerResponse, status: keyof typeof BODIES): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = BODIES[status];
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** What a strategy sees of an HTTP/1.1 request. */
function pickRequestOf(req: IncomingMessage): PickRequest {
  return { clientIp: req.socket?.remoteAddress ?? '', method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
}

/** What the retry decision reads of an exchange (HTTP/1.1 or an HTTP/2 stream). */
export interface RetryState {
  readonly tried: readonly Target[];
  readonly method: string;
  readonly replayable: boolean;
  readonly current: { readonly backend: Target } | undefined;
}

/** One client request, across its attempts. */
class Exchange {
  readonly started = performance.now();
  /** The whole request body when it was buffered for retries; `undefined` when there is none or it streams. */
  body: Buffer | undefined = undefined;
  /** Whether a retry could send the same body again (no body, or buffered whole). */
  replayable: boolean;
  /** The request body streams to the backend (it was not buffered). */
  streamBody = false;
  readonly tried: Target[] = [];
  current: Attempt | undefined = undefined;
  clientGone = false;
  /** bulb gave up on the client (a body or request timeout, or a send timeout): logged as 408, not 499. */
  timedOut = false;
  /** Armed while the response waits for the client to drain it (`--send-timeout`). */
  sendTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly forwarder: Forwarder,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly method: string,
    readonly clientWantsClose: boolean,
    withBody: boolean,
  ) {
    this.replayable = !withBody;
  }
}

/**
 * One try of an exchange on one backend, and the undici dispatch handler for it. The handler methods are on the
 * prototype, so a request allocates no closures for them. (undici's newer `onRequestStart`/`onResponse*` handler
 * API is adapted to these calls by a wrapper per request; these are what its HTTP/1.1 client calls directly.)
 */
class Attempt implements Dispatcher.DispatchHandler {
  /** undici's abort for the request, once it is on a connection. */
  abort: ((err?: Error) => void) | undefined = undefined;
  /** undici's resume, for a response paused on the client's backpressure. */
  resume: (() => void) | undefined = undefined;
  /** The response is not the client's (a 503 being retried, or one bulb could not forward): read and drop it. */
  discard = false;

  /** `Target.finish` has been called: it must be, exactly once. */
  finished = false;

  constructor(
    readonly ex: Exchange,
    readonly backend: Target,
    /** When the request was sent (`Target.tryStart()`), for the latency sample at response headers. */
    readonly started: number,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    // The client left while this request waited for a connection: nobody wants the answer.
    if (this.ex.clientGone) abort();
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    // 1xx informational responses are the backend's business; Node answers `Expect` itself.
    if (statusCode < 200) return true;
    this.backend.responded(this.started);
    this.resume = resume;
    this.ex.forwarder.onResponse(this, statusCode, rawHeaders, statusText);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discard) return true;
    const res = this.ex.res;
    if (res.write(chunk)) return true;
    // The client reads slower than the backend sends: pause the backend's connection until it drains. What is
    // buffered stays bounded (the socket's and the response's high-water marks), however large the response.
    if (!res.destroyed) {
      // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- onHeaders, which sets resume, always comes before onData
      res.once('drain', this.resume!);
      this.ex.forwarder.awaitDrain(this.ex);
    }
    return false;
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    if (this.discard) return;
    // An HTTP/2 backend's trailers (gRPC's grpc-status among them) go on in a chunked HTTP/1.1 response.
    const list = trailerPairs(trailers);
    if (list.length > 0) {
      try {
        this.ex.res.addTrailers(list);
      } catch {
        // A trailer Node refuses (invalid characters) is dropped rather than failing a complete response.
      }
    }
    this.ex.res.end();
  }

  onError(err: Error): void {
    this.ex.forwarder.onAttemptError(this, err);
  }
}

/** The request path: picks, attempts, retries and responses. Not exported; `Proxy` is the interface. */
class Forwarder {
  readonly budget: RetryBudget;
  readonly writeAccessLog: ((r: AccessRecord) => void) | undefined;

  constructor(readonly opts: ProxyOptions) {
    this.budget = new RetryBudget({ percent: opts.retryBudgetPercent });
    this.writeAccessLog = accessLogWriter(opts.log);
  }

  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const { clientWantsClose } = prepareRequestHeaders(req, false);
    const headers = req.headers;
    const withBody = hasBody(req);
    const chunked = headers['transfer-encoding'] !== undefined;
    // undici frames the body itself (and refuses the header): a streamed body without a length goes chunked.
    if (chunked) delete headers['transfer-encoding'];
    const ex = new Exchange(this, req, res, req.method ?? 'GET', clientWantsClose, withBody);
    (res as TrackedResponse)[kExchange] = ex;
    this.budget.request();
    res.on('close', onResponseClose);
    if (!withBody) {
      this.attempt(ex);
      return;
    }
    const length = Number(headers['content-length']);
    const buffer = this.opts.retries > 0 && !chunked && length <= this.opts.retryBodyLimit;
    // A streamed body must not flow before undici reads it (it resumes the stream once it is on a connection).
    if (!buffer) req.pause();
    this.watchBody(ex);
    if (buffer) {
      // Small bodies are read whole first (as nginx's proxy_request_buffering does), so a retry can resend them.
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => {
        ex.body = Buffer.concat(chunks);
        ex.replayable = true;
        if (!ex.clientGone) this.attempt(ex);
      });
      req.once('error', () => res.destroy());
      return;
    }
    ex.streamBody = true;
    this.attempt(ex);
  }

  /** The client's response closed: finished, or the client went away first. */
  responseClosed(ex: Exchange): void {
    const attempt = ex.current;
    const res = ex.res;
    if (!res.writableFinished) ex.clientGone = true;
    clearTimeout(ex.sendTimer);
    if (attempt) {
      // A 408 of bulb's own says nothing about the backend.
      this.finishAttempt(attempt, ex.timedOut ? {} : { status: res.statusCode });
      // A client that hangs up or timed out must not leave the upstream request (and its connection) busy.
      if (ex.clientGone || ex.timedOut) attempt.abort?.();
    }
    this.accessLog(ex);
  }

  /**
   * bulb gives up on a client (body idle, whole request, or send timeout): `408` if no response byte was sent
   * yet, else the response is cut off, never ended cleanly; then the connection is closed fully, so the slot is
   * free at once, and the upstream request is aborted by `responseClosed`.
   */
  timeOut(ex: Exchange, why: string, timeoutMs?: number): void {
    if (ex.timedOut) return;
    ex.timedOut = true;
    const res = ex.res;
    const socket = ex.req.socket;
    this.opts.log.warn({ client: socket?.remoteAddress, path: ex.req.url, timeoutMs }, why);
    if (res.headersSent || res.destroyed || !socket) {
      // Too late for a status: cut the response off. A reset rather than a FIN: a slow reader's kernel buffer
      // would otherwise keep trickling out (and stay allocated) long after bulb let go of the socket.
      if (socket && !socket.destroyed) socket.resetAndDestroy();
      else res.destroy();
      return;
    }
    ex.res.shouldKeepAlive = false;
    reply(res, 408);
    // `destroySoon`: the 408 is flushed, then the socket is destroyed rather than left half-open.
    socket.destroySoon();
  }

  /** The response waits for the client to read: arm the send timeout (nginx send_timeout) until it drains. */
  awaitDrain(ex: Exchange): void {
    const ms = this.opts.sendTimeoutMs;
    if (ms <= 0) return;
    if (ex.sendTimer !== undefined) {
      ex.sendTimer.refresh();
      return;
    }
    ex.sendTimer = setTimeout(onSendTimeout, ms, ex);
    ex.res.once('drain', () => {
      clearTimeout(ex.sendTimer);
      ex.sendTimer = undefined;
    });
  }

  pick(pickReq: PickRequest, tried: readonly Target[]): Target | undefined {
    let candidates = this.opts.pool.routable;
    // Retries are rare, so filtering (and the strategy rebuilding anything it caches per array) is affordable.
    if (tried.length > 0) candidates = candidates.filter((b) => !tried.includes(b));
    if (candidates.length === 0) return undefined;
    let chosen: Candidate | undefined;
    try {
      chosen = this.opts.strategy.pick(candidates, pickReq);
    } catch (err) {
      // Only a custom strategy can get here; one bad pick must not take the request path down.
      this.opts.log.error({ err: errorCode(err), strategy: this.opts.strategy.name }, 'strategy pick threw; answering 503');
      return undefined;
    }
    if (chosen === undefined) return undefined;
    // A custom strategy may return anything; accept only a routable, untried pool member. The pool lookup is
    // O(1), and it is what makes the narrowing back to Target sound.
    const backend = this.opts.pool.get(chosen.id);
    if (backend !== chosen || !this.opts.pool.isRoutable(backend) || tried.includes(backend)) return undefined;
    return backend;
  }

  /**
   * Closes the connection of a client that stops sending its body for `bodyTimeoutMs` (a slow-body attack
   * would otherwise hold a backend connection open for as long as it likes). Headers are covered by the
   * server's `headersTimeout`.
   */
  private watchBody(ex: Exchange): void {
    const req = ex.req;
    const timer = setTimeout(() => this.timeOut(ex, 'client body timeout; closing the connection', this.opts.bodyTimeoutMs), this.opts.bodyTimeoutMs);
    req.on('data', () => timer.refresh());
    req.once('end', () => clearTimeout(timer));
    req.once('close', () => clearTimeout(timer));
  }

  /** Whether to retry after `failure`: the rules in retry.ts, attempts left, another backend, and budget. */
  retry(ex: RetryState, failure: Failure): boolean {
    if (ex.tried.length > this.opts.retries) return false;
    if (!isRetryable(ex.method, ex.replayable, failure)) return false;
    if (!this.opts.pool.routable.some((b) => !ex.tried.includes(b))) return false;
    if (!this.budget.tryRetry()) {
      this.opts.log.warn({ backend: ex.current?.backend.id }, 'retry budget spent; not retrying');
      if (ex.current) this.opts.reporter.retryRefused(ex.current.backend.id);
      return false;
    }
    // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- a retry is decided about a failed attempt, so there is a current one
    const backend = ex.current!.backend;
    const reason = failure.kind === 'status' ? String(failure.status) : failure.code;
    this.opts.log.info({ backend: backend.id, error: reason, attempt: ex.tried.length }, 'retrying on another backend');
    this.opts.reporter.retried(backend.id, reason);
    return true;
  }

  /**
   * Picks a target and claims a place on it. A target at its `maxConnections` (other workers may have taken the
   * last place since the snapshot) is skipped and the strategy asked again, without it.
   */
  claim(req: PickRequest, tried: readonly Target[]): { target: Target; started: number } | undefined {
    let skip = tried;
    for (;;) {
      const target = this.pick(req, skip);
      if (target === undefined) return undefined;
      const started = target.tryStart();
      if (started >= 0) return { target, started };
      skip = [...skip, target];
    }
  }

  private attempt(ex: Exchange): void {
    const req = ex.req;
    const claimed = this.claim(pickRequestOf(req), ex.tried);
    if (!claimed) {
      ex.current = undefined;
      reply(ex.res, 503);
      return;
    }
    const backend = claimed.target;
    ex.tried.push(backend);
    const attempt = new Attempt(ex, backend, claimed.started);
    ex.current = attempt;
    // The headers were prepared once (hop-by-hop removed, X-Forwarded-* set); `Host` is the client's, passed
    // explicitly so undici does not put the backend's address there. A failure, even a synchronous one
    // (a closed dispatcher, a header undici refuses), arrives at `attempt.onError`.
    backend.dispatcher.dispatch(
      {
        path: req.url ?? '/',
        method: ex.method,
        headers: req.headers,
        body: ex.body ?? (ex.streamBody ? req : null),
        headersTimeout: this.opts.upstreamTimeoutMs,
        bodyTimeout: 0,
      },
      attempt,
    );
  }

  /** Response headers from the backend: retry a 503 if allowed, else start the client's response. */
  onResponse(attempt: Attempt, status: number, rawHeaders: Buffer[] | string[], statusText: string): void {
    const ex = attempt.ex;
    if (ex.clientGone || ex.current !== attempt) {
      attempt.discard = true;
      return;
    }
    if (status === 503 && this.retry(ex, { kind: 'status', status })) {
      // Read and drop the body so the keep-alive connection goes back to the pool, then try another backend.
      attempt.discard = true;
      this.finishAttempt(attempt, { status });
      this.attempt(ex);
      return;
    }
    const res = ex.res;
    try {
      res.writeHead(status, statusText, responseHeaderList(rawHeaders, ex.clientWantsClose));
    } catch (err) {
      // A header value Node refuses to send (invalid characters) is the backend's fault: 502, not a crash.
      this.opts.log.warn({ backend: attempt.backend.id, error: errorCode(err) }, 'backend sent a response bulb cannot forward');
      attempt.discard = true;
      reply(res, 502);
    }
  }

  /** The attempt failed: refused, reset, timed out, or the backend died mid-body; or bulb aborted it. */
  onAttemptError(attempt: Attempt, err: Error): void {
    const ex = attempt.ex;
    const res = ex.res;
    const code = errorCode(err);
    this.finishAttempt(attempt, ex.clientGone ? {} : { error: code });
    // Gone, superseded by a retry, or already answered (a response bulb could not forward got its 502).
    if (ex.clientGone || res.destroyed || ex.current !== attempt || attempt.discard) return;
    const backend = attempt.backend;
    // A backend that dies mid-body: the client must see a truncated response, not a clean end.
    if (res.headersSent) {
      this.opts.log.warn({ backend: backend.id, error: code }, 'backend failed mid-response');
      res.destroy();
      return;
    }
    if (code === 'ETIMEDOUT') {
      this.opts.log.warn({ backend: backend.id, timeoutMs: this.opts.upstreamTimeoutMs }, 'upstream timeout');
      reply(res, 504);
      return;
    }
    if (this.retry(ex, { kind: 'error', code })) {
      this.attempt(ex);
      return;
    }
    const tls = tlsReason(code);
    if (tls !== undefined) {
      // Never retried elsewhere and never tried in plaintext: a certificate that does not verify is an answer.
      this.opts.log.warn({ backend: backend.id, error: code, reason: tls, ...(code === 'BULB_TLS_MATERIAL' && { detail: err.message }) }, 'backend TLS failed; answering 502');
    } else if (code === 'ECONNRESET' && backend.url.startsWith('https:') && backend.tls?.options?.cert === undefined) {
      // TLS 1.3 finishes the client's handshake before the server has checked for a client certificate, so a
      // backend requiring one can only reset the connection after the request is sent.
      this.opts.log.warn({ backend: backend.id, error: code, reason: 'the https backend reset the connection; it may require a client certificate (tls.cert and tls.key)' }, 'backend failed before responding');
    } else this.opts.log.warn({ backend: backend.id, error: code }, 'backend failed before responding');
    reply(res, 502);
  }

  private finishAttempt(attempt: Attempt, outcome: { error?: string; status?: number }): void {
    if (attempt.finished) return;
    attempt.finished = true;
    attempt.backend.finish(outcome);
  }

  private accessLog(ex: Exchange): void {
    const req = ex.req;
    const res = ex.res;
    const status = ex.timedOut ? 408 : ex.clientGone ? 499 : res.statusCode;
    const durationMs = Math.round((performance.now() - ex.started) * 100) / 100;
    this.opts.reporter.exchangeDone(ex.current?.backend.id, status, durationMs);
    this.writeAccessLog?.({
      method: req.method,
      path: req.url,
      status,
      backend: ex.current?.backend.id ?? null,
      attempts: ex.tried.length,
      durationMs,
    });
  }
}

const kExchange = Symbol('bulb.exchange');
type TrackedResponse = ServerResponse & { [kExchange]?: Exchange };

function onSendTimeout(ex: Exchange): void {
  ex.sendTimer = undefined;
  // A response bulb finished writing but the client never read: the exchange is over, only the socket is left.
  ex.forwarder.timeOut(ex, 'client send timeout: the client stopped reading; closing the connection', ex.forwarder.opts.sendTimeoutMs);
}

/** One shared 'close' listener for every response (no closure per request); the exchange hangs on the response. */
function onResponseClose(this: ServerResponse): void {
  const ex = (this as TrackedResponse)[kExchange];
  if (ex) ex.forwarder.responseClosed(ex);
}

/**
 * Forwards requests to the backend a strategy picks: plain requests through undici, with each backend's
 * keep-alive connection pool; WebSocket upgrades through http-proxy, over a connection of their own. The proxy
 * is the only caller of `Target.tryStart/responded/finish`, so in-flight counts and latency are measured once,
 * the same way, for every strategy.
 */
export class Proxy {
  private readonly forwarder: Forwarder;
  private readonly streams: StreamForwarder;
  private readonly server: httpProxy;

  constructor(opts: ProxyOptions) {
    this.forwarder = new Forwarder(opts);
    this.streams = new StreamForwarder(this.forwarder);
    this.server = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, ws: true });
    // Every error path has a handler: http-proxy emits 'error' when no per-call callback applies.
    this.server.on('error', (err: Error) => opts.log.debug({ err: errorCode(err) }, 'proxy error after response'));
  }

  /** The traffic server's 'request' handler. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.forwarder.handleRequest(req, res);
  };

  /** The HTTP/2 server's 'stream' handler: one exchange per stream. */
  readonly handleStream = (stream: ServerHttp2Stream, headers: H2IncomingHeaders): void => {
    this.streams.handleStream(stream, headers);
  };

  /** Node's request timeout fired while this response's request was still arriving (server.ts `clientError`). */
  readonly requestTimedOut = (res: ServerResponse): void => {
    const ex = (res as TrackedResponse)[kExchange];
    if (ex) this.forwarder.timeOut(ex, 'client request timeout (--request-timeout); closing the connection');
    else res.destroy();
  };

  /** The traffic server's 'upgrade' handler (WebSocket). */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    prepareRequestHeaders(req, true);
    const claimed = this.forwarder.claim(pickRequestOf(req), []);
    if (!claimed) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 21\r\n\r\nno backend available\n');
      return;
    }
    const backend = claimed.target;
    let finished = false;
    const done = (outcome: { error?: string }): void => {
      if (finished) return;
      finished = true;
      backend.finish(outcome);
    };
    // Counted as in flight for as long as the tunnel is open, so a draining backend waits for it, and tracked
    // so the drain timeout can close it.
    backend.tunnels.add(socket);
    socket.once('close', () => {
      backend.tunnels.delete(socket);
      done({});
    });
    const tlsError = backend.tls?.error;
    if (tlsError !== undefined) {
      this.forwarder.opts.log.warn({ backend: backend.id, error: 'BULB_TLS_MATERIAL', reason: tlsReason('BULB_TLS_MATERIAL'), detail: tlsError }, 'backend TLS failed; answering 502');
      done({ error: 'BULB_TLS_MATERIAL' });
      socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad gateway\n');
      return;
    }
    // No keep-alive agent: an upgraded socket leaves the pool for good. An https backend's agent only carries its
    // TLS material (keepAlive off).
    const agent = backend.upgradeAgent;
    this.server.ws(req, socket, head, { target: backend.url, ...(agent && { agent }) }, (err: Error) => {
      const code = errorCode(err);
      const reason = tlsReason(code);
      if (reason !== undefined) this.forwarder.opts.log.warn({ backend: backend.id, error: code, reason }, 'backend TLS failed; answering 502');
      done({ error: code });
      if (socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad gateway\n');
      else socket.destroy();
    });
  };

  close(): void {
    this.server.close();
  }
}
