import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

/** What an HTTP/2 test backend saw of one request. */
export interface SeenStream {
  readonly method: string;
  readonly path: string;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
}

export interface H2Backend {
  readonly name: string;
  readonly port: number;
  /** `h2c://127.0.0.1:PORT` */
  readonly url: string;
  readonly seen: SeenStream[];
  /** Client sessions (TCP connections) it accepted. */
  sessions: number;
  /** How it treats a new stream: answer it, refuse it unprocessed (REFUSED_STREAM), or reset it (CANCEL). */
  mode: 'ok' | 'refuse' | 'reset';
  close(): Promise<void>;
}

/**
 * A cleartext HTTP/2 backend (node:http2, prior knowledge only: it speaks no HTTP/1.1). It answers
 * `name path body`, with `x-backend: NAME` and a trailer `x-trailer: done-NAME`; `/status/N` answers status N.
 */
export async function startH2Backend(t: TestContext, name: string): Promise<H2Backend> {
  const server = http2.createServer();
  const seen: SeenStream[] = [];
  const b: H2Backend = {
    name,
    port: 0,
    url: '',
    seen,
    sessions: 0,
    mode: 'ok',
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  server.on('session', (s) => {
    b.sessions++;
    sessionsOf.add(s);
    s.once('close', () => sessionsOf.delete(s));
  });
  const sessionsOf = new Set<http2.ServerHttp2Session>();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (b.mode === 'refuse') {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (b.mode === 'reset') {
      seen.push({ method: String(headers[':method']), path: String(headers[':path']), headers, body: '' });
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const path = String(headers[':path']);
      seen.push({ method: String(headers[':method']), path, headers, body });
      const m = /^\/status\/(\d{3})$/.exec(path);
      stream.respond({ ':status': m ? Number(m[1]) : 200, 'content-type': 'text/plain', 'x-backend': name }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': `done-${name}` }));
      stream.end(`${name} ${path} ${body}`);
    });
    stream.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  Object.assign(b, { port, url: `h2c://127.0.0.1:${port}` });
  t.after(async () => {
    for (const s of sessionsOf) s.destroy();
    await b.close().catch(() => {});
  });
  return b;
}
