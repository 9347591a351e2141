import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';

/** How a test backend answers; change it at any time, the next request follows it. */
export type BackendMode =
  | { kind: 'ok' }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Destroy the connection as soon as the request arrives, before any response byte. */
  | { kind: 'reset' }
  | { kind: 'status'; status: number };

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly socketId: number;
}

export interface TestBackend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Every request that reached the application, in order. */
  readonly seen: SeenRequest[];
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections: number;
  mode: BackendMode;
  /** Milliseconds to wait before answering in `ok`/`status` modes. */
  delayMs: number;
  /** Requests currently being handled. */
  inflight: number;
  /** Requests whose connection closed before their response was complete (bulb aborted or released them). */
  aborted: number;
  /** When set, `GET /healthz` answers with this status whatever the mode, so health and traffic can differ. */
  healthzStatus: number | undefined;
  close(): Promise<void>;
}

/**
 * A real HTTP server on a loopback address (127.0.0.2, 127.0.0.3, ... stand in for containers with distinct
 * IPs) that answers with its name and can be told to hang, reset, fail or slow down. Written once, used by
 * every e2e test.
 */
export async function startBackend(name: string, opts: { host?: string; port?: number } = {}): Promise<TestBackend> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  let nextSocketId = 0;
  const socketIds = new WeakMap<Socket, number>();
  const backend: TestBackend = {
    name,
    host,
    port: 0,
    url: '',
    seen: [],
    connections: 0,
    mode: { kind: 'ok' },
    delayMs: 0,
    inflight: 0,
    aborted: 0,
    healthzStatus: undefined,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    backend.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, socketId: socketIds.get(req.socket) ?? -1 });
    res.once('close', () => {
      if (!res.writableFinished) backend.aborted++;
    });
    if (req.url === '/healthz' && backend.healthzStatus !== undefined) {
      res.writeHead(backend.healthzStatus, { 'content-length': 0 });
      res.end();
      return;
    }
    const mode = backend.mode;
    if (mode.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (mode.kind === 'hang') return;
    backend.inflight++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        backend.inflight--;
        const status = mode.kind === 'status' ? mode.status : 200;
        const body = req.url === '/echo' ? JSON.stringify({ name, headers: req.headers, body: Buffer.concat(chunks).toString() }) : name;
        res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }, backend.delayMs);
    });
  });
  server.on('connection', (s: Socket) => {
    backend.connections++;
    socketIds.set(s, nextSocketId++);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  Object.assign(backend, { port, url: `http://${host}:${port}` });
  return backend;
}

/**
 * One backend per name, on 127.0.0.2, 127.0.0.3, ... in order (distinct addresses, as containers have), all
 * closed when the test ends.
 */
export async function startBackends(t: TestContext, ...names: string[]): Promise<TestBackend[]> {
  const list = await Promise.all(names.map((n, i) => startBackend(n, { host: `127.0.0.${i + 2}` })));
  t.after(() => Promise.all(list.map((b) => b.close())));
  return list;
}
