#!/usr/bin/env node
// End to end: bulb against nginx, HAProxy, a plain http-proxy balancer (the Node baseline) and "direct" (wrk
// straight at one backend), each balancing round robin over the same three backends with keep-alive to them,
// one worker each. wrk and the backends are pinned to CPU 0, every balancer to CPU 1 (taskset), so "req/s per
// balancer core" compares the balancers and not the load generator. Systems are interleaved in rounds
// (A B C A B C ...) so a slow minute on a shared machine hits all of them alike; only ratios measured in one run
// mean anything.
//
//   npm run bench:e2e                                    # builds bulb, 3 rounds × 10 s × {50, 200} connections
//   npm run bench:e2e -- --rounds 1 --duration 3s        # a quick check that the harness works
//   node bench/e2e.mjs --systems bulb --connections 200 --duration 1h --access-log /dev/null   # soak hook
//
// Needs wrk (and nginx, HAProxy for the peers): `sh bench/install-peers.sh`. A peer that is not installed is
// skipped with a line saying so. Markdown goes to stdout, progress to stderr.
//
// Each system runs with its defaults, as a user would get it, except where the default would make the
// comparison about connection churn rather than proxying (see the nginx config comments):
// - bulb: its defaults (access log on, written to a file in the temp dir, truncated before each run; metrics;
//   active health checks; retries), round-robin strategy, admin on its own port.
// - nginx: worker_processes 1, upstream keepalive, access log on (nginx's default) to a file in the temp dir.
// - HAProxy: nbthread 1, http-reuse always, no log target (HAProxy logs only to syslog; its default is none).
// - http-proxy: the few lines every Node tutorial shows, plus a keep-alive agent per backend.
import { chmodSync, closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CLK_TCK,
  Children,
  busyShare,
  cpuTicks,
  cpuTimes,
  fmt,
  freePort,
  haveCommand,
  machineLines,
  median,
  parseDurationSeconds,
  passFail,
  processTree,
  rssMb,
  waitFor200,
} from './lib.mjs';
import { runWrk } from './lib.mjs';
import { topSelfMarkdown } from './profile-top.mjs';
import { haproxyConf, nginxBackendsConf, nginxBalancerConf, startNginx } from './peers.mjs';

const SELF = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SELF), '..');
/** The load generator and the backends share this core; the balancers get the other one. */
const LOADGEN_CPU = 0;
const BALANCER_CPU = 1;

// ---------------------------------------------------------------------------------------------------------------
// Child roles: this file is also the Node backends and the http-proxy baseline, started pinned by the parent.
// They run in their own processes because the parent sits waiting on wrk, and a balancer sharing a process with
// the harness would share its core too.
// ---------------------------------------------------------------------------------------------------------------
if (process.argv[2] === '--role') {
  const role = process.argv[3];
  if (role === 'node-backends') {
    // Three tiny servers; used when nginx is not installed. keepAliveTimeout above the balancers' idle timeouts
    // so it is the balancer that closes idle upstream connections, as in production.
    const servers = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise((resolve) => {
            const s = http.createServer((_req, res) => res.end('hello\n'));
            s.keepAliveTimeout = 75_000;
            s.listen(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    process.send(servers.map((s) => s.address().port));
  } else if (role === 'http-proxy') {
    // The Node baseline: a plain round-robin http-proxy balancer with a keep-alive agent per backend.
    const { default: httpProxy } = await import('http-proxy');
    const [port, backendPorts] = [Number(process.argv[4]), process.argv[5].split(',').map(Number)];
    const proxy = httpProxy.createProxyServer({});
    const targets = backendPorts.map((p) => ({
      target: `http://127.0.0.1:${p}`,
      agent: new http.Agent({ keepAlive: true }),
    }));
    let next = 0;
    proxy.on('error', (_err, _req, res) => {
      if (res.writeHead && !res.headersSent) res.writeHead(502);
      res.end?.();
    });
    http
      .createServer((req, res) => proxy.web(req, res, targets[next++ % targets.length]))
      .listen(port, '127.0.0.1', () => process.send('ready'));
  } else {
    throw new Error(`unknown role ${role}`);
  }
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const { values: opts } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10s' },
      warmup: { type: 'string', default: '2s' },
      connections: { type: 'string', default: '50,200' },
      systems: { type: 'string', default: 'bulb,nginx,haproxy,http-proxy,direct' },
      backends: { type: 'string', default: 'auto' },
      bulb: { type: 'string', default: path.join(REPO, 'dist/src/cli/bin.js') },
      'access-log': { type: 'string', default: 'file' },
      // Profile bulb with `node --cpu-prof` into DIR and print its top self-time functions.
      'cpu-prof': { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (opts.help) {
    process.stdout.write(`node bench/e2e.mjs [--rounds 3] [--duration 10s] [--warmup 2s] [--connections 50,200]
  [--systems bulb,nginx,haproxy,http-proxy,direct] [--backends auto|nginx|node] [--bulb dist/src/cli/bin.js]
  [--access-log file|/dev/null|PATH] [--cpu-prof DIR] [--keep]   (keep the temp dir with configs and logs)\n`);
    return;
  }
  const rounds = Math.max(1, Math.floor(Number(opts.rounds)));
  const seconds = parseDurationSeconds(opts.duration);
  const warmupSeconds = parseDurationSeconds(opts.warmup);
  const connections = opts.connections.split(',').map(Number);
  if (!haveCommand('wrk') || !haveCommand('taskset')) {
    console.error('bench/e2e.mjs: needs wrk and taskset; run `sh bench/install-peers.sh` (as root)');
    process.exitCode = 1;
    return;
  }
  const command = `node bench/e2e.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const children = new Children();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulb-bench-e2e-'));
  // nginx workers run as `nobody` when the master is root: let them reach their temp paths inside.
  chmodSync(dir, 0o755);
  if (!opts.keep) children.atExit(() => rmSync(dir, { recursive: true, force: true }));
  const log = (msg) => process.stderr.write(`[e2e] ${msg}\n`);
  const notes = [];

  try {
    // --- Backends -------------------------------------------------------------------------------------------
    const useNginxBackends = opts.backends === 'nginx' || (opts.backends === 'auto' && haveCommand('nginx'));
    let backendPorts;
    let backendsLabel;
    if (useNginxBackends) {
      backendPorts = [await freePort(), await freePort(), await freePort()];
      const conf = nginxBackendsConf(dir, backendPorts);
      const nginxProc = await startNginx(children, dir, 'backends', conf, LOADGEN_CPU);
      await waitFor200(backendPorts[0]);
      children.adopt(processTree(nginxProc.pid).slice(1));
      backendsLabel = 'nginx (one worker, `return 200 "hello\\n"`), pinned to CPU 0 with wrk';
    } else {
      const proc = children.spawn('node-backends', process.execPath, [SELF, '--role', 'node-backends'], {
        cpu: LOADGEN_CPU,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      backendPorts = await new Promise((resolve) => proc.once('message', resolve));
      backendsLabel = 'three Node `http` servers in one process, pinned to CPU 0 with wrk (nginx not installed)';
    }
    for (const p of backendPorts) await waitFor200(p);
    log(`backends on ${backendPorts.join(', ')}`);

    // --- Balancers -------------------------------------------------------------------------------------------
    const wanted = opts.systems.split(',').map((s) => s.trim());
    /** name → { port, pids (process tree), accessLog? } */
    const systems = new Map();
    for (const name of wanted) {
      const port = await freePort();
      if (name === 'direct') {
        systems.set(name, { port: backendPorts[0], pids: [] });
      } else if (name === 'bulb') {
        const accessLog = opts['access-log'] === 'file' ? path.join(dir, 'bulb-access.log') : opts['access-log'];
        const fd = openSync(accessLog, 'a');
        const args = [
          ...(opts['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(opts['cpu-prof'])] : []),
          opts.bulb,
          '--listen', `127.0.0.1:${port}`,
          '--admin', `127.0.0.1:${await freePort()}`,
          '--strategy', 'round-robin',
          ...backendPorts.flatMap((p) => ['--backend', `http://127.0.0.1:${p}`]),
        ];
        const proc = children.spawn('bulb', process.execPath, args, { cpu: BALANCER_CPU, stdio: ['ignore', fd, 'inherit'] });
        closeSync(fd);
        systems.set(name, { port, pids: [proc.pid], accessLog, proc });
      } else if (name === 'nginx') {
        if (!haveCommand('nginx')) {
          notes.push('- nginx: skipped, not installed (`sh bench/install-peers.sh`).');
          continue;
        }
        const accessLog = path.join(dir, 'nginx-access.log');
        const proc = await startNginx(children, dir, 'balancer', nginxBalancerConf(dir, port, backendPorts, accessLog), BALANCER_CPU);
        systems.set(name, { port, pids: [proc.pid], accessLog });
      } else if (name === 'haproxy') {
        if (!haveCommand('haproxy')) {
          notes.push('- HAProxy: skipped, not installed (`sh bench/install-peers.sh`).');
          continue;
        }
        const cfg = path.join(dir, 'haproxy.cfg');
        writeFileSync(cfg, haproxyConf(port, backendPorts));
        const errFd = openSync(path.join(dir, 'haproxy.err'), 'a');
        const proc = children.spawn('haproxy', 'haproxy', ['-f', cfg, '-db'], { cpu: BALANCER_CPU, stdio: ['ignore', errFd, errFd] });
        closeSync(errFd);
        systems.set(name, { port, pids: [proc.pid] });
      } else if (name === 'http-proxy') {
        const proc = children.spawn('http-proxy', process.execPath, [SELF, '--role', 'http-proxy', String(port), backendPorts.join(',')], {
          cpu: BALANCER_CPU,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        await new Promise((resolve) => proc.once('message', resolve));
        systems.set(name, { port, pids: [proc.pid] });
      } else {
        throw new Error(`unknown system "${name}" (expected bulb, nginx, haproxy, http-proxy, direct)`);
      }
    }
    for (const [name, sys] of systems) {
      await waitFor200(sys.port);
      // An nginx master's worker (and anything else a balancer forks) counts towards its CPU and RSS.
      if (sys.pids.length) {
        sys.pids = processTree(sys.pids[0]);
        children.adopt(sys.pids.slice(1));
      }
      log(`${name} on ${sys.port} (pids ${sys.pids.join(',') || '—'})`);
    }
    // Idle RSS: after start-up and a settle period, before any traffic (the "RSS idle" target).
    await sleep(1000);
    for (const sys of systems.values()) sys.rssIdle = sys.pids.length ? rssMb(sys.pids) : NaN;

    // --- Warm-up (untimed): JIT, connection pools, page cache --------------------------------------------------
    if (warmupSeconds > 0) {
      for (const [name, sys] of systems) {
        log(`warm-up ${name} ${warmupSeconds}s`);
        await runWrk(children, sys.port, Math.max(...connections), warmupSeconds, LOADGEN_CPU);
      }
    }

    // --- Measured rounds, interleaved ---------------------------------------------------------------------
    /** `${name}@${conns}` → runs[] */
    const runs = new Map();
    for (let r = 0; r < rounds; r++) {
      for (const conns of connections) {
        for (const [name, sys] of systems) {
          for (const file of [sys.accessLog].filter(Boolean)) if (file !== '/dev/null') truncateSync(file, 0);
          const ticks0 = cpuTicks(sys.pids);
          const cores0 = cpuTimes();
          const t0 = performance.now();
          const w = await runWrk(children, sys.port, conns, seconds, LOADGEN_CPU);
          const wall = (performance.now() - t0) / 1000;
          const cores1 = cpuTimes();
          const cpu = sys.pids.length ? (cpuTicks(sys.pids) - ticks0) / CLK_TCK / wall : NaN;
          const run = {
            ...w,
            cpu,
            rps: w.rps,
            perCore: cpu > 0 ? w.rps / cpu : NaN,
            rss: sys.pids.length ? rssMb(sys.pids) : NaN,
            loadgenBusy: busyShare(cores0, cores1, String(LOADGEN_CPU)),
            // Busy time on the balancer core that was not the balancer: other people's work (noise).
            foreign: busyShare(cores0, cores1, String(BALANCER_CPU)) - (Number.isFinite(cpu) ? cpu : 0),
          };
          if (sys.accessLog && sys.accessLog !== '/dev/null') {
            // Give an async logger a moment to flush, then check that it really logged each request.
            await sleep(200);
            run.logBytesPerReq = statSync(sys.accessLog).size / Math.max(1, w.requests);
          }
          const key = `${name}@${conns}`;
          if (!runs.has(key)) runs.set(key, []);
          runs.get(key).push(run);
          log(
            `round ${r + 1}/${rounds} c=${conns} ${name}: ${fmt(w.rps)} req/s, p99 ${fmt(w.p99, 2)} ms, ` +
              `errors ${w.errors}, cpu ${fmt(cpu * 100)}%`,
          );
        }
      }
    }

    // --- Report -----------------------------------------------------------------------------------------------
    const out = [];
    out.push('## End to end: bulb vs nginx, HAProxy and a plain http-proxy balancer (wrk)', '');
    out.push(...machineLines(command));
    out.push(`- Versions: ${peerVersions().join('; ')}`);
    out.push(
      `- Setup: backends ${backendsLabel}; each balancer pinned to CPU 1, round robin over the 3 backends with keep-alive; ` +
        `wrk \`-t1 --latency\` pinned to CPU 0; ${rounds} interleaved round(s) of ${seconds} s per system and connection count, ` +
        `after an untimed ${warmupSeconds} s warm-up each.`,
    );
    out.push(
      `- bulb: its defaults (access log on → ${opts['access-log'] === 'file' ? 'a file in the temp dir' : opts['access-log']}, ` +
        'metrics, TCP health checks, retries), `--strategy round-robin`. nginx: `worker_processes 1`, upstream `keepalive 64`, access log on (its default). ' +
        'HAProxy: `nbthread 1`, `http-reuse always`, no log target (its default). http-proxy: a keep-alive `http.Agent` per backend.',
    );
    out.push(
      '- Columns: req/s, p50 and p99 are medians over rounds; errors are non-2xx/3xx responses plus socket errors, summed; ' +
        'CPU is the balancer\'s utime+stime over wall time (1.00 core = 100%); per core = req/s ÷ CPU; RSS idle before any load, ' +
        'RSS load = highest after a run; ratios are req/s · per core.',
    );
    out.push(...notes, '');
    const m = (key, field) => median((runs.get(key) ?? []).map((x) => x[field]));
    for (const conns of connections) {
      out.push(`### ${conns} connections`, '');
      out.push(
        '| system | req/s | p50 ms | p99 ms | errors | CPU % | req/s per core | RSS idle MB | RSS load MB | × nginx | × http-proxy |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      );
      const ratio = (name, base) => {
        if (!runs.has(`${base}@${conns}`) || name === base) return '—';
        const a = m(`${name}@${conns}`, 'rps') / m(`${base}@${conns}`, 'rps');
        const b = m(`${name}@${conns}`, 'perCore') / m(`${base}@${conns}`, 'perCore');
        return `${fmt(a, 2)} · ${fmt(b, 2)}`;
      };
      for (const [name, sys] of systems) {
        const key = `${name}@${conns}`;
        const rs = runs.get(key);
        const errors = rs.reduce((a, x) => a + x.errors, 0);
        out.push(
          `| ${name} | ${fmt(m(key, 'rps'))} | ${fmt(m(key, 'p50'), 2)} | ${fmt(m(key, 'p99'), 2)} | ${fmt(errors)} | ` +
            `${fmt(m(key, 'cpu') * 100)} | ${fmt(m(key, 'perCore'))} | ${fmt(sys.rssIdle, 1)} | ${fmt(Math.max(...rs.map((x) => x.rss)), 1)} | ` +
            `${ratio(name, 'nginx')} | ${ratio(name, 'http-proxy')} |`,
        );
      }
      out.push('');
    }
    // Noise diagnostics: if CPU 0 was not saturated wrk was not the bottleneck; foreign load on CPU 1 means
    // somebody else's process ran on the balancer core and the figures are less trustworthy.
    // CPU 1 time outside the balancer is kernel softirq work for its sockets plus other people's processes.
    out.push('<details><summary>Diagnostics (load-generator core busy %, balancer core busy outside the balancer %, access-log bytes per request)</summary>', '');
    out.push('| system@conns | CPU 0 busy % | CPU 1 busy, not the balancer % (softirq + other processes) | log bytes/req |', '| --- | ---: | ---: | ---: |');
    for (const [key, rs] of runs) {
      out.push(`| ${key} | ${fmt(median(rs.map((x) => x.loadgenBusy)) * 100)} | ${fmt(median(rs.map((x) => x.foreign)) * 100)} | ${fmt(median(rs.map((x) => x.logBytesPerReq)))} |`);
    }
    out.push('', '</details>', '');

    // --- Targets (goals from the benchmarks issue; PASS/FAIL, never an exit code) ---------------------------
    out.push('### Targets', '');
    if (systems.has('bulb')) {
      for (const conns of connections) {
        if (!runs.has(`http-proxy@${conns}`)) continue;
        const r = m(`bulb@${conns}`, 'perCore') / m(`http-proxy@${conns}`, 'perCore');
        out.push(`- ${passFail(r >= 1.5)} throughput per balancer core ≥ 1.5× http-proxy at ${conns} connections: ${fmt(r, 2)}×`);
      }
      if (runs.has('bulb@50') && runs.has('http-proxy@50')) {
        const [a, b] = [m('bulb@50', 'p99'), m('http-proxy@50', 'p99')];
        out.push(`- ${passFail(a <= b)} p99 at 50 connections ≤ http-proxy's: ${fmt(a, 2)} ms vs ${fmt(b, 2)} ms`);
      }
      const idle = systems.get('bulb').rssIdle;
      out.push(`- ${passFail(idle <= 60)} RSS idle ≤ 60 MB with 3 backends: ${fmt(idle, 1)} MB`);
      const bulbErrors = [...runs].filter(([k]) => k.startsWith('bulb@')).reduce((a, [, rs]) => a + rs.reduce((s, x) => s + x.errors, 0), 0);
      out.push(`- ${passFail(bulbErrors === 0)} no errors through bulb: ${bulbErrors}`);
    } else {
      out.push('- bulb was not among --systems: no targets to check.');
    }
    out.push('');
    if (opts['cpu-prof'] && systems.has('bulb')) {
      // The profile is written when bulb exits; SIGTERM is a clean shutdown for bulb.
      await children.stop(systems.get('bulb').proc, 10_000);
      const profDir = path.resolve(opts['cpu-prof']);
      const newest = readdirSync(profDir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => path.join(profDir, f))
        .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
      if (newest) out.push(`### bulb CPU profile: top self time (\`${newest}\`, whole run incl. start-up and warm-up)`, '', topSelfMarkdown(newest, 20), '');
      else out.push('(no .cpuprofile written: did bulb exit cleanly?)', '');
    }
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await children.stopAll();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}


function peerVersions() {
  const v = (cmd, args, re) => {
    if (!haveCommand(cmd)) return `${cmd}: not installed`;
    // nginx -v prints to stderr and wrk -v exits 1, so read both streams and ignore the status.
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return re.exec(`${r.stdout}${r.stderr}`)?.[0] ?? cmd;
  };
  return [
    v('nginx', ['-v'], /nginx\/[\d.]+/),
    v('haproxy', ['-v'], /HAProxy version [\d.]+\S*/),
    v('wrk', ['-v'], /wrk \S+ \S+/),
  ];
}
