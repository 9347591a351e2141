import { fstatSync } from 'node:fs';
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

/** Lines are handed to the writer in chunks of about this many characters... */
const BATCH_CHARS = 32 * 1024;
/** ...or after this long, whichever comes first, so a quiet bulb's lines still show up promptly. */
const BATCH_MS = 100;

/** What BatchedDestination writes through: sonic-boom, or (in a worker thread) a message to the controller. */
interface Sink {
  write(chunk: string): unknown;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

/**
 * Gathers log lines into one string and hands it to sonic-boom (which does the writes) every
 * {@link BATCH_CHARS} characters or {@link BATCH_MS} ms. sonic-boom's own `minLength` buffering measures its
 * whole pending buffer with `Buffer.byteLength` on every line, which flattens and rescans a growing string per
 * access-log line; appending to a string here costs one rope node per line instead. Every line (access log or
 * not) goes through the same buffer, so lines stay in order.
 */
class BatchedDestination {
  private pending = '';

  constructor(private readonly boom: Sink) {
    setInterval(() => this.drain(), BATCH_MS).unref();
    // Whatever is still gathered here when the process exits is written out then.
    process.once('exit', () => {
      try {
        this.flushSync();
      } catch {
        // A closed or broken stdout at exit is not worth failing over.
      }
    });
  }

  write(line: string): boolean {
    this.pending += line;
    // A string's length is stored, not counted, even for the rope this builds.
    if (this.pending.length >= BATCH_CHARS) this.drain();
    return true;
  }

  flush(cb?: (err?: Error) => void): void {
    this.drain();
    this.boom.flush(cb);
  }

  flushSync(): void {
    this.drain();
    this.boom.flushSync();
  }

  private drain(): void {
    if (this.pending.length === 0) return;
    const chunk = this.pending;
    this.pending = '';
    this.boom.write(chunk);
  }
}

/**
 * Whether writes to `fd` should be synchronous: yes for regular files and character devices (terminals,
 * /dev/null), as Node's own process.stdout is; no for pipes and sockets, which a slow reader can keep full.
 */
function writeSynchronously(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFile() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

/**
 * Writes already-formatted lines (a worker's batch) through `log`'s destination, after what it holds already.
 */
export function writeRaw(log: Logger, chunk: string): void {
  (log as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym].write(chunk);
}

/**
 * JSON logs on stdout, in batches (see BatchedDestination): a write per access-log line cost more CPU than
 * forwarding the request.
 *
 * To a file or a terminal each batch is written synchronously, as Node writes process.stdout to them and as
 * nginx writes its access log to a file. Measured in bench/e2e.mjs, handing those batches to libuv's thread pool
 * instead (sonic-boom's `sync: false`) cost about 8% of bulb's requests per core and raised its p99 by half:
 * every write woke a pool thread that then competed with the event loop for the same core. To a pipe or socket
 * (`docker logs`, a log shipper) they stay asynchronous, so a reader that falls behind never stalls requests.
 * Warnings and errors are written at once, with the lines before them.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream | number | ((chunk: string) => void) = 1): Logger {
  if (typeof destination === 'object') return pino(options(level), destination);
  const dest = new BatchedDestination(
    typeof destination === 'number'
      ? pino.destination({ dest: destination, sync: writeSynchronously(destination) })
      : // A worker thread's lines go to the controller in whole batches, which writes them with its own: lines
        // from different workers never tear or interleave, on a pipe as on a file.
        { write: destination, flush: (cb) => cb?.(), flushSync: () => {} },
  );
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
  /** A gRPC call's status (from the backend's trailers, or bulb's own answer); absent for other requests. */
  readonly grpcStatus?: number | undefined;
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
  // A child logger's bindings (a worker's `"worker": N`) follow pid, where pino puts them; fixed per writer.
  const bound = Object.entries(log.bindings())
    .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join('');
  return (r) => {
    stream.write(
      `{"level":"info"${isoTime()},"pid":${pid}${bound},"method":${JSON.stringify(r.method ?? null)},"path":${JSON.stringify(r.path ?? null)},` +
        `"status":${r.status},"backend":${JSON.stringify(r.backend)},"attempts":${r.attempts},"durationMs":${r.durationMs},` +
        `${r.grpcStatus === undefined ? '' : `"grpcStatus":${r.grpcStatus},`}"msg":"request"}\n`,
    );
  };
}
