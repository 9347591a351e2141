import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout. Writes are asynchronous (sonic-boom with `sync: false`) so the access log never blocks
 * the request path on a slow stdout; `flushLogs` is called before exit so nothing is lost.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream | number = 1): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ dest: destination, sync: false }) : destination;
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

export function flushLogs(log: Logger): void {
  try {
    log.flush();
  } catch {
    // A closed stdout at exit is not worth failing over.
  }
}
