// HTTP/2 and gRPC through bulb and through HAProxy (`proto h2` on both sides), side by side, and straight to one
// backend for reference:
// - plain HTTP/2: h2load (nghttp2) against node:http2 cleartext backends;
// - gRPC unary: grpc-js clients (several channels, several calls in flight each) against grpc-js backends.
// Both balancers run one thread (bulb --workers 1, HAProxy nbthread 1), round robin, no access log.
//
//   npm run build && node bench/grpc.mjs [--seconds 5] [--systems bulb,haproxy,direct]
//
// Short by default: the machine may be shared. The load generator is Node (grpc-js) and h2load in this process's
// machine, so absolute figures are bounded by the client too; compare the rows, not the numbers across machines.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Children, freePort, haveCommand, machineLines } from './lib.mjs';
import { haproxyConf } from './peers.mjs';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    systems: { type: 'string', default: 'bulb,haproxy,direct' },
    bulb: { type: 'string', default: path.join(here, '../dist/src/cli/bin.js') },
    channels: { type: 'string', default: '8' },
    inflight: { type: 'string', default: '8' },
  },
});
const seconds = Number(args.seconds);
const children = new Children();
const dir = mkdtempSync(path.join(os.tmpdir(), 'bulb-grpc-bench-'));
children.atExit(() => rmSync(dir, { recursive: true, force: true }));

const proto = path.join(here, '../test/fixtures/echo.proto');
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { keepCase: true, defaults: true }));

async function startBackends() {
  const proc = children.spawn('backends', process.execPath, [path.join(here, 'grpc-backends.mjs'), '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve) => proc.stdout.once('data', (c) => resolve(String(c))));
  return JSON.parse(line);
}

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = grpc.credentials.createInsecure();
      const c = new pkg.bulbtest.Echo(`127.0.0.1:${port}`, s);
      c.waitForReady(Date.now() + 100, (err) => {
        c.close();
        resolve(!err);
      });
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Starts one system in front of `ports` (h2c backends); returns its port. */
async function startSystem(name, ports) {
  if (name === 'direct') return ports[0];
  const port = await freePort();
  if (name === 'bulb') {
    children.spawn('bulb', process.execPath, [args.bulb, '--listen', `127.0.0.1:${port}`, '--admin', 'off', '--health-mode', 'off', '--log-level', 'warn', ...ports.flatMap((p) => ['--backend', `h2c://127.0.0.1:${p}`])], { stdio: 'ignore' });
  } else {
    const cfg = path.join(dir, `haproxy-${port}.cfg`);
    writeFileSync(cfg, haproxyConf(port, ports, { h2: true }));
    children.spawn('haproxy', '/usr/sbin/haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' });
  }
  return port;
}

async function h2load(port) {
  const { stdout } = await run('h2load', ['-D', String(seconds), '-c', '16', '-m', '16', '-t', '1', `http://127.0.0.1:${port}/`], { maxBuffer: 1 << 20 });
  const rps = Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? NaN);
  const ok = /status codes: (\d+) 2xx/.exec(stdout)?.[1];
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(stdout)?.[1];
  return { rps, ok: Number(ok ?? 0), mean };
}

/** `channels` connections with `inflight` calls each, for `seconds`: calls/s, p50 and p99 in ms, errors. */
async function grpcLoad(port) {
  const clients = Array.from({ length: Number(args.channels) }, (_, i) => new pkg.bulbtest.Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.primary_user_agent': `bench${i}` }));
  const lat = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async (c) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await new Promise((resolve) => c.Unary({ text: 'x', n: 1 }, (err) => {
        if (err) errors++;
        else lat.push(performance.now() - t0);
        resolve();
      }));
    }
  };
  // Warm up the connections first.
  await Promise.all(clients.map((c) => new Promise((r) => c.Unary({ text: 'w' }, r))));
  const started = performance.now();
  await Promise.all(clients.flatMap((c) => Array.from({ length: Number(args.inflight) }, () => loop(c))));
  const took = (performance.now() - started) / 1000;
  for (const c of clients) c.close();
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]?.toFixed(2);
  return { cps: Math.round(lat.length / took), p50: q(0.5), p99: q(0.99), errors };
}

const systems = args.systems.split(',').filter((s) => {
  if (s === 'haproxy' && !haveCommand('haproxy') && !haveCommand('/usr/sbin/haproxy')) return false;
  return true;
});
const backends = await startBackends();
const rows = [];
for (const name of systems) {
  const h2port = await startSystem(name, backends.h2);
  const gport = await startSystem(name, backends.grpc);
  await waitPort(gport);
  await sleep(200);
  const plain = haveCommand('h2load') ? await h2load(h2port) : { rps: NaN, ok: 0, mean: '-' };
  const g = await grpcLoad(gport);
  rows.push(`| ${name} | ${Math.round(plain.rps)} | ${plain.mean} | ${g.cps} | ${g.p50} | ${g.p99} | ${g.errors} |`);
  process.stderr.write(`${name}: h2load ${Math.round(plain.rps)} req/s; grpc ${g.cps} calls/s p99 ${g.p99} ms\n`);
}
await children.stopAll();

console.log(
  [
    '## HTTP/2 and gRPC: bulb and HAProxy (`proto h2`)',
    '',
    ...machineLines(`node bench/grpc.mjs --seconds ${seconds} --systems ${args.systems}`),
    `- h2load: 16 connections × 16 streams, ${seconds} s, against 3 node:http2 backends; gRPC: ${args.channels} grpc-js channels × ${args.inflight} calls in flight, ${seconds} s, against 3 grpc-js backends (one process). One balancer thread each, round robin.`,
    '',
    '| System | h2load req/s | h2load mean latency | gRPC unary calls/s | p50 ms | p99 ms | gRPC errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n'),
);
process.exit(0);
