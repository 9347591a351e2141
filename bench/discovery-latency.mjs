#!/usr/bin/env node
// How fast bulb follows its watched directory, measured from outside as a user sees it: a running bulb (dist)
// watches a temp dir holding two base backends; a probe backend is added and removed by writing and deleting
// its file, while a client sends requests through bulb one after another.
//
// - file written in place → the first request that reaches the probe (timestamped by the probe server itself);
// - file written to a dotfile then renamed into place → the same;
// - file deleted → the last request that reaches the probe (0 if none did after the unlink). The client keeps
//   going until 30 responses in a row came from elsewhere. With round robin over 3 backends the probe would be
//   picked every 3rd request, so the true moment lies within one rotation (a few polls, ~1-3 ms) after it.
// Times run from just before the fs call. Then start-up: a directory of 10,000 backend files, time from spawn
// to the first 200 through bulb, and RSS once serving and after one health-check interval.
//
//   npm run bench:discovery                 (builds bulb; --trials 100 by default)
//   node bench/discovery-latency.mjs --trials 20 --files 10000 [--bulb dist/src/cli/bin.js]
//   node bench/discovery-latency.mjs --workers 2      # routed by EVERY worker (no start-up part)
//
// With --workers N > 1 the client opens keep-alive connections until it holds one on every worker (the kernel
// spreads them, SO_REUSEPORT; which worker served a connection's request is read from bulb_worker_requests_total)
// and sends its requests over those N in turn. A new file counts as routed when a response from the probe has come
// back on every one of them, i.e. through every worker; a deleted file as gone when none reaches it any more.
//
// Markdown goes to stdout, progress to stderr. Only 127.0.0.1; every process started here is killed by PID.
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Children, fmt, freePort, httpGet, machineLines, passFail, percentile, rssMb, waitFor200 } from './lib.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Give up on one trial after this long (a lost event would otherwise hang the bench until the 30 s resync). */
const TRIAL_TIMEOUT_MS = 5_000;
/** Consecutive responses from other backends that count as "the probe gets no more requests". */
const GONE_STREAK = 30;
const TARGET_P99_MS = 50;

const { values: opts } = parseArgs({
  options: {
    trials: { type: 'string', default: '100' },
    files: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '1' },
    bulb: { type: 'string', default: path.join(REPO, 'dist/src/cli/bin.js') },
    keep: { type: 'boolean', default: false },
  },
});
const TRIALS = Math.max(1, Math.floor(Number(opts.trials)));
const FILES = Math.max(1, Math.floor(Number(opts.files)));
const WORKERS = Math.max(1, Math.floor(Number(opts.workers)));
const log = (msg) => process.stderr.write(`[discovery] ${msg}\n`);
const children = new Children();
const dir = mkdtempSync(path.join(os.tmpdir(), 'bulb-bench-discovery-'));
const servers = [];
if (!opts.keep) children.atExit(() => rmSync(dir, { recursive: true, force: true }));

/** A backend in this process that answers with its name and timestamps every request it receives. */
async function backend(name) {
  const b = { name, arrivals: [] };
  const srv = http.createServer((_req, res) => {
    b.arrivals.push(performance.now());
    res.end(name);
  });
  srv.keepAliveTimeout = 75_000;
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  b.port = srv.address().port;
  b.url = `http://127.0.0.1:${b.port}`;
  servers.push(srv);
  return b;
}

/** Starts bulb watching `watchDir`; resolves { proc, port, admin, startMs } once it answers 200. */
async function startBulb(watchDir, name, workers = 1) {
  const port = await freePort();
  const admin = await freePort();
  const fd = openSync(path.join(dir, `${name}.log`), 'a');
  const t0 = performance.now();
  const proc = children.spawn(name, process.execPath, [
    opts.bulb, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--watch-dir', watchDir, '--workers', String(workers),
  ], { stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  await waitFor200(port, { timeoutMs: 30_000, intervalMs: 5 });
  return { proc, port, admin, startMs: performance.now() - t0 };
}

async function main() {
  const command = `node bench/discovery-latency.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const watchDir = path.join(dir, 'backends');
  mkdirSync(watchDir);
  const [a, b, probe] = [await backend('a'), await backend('b'), await backend('probe')];
  writeFileSync(path.join(watchDir, 'a.json'), JSON.stringify({ url: a.url }));
  writeFileSync(path.join(watchDir, 'b.json'), JSON.stringify({ url: b.url }));

  const small = await startBulb(watchDir, 'bulb-small', WORKERS);
  const smallRssServing = rssMb([small.proc.pid]);
  log(`bulb (2 backends) serving after ${fmt(small.startMs)} ms`);
  // One connection per agent; with workers, one on each worker.
  let agents = [new http.Agent({ keepAlive: true, maxSockets: 1 })];
  const spare = [];
  if (WORKERS > 1) {
    // The admin port opens just after the traffic port.
    await waitFor200(small.admin);
    const served = async () => {
      const text = (await httpGet(small.admin, '/metrics', { timeoutMs: 5000 })).body;
      return new Map([...text.matchAll(/^bulb_worker_requests_total\{worker="(\d+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
    };
    const onWorker = new Map();
    for (let k = 0; k < 16 * WORKERS && onWorker.size < WORKERS; k++) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const before = await served();
      await httpGet(small.port, '/', { agent, timeoutMs: 2000 });
      const after = await served();
      const worker = [...after].find(([w, n]) => n > (before.get(w) ?? 0))?.[0];
      if (worker !== undefined && !onWorker.has(worker)) onWorker.set(worker, agent);
      else spare.push(agent);
    }
    if (onWorker.size < WORKERS) throw new Error(`could not get a connection on every worker (${onWorker.size} of ${WORKERS})`);
    agents = [...onWorker.values()];
  }
  let turn = 0;
  /** The agent the last poll went through. */
  let lastAgent = 0;
  /** One request through bulb (over the next connection in turn); the body names the backend, or '' on an error status. */
  const poll = async () => {
    lastAgent = turn++ % agents.length;
    try {
      const r = await httpGet(small.port, '/', { agent: agents[lastAgent], timeoutMs: 2000 });
      return r.status === 200 ? r.body : '';
    } catch {
      return '';
    }
  };

  const results = { inPlace: [], rename: [], delete: [] };
  let timeouts = 0;
  const addTrial = async (kind, i) => {
    const id = `probe-${kind}-${i}`;
    // A fresh id per trial: the previous trial's probe may still be draining under its old id.
    const body = JSON.stringify({ url: probe.url, id });
    const file = path.join(watchDir, `${id}.json`);
    probe.arrivals = [];
    const t0 = performance.now();
    if (kind === 'inPlace') {
      writeFileSync(file, body);
    } else {
      // Dotfiles are ignored by the directory source, so the half-written temp file is never read.
      const tmp = path.join(watchDir, `.${id}.json.tmp`);
      writeFileSync(tmp, body);
      renameSync(tmp, file);
    }
    if (agents.length === 1) {
      while (probe.arrivals.length === 0 && performance.now() - t0 < TRIAL_TIMEOUT_MS) await poll();
      if (probe.arrivals.length === 0) timeouts++;
      else results[kind].push(probe.arrivals[0] - t0);
      return file;
    }
    // Every connection (so every worker) must have been answered by the probe once.
    const reached = new Set();
    let at = NaN;
    while (reached.size < agents.length && performance.now() - t0 < TRIAL_TIMEOUT_MS) {
      if ((await poll()) === 'probe' && !reached.has(lastAgent)) {
        reached.add(lastAgent);
        if (reached.size === agents.length) at = performance.now() - t0;
      }
    }
    if (Number.isNaN(at)) timeouts++;
    else results[kind].push(at);
    return file;
  };
  const deleteTrial = async (file) => {
    probe.arrivals = [];
    const t0 = performance.now();
    unlinkSync(file);
    let streak = 0;
    while (streak < GONE_STREAK && performance.now() - t0 < TRIAL_TIMEOUT_MS) {
      const who = await poll();
      streak = who !== '' && who !== 'probe' ? streak + 1 : 0;
    }
    if (streak < GONE_STREAK) timeouts++;
    else results.delete.push(probe.arrivals.length ? probe.arrivals.at(-1) - t0 : 0);
  };
  for (let i = 0; i < TRIALS; i++) {
    for (const kind of ['inPlace', 'rename']) {
      const file = await addTrial(kind, i);
      // A quiet gap so each fs operation is seen on its own, not coalesced with the previous one.
      await sleep(30);
      await deleteTrial(file);
      await sleep(30);
    }
    if ((i + 1) % 10 === 0) log(`trial ${i + 1}/${TRIALS}`);
  }
  const smallRss = rssMb([small.proc.pid]);
  await children.stop(small.proc);
  for (const agent of [...agents, ...spare]) agent.destroy();
  if (WORKERS > 1) return report(command, results, timeouts);

  // --- Start-up with FILES backend files ------------------------------------------------------------------
  // Each file is one backend with its own id, spread over 10 real servers (10,000 listening sockets would
  // measure the machine, not bulb). Default health checks (TCP) run against them like against real backends.
  const bigDir = path.join(dir, 'many');
  mkdirSync(bigDir);
  const targets = [];
  for (let k = 0; k < 10; k++) targets.push(await backend(`t${k}`));
  for (let i = 0; i < FILES; i++) {
    writeFileSync(path.join(bigDir, `backend-${i}.json`), JSON.stringify({ url: targets[i % 10].url, id: `backend-${i}` }));
  }
  log(`wrote ${FILES} backend files; starting bulb`);
  const big = await startBulb(bigDir, 'bulb-many');
  const countBackends = async () => {
    try {
      const r = await httpGet(big.admin, '/backends', { timeoutMs: 10_000 });
      return JSON.parse(r.body).backends.length;
    } catch {
      return NaN;
    }
  };
  const rssServing = rssMb([big.proc.pid]);
  const countAtFirst200 = await countBackends();
  // One health-check interval (2 s default) and a bit, so every backend has been checked once.
  await sleep(3000);
  const rssAfter = rssMb([big.proc.pid]);
  const countAfter = await countBackends();
  log(`${FILES} files: serving after ${fmt(big.startMs)} ms, RSS ${fmt(rssServing, 1)} → ${fmt(rssAfter, 1)} MB`);
  await children.stop(big.proc);

  // --- Report ---------------------------------------------------------------------------------------------
  const out = ['## Discovery latency (watched directory)', ''];
  out.push(...machineLines(command));
  out.push(
    `- bulb from \`${path.relative(REPO, opts.bulb)}\` with its defaults (round robin, access log to a file), watching a temp dir with 2 base backends; ` +
      `${TRIALS} trials of each kind, interleaved (in place, delete, rename, delete), 30 ms apart; a client sends requests ` +
      'one after another through bulb; times from just before the fs call to the request reaching the probe backend. ' +
      `Delete: time to the last request that reached the probe (0 if none), then ${GONE_STREAK} responses in a row from elsewhere; ` +
      'the true moment is within one rotation (3 polls) after it.',
    `- Trials that timed out (${TRIAL_TIMEOUT_MS / 1000} s, not in the figures): ${timeouts}`,
    '',
    '| change | trials | p50 ms | p90 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    latencyRow('file written in place → first request routed to it', results.inPlace),
    latencyRow('file written to temp + rename → first request routed to it', results.rename),
    latencyRow('file deleted → no new requests to it', results.delete),
    '',
    '| start-up | time to first 200 ms | backends in pool at first 200 · 3 s later | RSS serving MB | RSS 3 s later MB |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| 2 backend files | ${fmt(small.startMs)} | — | ${fmt(smallRssServing, 1)} | ${fmt(smallRss, 1)} (after the trials) |`,
    `| ${fmt(FILES)} backend files | ${fmt(big.startMs)} | ${fmt(countAtFirst200)} · ${fmt(countAfter)} | ${fmt(rssServing, 1)} | ${fmt(rssAfter, 1)} |`,
    '',
    '### Targets',
    '',
  );
  out.push(
    p99Target('file written in place → routed', results.inPlace),
    p99Target('file temp+rename → routed', results.rename),
    p99Target('delete → no new requests', results.delete),
  );
  if (FILES === 10_000) {
    out.push(`- ${passFail(big.startMs <= 2000 && countAtFirst200 === FILES)} 10,000 backend files → serving (all of them) in ≤ 2 s: ${fmt(big.startMs)} ms, ${fmt(countAtFirst200)} in the pool`);
    out.push(`- ${passFail(Math.max(rssServing, rssAfter) <= 150)} RSS ≤ 150 MB with 10,000 backends: ${fmt(Math.max(rssServing, rssAfter), 1)} MB`);
  } else {
    out.push(`- (start-up targets are for 10,000 files; this run used ${FILES})`);
  }
  out.push('');
  process.stdout.write(out.join('\n') + '\n');
}

/** A latency table row: trials, p50, p90, p99 and max of `xs` (ms). */
function latencyRow(label, xs) {
  return `| ${label} | ${xs.length} | ${fmt(percentile(xs, 50), 1)} | ${fmt(percentile(xs, 90), 1)} | ${fmt(percentile(xs, 99), 1)} | ${fmt(Math.max(...xs), 1)} |`;
}

/** A target line: the p99 of `xs` against the 50 ms bound. */
function p99Target(label, xs) {
  const p99 = percentile(xs, 99);
  return `- ${passFail(p99 <= TARGET_P99_MS)} ${label}, p99 ≤ ${TARGET_P99_MS} ms: ${fmt(p99, 1)} ms`;
}

/** The --workers report: the three latency rows and their targets; no start-up part. */
function report(command, results, timeouts) {
  const out = [`## Discovery latency with \`--workers ${WORKERS}\` (routed by every worker)`, ''];
  out.push(...machineLines(command));
  out.push(
    `- As the single-worker run above, but bulb runs \`--workers ${WORKERS}\` and the client sends its requests in turn over ${WORKERS} keep-alive ` +
      'connections, one on each worker (found through `bulb_worker_requests_total`). Added: time until a response from the probe came back on every ' +
      'connection, so through every worker. Deleted: time to the last request that reached the probe.',
    `- Trials that timed out (${TRIAL_TIMEOUT_MS / 1000} s, not in the figures): ${timeouts}`,
    '',
    '| change | trials | p50 ms | p90 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    latencyRow('file written in place → routed by every worker', results.inPlace),
    latencyRow('file written to temp + rename → routed by every worker', results.rename),
    latencyRow('file deleted → no new requests to it from any worker', results.delete),
    '',
    '### Targets',
    '',
    p99Target('file written in place → routed by every worker', results.inPlace),
    p99Target('file temp+rename → routed by every worker', results.rename),
    p99Target('delete → no new requests from any worker', results.delete),
    '',
  );
  process.stdout.write(out.join('\n') + '\n');
}

try {
  await main();
} finally {
  await children.stopAll();
  for (const s of servers) s.closeAllConnections?.(), s.close();
  if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
}
