import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

let isoTimeMs = -1;
let isoTimeField = '';

/**
 * pino's `stdTimeFunctions.isoTime`, byte for byte, formatted once per millisecond: under load many access-log
 * lines share a millisecond, and `toISOString` was the largest single cost of a log line.
 */
function isoTime(): string {
  const now = Date.now();
  if (now !== isoTimeMs) {
    isoTimeMs = now;
    isoTimeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoTimeField;
}

/**
 * JSON logs on stdout. Writes are asynchronous (sonic-boom with `sync: false`) so the access log never blocks
 * the request path on a slow stdout; `flushLogs` is called before exit so nothing is lost.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream | number = 1): Logger {
  if (typeof destination !== 'number') return pino(options(level), destination);
  // Lines are gathered into writes of 4 KiB or every 100 ms, whichever comes first: a write per access-log line
  // cost more CPU than forwarding the request. Warnings and errors are written at once; pino writes out whatever
  // is still buffered, synchronously, on exit.
  const dest = pino.destination({ dest: destination, sync: false, minLength: 4096, periodicFlush: 100 });
  return pino(
    {
      ...options(level),
      hooks: {
        logMethod(args, method, lvl) {
          method.apply(this, args);
          if (lvl < 40) return;
          try {
            dest.flush();
          } catch {
            // Destroyed at exit: nothing left to flush to.
          }
        },
      },
    },
    dest,
  );
}

function options(level: string): LoggerOptions {
  return {
    level,
    base: { pid: process.pid },
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
}

export function flushLogs(log: Logger): void {
  try {
    log.flush();
  } catch {
    // A closed stdout at exit is not worth failing over.
  }
}

/** One finished exchange, as the access log records it. */
export interface AccessRecord {
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly status: number;
  readonly backend: string | null;
  readonly attempts: number;
  readonly durationMs: number;
}

/**
 * The access log's writer: the same JSON line pino would write for
 * `log.info({ method, path, status, backend, attempts, durationMs }, 'request')`, key for key, but built as one
 * template string and handed straight to the logger's destination. Serialising an object per request through
 * pino was the largest cost on the request path after the socket writes themselves.
 * Returns undefined when info lines are off (nothing to write).
 */
export function accessLogWriter(log: Logger): ((r: AccessRecord) => void) | undefined {
  if (!log.isLevelEnabled('info')) return undefined;
  // pino keeps its destination under this symbol; it is part of pino's exported API (`pino.symbols`).
  const stream = (log as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
  const pid = process.pid;
  return (r) => {
    stream.write(
      `{"level":"info"${isoTime()},"pid":${pid},"method":${JSON.stringify(r.method ?? null)},"path":${JSON.stringify(r.path ?? null)},` +
        `"status":${r.status},"backend":${JSON.stringify(r.backend)},"attempts":${r.attempts},"durationMs":${r.durationMs},"msg":"request"}\n`,
    );
  };
}
