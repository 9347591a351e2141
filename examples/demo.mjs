#!/usr/bin/env node
// The quick-start demo: three hello-world backends on distinct loopback addresses (stand-ins for containers),
// a backends directory with a file for each, and bulb in front, watching it. Ctrl-C stops everything.
//
//   npm run demo          # then, in another terminal:
//   curl http://127.0.0.1:8080/            # answered by a different backend each time
//   curl http://127.0.0.1:9901/backends    # the pool as bulb sees it
//   rm <dir>/backend-2.json                # backend-2 drains away; no restart
//   echo '{"url":"http://127.0.0.5:8084"}' > <dir>/backend-4.json   # backend-4 joins
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LISTEN = process.env.DEMO_LISTEN ?? '127.0.0.1:8080';
const ADMIN = process.env.DEMO_ADMIN ?? '127.0.0.1:9901';
const backends = [
  { name: 'backend-1', host: '127.0.0.2', port: 8081 },
  { name: 'backend-2', host: '127.0.0.3', port: 8082 },
  { name: 'backend-3', host: '127.0.0.4', port: 8083 },
  { name: 'backend-4', host: '127.0.0.5', port: 8084 }, // running, but not in the pool until you add its file
];

const servers = backends.map(({ name, host, port }) =>
  http
    .createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`Hello from ${name} (${host}:${port}) — you asked for ${req.url}\n`);
    })
    .listen(port, host),
);

const dir = mkdtempSync(join(tmpdir(), 'bulb-demo-'));
for (const b of backends.slice(0, 3)) writeFileSync(join(dir, `${b.name}.json`), JSON.stringify({ url: `http://${b.host}:${b.port}` }) + '\n');

const bin = fileURLToPath(new URL('../dist/src/cli/bin.js', import.meta.url));
const bulb = spawn(process.execPath, [bin, '--listen', LISTEN, '--admin', ADMIN, '--watch-dir', dir], { stdio: 'inherit' });

process.stderr.write(`
bulb demo: http://${LISTEN}/  (admin: http://${ADMIN}/backends)
backends directory: ${dir}
  curl http://${LISTEN}/
  rm ${dir}/backend-2.json
  echo '{"url":"http://127.0.0.5:8084","weight":2}' > ${dir}/backend-4.json
Ctrl-C to stop.

`);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  bulb.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
bulb.on('exit', (code) => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? 0);
});
