import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { query } from '../../src/discovery/dns/client.js';
import { tmpDir } from './tmpdir.js';
import { waitFor } from './wait-for.js';

/** The zone the helper's dnsmasq answers for on its own: names in it that are not configured get NXDOMAIN. */
export const ZONE = 'bulb.test';

export interface Dnsmasq {
  /** The port dnsmasq listens on (UDP and TCP) on 127.0.0.1; the same across restarts. */
  readonly port: number;
  /** `127.0.0.1:PORT`, as `--dns-server` takes it. */
  readonly server: string;
  /** PID of the running dnsmasq, undefined while stopped. */
  readonly pid: number | undefined;
  /** Everything dnsmasq logged (queries included), oldest first. */
  readonly log: () => string;
  /** Kill (by PID) and start again on the same port with a new config; resolves once it answers. */
  restart(config: string, opts?: DnsmasqOptions): Promise<void>;
  /** Kill by PID and wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

export interface DnsmasqOptions {
  /** TTL of every answer (`--local-ttl`, which also sets `--auth-ttl`'s default). dnsmasq's default is 0. */
  readonly ttl?: number;
}

/**
 * Starts a real dnsmasq on 127.0.0.1 on a free high port, as a child process, serving `config` (lines such as
 * `host-record=a.bulb.test,127.0.0.2` and `srv-host=_http._tcp.web.bulb.test,a.bulb.test,8080,0,5`).
 * `local=/bulb.test/` is added so unknown names in the zone are NXDOMAIN and nothing is forwarded anywhere.
 * Every PID it starts is killed when the test ends. A missing dnsmasq is an error, never a skip:
 * `.ci/install-deps.sh` installs it.
 */
export async function startDnsmasq(t: TestContext, config: string, opts: DnsmasqOptions = {}): Promise<Dnsmasq> {
  const binary = findDnsmasq();
  const dir = await tmpDir(t, 'bulb-dnsmasq-');
  const port = await freeUdpTcpPort();
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  let generation = 0;

  const start = async (text: string, o: DnsmasqOptions): Promise<void> => {
    const confFile = join(dir, `dnsmasq-${++generation}.conf`);
    await writeFile(confFile, `local=/${ZONE}/\n${text}\n`);
    const args = [
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      '--no-poll',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      `--conf-file=${confFile}`,
      '--pid-file=', // no pid file: the helper tracks the PID itself
      `--local-ttl=${o.ttl ?? 0}`,
      '--log-queries',
      '--log-facility=-', // logs to stderr, captured for the tests
    ];
    // As root dnsmasq drops to `nobody` unless told otherwise; stay as the user we are.
    if (process.getuid?.() === 0) args.push('--user=root');
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = child;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // Ready when it answers a query (NXDOMAIN for a name nobody configured is an answer).
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`dnsmasq exited (${child.exitCode}): ${output}`);
        try {
          await query(`ready-probe.${ZONE}`, 'A', { servers: [{ host: '127.0.0.1', port }], timeoutMs: 200, attempts: 1 });
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      () => `dnsmasq to answer on 127.0.0.1:${port}; output: ${output}`,
      50,
    );
  };

  const stop = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (child?.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid!, 'SIGTERM');
    await exited;
  };

  t.after(stop);
  await start(config, opts);
  return {
    port,
    server: `127.0.0.1:${port}`,
    get pid() {
      return proc?.pid;
    },
    log: () => output,
    restart: async (text, o = opts) => {
      await stop();
      await start(text, o);
    },
    stop,
  };
}

function findDnsmasq(): string {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (d && existsSync(join(d, 'dnsmasq'))) return join(d, 'dnsmasq');
  }
  throw new Error('dnsmasq is not installed; the DNS tests need a real DNS server. Install it with `apt-get install -y dnsmasq` (.ci/install-deps.sh does).');
}

/** A port that is free for both UDP and TCP on 127.0.0.1 right now (the OS picks it). */
async function freeUdpTcpPort(): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}
