import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import httpProxy from 'http-proxy';
import type { Logger } from '../log.js';
import type { Backend } from '../pool/backend.js';
import type { Pool } from '../pool/pool.js';
import type { Candidate, PickRequest, Strategy } from '../strategies/strategy.js';
import { prepareRequestHeaders, prepareResponseHeaders } from './headers.js';
import { errorCode, hasBody, isRetryable, RetryBudget, type Failure } from './retry.js';

export interface ProxyOptions {
  readonly pool: Pool;
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
  readonly log: Logger;
  /** Told about every finished exchange and retry; metrics hang off this, not off the request path's internals. */
  readonly observer?: ProxyObserver;
}

/** Receives one call per finished client exchange (and per retry). Must be cheap and must not throw. */
export interface ProxyObserver {
  /** `backend` is the last one tried (undefined when none was available); status 499 means the client left first. */
  exchangeDone(info: { readonly backend: Backend | undefined; readonly status: number; readonly durationMs: number; readonly attempts: number }): void;
  retried(backend: Backend, error: string): void;
}

/** Per-request state, hung on the request under a symbol so http-proxy's global events can find it. */
interface Attempt {
  readonly backend: Backend;
  readonly responded: () => void;
  readonly done: (o: { error?: string; status?: number }) => void;
  proxyReq: ClientRequest | undefined;
  timer: NodeJS.Timeout | undefined;
  timedOut: boolean;
}
interface Exchange {
  readonly started: number;
  readonly clientWantsClose: boolean;
  readonly method: string;
  /** The whole request body when it was buffered for retries; `undefined` when there is none or it streams. */
  body: Buffer | undefined;
  /** Whether a retry could send the same body again (no body, or buffered whole). */
  replayable: boolean;
  tried: Backend[];
  current: Attempt | undefined;
  clientGone: boolean;
}
const kExchange = Symbol('bulb.exchange');
type Tracked = IncomingMessage & { [kExchange]?: Exchange };

const BODIES = {
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

/**
 * Forwards requests to the backend a strategy picks, through http-proxy with each backend's keep-alive agent.
 * The proxy is the only caller of `backend.begin()`, so in-flight counts and latency are measured once, the
 * same way, for every strategy.
 */
export class Proxy {
  private readonly opts: ProxyOptions;
  private readonly server: httpProxy;
  private readonly budget: RetryBudget;

  constructor(opts: ProxyOptions) {
    this.opts = opts;
    this.budget = new RetryBudget({ percent: opts.retryBudgetPercent });
    // selfHandleResponse: bulb writes the response itself, so it can still retry a 503 before the client sees it.
    this.server = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, ws: true, selfHandleResponse: true });
    // Every error path has a handler: http-proxy emits 'error' when no per-call callback applies.
    this.server.on('error', (err: Error) => this.opts.log.debug({ err: errorCode(err) }, 'proxy error after response'));
    this.server.on('econnreset', (_err: Error, req: IncomingMessage) => {
      // The client went away and http-proxy aborted the upstream request; close out the attempt.
      const ex = (req as Tracked)[kExchange];
      if (ex?.current) this.finishAttempt(ex.current, {});
    });
    this.server.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
      const attempt = (req as Tracked)[kExchange]?.current;
      if (!attempt) return;
      attempt.proxyReq = proxyReq;
      attempt.timer = setTimeout(() => {
        attempt.timedOut = true;
        proxyReq.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' }));
      }, this.opts.upstreamTimeoutMs);
      proxyReq.once('response', () => {
        clearTimeout(attempt.timer);
        attempt.responded();
      });
    });
    this.server.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
      const ex = (req as Tracked)[kExchange];
      if (!ex?.current || ex.clientGone) {
        proxyRes.resume();
        return;
      }
      const status = proxyRes.statusCode ?? 502;
      if (status === 503 && this.retry(ex, { kind: 'status', status })) {
        // Drain the body so the keep-alive socket goes back to the pool, then try another backend.
        proxyRes.resume();
        this.finishAttempt(ex.current, { status });
        this.attempt(req, res, ex);
        return;
      }
      this.respond(proxyRes, res, ex);
    });
  }

  /** The traffic server's 'request' handler. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const { clientWantsClose } = prepareRequestHeaders(req, false);
    const withBody = hasBody(req);
    const ex: Exchange = {
      started: performance.now(),
      clientWantsClose,
      method: req.method ?? 'GET',
      body: undefined,
      replayable: !withBody,
      tried: [],
      current: undefined,
      clientGone: false,
    };
    (req as Tracked)[kExchange] = ex;
    this.budget.request();
    res.once('close', () => {
      const attempt = ex.current;
      if (!res.writableFinished) {
        ex.clientGone = true;
        // http-proxy only aborts upstream on the request's 'aborted', which Node no longer emits once the
        // body has been read; without this, a client that hangs up leaves the upstream socket busy.
        attempt?.proxyReq?.destroy();
      }
      if (attempt) this.finishAttempt(attempt, { status: res.statusCode });
      this.accessLog(req, res, ex);
    });
    if (withBody) this.watchBody(req);
    const length = Number(req.headers['content-length']);
    if (withBody && this.opts.retries > 0 && req.headers['transfer-encoding'] === undefined && length <= this.opts.retryBodyLimit) {
      // Small bodies are read whole first (as nginx's proxy_request_buffering does), so a retry can resend them.
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => {
        ex.body = Buffer.concat(chunks);
        ex.replayable = true;
        if (!ex.clientGone) this.attempt(req, res, ex);
      });
      req.once('error', () => res.destroy());
      return;
    }
    this.attempt(req, res, ex);
  };

  /** The traffic server's 'upgrade' handler (WebSocket). */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    prepareRequestHeaders(req, true);
    const backend = this.pick(req, []);
    if (!backend) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 21\r\n\r\nno backend available\n');
      return;
    }
    const { done } = backend.begin();
    // Counted as in flight for as long as the tunnel is open, so a draining backend waits for it, and tracked
    // so the drain timeout can close it.
    backend.tunnels.add(socket);
    socket.once('close', () => {
      backend.tunnels.delete(socket);
      done({});
    });
    // No keep-alive agent: an upgraded socket leaves the pool for good.
    this.server.ws(req, socket, head, { target: backend.url }, (err: Error) => {
      done({ error: errorCode(err) });
      if (socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad gateway\n');
      else socket.destroy();
    });
  };

  close(): void {
    this.server.close();
  }

  private pick(req: IncomingMessage, tried: readonly Backend[]): Backend | undefined {
    let candidates = this.opts.pool.routable;
    // Retries are rare, so filtering (and the strategy rebuilding anything it caches per array) is affordable.
    if (tried.length > 0) candidates = candidates.filter((b) => !tried.includes(b));
    if (candidates.length === 0) return undefined;
    const pickReq: PickRequest = {
      clientIp: req.socket.remoteAddress ?? '',
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
    };
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
    // O(1), and it is what makes the narrowing back to Backend sound.
    const backend = this.opts.pool.get(chosen.id);
    if (backend !== chosen || !candidates.includes(backend)) return undefined;
    return backend;
  }

  /**
   * Closes the connection of a client that stops sending its body for `bodyTimeoutMs` (a slow-body attack
   * would otherwise hold a backend connection open for as long as it likes). Headers are covered by the
   * server's `headersTimeout`.
   */
  private watchBody(req: IncomingMessage): void {
    const timer = setTimeout(() => {
      this.opts.log.warn({ client: req.socket.remoteAddress, path: req.url, timeoutMs: this.opts.bodyTimeoutMs }, 'client body timeout; closing the connection');
      req.socket.destroy();
    }, this.opts.bodyTimeoutMs);
    req.on('data', () => timer.refresh());
    req.once('end', () => clearTimeout(timer));
    req.once('close', () => clearTimeout(timer));
  }

  /** Whether to retry after `failure`: the rules in retry.ts, attempts left, another backend, and budget. */
  private retry(ex: Exchange, failure: Failure): boolean {
    if (ex.tried.length > this.opts.retries) return false;
    if (!isRetryable(ex.method, ex.replayable, failure)) return false;
    if (!this.opts.pool.routable.some((b) => !ex.tried.includes(b))) return false;
    if (!this.budget.tryRetry()) {
      this.opts.log.warn({ backend: ex.current?.backend.id }, 'retry budget spent; not retrying');
      return false;
    }
    const backend = ex.current!.backend;
    const reason = failure.kind === 'status' ? String(failure.status) : failure.code;
    this.opts.log.info({ backend: backend.id, error: reason, attempt: ex.tried.length }, 'retrying on another backend');
    this.opts.observer?.retried(backend, reason);
    return true;
  }

  private attempt(req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
    const backend = this.pick(req, ex.tried);
    if (!backend) {
      ex.current = undefined;
      reply(res, 503);
      return;
    }
    ex.tried.push(backend);
    const { responded, done } = backend.begin();
    const attempt: Attempt = { backend, responded, done, proxyReq: undefined, timer: undefined, timedOut: false };
    ex.current = attempt;
    const options: httpProxy.ServerOptions = { target: backend.url, agent: backend.agent };
    if (ex.body !== undefined) options.buffer = Readable.from([ex.body]);
    this.server.web(req, res, options, (err: Error) => {
      const code = attempt.timedOut ? 'ETIMEDOUT' : errorCode(err);
      this.finishAttempt(attempt, ex.clientGone ? {} : { error: code });
      if (ex.clientGone || res.destroyed || ex.current !== attempt) return;
      if (attempt.timedOut) {
        this.opts.log.warn({ backend: backend.id, timeoutMs: this.opts.upstreamTimeoutMs }, 'upstream timeout');
        reply(res, 504);
        return;
      }
      if (!res.headersSent && this.retry(ex, { kind: 'error', code })) {
        this.attempt(req, res, ex);
        return;
      }
      this.opts.log.warn({ backend: backend.id, error: code }, res.headersSent ? 'backend failed mid-response' : 'backend failed before responding');
      reply(res, 502);
    });
  }

  /** Copies the backend's response to the client: status, end-to-end headers, then the body as it streams. */
  private respond(proxyRes: IncomingMessage, res: ServerResponse, ex: Exchange): void {
    const headers = proxyRes.headers;
    prepareResponseHeaders(headers, ex.clientWantsClose);
    // Node frames the body itself (chunked or not, by the client's HTTP version); the backend's framing is its own.
    delete headers['transfer-encoding'];
    try {
      res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, headers);
    } catch (err) {
      // A header value Node refuses to send (invalid characters) is the backend's fault: 502, not a crash.
      this.opts.log.warn({ backend: ex.current?.backend.id, error: errorCode(err) }, 'backend sent a response bulb cannot forward');
      proxyRes.resume();
      reply(res, 502);
      return;
    }
    // A backend that dies mid-body: the client must see a truncated response, not a clean end.
    proxyRes.once('aborted', () => res.destroy());
    proxyRes.once('error', () => res.destroy());
    proxyRes.pipe(res);
  }

  private finishAttempt(attempt: Attempt, outcome: { error?: string; status?: number }): void {
    clearTimeout(attempt.timer);
    attempt.done(outcome);
  }

  private accessLog(req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
    const status = ex.clientGone ? 499 : res.statusCode;
    const durationMs = Math.round((performance.now() - ex.started) * 100) / 100;
    this.opts.observer?.exchangeDone({ backend: ex.current?.backend, status, durationMs, attempts: ex.tried.length });
    const log = this.opts.log;
    if (!log.isLevelEnabled('info')) return;
    log.info(
      {
        method: req.method,
        path: req.url,
        status,
        backend: ex.current?.backend.id ?? null,
        attempts: ex.tried.length,
        durationMs,
      },
      'request',
    );
  }
}
