import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { waitFor } from './wait-for.js';

export const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A log line's field as text: a string as it is, a missing field as '', anything else as JSON. */
export function logText(value: unknown): string {
  if (typeof value === 'string') return value;
  return value === undefined ? '' : JSON.stringify(value);
}

export interface RunningBulb {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:PORT` of the traffic listener. */
  readonly url: string;
  readonly adminUrl: string;
  /** Every JSON log line so far. */
  readonly logs: LogLine[];
  readonly stderr: () => string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts the built bulb (`dist/`, as users run it) as a child process on ephemeral ports, and kills it by PID
 * when the test ends. `npm test` builds first; run `npm run build` before running one e2e file by hand.
 */
export async function startBulb(
  t: TestContext,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; /** Run as this user (tests run as root; some need an ordinary user). */ uid?: number; gid?: number } = {},
): Promise<RunningBulb> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first`);
  const proc = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined && { uid: opts.uid, gid: opts.gid ?? opts.uid }),
  });
  const logs: LogLine[] = [];
  let err = '';
  let partial = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 'raw', msg: line });
      }
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  const waitForLog = async (pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    let found: LogLine | undefined;
    await waitFor(() => (found = logs.find(pred)) !== undefined, timeoutMs, () => `log line not seen; stderr: ${err}; logs: ${JSON.stringify(logs.slice(-5))}`);
    return found!;
  };
  let early: number | string | undefined;
  void exited.then((c) => (early = c));
  const started = await waitForLog((l) => l.msg === 'bulb started' || early !== undefined, 20_000);
  if (started.msg !== 'bulb started') throw new Error(`bulb exited (${String(early)}) before starting: ${err}`);
  const listen = started['listen'] as { host: string; port: number };
  const admin = started['admin'] as { host: string; port: number } | 'off';
  return {
    proc,
    pid: proc.pid!,
    url: `http://${listen.host}:${listen.port}`,
    adminUrl: admin === 'off' ? '' : `http://${admin.host}:${admin.port}`,
    logs,
    stderr: () => err,
    waitForLog,
    exited,
    kill: (signal = 'SIGTERM') => proc.kill(signal),
  };
}

/** Log lines at warn level or above (and anything that is not JSON): a happy path must have none. */
export function warnings(bulb: RunningBulb): LogLine[] {
  return bulb.logs.filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal' || l.level === 'raw');
}

/** Runs the bulb CLI to completion (for `check`, `--help`, bad flags) and returns what it printed. */
export function runBulb(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`bulb ${args.join(' ')} did not exit within ${opts.timeoutMs ?? 20_000} ms`));
    }, opts.timeoutMs ?? 20_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
