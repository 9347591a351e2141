#!/usr/bin/env node
// Soak: steady load through a real bulb for a long time while backends are added, removed, killed, restarted
// and their files rewritten. Reports requests, errors, RSS and open file descriptors over time, and exits 1
// if errors appear that bulb's guarantees forbid (idempotent GETs are retried past killed backends) or if memory
// or descriptors keep growing. Hostile clients run alongside: slowloris connections dripping header lines
// (bulb must answer 408 at --header-timeout) and slow readers that request 8 MiB and read nothing (bulb must
// drop them at --send-timeout); each reconnects at once, so they press for the whole run.
//
//   npm run soak                         # 30 minutes
//   npm run soak -- --duration 10m       # shorter
//   npm run soak -- --slowloris 20 --slow-readers 5   # the hostile mix (these are the defaults; 0 turns off)
//   npm run soak -- --workers 2 --kill-worker-every 60s  # two data-plane workers; one is killed now and then
//
// A worker is killed the way one dies in production: an uncaught exception in its thread (a custom strategy,
// round robin otherwise, throws out of band on a request carrying `x-crash`). Requests in flight on that worker
// at that moment die with it; they are counted apart ("lost with a killed worker"), every other error fails
// the run.
//
// Only loopback addresses are used; every process started here is killed by PID at the end.
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

if (process.argv[2] === '--backend') {
  // One backend process: answers with its name after a little work, like a real service.
  const [, , , host, port, name] = process.argv;
  http
    .createServer((req, res) => {
      if (req.url === '/big') {
        // For slow readers: 8 MiB, written with backpressure.
        const chunk = Buffer.alloc(64 << 10, 98);
        let left = 128;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left * chunk.length) });
        const pump = () => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${name} ${req.url}`);
      }, 2);
    })
    .listen(Number(port), host, () => process.send?.('ready'));
} else {
  await main();
}

function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new Error(`--duration: "${text}" is not a duration (30m, 600s)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'];
}

async function main() {
  const args = process.argv.slice(2);
  const flag = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const durationMs = parseDuration(flag('--duration', '30m'));
  const clients = Number(flag('--clients', '20'));
  const slowloris = Number(flag('--slowloris', '20'));
  const slowReaders = Number(flag('--slow-readers', '5'));
  const port = Number(flag('--port', '18180'));
  const workers = Number(flag('--workers', '1'));
  const killEveryMs = workers > 1 ? parseDuration(flag('--kill-worker-every', '0')) : 0;
  const sampleMs = Math.min(60_000, Math.max(5_000, durationMs / 30));
  const dir = mkdtempSync(join(tmpdir(), 'bulb-soak-'));
  const children = new Set();
  const kill = () => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.on('exit', kill);
  process.on('SIGINT', () => process.exit(130));

  const backends = [2, 3, 4, 5].map((n, i) => ({ name: `b${i}`, host: `127.0.0.${n}`, port: port + 20 + i, proc: undefined }));
  const startBackend = (b) =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [SELF, '--backend', b.host, String(b.port), b.name], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      children.add(p);
      p.once('exit', (code) => {
        children.delete(p);
        reject(new Error(`backend ${b.name} exited (${code}) before it was ready`));
      });
      p.once('message', () => resolve());
      b.proc = p;
    });
  await Promise.all(backends.map(startBackend));
  const file = (b) => join(dir, `${b.name}.json`);
  const writeBackend = (b, weight = 1) => writeFileSync(file(b), JSON.stringify({ url: `http://${b.host}:${b.port}`, weight }));
  for (const b of backends) writeBackend(b);

  const bin = fileURLToPath(new URL('../dist/src/cli/bin.js', import.meta.url));
  const extra = [];
  if (workers > 1) extra.push('--workers', String(workers));
  if (killEveryMs > 0) {
    const mod = join(dir, '..', `bulb-soak-crashy-${process.pid}.mjs`);
    writeFileSync(
      mod,
      "let i = 0;\nexport default { name: 'crashy-round-robin', pick(cs, req) { if (req.headers['x-crash']) setImmediate(() => { throw new Error('soak: worker killed on purpose'); }); return cs[i++ % cs.length]; } };\n",
    );
    process.on('exit', () => rmSync(mod, { force: true }));
    extra.push('--strategy', mod);
  }
  const bulb = spawn(
    process.execPath,
    [bin, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${port + 1}`, '--watch-dir', dir, '--health-interval', '500ms', '--health-fall', '2', '--log-level', 'warn', '--header-timeout', '5s', '--send-timeout', '10s', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(bulb);
  let warnings = 0;
  const byMsg = {};
  bulb.stdout.on('data', (c) => {
    for (const line of c.toString().split('\n').filter(Boolean)) {
      warnings++;
      let msg = line;
      try {
        msg = JSON.parse(line).msg;
      } catch {
        // Not a JSON log line: count the raw line as its own message.
      }
      byMsg[msg] = (byMsg[msg] ?? 0) + 1;
    }
  });
  await new Promise((r) => setTimeout(r, 1500));

  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const stats = { ok: 0, errors: 0, byKind: {}, lostWithWorker: 0, kills: 0 };
  // Requests that fail within this window after a worker kill are counted as lost with it.
  let killedAt = -Infinity;
  let stop = false;
  const get = () =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/soak', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`));
      });
      req.setTimeout(30_000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e) => resolve(e.code ?? e.message));
    });
  const client = async () => {
    while (!stop) {
      const sent = Date.now();
      const r = await get();
      if (r === 'ok') stats.ok++;
      else if (sent <= killedAt + 100 && Date.now() >= killedAt) stats.lostWithWorker++;
      else {
        stats.errors++;
        stats.byKind[r] = (stats.byKind[r] ?? 0) + 1;
      }
    }
  };
  const loops = Array.from({ length: clients }, client);

  // Slowloris: a header line every second, never finishing; bulb must answer 408 and close. Then again.
  const hostile = { lorisCut: 0, lorisNo408: 0, lorisLostWithWorker: 0, readersCut: 0, readersWhole: 0 };
  const loris = async () => {
    while (!stop) {
      await new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('error', () => {});
        s.write('GET /loris HTTP/1.1\r\nHost: x\r\n');
        let i = 0;
        const drip = setInterval(() => s.writable && s.write(`X-${i++}: a\r\n`), 1000);
        s.once('close', () => {
          clearInterval(drip);
          if (got.startsWith('HTTP/1.1 408 ')) hostile.lorisCut++;
          else if (Date.now() - killedAt < 1000) hostile.lorisLostWithWorker++;
          else if (!stop) hostile.lorisNo408++;
          resolve();
        });
        const end = setInterval(() => stop && s.destroy(), 500);
        s.once('close', () => clearInterval(end));
      });
    }
  };
  // Slow readers: ask for 8 MiB, read nothing for 15 s (past --send-timeout 10s), then read what is left.
  const reader = async () => {
    while (!stop) {
      await new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.pause();
        s.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        let bytes = 0;
        const wake = setTimeout(() => {
          s.on('data', (d) => (bytes += d.length));
          s.resume();
        }, 15_000);
        s.once('close', () => {
          clearTimeout(wake);
          if (bytes > 8 << 20) hostile.readersWhole++;
          else if (!stop) hostile.readersCut++;
          resolve();
        });
        const end = setInterval(() => stop && s.destroy(), 500);
        s.once('close', () => clearInterval(end));
      });
    }
  };
  const killer =
    killEveryMs > 0
      ? setInterval(() => {
          killedAt = Date.now();
          stats.kills++;
          const req = http.get({ host: '127.0.0.1', port, path: '/crash', headers: { 'x-crash': '1' }, agent: false }, (res) => res.resume());
          req.on('error', () => {});
        }, killEveryMs)
      : undefined;
  const hostileLoops = [...Array.from({ length: slowloris }, loris), ...Array.from({ length: slowReaders }, reader)];

  // Churn: one action every 2 s. Each round of five picks the next backend and puts it through: a weight
  // rewrite in place, removal (drain), re-adding, SIGKILL under load, and a restart on the same address.
  let step = 0;
  let churnError;
  const churn = setInterval(async () => {
    const b = backends[Math.floor(step / 5) % backends.length];
    const action = step % 5;
    step++;
    try {
      if (action === 0) writeBackend(b, 2);
      else if (action === 1) unlinkSync(file(b));
      else if (action === 2) writeBackend(b);
      else if (action === 3) b.proc.kill('SIGKILL');
      else await startBackend(b);
    } catch (err) {
      churnError ??= err;
    }
  }, 2000);

  const samples = [];
  const started = Date.now();
  const sample = () => {
    const status = readFileSync(`/proc/${bulb.pid}/status`, 'utf8');
    samples.push({
      t: Math.round((Date.now() - started) / 1000),
      ok: stats.ok,
      errors: stats.errors,
      rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024,
      fds: readdirSync(`/proc/${bulb.pid}/fd`).length,
    });
  };
  sample();
  const sampler = setInterval(sample, sampleMs);
  await new Promise((r) => setTimeout(r, durationMs));
  clearInterval(churn);
  clearInterval(sampler);
  clearInterval(killer);
  sample();
  stop = true;
  await Promise.all(loops);
  await Promise.all(hostileLoops);
  agent.destroy();
  bulb.kill('SIGTERM');
  await new Promise((r) => bulb.once('exit', r));
  kill();
  rmSync(dir, { recursive: true, force: true });

  // Growth: compare the last third of the run with the middle third (the first third includes warm-up).
  const third = Math.max(1, Math.floor(samples.length / 3));
  const avg = (xs, k) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
  const middle = samples.slice(third, 2 * third);
  const last = samples.slice(-third);
  const rssGrowth = avg(last, 'rssMb') - avg(middle, 'rssMb');
  const fdGrowth = avg(last, 'fds') - avg(middle, 'fds');
  const failures = [];
  if (churnError) failures.push(`the churn itself failed: ${churnError.message}`);
  if (stats.errors > 0) failures.push(`${stats.errors} client-visible errors (${JSON.stringify(stats.byKind)})`);
  if (rssGrowth > 30) failures.push(`RSS grew by ${rssGrowth.toFixed(1)} MB from the middle to the last third`);
  if (slowloris > 0 && hostile.lorisCut === 0) failures.push('no slowloris connection was cut off with 408');
  if (hostile.lorisNo408 > 0) failures.push(`${hostile.lorisNo408} slowloris connections closed without a 408`);
  if (slowReaders > 0 && hostile.readersCut === 0) failures.push('no slow reader was cut off at the send timeout');
  if (hostile.readersWhole > 0) failures.push(`${hostile.readersWhole} slow readers got the whole response: the send timeout did not fire`);
  if (fdGrowth > 20) failures.push(`open descriptors grew by ${fdGrowth.toFixed(1)} from the middle to the last third`);

  const rows = samples.map((s) => `| ${s.t} | ${s.ok} | ${s.errors} | ${s.rssMb.toFixed(1)} | ${s.fds} |`);
  console.log(`## Soak: ${(durationMs / 60000).toFixed(1)} min, ${clients} keep-alive clients, ${slowloris} slowloris and ${slowReaders} slow-reader connections, ${step} churn actions (rewrite, remove, re-add, SIGKILL, restart), ${new Date().toISOString().slice(0, 10)}, ${workers > 1 ? `${workers} workers` : 'single process'}`);
  console.log('\n| t (s) | ok requests | errors | bulb RSS (MB) | open fds |\n| --- | --- | --- | --- | --- |');
  console.log(rows.join('\n'));
  console.log(`\n${stats.ok} requests, ${stats.errors} errors, ${warnings} warning lines from bulb; RSS ${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MB and fds ${fdGrowth >= 0 ? '+' : ''}${fdGrowth.toFixed(1)} from the middle to the last third.`);
  if (workers > 1) console.log(`Workers: ${workers}; ${stats.kills} killed on purpose; ${stats.lostWithWorker} requests lost with a killed worker (in flight on it when it died).`);
  console.log(`Hostile: ${hostile.lorisCut} slowloris connections cut off with 408 (${hostile.lorisNo408} without, ${hostile.lorisLostWithWorker} closed by a worker's death); ${hostile.readersCut} slow readers cut off at the send timeout (${hostile.readersWhole} got everything).`);
  console.log(`bulb log lines by message: ${JSON.stringify(byMsg)}`);
  console.log(failures.length ? `FAIL: ${failures.join('; ')}` : 'PASS');
  process.exitCode = failures.length ? 1 : 0;
}
