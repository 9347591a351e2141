#!/usr/bin/env node
// Every core: bulb with `--workers 1` and `--workers 2` beside nginx (`worker_processes 1|2`) and HAProxy
// (`nbthread 1|2`), same backends, same run, interleaved in rounds; then three figures that need no big machine:
//
// - scaling: a CPU-bound custom strategy (it spins a fixed time per pick) makes the balancer's own work the
//   bottleneck, so requests per second at 2 workers ÷ at 1 shows how the data plane scales (target ≥ 1.8×);
// - the cost of the split: requests per balancer core at `--workers 2` ÷ at `--workers 1` (target ≥ 0.9);
// - idle RSS with 2 workers ÷ with 1 (target ≤ 1.6).
//
// On a 2-core machine the load generator and the backends share the cores with the balancer, so totals at 2
// workers cannot show a doubling; the per-core figure (req/s ÷ the balancer's own CPU time) and the CPU-bound
// scaling figure are what such a machine allows us to conclude. Nothing here is pinned: a 2-worker balancer
// pinned to one core would measure nothing.
//
//   npm run bench:workers                                   # 3 rounds × 10 s
//   node bench/workers.mjs --rounds 1 --duration 3s         # a quick check that the harness works
//
// Needs wrk (and nginx, HAProxy for the peers; a missing one is skipped with a line saying so). Markdown goes to
// stdout, progress to stderr. Only 127.0.0.1; every process started here is killed by PID.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLK_TCK, Children, cpuTicks, fmt, freePort, haveCommand, machineLines, median, parseDurationSeconds, passFail, processTree, rssMb, runWrk, waitFor200 } from './lib.mjs';
import { haproxyConf, nginxBackendsConf, nginxBalancerConf, startNginx } from './peers.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10s' },
    connections: { type: 'string', default: '50' },
    'spin-us': { type: 'string', default: '400' },
    bulb: { type: 'string', default: path.join(REPO, 'dist/src/cli/bin.js') },
  },
});
const rounds = Math.max(1, Math.floor(Number(opts.rounds)));
const seconds = parseDurationSeconds(opts.duration);
const conns = Number(opts.connections);
const spinUs = Number(opts['spin-us']);
const log = (msg) => process.stderr.write(`[workers] ${msg}\n`);
const children = new Children();
const dir = mkdtempSync(path.join(os.tmpdir(), 'bulb-bench-workers-'));
chmodSync(dir, 0o755);
children.atExit(() => rmSync(dir, { recursive: true, force: true }));

if (!haveCommand('wrk') || !haveCommand('nginx')) {
  console.error('bench/workers.mjs: needs wrk and nginx (the backends); run `sh bench/install-peers.sh` (as root)');
  process.exit(1);
}

/** A strategy whose every pick costs `spinUs` of CPU: the balancer's own work becomes the bottleneck. */
const spinStrategy = path.join(dir, 'spin.mjs');
writeFileSync(
  spinStrategy,
  `let next = 0;
export const name = 'spin';
export function pick(candidates) {
  const end = performance.now() + ${spinUs / 1000};
  while (performance.now() < end);
  return candidates[next++ % candidates.length];
}
`,
);

async function startBulb(name, workers, strategy = 'round-robin') {
  const port = await freePort();
  const fd = openSync(path.join(dir, `bulb-${workers}-${path.basename(strategy)}.log`), 'a');
  const args = [opts.bulb, '--listen', `127.0.0.1:${port}`, '--admin', 'off', '--workers', String(workers), '--strategy', strategy, ...backendPorts.flatMap((p) => ['--backend', `http://127.0.0.1:${p}`])];
  const proc = children.spawn(name, process.execPath, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { name, port, pids: [proc.pid] };
}

async function startPeer(name, kind, n) {
  const port = await freePort();
  const id = `${kind}${n}`;
  if (kind === 'nginx') {
    const conf = nginxBalancerConf(dir, port, backendPorts, path.join(dir, `${id}-access.log`), n).replaceAll('nginx-balancer', `nginx-${id}`);
    const proc = await startNginx(children, dir, id, conf);
    return { name, port, pids: [proc.pid] };
  }
  const cfg = path.join(dir, `${id}.cfg`);
  writeFileSync(cfg, haproxyConf(port, backendPorts, { threads: n }));
  const proc = children.spawn(name, 'haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'ignore'] });
  return { name, port, pids: [proc.pid] };
}

/** Runs wrk against each system in turn, `rounds` times; per system the median req/s, p99, CPU and per-core. */
async function measure(systems) {
  const runs = new Map(systems.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const sys of systems) {
      const t0 = performance.now();
      const ticks0 = cpuTicks(sys.pids);
      const w = await runWrk(children, sys.port, conns, seconds);
      const cpu = (cpuTicks(sys.pids) - ticks0) / CLK_TCK / ((performance.now() - t0) / 1000);
      runs.get(sys.name).push({ ...w, cpu, perCore: w.rps / cpu });
      log(`round ${r + 1}/${rounds} ${sys.name}: ${fmt(w.rps)} req/s, p99 ${fmt(w.p99, 2)} ms, cpu ${fmt(cpu * 100)}%, errors ${w.errors}`);
    }
  }
  const m = (name, field) => median(runs.get(name).map((x) => x[field]));
  return new Map(systems.map((s) => [s.name, { rps: m(s.name, 'rps'), p99: m(s.name, 'p99'), cpu: m(s.name, 'cpu'), perCore: m(s.name, 'perCore'), errors: runs.get(s.name).reduce((a, x) => a + x.errors, 0), rssIdle: s.rssIdle }]));
}

async function ready(systems) {
  for (const sys of systems) {
    await waitFor200(sys.port);
    sys.pids = processTree(sys.pids[0]);
    children.adopt(sys.pids.slice(1));
  }
  // Idle RSS: after start-up and a settle period, before any traffic.
  await sleep(1500);
  for (const sys of systems) sys.rssIdle = rssMb(sys.pids);
}

let backendPorts;
try {
  backendPorts = [await freePort(), await freePort(), await freePort()];
  const backends = await startNginx(children, dir, 'backends', nginxBackendsConf(dir, backendPorts));
  children.adopt(processTree(backends.pid).slice(1));
  for (const p of backendPorts) await waitFor200(p);

  // --- Part 1: bulb, nginx, HAProxy at 1 and 2 workers ---------------------------------------------------------
  const systems = [await startBulb('bulb --workers 1', 1), await startBulb('bulb --workers 2', 2)];
  for (const [kind, label] of [['nginx', 'worker_processes'], ['haproxy', 'nbthread']]) {
    if (!haveCommand(kind)) continue;
    for (const n of [1, 2]) systems.push(await startPeer(`${kind} ${label} ${n}`, kind, n));
  }
  await ready(systems);
  for (const sys of systems) await runWrk(children, sys.port, conns, 2); // warm-up, untimed
  const e2e = await measure(systems);
  await children.stopAll();

  // --- Part 2: a CPU-bound strategy at 1 and 2 workers ----------------------------------------------------------
  const b2 = await startNginx(children, dir, 'backends2', nginxBackendsConf(dir, backendPorts).replaceAll('nginx-backends', 'nginx-backends2'));
  children.adopt(processTree(b2.pid).slice(1));
  const spin = [await startBulb('spin --workers 1', 1, spinStrategy), await startBulb('spin --workers 2', 2, spinStrategy)];
  await ready(spin);
  const scaling = await measure(spin);

  // --- Report -------------------------------------------------------------------------------------------------
  const out = ['## Every core: `--workers 1|2` beside nginx and HAProxy (wrk)', ''];
  out.push(...machineLines(`node bench/workers.mjs ${process.argv.slice(2).join(' ')}`.trim()));
  out.push(
    `- Setup: nginx backends (one worker each, \`return 200\`); every balancer round robin over the 3 backends with keep-alive; wrk \`-t1 -c${conns}\`; ` +
      `${rounds} interleaved round(s) of ${seconds} s; nothing pinned (a 2-worker balancer needs both cores, which wrk and the backends share on this machine).`,
    '- CPU is the balancer\'s utime+stime over wall time (1.00 core = 100%); per core = req/s ÷ CPU. On 2 cores the totals cannot double: the load generator and backends take part of the second core.',
    '',
    '| system | req/s | p99 ms | errors | CPU % | req/s per core | RSS idle MB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const [name, r] of e2e) out.push(`| ${name} | ${fmt(r.rps)} | ${fmt(r.p99, 2)} | ${fmt(r.errors)} | ${fmt(r.cpu * 100)} | ${fmt(r.perCore)} | ${fmt(r.rssIdle, 1)} |`);
  out.push('', `### CPU-bound strategy (${spinUs} µs of CPU per pick)`, '', '| system | req/s | p99 ms | CPU % | req/s per core |', '| --- | ---: | ---: | ---: | ---: |');
  for (const [name, r] of scaling) out.push(`| ${name} | ${fmt(r.rps)} | ${fmt(r.p99, 2)} | ${fmt(r.cpu * 100)} | ${fmt(r.perCore)} |`);
  const [w1, w2] = [e2e.get('bulb --workers 1'), e2e.get('bulb --workers 2')];
  const [s1, s2] = [scaling.get('spin --workers 1'), scaling.get('spin --workers 2')];
  out.push('', '### Targets', '');
  out.push(`- ${passFail(s2.rps / s1.rps >= 1.8)} CPU-bound strategy: 2 workers serve ≥ 1.8× what 1 serves: ${fmt(s2.rps / s1.rps, 2)}×`);
  out.push(`- ${passFail(w2.perCore / w1.perCore >= 0.9)} requests per balancer core at \`--workers 2\` ≥ 0.9× \`--workers 1\`: ${fmt(w2.perCore / w1.perCore, 2)}×`);
  out.push(`- ${passFail(w2.rssIdle / w1.rssIdle <= 1.6)} idle RSS with 2 workers ≤ 1.6× one worker's: ${fmt(w2.rssIdle, 1)} vs ${fmt(w1.rssIdle, 1)} MB (${fmt(w2.rssIdle / w1.rssIdle, 2)}×)`);
  out.push(`- ${passFail(w1.errors + w2.errors + s1.errors + s2.errors === 0)} no errors through bulb: ${w1.errors + w2.errors + s1.errors + s2.errors}`);
  out.push('');
  process.stdout.write(out.join('\n') + '\n');
} finally {
  await children.stopAll();
}
