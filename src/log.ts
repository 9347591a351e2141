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
