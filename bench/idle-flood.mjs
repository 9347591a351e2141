#!/usr/bin/env node
// Idle flood: what 10,000 idle keep-alive client connections cost bulb, and whether they slow new clients.
// Measures bulb's RSS and the latency of new clients (a fresh connection per request, sequential) before and
// while the idle connections are open, and fails (exit 1) if the p99 with the flood is more than twice the p99
// without it plus 5 ms, or if an idle connection costs more than 40 KiB.
//
//   npm run build && node bench/idle-flood.mjs [--idle 10000] [--requests 2000]
//
// Loopback only; bulb and the backend are killed by PID at the end.
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const IDLE = Number(flag('--idle', '10000'));
const REQUESTS = Number(flag('--requests', '2000'));

const backend = http.createServer((req, res) => res.end('ok'));
await new Promise((r) => backend.listen(0, '127.0.0.1', r));
const bin = fileURLToPath(new URL('../dist/src/cli/bin.js', import.meta.url));
const bulb = spawn(process.execPath, [bin, '--listen', '127.0.0.1:0', '--admin', 'off', '--backend', `http://127.0.0.1:${backend.address().port}`, '--health-mode', 'off', '--idle-timeout', '10m', '--max-connections', String(IDLE + 100)], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => bulb.kill('SIGKILL'));
const port = await new Promise((resolve) => {
  let partial = '';
  bulb.stdout.setEncoding('utf8').on('data', (c) => {
    partial += c;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) if (l.includes('"bulb started"')) resolve(JSON.parse(l).listen.port);
  });
});
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${bulb.pid}/status`, 'utf8'))[1]) / 1024;
const get = () =>
  new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6));
    }).on('error', reject);
  });
const latency = async () => {
  for (let i = 0; i < 200; i++) await get(); // warm-up
  const xs = [];
  for (let i = 0; i < REQUESTS; i++) xs.push(await get());
  xs.sort((a, b) => a - b);
  return { p50: xs[Math.floor(xs.length * 0.5)], p99: xs[Math.floor(xs.length * 0.99)] };
};

const before = await latency();
const rssBefore = rssMb();
const idle = [];
for (let i = 0; i < IDLE; i += 500) {
  await Promise.all(
    Array.from({ length: Math.min(500, IDLE - i) }, () =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        idle.push(s);
        s.once('error', reject);
        s.once('data', () => resolve());
        s.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
      }),
    ),
  );
}
await new Promise((r) => setTimeout(r, 2000));
const rssIdle = rssMb();
const during = await latency();
const perConnKb = ((rssIdle - rssBefore) * 1024) / IDLE;
console.log(`## Idle flood: ${IDLE} idle keep-alive connections, ${REQUESTS} new-client requests each way, ${new Date().toISOString().slice(0, 10)}`);
console.log(`| | p50 (ms) | p99 (ms) | bulb RSS (MB) |\n| --- | --- | --- | --- |`);
console.log(`| no idle connections | ${before.p50.toFixed(2)} | ${before.p99.toFixed(2)} | ${rssBefore.toFixed(1)} |`);
console.log(`| ${IDLE} idle connections | ${during.p50.toFixed(2)} | ${during.p99.toFixed(2)} | ${rssIdle.toFixed(1)} |`);
console.log(`${perConnKb.toFixed(1)} KiB of RSS per idle connection.`);
const failures = [];
if (during.p99 > 2 * before.p99 + 5) failures.push(`new clients slowed: p99 ${before.p99.toFixed(2)} → ${during.p99.toFixed(2)} ms`);
if (perConnKb > 40) failures.push(`${perConnKb.toFixed(1)} KiB per idle connection`);
console.log(failures.length ? `FAIL: ${failures.join('; ')}` : 'PASS');
idle.forEach((s) => s.destroy());
backend.close();
bulb.kill('SIGKILL');
process.exit(failures.length ? 1 : 0);
