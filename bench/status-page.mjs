#!/usr/bin/env node
// The status page's cost on the traffic path: wrk against bulb with nobody watching, then with a client polling
// `GET /status` once a second exactly as the page does (`?epoch=…&since=…`, keep-alive), in interleaved rounds
// so drift on a shared machine hits both the same. Prints a Markdown section (bench/run-all.mjs collects it).
//
//   npm run bench:status                     # builds, then 5 rounds of 5 s per mode
//   node bench/status-page.mjs --rounds 1 --duration 5s --connections 32
//
// wrk and the backends are pinned to CPU 0, bulb to CPU 1 (as in bench/e2e.mjs), so the poller's work in bulb
// lands on the same core as the traffic it could slow down. Needs wrk and taskset.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Children, freePort, haveCommand, median, parseDurationSeconds, runWrk, waitFor200, fmt, machineLines } from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SELF), '..');
const LOADGEN_CPU = 0;
const BALANCER_CPU = 1;

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5s' },
    connections: { type: 'string', default: '32' },
    backends: { type: 'string', default: '3' },
    bulb: { type: 'string', default: path.join(REPO, 'dist/src/cli/bin.js') },
  },
});

if (opts.role === 'backends') {
  // Tiny Node backends in their own process (pinned with wrk), answering at once.
  const ports = [];
  for (let i = 0; i < Number(opts.backends); i++) {
    const server = http.createServer((_req, res) => res.end('hello\n'));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    ports.push(server.address().port);
  }
  process.send(ports);
} else {
  await main();
}

async function main() {
  if (!haveCommand('wrk') || !haveCommand('taskset')) {
    console.error('bench/status-page.mjs: needs wrk and taskset (Debian: apt-get install wrk util-linux)');
    process.exit(2);
  }
  const rounds = Number(opts.rounds);
  const seconds = parseDurationSeconds(opts.duration);
  const conns = Number(opts.connections);
  const children = new Children();
  const log = (msg) => process.stderr.write(`[status-page] ${msg}\n`);
  try {
    const backends = children.spawn('backends', process.execPath, [SELF, '--role', 'backends', '--backends', opts.backends], {
      cpu: LOADGEN_CPU,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const backendPorts = await new Promise((resolve) => backends.once('message', resolve));
    const port = await freePort();
    const adminPort = await freePort();
    const args = [
      opts.bulb,
      '--listen', `127.0.0.1:${port}`,
      '--admin', `127.0.0.1:${adminPort}`,
      '--strategy', 'round-robin',
      ...backendPorts.flatMap((p) => ['--backend', `http://127.0.0.1:${p}`]),
    ];
    // The access log goes nowhere: this measures the page, not logging.
    children.spawn('bulb', process.execPath, args, { cpu: BALANCER_CPU, stdio: ['ignore', 'ignore', 'inherit'] });
    await waitFor200(port);
    await waitFor200(adminPort, { host: '127.0.0.1' });
    log(`bulb on ${port} (admin ${adminPort}), ${backendPorts.length} backends; ${rounds} round(s) of ${seconds} s per mode, ${conns} connections`);
    // Warm-up: JIT and connection pools, and one poll so the page's files and code paths are loaded.
    await runWrk(children, port, conns, Math.min(3, seconds), LOADGEN_CPU);

    const results = { idle: [], polled: [] };
    const polls = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which mode goes first, so a slow drift favours neither.
      for (const mode of r % 2 === 0 ? ['idle', 'polled'] : ['polled', 'idle']) {
        const poller = mode === 'polled' ? startPoller(adminPort) : undefined;
        const res = await runWrk(children, port, conns, seconds, LOADGEN_CPU);
        if (poller) polls.push(await poller.stop());
        results[mode].push(res);
        log(`round ${r + 1} ${mode}: ${fmt(res.rps)} req/s, p99 ${fmt(res.p99, 2)} ms${poller ? `, ${polls.at(-1).count} polls` : ''}`);
      }
    }

    const summary = (xs) => ({ rps: median(xs.map((x) => x.rps)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), errors: xs.reduce((a, x) => a + x.errors, 0) });
    const idle = summary(results.idle);
    const polled = summary(results.polled);
    const pollMs = median(polls.flatMap((p) => p.ms));
    const bytes = median(polls.flatMap((p) => p.bytes));
    const delta = ((polled.rps - idle.rps) / idle.rps) * 100;
    const out = [
      '## Status page: traffic with and without an open page (wrk)',
      '',
      `wrk \`-t1 -c${conns}\` pinned to CPU 0 with ${backendPorts.length} Node backends; bulb (round-robin) on CPU 1. ` +
        `"polled": a client fetches \`GET /status\` once a second while wrk runs, as the open page does. ` +
        `Median of ${rounds} interleaved round(s) of ${seconds} s per mode.`,
      '',
      '| Mode | req/s | p50 ms | p99 ms | errors |',
      '|---|---:|---:|---:|---:|',
      `| nobody watching | ${fmt(idle.rps)} | ${fmt(idle.p50, 2)} | ${fmt(idle.p99, 2)} | ${idle.errors} |`,
      `| page open (1 poll/s) | ${fmt(polled.rps)} | ${fmt(polled.p50, 2)} | ${fmt(polled.p99, 2)} | ${polled.errors} |`,
      '',
      `- Throughput with the page open, medians: ${delta >= 0 ? '+' : ''}${fmt(delta, 1)}%. Per round (idle / polled req/s, same round back to back): ` +
        results.idle.map((x, i) => `${fmt(x.rps)} / ${fmt(results.polled[i].rps)}`).join(', ') +
        '. Rounds that disagree in sign mean the difference is below this machine\'s noise.',
      `- One \`/status\` under load: median ${fmt(pollMs, 1)} ms to answer, ${fmt(bytes / 1024, 1)} KiB (${backendPorts.length} backends).`,
      ...machineLines('npm run bench:status'),
      '',
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await children.stopAll();
  }
}

/** Polls /status once a second like the page (one keep-alive connection, `since` from the last answer). */
function startPoller(adminPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let epoch = 0;
  let since = 0;
  let stopped = false;
  const ms = [];
  const bytes = [];
  const once = () =>
    new Promise((resolve) => {
      const started = performance.now();
      http
        .get({ host: '127.0.0.1', port: adminPort, path: `/status?epoch=${epoch}&since=${since}`, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c) => (body += c));
          res.on('end', () => {
            ms.push(performance.now() - started);
            bytes.push(Buffer.byteLength(body));
            const s = JSON.parse(body);
            epoch = s.sampling.epoch;
            since = s.sampling.seq;
            resolve();
          });
        })
        .on('error', resolve);
    });
  const loop = (async () => {
    while (!stopped) {
      const next = performance.now() + 1000;
      await once();
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      agent.destroy();
      return { count: ms.length, ms, bytes };
    },
  };
}

