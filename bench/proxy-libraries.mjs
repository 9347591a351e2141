#!/usr/bin/env node
// Which proxy library bulb builds on: http-proxy 1.18.1 against http-proxy-3, each as a plain round-robin
// balancer over three Node backends with a keep-alive agent, loaded by wrk. Interleaved rounds, balancer pinned
// to CPU 1 and wrk to CPU 0 (taskset), so only the ratio measured in one run matters.
//
//   npm run bench:proxy-libraries           (needs wrk: apt-get install -y wrk)
import http from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

if (process.argv[2] === '--backends') {
  // In their own process: the parent blocks in execFileSync while wrk runs.
  const servers = await Promise.all([0, 1, 2].map(() => new Promise((r) => {
    const s = http.createServer((_q, res) => res.end('hello')).listen(0, '127.0.0.1', () => r(s));
  })));
  process.send(servers.map((s) => s.address().port).join(','));
} else if (process.argv[2] === '--balancer') {
  const mod = await import(process.argv[3]);
  const httpProxy = mod.default ?? mod;
  const proxy = httpProxy.createProxyServer({});
  const ports = process.argv[5].split(',').map(Number);
  const targets = ports.map((p) => ({ target: `http://127.0.0.1:${p}`, agent: new http.Agent({ keepAlive: true }) }));
  let i = 0;
  proxy.on('error', (_e, _q, s) => s.destroy?.());
  http.createServer((q, s) => proxy.web(q, s, targets[i++ % targets.length])).listen(Number(process.argv[4]), '127.0.0.1', () => process.send?.('ready'));
} else {
  const backendProc = spawn('taskset', ['-c', '0', process.execPath, fileURLToPath(import.meta.url), '--backends'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise((r) => backendProc.once('message', r));
  const libs = ['http-proxy', 'http-proxy-3'];
  const procs = [];
  const portOf = {};
  for (const [i, lib] of libs.entries()) {
    portOf[lib] = 9300 + i;
    const p = spawn('taskset', ['-c', '1', process.execPath, fileURLToPath(import.meta.url), '--balancer', lib, String(portOf[lib]), ports], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    procs.push(p);
    await new Promise((r) => p.once('message', r));
  }
  const results = Object.fromEntries(libs.map((l) => [l, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const lib of libs) {
      const out = execFileSync('taskset', ['-c', '0', 'wrk', '-t1', '-c50', `-d${SECONDS}s`, `http://127.0.0.1:${portOf[lib]}/`]).toString();
      results[lib].push(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`| library | req/s (median of ${ROUNDS}) | ratio |\n| --- | --- | --- |`);
  const base = median(results['http-proxy']);
  for (const lib of libs) console.log(`| ${lib} | ${Math.round(median(results[lib]))} | ${(median(results[lib]) / base).toFixed(2)} |`);
  for (const p of procs) p.kill();
  backendProc.kill();
}
