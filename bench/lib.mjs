// Helpers shared by the bench harnesses (bench/e2e.mjs, bench/discovery-latency.mjs, bench/run-all.mjs):
// free ports, child processes killed by PID, /proc readings (CPU ticks, RSS), statistics and the machine
// description every result table starts with. Plain Node, no dependencies, Linux only (/proc).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Clock ticks per second for /proc/<pid>/stat utime and stime (USER_HZ; 100 on every Linux we run on). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * A port that was free a moment ago on 127.0.0.1. The OS picks it (port 0), so it is in the ephemeral range and
 * does not collide with fixed ports other people's tests use; there is a small race until our child binds it.
 */
export async function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** True when `cmd` is on the PATH (used to skip a peer that is not installed rather than fail). */
export function haveCommand(cmd) {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/${cmd}`));
}

/**
 * Every child process we start, by PID, so that all of them are ended at exit, on SIGINT/SIGTERM, or on a
 * crash; never by process name (other people's nginx or node processes on this machine are not ours).
 */
export class Children {
  /** pid → { name, proc } */
  #procs = new Map();
  /** Extra PIDs that belong to one of ours (an nginx worker), killed too in case the master is gone. */
  #extra = new Set();
  /** Synchronous clean-ups (temp dirs) that must also run when a signal ends the process. */
  #atExit = [];

  constructor() {
    const onSignal = (sig) => {
      process.stderr.write(`\n${sig}: stopping every process this bench started\n`);
      // process.exit runs the 'exit' listener below, which kills and cleans up.
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('exit', () => {
      this.killAllSync();
      for (const fn of this.#atExit.splice(0)) {
        try {
          fn();
        } catch {
          // Best effort at exit.
        }
      }
    });
  }

  /** Runs `fn` (synchronous) when the process exits, however it exits. */
  atExit(fn) {
    this.#atExit.push(fn);
  }

  /** spawn() and remember the PID. `cpu` pins it with `taskset -c cpu` (taskset execs, so the PID is the target's). */
  spawn(name, cmd, args, { cpu, ...opts } = {}) {
    const proc = cpu === undefined ? spawn(cmd, args, opts) : spawn('taskset', ['-c', String(cpu), cmd, ...args], opts);
    this.#procs.set(proc.pid, { name, proc });
    proc.once('exit', () => this.#procs.delete(proc.pid));
    return proc;
  }

  /** Remember descendants of one of ours (read from /proc) so they are killed even if their parent dies first. */
  adopt(pids) {
    for (const pid of pids) this.#extra.add(pid);
  }

  /** SIGTERM one child and wait (bounded) for it to exit; SIGKILL if it does not. */
  async stop(proc, timeoutMs = 3000) {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    killPid(proc.pid, 'SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!done) {
      killPid(proc.pid, 'SIGKILL');
      await Promise.race([exited, sleep(1000)]);
    }
  }

  async stopAll() {
    await Promise.all([...this.#procs.values()].map(({ proc }) => this.stop(proc)));
    for (const pid of this.#extra) killPid(pid, 'SIGKILL');
    this.#extra.clear();
  }

  killAllSync() {
    // The emergency path (signal, crash) cannot wait for graceful exits, so SIGKILL. An nginx master killed this
    // way leaves its worker behind, which is why workers are adopted (by PID) and killed here too.
    for (const pid of this.#procs.keys()) killPid(pid, 'SIGKILL');
    for (const pid of this.#extra) killPid(pid, 'SIGKILL');
    this.#procs.clear();
    this.#extra.clear();
  }
}

function killPid(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** `pid` and all its descendants, from /proc/<pid>/stat ppid fields (an nginx master and its worker). */
export function processTree(pid) {
  const parentOf = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may itself contain spaces or ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // Exited while we listed /proc.
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** utime + stime of every PID, in clock ticks (all threads of a process are included, e.g. pino's). */
export function cpuTicks(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the ')'.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Exited: its ticks are lost, which only happens when a process crashed mid-run.
    }
  }
  return ticks;
}

/** Summed VmRSS of the PIDs, in MB (MiB). */
export function rssMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // Exited.
    }
  }
  return kb / 1024;
}

/** Busy and total jiffies per CPU from /proc/stat, to see how loaded each core was during a run. */
export function cpuTimes() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].split(' ').map(Number);
    // user nice system idle iowait irq softirq steal: idle + iowait is not busy.
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out[m[1]] = { busy: total - v[3] - v[4], total };
  }
  return out;
}

/** Busy share (0..1) of `cpu` between two cpuTimes() readings. */
export function busyShare(before, after, cpu) {
  const b = before[cpu];
  const a = after[cpu];
  if (!a || !b || a.total === b.total) return NaN;
  return (a.busy - b.busy) / (a.total - b.total);
}

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of a list. */
export function percentile(xs, p) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** "10s", "1.5m", "250ms", "2h" or a bare number of seconds → seconds. */
export function parseDurationSeconds(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!m) throw new Error(`bad duration "${text}": expected e.g. 10s, 250ms, 2m, 1h`);
  const perUnit = { ms: 0.001, s: 1, m: 60, h: 3600 };
  return Number(m[1]) * perUnit[m[2] ?? 's'];
}

/** GET http://host:port/path once; resolves { status, body } or rejects on a socket error or the timeout. */
export function httpGet(port, path = '/', { host = '127.0.0.1', agent = false, timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls GET / until it answers 200, at most `timeoutMs`; returns the milliseconds it took, or throws. */
export async function waitFor200(port, { timeoutMs = 15_000, intervalMs = 20, host = '127.0.0.1' } = {}) {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    try {
      const { status } = await httpGet(port, '/', { host, timeoutMs: 1000 });
      if (status === 200) return performance.now() - start;
    } catch {
      // Not listening yet.
    }
    await sleep(intervalMs);
  }
  throw new Error(`nothing answered 200 on ${host}:${port} within ${timeoutMs} ms`);
}

/** Markdown lines describing the machine and the moment: every result table starts with these. */
export function machineLines(command) {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  return [
    `- Machine: ${os.availableParallelism()} CPUs (nproc), ${model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}`,
    `- Date: ${new Date().toISOString()}; load average at start: ${load}`,
    `- Node ${process.version}`,
    `- Reproduce: \`${command}\``,
  ];
}

/** Formats a number for a table: '—' when missing. */
export function fmt(x, digits = 0) {
  if (x === undefined || x === null || !Number.isFinite(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const passFail = (ok) => (ok === undefined ? 'n/a' : ok ? '**PASS**' : '**FAIL**');

/** wrk's text report → numbers (latencies in ms). */
export function parseWrk(out) {
  const ms = (v, unit) => Number(v) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit];
  const lat = (pct) => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out);
    return m ? ms(m[1], m[2]) : NaN;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors = (sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    p50: lat(50),
    p99: lat(99),
    errors,
  };
}

/** Runs wrk (one thread, `conns` connections, whole seconds) pinned to core `cpu` and parses its report. */
export async function runWrk(children, port, conns, seconds, cpu) {
  const args = ['-t1', `-c${conns}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency', '--timeout', '5s', `http://127.0.0.1:${port}/`];
  const proc = children.spawn('wrk', 'wrk', args, { cpu, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c) => (out += c));
  proc.stderr.on('data', (c) => (err += c));
  const code = await new Promise((resolve) => proc.once('close', resolve));
  if (code !== 0) throw new Error(`wrk exited ${code}: ${err || out}`);
  return parseWrk(out);
}
