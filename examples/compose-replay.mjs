#!/usr/bin/env node
// Replays deploy/compose/docker-compose.files.yml on this machine, without Docker: three hello-world servers
// stand in for the web1..web3 containers (one loopback address each, 127.0.0.2-4, all on the same port, as
// containers are), a backends directory holds one file per server, and bulb runs in front with the very
// command line the compose file gives it. It prints which backend answered each request, removes one
// backend's file and shows bulb drain it, then stops.
//
//   npm run build && node examples/compose-replay.mjs
//   node examples/compose-replay.mjs --stay      # keep running; curl the printed address, Ctrl-C to stop
//
// REPLAY_LISTEN, REPLAY_ADMIN (default 127.0.0.1:0, a free port) and REPLAY_PORT (the backends' port,
// default 0) change the addresses.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const stay = process.argv.includes('--stay');
const root = new URL('..', import.meta.url);
const composeFile = fileURLToPath(new URL('deploy/compose/docker-compose.files.yml', root));
const bin = fileURLToPath(new URL('dist/src/cli/bin.js', root));
const token = process.env.BULB_ADMIN_TOKEN ?? 'replay-token';

/** Answers like the strm/helloworld-http image: a page naming the "container" that served it. */
function startWeb(name, host) {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<html><head><title>HTTP Hello World</title></head><body><h1>Hello from ${name}</h1></body></html>\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(process.env.REPLAY_PORT ?? 0), host, () => resolve({ name, host, port: server.address().port, server }));
  });
}

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });
}

/** bulb's command from the compose file, with the container-only values swapped for local ones. */
function composeCommand(dir) {
  const compose = parse(readFileSync(composeFile, 'utf8'));
  const local = {
    '--listen': process.env.REPLAY_LISTEN ?? '127.0.0.1:0',
    '--admin': process.env.REPLAY_ADMIN ?? '127.0.0.1:0',
    '--watch-dir': dir,
  };
  const args = [...compose.services.bulb.command];
  for (let i = 0; i < args.length - 1; i++) if (args[i] in local) args[i + 1] = local[args[i]];
  return args;
}

const webs = await Promise.all(['web1', 'web2', 'web3'].map((name, i) => startWeb(name, `127.0.0.${i + 2}`)));
const dir = mkdtempSync(join(tmpdir(), 'bulb-replay-'));
for (const w of webs) writeFileSync(join(dir, `${w.name}.json`), JSON.stringify({ url: `http://${w.host}:${w.port}` }) + '\n');

const args = composeCommand(dir);
console.log(`$ bulb ${args.join(' ')}`);
const bulb = spawn(process.execPath, [bin, ...args], { env: { ...process.env, BULB_ADMIN_TOKEN: token }, stdio: ['ignore', 'pipe', 'inherit'] });

let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (bulb.exitCode === null) bulb.kill('SIGTERM');
  for (const w of webs) w.server.close();
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

// bulb logs JSON lines on stdout; its 'bulb started' line says where it listens.
const started = await new Promise((resolve, reject) => {
  let partial = '';
  bulb.stdout.setEncoding('utf8').on('data', (chunk) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const line of lines) {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'bulb started') resolve(entry);
      } catch {
        // not a log line
      }
    }
  });
  bulb.once('exit', (code) => reject(new Error(`bulb exited with ${code} before starting`)));
});
bulb.stdout.resume();
const url = `http://${started.listen.host}:${started.listen.port}`;
const admin = `http://${started.admin.host}:${started.admin.port}`;

const answeredBy = (body) => /Hello from (\w+)/.exec(body)?.[1] ?? `(${body.trim()})`;
async function sendSome(n) {
  for (let i = 1; i <= n; i++) console.log(`GET ${url}/  ->  ${answeredBy((await get(`${url}/`)).body)}`);
}

console.log(`\nbulb on ${url}, admin on ${admin}, backend files in ${dir}\n`);
await sendSome(6);

console.log('\n$ rm web2.json      # as if the web2 container were removed from the backends directory');
unlinkSync(join(dir, 'web2.json'));
for (let i = 0; i < 100; i++) {
  const pool = JSON.parse((await get(`${admin}/backends`, { authorization: `Bearer ${token}` })).body).backends;
  if (pool.length === 2) break;
  await new Promise((r) => setTimeout(r, 50));
}
await sendSome(4);

const pool = JSON.parse((await get(`${admin}/backends`, { authorization: `Bearer ${token}` })).body).backends;
console.log(`\n$ curl -H 'Authorization: Bearer …' ${admin}/backends`);
for (const b of pool) console.log(`  ${b.id}  ${b.state}  requests=${b.requests}  origin=${b.origin}`);

if (stay) {
  console.log(`\nStill running: curl ${url}/   (Ctrl-C to stop)`);
} else {
  cleanup();
  await new Promise((r) => bulb.once('exit', r));
}
