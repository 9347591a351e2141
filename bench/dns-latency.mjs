#!/usr/bin/env node
// How fast bulb follows a DNS record change, measured from outside as a user sees it: a real dnsmasq on a free
// port of 127.0.0.1 serves A records for web.bulb.test (two base backends, 127.0.0.2 and 127.0.0.3) with a short
// TTL; a running bulb (dist) follows the name with `--dns-a web.bulb.test:PORT --dns-server 127.0.0.1:DNSPORT`
// while a client sends requests through it one after another. The records live in a hosts file given to
// dnsmasq with --addn-hosts; a change is "rewrite that file (atomically), then SIGHUP dnsmasq", which makes it
// re-read the file (the helper in test/helpers/dnsmasq.ts restarts dnsmasq instead, which would leave bulb a
// window of failed lookups and its backoff; SIGHUP changes the answer with no gap).
//
// - probe address 127.0.0.4 added → the first request that reaches the probe (timestamped by the probe itself);
// - probe address removed → the last request that reaches it, then 30 responses in a row from elsewhere (round
//   robin over 3 backends would pick the probe every 3rd request, so the true moment is within one rotation).
// Times run from just before the SIGHUP. Each change is made at a random moment, uniform over one refresh
// interval, so it lands at a random phase of bulb's lookup timer as a real change would.
//
// bulb never learns of a change by itself: it looks the name up again when the answer's TTL runs out, clamped to
// [--dns-min-interval, --dns-max-interval]. That wait dominates the figures (about half the interval at p50, up to
// the whole interval at the tail); the lookup, the reconcile and one request add a few milliseconds. Before bulb
// starts, the same changes are timed against dnsmasq alone (SIGHUP → a direct query sees the new answer), so the
// DNS server's share is shown too.
//
//   npm run bench:dns                      (builds bulb; --trials 30 by default, about a minute with TTL 1 s)
//   node bench/dns-latency.mjs --trials 30 --ttl 1 [--min-interval 1s] [--max-interval 30s] [--bulb dist/src/cli/bin.js]
//
// Markdown goes to stdout, progress to stderr. Only 127.0.0.x; every process started here is killed by PID.
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, existsSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Children, fmt, freePort, httpGet, machineLines, parseDurationSeconds, passFail, percentile, waitFor200 } from './lib.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Consecutive responses from other backends that count as "the probe gets no more requests". */
const GONE_STREAK = 30;
const ZONE = 'bulb.test';
const NAME = `web.${ZONE}`;
const BASE_IPS = ['127.0.0.2', '127.0.0.3'];
const PROBE_IP = '127.0.0.4';

const { values: opts } = parseArgs({
  options: {
    trials: { type: 'string', default: '30' },
    /** TTL of every answer, seconds (dnsmasq --local-ttl). */
    ttl: { type: 'string', default: '1' },
    /** bulb's clamps; the defaults are bulb's own defaults, passed explicitly so the report states them. */
    'min-interval': { type: 'string', default: '1s' },
    'max-interval': { type: 'string', default: '30s' },
    /** Add/remove cycles timed against dnsmasq alone, before bulb starts. */
    calibrate: { type: 'string', default: '10' },
    bulb: { type: 'string', default: path.join(REPO, 'dist/src/cli/bin.js') },
    keep: { type: 'boolean', default: false },
  },
});
const TRIALS = Math.max(1, Math.floor(Number(opts.trials)));
const CALIBRATE = Math.max(0, Math.floor(Number(opts.calibrate)));
const TTL_S = Math.max(0, Math.floor(Number(opts.ttl)));
const MIN_MS = Math.round(parseDurationSeconds(opts['min-interval']) * 1000);
const MAX_MS = Math.max(MIN_MS, Math.round(parseDurationSeconds(opts['max-interval']) * 1000));
/** bulb's refresh interval for this answer: its TTL clamped to [min, max] (refreshDelayMs in src/discovery/dns/records.ts). */
const INTERVAL_MS = Math.min(MAX_MS, Math.max(MIN_MS, TTL_S * 1000));
/** Give up on one trial after this long: a change not seen within a few intervals is lost, not slow. */
const TRIAL_TIMEOUT_MS = 3 * INTERVAL_MS + 2000;

const log = (msg) => process.stderr.write(`[dns] ${msg}\n`);
const children = new Children();
const dir = mkdtempSync(path.join(os.tmpdir(), 'bulb-bench-dns-'));
const servers = [];
if (!opts.keep) children.atExit(() => rmSync(dir, { recursive: true, force: true }));

// bulb's own DNS stub client (built), for readiness and for timing dnsmasq alone: no cache in between.
const { query } = await import(pathToFileURL(path.join(path.dirname(opts.bulb), '../discovery/dns/client.js')).href);

function findDnsmasq() {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) if (d && existsSync(path.join(d, 'dnsmasq'))) return path.join(d, 'dnsmasq');
  throw new Error('dnsmasq is not installed: `sh .ci/install-deps.sh` (or `apt-get install -y dnsmasq-base`) installs it');
}

/** A port free for both UDP and TCP on 127.0.0.1 right now (the OS picks it), as dnsmasq binds both. */
async function freeUdpTcpPort() {
  for (let tries = 0; tries < 20; tries++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    await new Promise((r) => udp.close(r));
    if (tcpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

/** A backend in this process that answers with its name and timestamps every request it receives. */
async function backend(name, host, port) {
  const b = { name, host, arrivals: [] };
  const srv = http.createServer((_req, res) => {
    b.arrivals.push(performance.now());
    res.end(name);
  });
  srv.keepAliveTimeout = 75_000;
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, resolve);
  });
  b.port = srv.address().port;
  servers.push(srv);
  return b;
}

/** The base backends and the probe on 127.0.0.2/.3/.4, all on one port (as --dns-a needs: one port per name). */
async function backends() {
  for (let tries = 0; tries < 20; tries++) {
    const a = await backend('a', BASE_IPS[0], 0);
    try {
      const b = await backend('b', BASE_IPS[1], a.port);
      const probe = await backend('probe', PROBE_IP, a.port);
      return { a, b, probe, port: a.port };
    } catch (err) {
      if (err.code !== 'EADDRINUSE') throw err;
      for (const s of servers.splice(0)) s.close();
    }
  }
  throw new Error('no port free on 127.0.0.2, .3 and .4 at once');
}

const hostsFile = path.join(dir, 'hosts');
/** Rewrites the hosts file dnsmasq serves, atomically (temp + rename), so a SIGHUP never reads half a file. */
function writeHosts(ips) {
  const tmp = `${hostsFile}.tmp`;
  writeFileSync(tmp, ips.map((ip) => `${ip} ${NAME}\n`).join(''));
  renameSync(tmp, hostsFile);
}

/** The A addresses dnsmasq gives for NAME right now, asked directly. */
async function addressesNow(port) {
  const answer = await query(NAME, 'A', { servers: [{ host: '127.0.0.1', port }], timeoutMs: 500, attempts: 1 });
  return (answer.reply.answers ?? []).filter((r) => r.type === 'A').map((r) => r.data);
}

/**
 * Starts dnsmasq serving the hosts file; resolves { proc, port, version, output, lookups } once it answers.
 * Its log (queries included) comes through a pipe and each A query for NAME is timestamped on arrival, so the
 * gaps between bulb's lookups can be measured (dnsmasq's own timestamps are whole seconds).
 */
async function startDnsmasq() {
  const binary = findDnsmasq();
  const version = /Dnsmasq version (\S+)/.exec(execFileSync(binary, ['--version']).toString())?.[1] ?? '?';
  const port = await freeUdpTcpPort();
  const conf = path.join(dir, 'dnsmasq.conf');
  // local=: names in the zone that the hosts file lacks are NXDOMAIN, and nothing is forwarded anywhere.
  writeFileSync(conf, `local=/${ZONE}/\n`);
  const args = [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--conf-file=${conf}`,
    `--addn-hosts=${hostsFile}`,
    '--pid-file=', // no pid file: the PID is tracked here
    `--local-ttl=${TTL_S}`,
    '--log-queries', // counted afterwards: how often bulb actually looked the name up
    '--log-facility=-',
  ];
  // As root dnsmasq drops to `nobody` unless told otherwise; stay as the user we are.
  if (process.getuid?.() === 0) args.push('--user=root');
  const proc = children.spawn('dnsmasq', binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const d = { proc, port, version, output: '', lookups: [] };
  let partial = '';
  const onData = (chunk) => {
    const now = performance.now();
    d.output += chunk;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const l of lines) if (l.includes(`query[A] ${NAME} from`)) d.lookups.push(now);
  };
  proc.stdout.setEncoding('utf8').on('data', onData);
  proc.stderr.setEncoding('utf8').on('data', onData);
  const start = performance.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`dnsmasq exited (${proc.exitCode}): ${d.output}`);
    try {
      if ((await addressesNow(port)).length > 0) break;
    } catch {
      // Not listening yet.
    }
    if (performance.now() - start > 10_000) throw new Error(`dnsmasq did not answer on 127.0.0.1:${port}: ${d.output}`);
    await sleep(20);
  }
  if (opts.keep) children.atExit(() => writeFileSync(path.join(dir, 'dnsmasq.log'), d.output));
  return d;
}

async function main() {
  const command = `node bench/dns-latency.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const { probe, port } = await backends();
  writeHosts(BASE_IPS);
  const dns = await startDnsmasq();
  log(`dnsmasq ${dns.version} (PID ${dns.proc.pid}) on 127.0.0.1:${dns.port}, TTL ${TTL_S} s; backends on port ${port}`);
  const change = (ips) => {
    writeHosts(ips);
    const t0 = performance.now();
    process.kill(dns.proc.pid, 'SIGHUP');
    return t0;
  };

  // --- dnsmasq alone: SIGHUP → a direct query sees the change -------------------------------------------------
  const calib = { add: [], remove: [] };
  for (let i = 0; i < CALIBRATE; i++) {
    for (const [kind, ips, want] of [['add', [...BASE_IPS, PROBE_IP], true], ['remove', BASE_IPS, false]]) {
      const t0 = change(ips);
      for (;;) {
        let has;
        try {
          has = (await addressesNow(dns.port)).includes(PROBE_IP);
        } catch {
          has = undefined; // no answer (mid-reload): ask again
        }
        if (has === want) {
          calib[kind].push(performance.now() - t0);
          break;
        }
        if (performance.now() - t0 > TRIAL_TIMEOUT_MS) throw new Error(`dnsmasq did not ${kind} ${PROBE_IP} within ${TRIAL_TIMEOUT_MS} ms of SIGHUP`);
      }
      await sleep(20);
    }
  }

  // --- bulb following the name ------------------------------------------------------------------------------
  const listen = await freePort();
  const admin = await freePort();
  const fd = openSync(path.join(dir, 'bulb.log'), 'a');
  const bulbArgs = [
    '--dns-a', `${NAME}:${port}`,
    '--dns-server', `127.0.0.1:${dns.port}`,
    '--dns-min-interval', opts['min-interval'],
    '--dns-max-interval', opts['max-interval'],
  ];
  const bulb = children.spawn('bulb', process.execPath, [
    opts.bulb, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, ...bulbArgs,
  ], { stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  await waitFor200(listen, { timeoutMs: 30_000, intervalMs: 5 });
  log(`bulb (PID ${bulb.pid}) serving on 127.0.0.1:${listen}`);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  /** One request through bulb; the body names the backend, or '' on an error status. */
  const poll = async () => {
    try {
      const r = await httpGet(listen, '/', { agent, timeoutMs: 2000 });
      return r.status === 200 ? r.body : '';
    } catch {
      return '';
    }
  };
  // Both base backends in rotation before the first trial.
  const seen = new Set();
  for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await poll());
  if (!seen.has('a') || !seen.has('b')) throw new Error(`bulb is not routing to both base backends: saw ${[...seen].join(', ')}`);

  const results = { add: [], remove: [] };
  let timeouts = 0;
  /** A random moment within one refresh interval, so each change lands at a random phase of bulb's timer. */
  const randomPhase = () => sleep(Math.random() * INTERVAL_MS);
  const trialsStart = performance.now();
  for (let i = 0; i < TRIALS; i++) {
    await randomPhase();
    probe.arrivals = [];
    let t0 = change([...BASE_IPS, PROBE_IP]);
    while (probe.arrivals.length === 0 && performance.now() - t0 < TRIAL_TIMEOUT_MS) await poll();
    if (probe.arrivals.length === 0) timeouts++;
    else results.add.push(probe.arrivals[0] - t0);

    await randomPhase();
    probe.arrivals = [];
    t0 = change(BASE_IPS);
    let streak = 0;
    while (streak < GONE_STREAK && performance.now() - t0 < TRIAL_TIMEOUT_MS) {
      const who = await poll();
      streak = who !== '' && who !== 'probe' ? streak + 1 : 0;
    }
    if (streak < GONE_STREAK) timeouts++;
    else results.remove.push(probe.arrivals.length ? probe.arrivals.at(-1) - t0 : 0);
    if ((i + 1) % 10 === 0) log(`trial ${i + 1}/${TRIALS}`);
  }
  const trialsEnd = performance.now();
  // Gaps between consecutive lookups by bulb during the trials: its refresh interval as it really runs.
  const during = dns.lookups.filter((t) => t >= trialsStart && t <= trialsEnd);
  const gaps = during.slice(1).map((t, k) => t - during[k]);
  agent.destroy();
  await children.stop(bulb);

  // --- Report ---------------------------------------------------------------------------------------------
  const row = (label, xs) =>
    `| ${label} | ${xs.length} | ${fmt(percentile(xs, 50), 1)} | ${fmt(percentile(xs, 90), 1)} | ${fmt(percentile(xs, 99), 1)} | ${fmt(Math.max(...xs), 1)} |`;
  // The heading and the PASS/FAIL lines are what docs/performance.md copies (bench/readme.mjs), so they carry the TTL and interval.
  const out = [`## Discovery latency (DNS records: TTL ${TTL_S} s, so bulb looks again every ${fmt(INTERVAL_MS)} ms)`, ''];
  out.push(...machineLines(command));
  out.push(
    `- dnsmasq ${dns.version} on a free port of 127.0.0.1 serving A records for \`${NAME}\` (base backends ${BASE_IPS.join(', ')}) ` +
      `from a hosts file (\`--addn-hosts\`), every answer with TTL ${TTL_S} s (\`--local-ttl=${TTL_S}\`). A change = the hosts file ` +
      `rewritten (temp + rename) with or without the probe ${PROBE_IP}, then SIGHUP to dnsmasq, which re-reads it.`,
    `- bulb from \`${path.relative(REPO, opts.bulb)}\` with \`--dns-a ${NAME}:PORT --dns-server 127.0.0.1:DNSPORT --dns-min-interval ${opts['min-interval']} --dns-max-interval ${opts['max-interval']}\` ` +
      `and otherwise its defaults (round robin over 3 backends when the probe is in, access log to a file). ` +
      `${TRIALS} trials of add then remove, each change made at a random moment (uniform over one refresh interval) so it lands at a random phase of bulb's lookup timer; ` +
      'a client sends requests one after another through bulb; times from just before the SIGHUP to the request reaching the probe backend. ' +
      `Remove: time to the last request that reached the probe (0 if none), then ${GONE_STREAK} responses in a row from elsewhere; the true moment is within one rotation (3 requests) after it.`,
    `- **What dominates:** bulb does not hear of a change; it looks the name up again when the answer's TTL runs out, clamped to ` +
      `[\`--dns-min-interval\`, \`--dns-max-interval\`] = [${fmt(MIN_MS)} ms, ${fmt(MAX_MS)} ms]: here TTL ${TTL_S} s → a refresh interval of **${fmt(INTERVAL_MS)} ms**. ` +
      'So the figures are mostly the wait for bulb\'s next lookup: about half the interval at p50 and close to the whole interval at the tail; ' +
      'the lookup, the reconcile and one request add a few milliseconds (compare the watched-directory figures), and dnsmasq itself takes the time in the last two rows. ' +
      'With a real DNS server the interval is its TTL clamped the same way: e.g. CoreDNS 5-30 s, Docker\'s 600 s capped at the 30 s max interval.',
    `- bulb's lookups of the name during the trials (A queries in dnsmasq's log, timestamped as they arrived): ${fmt(during.length)} in ${fmt((trialsEnd - trialsStart) / 1000, 1)} s; ` +
      `gap between two lookups p50 ${fmt(percentile(gaps, 50), 1)} ms, p90 ${fmt(percentile(gaps, 90), 1)} ms, max ${fmt(Math.max(...gaps), 1)} ms (the refresh interval counts from the end of one lookup).`,
    `- Trials that timed out (${fmt(TRIAL_TIMEOUT_MS / 1000, 1)} s, not in the figures): ${timeouts}`,
    '',
    '| change | trials | p50 ms | p90 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('record added → first request routed to it', results.add),
    row('record removed → no new requests to it', results.remove),
    row('dnsmasq alone: SIGHUP → a direct query sees the added record', calib.add),
    row('dnsmasq alone: SIGHUP → a direct query no longer sees it', calib.remove),
    '',
    '### Bound stated in docs/dns.md',
    '',
    '- docs/dns.md ("When bulb looks again") says the next lookup is due when the smallest TTL runs out, clamped to ' +
      '[`--dns-min-interval`, `--dns-max-interval`], and that a name is picked up "within the refresh interval": so a change should reach ' +
      `traffic within one refresh interval, here ${fmt(INTERVAL_MS)} ms. Checked on every trial (the max), with no trial timed out:`,
  );
  const max = (xs) => (xs.length ? Math.max(...xs) : NaN);
  const within = (xs) => xs.length > 0 && timeouts === 0 && max(xs) <= INTERVAL_MS;
  const interval = `TTL ${TTL_S} s clamped to [${opts['min-interval']}, ${opts['max-interval']}] = ${fmt(INTERVAL_MS)} ms`;
  out.push(`- ${passFail(within(results.add))} record added → routed within one refresh interval (${interval}): max ${fmt(max(results.add), 1)} ms`);
  out.push(`- ${passFail(within(results.remove))} record removed → no new requests within one refresh interval (${interval}): max ${fmt(max(results.remove), 1)} ms`);
  out.push('');
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
