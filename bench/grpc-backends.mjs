// The backends of bench/grpc.mjs, in a process of their own so they do not share an event loop with the load
// generator: N grpc-js servers (the bench's Echo service, Unary only) and N node:http2 cleartext servers (200,
// 2-byte body). Prints one JSON line {grpc: [ports], h2: [ports]} once all listen.
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const n = Number(process.argv[2] ?? 3);
const proto = fileURLToPath(new URL('../test/fixtures/echo.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { keepCase: true, defaults: true }));

const grpcPorts = [];
const h2Ports = [];
for (let i = 0; i < n; i++) {
  const server = new grpc.Server();
  server.addService(pkg.bulbtest.Echo.service, {
    Unary: (call, cb) => cb(null, { text: call.request.text, n: call.request.n, backend: `b${i}` }),
  });
  grpcPorts.push(await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)))));
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 2 });
    stream.end('ok');
  });
  await new Promise((r) => h2.listen(0, '127.0.0.1', r));
  h2Ports.push(h2.address().port);
}
process.stdout.write(`${JSON.stringify({ grpc: grpcPorts, h2: h2Ports })}\n`);
