import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type ServerHttp2Session } from 'node:http2';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { Proxy } from './proxy.js';
import { readTlsFiles, watchTlsFiles } from './tls.js';

export interface TrafficServerOptions {
  readonly proxy: Proxy;
  /** The whole request head must arrive within this, counted from its first byte (408 otherwise). */
  readonly headerTimeoutMs: number;
  /** Head and body of one request within this, from its first byte; 0 = no limit (408 otherwise). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly idleTimeoutMs: number;
  /** Open client connections at most; 0 = no limit. */
  readonly maxConnections: number;
  /** True once shutdown began: responses then carry `Connection: close`. */
  readonly draining: () => boolean;
  /** Serve TLS (ALPN h2 and http/1.1) with these files, re-read when they change. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly log: Logger };
}

/**
 * Only WebSocket upgrades are tunnelled. Any other `Upgrade` (`h2c` from `curl --http2` and Java's HttpClient,
 * `TLS/1.0`, an unknown protocol) is ignored and the request is served over HTTP/1.1, as RFC 9110 §7.8 allows and
 * nginx does: the header is hop-by-hop, so the proxy drops it on the way to the backend.
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade);
}

/**
 * Why a WebSocket handshake (RFC 6455 §4.2.1) cannot be tunnelled, as a raw HTTP response, or undefined when it
 * is well formed. A backend would refuse these too, but a clear 4xx from bulb beats a tunnel to nowhere.
 */
export function webSocketRefusal(req: IncomingMessage): string | undefined {
  const h = req.headers;
  const why =
    req.method !== 'GET'
      ? 'a WebSocket handshake must be a GET'
      : !/(?:^|,)\s*upgrade\s*(?:,|$)/i.test(h.connection ?? '')
        ? 'a WebSocket handshake needs Connection: Upgrade'
        : !/^[A-Za-z0-9+/]{22}==$/.test(h['sec-websocket-key'] ?? '')
          ? 'Sec-WebSocket-Key must be 16 bytes in base64'
          : undefined;
  if (why !== undefined) return rawResponse('400 Bad Request', why);
  // The one version there is; RFC 6455 §4.4: answer 426 and name the versions understood.
  if (h['sec-websocket-version'] !== '13') return rawResponse('426 Upgrade Required', 'Sec-WebSocket-Version must be 13', 'Sec-WebSocket-Version: 13\r\n');
  return undefined;
}

function rawResponse(status: string, body: string, extra = ''): string {
  return `HTTP/1.1 ${status}\r\n${extra}Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length + 1}\r\n\r\n${body}\n`;
}

/** Raw answers to requests Node's parser refused before there was a request object to answer through. */
function clientErrorStatus(code: string | undefined): string {
  if (code === 'HPE_HEADER_OVERFLOW') return '431 Request Header Fields Too Large';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout';
  return '400 Bad Request';
}

/**
 * Sends a short raw response and then closes the connection *fully*. `socket.end()` alone only half-closes:
 * the HTTP server allows half-open sockets, so a client that never sends its FIN would keep the connection, and
 * its `--max-connections` slot, for as long as it likes. `destroySoon` destroys once the bytes are flushed.
 */
export function answerAndClose(socket: Duplex, raw: string): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.on('error', () => socket.destroy());
  socket.write(raw);
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- node:http's server sockets are net.Sockets, typed as Duplex in its events
  (socket as Socket).destroySoon();
}

const kResponse = Symbol('bulb.response');
type TrackedSocket = Socket & { [kResponse]?: ServerResponse };

/** The listener clients talk to: HTTP/1.1 requests go to the proxy, WebSocket upgrades to its tunnel. */
export function createTrafficServer(opts: TrafficServerOptions): http.Server | https.Server {
  const { proxy } = opts;
  const checkEvery = Math.min(opts.headerTimeoutMs, opts.requestTimeoutMs > 0 ? opts.requestTimeoutMs : Infinity);
  const serverOptions: http.ServerOptions = {
    // Node closes (destroys) a keep-alive connection idle this long after its last response.
    keepAliveTimeout: opts.idleTimeoutMs,
    // Slowloris: Node's headersTimeout counts from the first byte of a request head (from the connection's
    // start for the first request, from the next request's first byte on a keep-alive connection) however
    // the bytes trickle in, and requestTimeout likewise for head + body. Both end in `clientError` below.
    // Node only checks every connectionsCheckingInterval (30 s by default), so check often enough for the
    // limits to mean something.
    headersTimeout: opts.headerTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(checkEvery / 4))),
    shouldUpgradeCallback: isWebSocketUpgrade,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // Remembered so a request timeout can still answer through the proxy (a 408 the proxy knows about).
    (req.socket as TrackedSocket)[kResponse] = res;
    // While draining, answer and close, so keep-alive clients reconnect (to another replica) instead of
    // sending more requests down a connection that is about to go.
    if (opts.draining()) req.headers.connection = 'close';
    proxy.handleRequest(req, res);
  };
  let server: http.Server | https.Server;
  if (opts.tls !== undefined) {
    const { certFile, keyFile, log } = opts.tls;
    const { cert, key } = readTlsFiles(certFile, keyFile);
    // ALPN: h2 first, as browsers, curl and gRPC clients expect; clients without ALPN get HTTP/1.1.
    // A handshake that never completes is a slowloris too: it gets the header timeout.
    const secure = https.createServer({ ...serverOptions, cert, key, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: opts.headerTimeoutMs }, onRequest);
    const stop = watchTlsFiles(secure, certFile, keyFile, log);
    secure.once('close', stop);
    server = secure;
  } else server = http.createServer(serverOptions, onRequest);
  // Past the limit Node closes new connections at once: refused fast rather than queued without bound.
  if (opts.maxConnections > 0) server.maxConnections = opts.maxConnections;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = webSocketRefusal(req);
    if (refusal === undefined) {
      proxy.handleUpgrade(req, socket, head);
      return;
    }
    answerAndClose(socket, refusal);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A request timeout while a request is in progress (its body still arriving): the proxy answers 408 if it
    // still can and releases the upstream request. (A head timeout has no request object yet: the one remembered
    // here, if any, is an earlier, complete request on the same keep-alive connection.)
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- node:http's server sockets are net.Sockets, typed as Duplex in its events
    const res = (socket as TrackedSocket)[kResponse];
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && res !== undefined && !res.req.complete) {
      // Its response already ended (the backend answered early): no second response may follow, just close.
      if (res.writableEnded) socket.destroy();
      else proxy.requestTimedOut(res);
      return;
    }
    // Malformed or ambiguous requests (smuggling attempts among them) never reach a backend: Node's parser
    // refuses them before a 'request' event, and the client gets a bare status.
    answerAndClose(socket, `HTTP/1.1 ${clientErrorStatus(err.code)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;
}

/** The HTTP/2 connection preface (RFC 9113 §3.4): a client with prior knowledge opens with these 24 bytes. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Streams one HTTP/2 client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS): nginx's
 * `http2_max_concurrent_streams` default. A gRPC client queues calls beyond it on its side.
 */
export const MAX_CONCURRENT_STREAMS = 128;

/** The HTTP/2 side of the traffic listener: its open client connections, for draining and shutdown. */
export interface Http2Side {
  /** Open HTTP/2 client connections. */
  readonly sessions: ReadonlySet<ServerHttp2Session>;
  /** GOAWAY on every connection: open streams finish, no new ones start. */
  goAway(): void;
  /** Cuts every HTTP/2 connection (at the drain deadline). */
  destroyAll(): void;
}

/**
 * Serves HTTP/2 on the traffic listener beside HTTP/1.1: on a cleartext listener, a connection that opens with
 * the HTTP/2 preface is handed to an HTTP/2 server, any other to the HTTP/1.1 server as before (so `Upgrade: h2c`
 * still means nothing, and WebSocket still works); on a TLS listener, ALPN decides (`h2`, else HTTP/1.1). The
 * listening socket stays the HTTP/1.1 server's, so `--max-connections`, connection counts and `close()` cover both.
 */
export function attachHttp2(
  server: http.Server | https.Server,
  opts: { readonly proxy: Proxy; readonly idleTimeoutMs: number; readonly headerTimeoutMs: number; readonly draining: () => boolean },
): Http2Side {
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, enablePush: false } });
  const sessions = new Set<ServerHttp2Session>();
  const open = new WeakMap<ServerHttp2Session, number>();
  h2.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    open.set(session, 0);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
    // The idle timeout closes a connection with no stream open (a long quiet gRPC stream keeps it).
    session.setTimeout(opts.idleTimeoutMs, () => {
      if ((open.get(session) ?? 0) === 0) session.close();
    });
  });
  h2.on('stream', (stream, headers) => {
    // A server stream belongs to a server session.
    const session = stream.session as ServerHttp2Session;
    open.set(session, (open.get(session) ?? 0) + 1);
    stream.once('close', () => open.set(session, (open.get(session) ?? 1) - 1));
    opts.proxy.handleStream(stream, headers);
    // Shutting down: this stream is served, then GOAWAY sends the client elsewhere (HTTP/1.1's Connection: close).
    if (opts.draining() && !session.closed) session.close();
  });
  h2.on('sessionError', () => {});

  if (server instanceof https.Server) {
    const http1 = server.listeners('secureConnection') as ((s: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else for (const l of http1) l.call(server, socket);
    });
  } else {
    const http1 = server.listeners('connection') as ((s: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => sniff(socket, opts.headerTimeoutMs, (isH2) => {
      if (isH2) h2.emit('connection', socket);
      else for (const l of http1) l.call(server, socket);
    }));
  }
  return {
    sessions,
    goAway: () => {
      for (const s of sessions) if (!s.closed) s.close();
    },
    destroyAll: () => {
      for (const s of sessions) s.destroy();
    },
  };
}

/**
 * Reads a connection's first bytes, just enough to tell the HTTP/2 preface from an HTTP/1.1 request line (a
 * request line differs from it by the second byte at the latest: no method is `PRI`), puts them back, and hands
 * the socket on. Until then the connection is bulb's alone, so it gets the header timeout here (a client that
 * connects and sends nothing gets the 408 Node would have sent), and a client that half-closes before its first
 * byte is closed fully (the server allows half-open sockets).
 */
function sniff(socket: Socket, headerTimeoutMs: number, then: (isH2: boolean) => void): void {
  let seen: Buffer | undefined;
  // Everything is taken off the socket once it is handed on: an idle keep-alive connection keeps nothing of this.
  const done = (): void => {
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', done);
    socket.removeListener('error', onError);
  };
  const onData = (chunk: Buffer): void => {
    seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const match = seen.compare(PREFACE, 0, n, 0, n) === 0;
    if (match && n < PREFACE.length) return;
    done();
    socket.pause();
    socket.unshift(seen);
    seen = undefined;
    then(match);
    process.nextTick(() => socket.resume());
  };
  const onEnd = (): void => {
    done();
    socket.destroy();
  };
  const onError = (): void => {
    done();
    socket.destroy();
  };
  const timer = setTimeout(() => {
    done();
    answerAndClose(socket, 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  }, headerTimeoutMs);
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', done);
  socket.once('error', onError);
}
