import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type { BackendMode } from './backend.js';

const CHILD = fileURLToPath(new URL('./backend-child.ts', import.meta.url));

export interface BackendProcess {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /**
   * Changes how the backend answers (every path, /healthz included unless `healthzStatus` pins it; null unpins);
   * resolves once the child has it.
   */
  setMode(mode: BackendMode, opts?: { delayMs?: number; healthzStatus?: number | null }): Promise<void>;
  /** Kills the process (SIGKILL by default: no FIN for open connections' in-flight requests) and waits for its exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<void>;
}

/**
 * A `startBackend` in a child process of its own, on a loopback address. Pass `port` to come back on the same
 * address after a kill. Killed by PID when the test ends.
 */
export async function startBackendProcess(t: TestContext, name: string, opts: { host?: string; port?: number } = {}): Promise<BackendProcess> {
  const host = opts.host ?? '127.0.0.1';
  const child: ChildProcess = fork(CHILD, [name, host, String(opts.port ?? 0)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`backend process ${name} did not start within 20 s`)), 20_000);
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.port!);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`backend process ${name} exited (${code ?? signal}) before listening on ${host}:${opts.port ?? 0}`));
    });
  });
  let nextId = 0;
  return {
    name,
    host,
    port,
    url: `http://${host}:${port}`,
    pid: child.pid!,
    exited,
    setMode: (mode, opts = {}) =>
      new Promise<void>((resolve, reject) => {
        const id = nextId++;
        const onMessage = (m: { type?: string; id?: number }) => {
          if (m.type === 'ack' && m.id === id) {
            child.off('message', onMessage);
            resolve();
          }
        };
        child.on('message', onMessage);
        child.send({ type: 'mode', id, mode, ...opts }, (err) => err && reject(err));
      }),
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, signal);
        await exited;
      }
    },
  };
}
