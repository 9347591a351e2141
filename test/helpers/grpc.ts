import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export { grpc };

const PROTO = fileURLToPath(new URL('../fixtures/echo.proto', import.meta.url));

export interface Msg {
  text: string;
  n: number;
  backend: string;
}

type Unary = (req: Msg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void) => grpc.ClientUnaryCall;
/** The generated client, typed by hand for the four methods the tests use. */
export interface EchoClient extends grpc.Client {
  Unary: Unary;
  ServerStream(req: Msg, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  ClientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientWritableStream<Msg>;
  Bidi(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<Msg, Msg>;
}

const definition = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
// The loaded package is untyped; the service and client constructor are what the proto declares.
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  bulbtest: { Echo: (new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => EchoClient) & { service: grpc.ServiceDefinition } };
};

export interface GrpcBackend {
  readonly name: string;
  readonly port: number;
  /** `h2c://127.0.0.1:PORT`, or `https://…` with TLS. */
  readonly url: string;
  /** Calls received, by method. */
  readonly calls: Record<'Unary' | 'ServerStream' | 'ClientStream' | 'Bidi', number>;
  /** Calls the client cancelled (grpc-js's 'cancelled' event reached the handler). */
  cancelled: number;
  /** Deadlines the backend saw on calls (ms from receipt; Infinity when none). */
  readonly deadlines: number[];
  /** Unary calls with text `hang` that are waiting (they never answer on their own). */
  hanging: number;
  /** Closes the listener and cuts every connection at once, as a killed process would. */
  kill(): void;
  /** While true, every unary call fails UNAVAILABLE (a sick backend that still answers). */
  sick: boolean;
}

/**
 * A real grpc-js server. Unary echoes `text` with its name; `notfound` fails with NOT_FOUND, details and a
 * trailer; `slow` answers after `n` ms; `hang` never answers. ServerStream sends `n` messages (0: until
 * cancelled, every 20 ms); ClientStream joins what it got; Bidi echoes each message.
 */
export async function startGrpcBackend(t: TestContext, name: string, opts: { readonly tls?: { readonly cert: Buffer; readonly key: Buffer } } = {}): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const b: GrpcBackend = {
    name,
    port: 0,
    url: '',
    calls: { Unary: 0, ServerStream: 0, ClientStream: 0, Bidi: 0 },
    cancelled: 0,
    deadlines: [],
    hanging: 0,
    kill: () => server.forceShutdown(),
    sick: false,
  };
  const trailer = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    md.set('x-backend-trailer', name);
    return md;
  };
  server.addService(pkg.bulbtest.Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      b.calls.Unary++;
      const d = call.getDeadline();
      b.deadlines.push(d instanceof Date ? d.getTime() - Date.now() : d === Infinity ? Infinity : d - Date.now());
      call.on('cancelled', () => b.cancelled++);
      const text = call.request.text;
      if (b.sick) {
        cb({ code: grpc.status.UNAVAILABLE, details: 'sick' });
        return;
      }
      if (text === 'notfound') {
        const md = new grpc.Metadata();
        md.set('x-why', 'missing');
        cb({ code: grpc.status.NOT_FOUND, details: 'no such thing', metadata: md });
        return;
      }
      if (text === 'hang') {
        b.hanging++;
        call.on('cancelled', () => b.hanging--);
        return;
      }
      const reply = (): void => cb(null, { text, n: call.request.n, backend: name }, trailer());
      if (text === 'slow') setTimeout(reply, call.request.n);
      else reply();
    },
    ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      b.calls.ServerStream++;
      let i = 0;
      let timer: NodeJS.Timeout | undefined;
      call.on('cancelled', () => {
        b.cancelled++;
        clearInterval(timer);
      });
      const n = call.request.n;
      if (n > 0) {
        for (; i < n; i++) call.write({ text: `${call.request.text}-${i}`, n: i, backend: name });
        call.end(trailer());
        return;
      }
      timer = setInterval(() => call.write({ text: `${call.request.text}-${i}`, n: i++, backend: name }), 20);
    },
    ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      b.calls.ClientStream++;
      const texts: string[] = [];
      call.on('data', (m: Msg) => texts.push(m.text));
      call.on('end', () => cb(null, { text: texts.join(','), n: texts.length, backend: name }, trailer()));
    },
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      b.calls.Bidi++;
      call.on('cancelled', () => b.cancelled++);
      call.on('data', (m: Msg) => call.write({ text: `echo:${m.text}`, n: m.n, backend: name }));
      call.on('end', () => call.end(trailer()));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      opts.tls ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }]) : grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  // A TLS server is an https:// backend (HTTP/2 by ALPN), a plain one h2c://.
  Object.assign(b, { port, url: `${opts.tls ? 'https' : 'h2c'}://127.0.0.1:${port}` });
  t.after(() => server.forceShutdown());
  return b;
}

/** A client channel to `host:port` (bulb's traffic port), closed when the test ends. */
export function echoClient(t: TestContext, address: string, creds = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): EchoClient {
  const client = new pkg.bulbtest.Echo(address, creds, options);
  t.after(() => client.close());
  return client;
}

export function unary(client: EchoClient, req: Partial<Msg>, opts: grpc.CallOptions = {}): Promise<{ res: Msg; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let res: Msg | undefined;
    let trailers: grpc.Metadata | undefined;
    const settle = (): void => {
      if (res !== undefined && trailers !== undefined) resolve({ res, trailers });
    };
    const call = client.Unary({ text: '', n: 0, backend: '', ...req }, new grpc.Metadata(), opts, (err, r) => {
      if (err) reject(err);
      else {
        res = r;
        settle();
      }
    });
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
      settle();
    });
  });
}
