/**
 * Reads one backend file with a size cap, for the directory scan. There is one implementation of the checks,
 * parameterised by the file-system calls it makes ({@link ReaderFs}): the scan at start-up passes the
 * synchronous ones, later scans the asynchronous ones.
 *
 * Why both. At start-up bulb serves nothing yet, and every promise call is a round trip through libuv's thread
 * pool: reading 10,000 files took ~1 s that way instead of ~0.1 s synchronously. Later scans run while requests
 * are served, and a rescan after any event stats every file (10,000 stats); done synchronously that would hold the
 * event loop for tens of milliseconds per change, or far longer on a slow network mount. With the synchronous
 * calls `await` only adds a microtask per call: ~8 ms of CPU over 10,000 files, less than the `read` per file
 * that `readCapped` saves (measured against the two separate readers this replaced: ~140 ms against ~155 ms of CPU
 * for a first scan's reads of 10,000 small files). A generator driven synchronously or asynchronously (Babel's
 * gensync pattern) was tried too: slower still in the cold code of a start-up (~176 ms), and harder to read.
 */
import {
  close,
  closeSync,
  constants as fsConstants,
  fstat,
  fstatSync,
  lstatSync,
  open,
  openSync,
  read,
  readSync,
  statSync,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import { lstat, stat } from 'node:fs/promises';

/**
 * The file-system calls a read makes, each either synchronous or promise-returning. Descriptor-based, so the
 * synchronous and asynchronous reads are the same sequence of calls.
 */
export interface ReaderFs {
  stat(file: string): BigIntStats | Promise<BigIntStats>;
  lstat(file: string): Stats | Promise<Stats>;
  open(file: string, flags: number): number | Promise<number>;
  fstat(fd: number): BigIntStats | Promise<BigIntStats>;
  /** Bytes read into `buf` at `offset`, from `position` in the file; 0 at the end. */
  read(fd: number, buf: Buffer, offset: number, length: number, position: number): number | Promise<number>;
  close(fd: number): void | Promise<void>;
}

/** Blocks the event loop: for the scan at start-up only (see the top of this file). */
export const SYNC_FS: ReaderFs = {
  stat: (file) => statSync(file, { bigint: true }),
  lstat: (file) => lstatSync(file),
  open: (file, flags) => openSync(file, flags),
  fstat: (fd) => fstatSync(fd, { bigint: true }),
  read: (fd, buf, offset, length, position) => readSync(fd, buf, offset, length, position),
  close: (fd) => closeSync(fd),
};

/** Through libuv's thread pool: for every scan after start-up. */
export const ASYNC_FS: ReaderFs = {
  stat: (file) => stat(file, { bigint: true }),
  lstat: (file) => lstat(file),
  open: (file, flags) => callback<number>((cb) => open(file, flags, cb)),
  fstat: (fd) => callback<BigIntStats>((cb) => fstat(fd, { bigint: true }, cb)),
  read: (fd, buf, offset, length, position) => callback<number>((cb) => read(fd, buf, offset, length, position, cb)),
  close: (fd) => callback<undefined>((cb) => close(fd, (err) => cb(err, undefined))),
};

/** What {@link readFile} found. */
export type ReadOutcome =
  /** Deleted (even between the listing and the read), or not a regular file: not a backend file at all. */
  | { readonly kind: 'gone' }
  /** Its stat key is the `knownKey` passed in: the content is the one read before. */
  | { readonly kind: 'unchanged' }
  /** `key` is the stat key of exactly the content in `text`. */
  | { readonly kind: 'read'; readonly text: string; readonly key: string }
  /** There, but unusable as it is: too large, unreadable, a dangling symlink. The message is for people. */
  | { readonly kind: 'failed'; readonly message: string };

/**
 * Stat `file` and, unless its stat key is `knownKey`, read it. Files larger than `maxBytes` are refused from
 * their stat and never read; one that grows past the limit between the stat and the read is refused too, having
 * read at most `maxBytes + 1` bytes.
 */
export async function readFile(fs: ReaderFs, file: string, maxBytes: number, knownKey: string | undefined): Promise<ReadOutcome> {
  let st: BigIntStats;
  try {
    st = await fs.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // Deleted since the listing is just gone; a symlink whose target is missing is a mistake to report.
      try {
        const l = await fs.lstat(file);
        if (l.isSymbolicLink()) return failed('dangling symlink: its target does not exist');
      } catch {
        // The link itself is gone too.
      }
      return GONE;
    }
    return failed(`cannot stat file: ${errorText(err)}`);
  }
  // Directories, sockets, FIFOs named like backend files are not ours; skipped without a word.
  if (!st.isFile()) return GONE;
  if (st.size > BigInt(maxBytes)) return failed(`file is ${st.size} bytes; the limit is ${formatBytes(maxBytes)}`);
  if (knownKey !== undefined && statKey(st) === knownKey) return UNCHANGED;
  try {
    const read = await readCapped(fs, file, maxBytes);
    return read ?? failed(`file is larger than the limit of ${formatBytes(maxBytes)}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return GONE;
    return failed(`cannot read file: ${errorText(err)}`);
  }
}

/**
 * At most `maxBytes`, or undefined when the file holds more. The key comes from `fstat` on the open descriptor,
 * so it describes exactly the content read even if the path was swapped in between. O_NONBLOCK: a FIFO swapped in
 * after the stat must not hang the scan (it has no effect on regular files).
 */
async function readCapped(fs: ReaderFs, file: string, maxBytes: number): Promise<Extract<ReadOutcome, { kind: 'read' }> | undefined> {
  const fd = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const st = await fs.fstat(fd);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
    if (st.size > BigInt(maxBytes)) return undefined;
    // One byte more than the limit allows, to tell "exactly the limit" from "grew past it".
    const buf = Buffer.alloc(Math.min(Number(st.size), maxBytes) + 1);
    let length = 0;
    // Until the end of the file, or one byte past the size the stat gave. A read that stops exactly at that size
    // has met the end of the file then: asking again for the end saves a call per file, 10,000 at start-up.
    const size = Number(st.size);
    while (length < buf.length) {
      const bytesRead = await fs.read(fd, buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === size) break;
    }
    if (length > maxBytes) return undefined;
    // Grown or shrunk while reading: the next event rescans; the key makes sure this content is not reused then.
    return { kind: 'read', text: buf.subarray(0, length).toString('utf8'), key: statKey(st) };
  } finally {
    await fs.close(fd);
  }
}

/** Identifies one content of one file: same key, same bytes (barring a write that keeps size and both times). */
function statKey(st: BigIntStats): string {
  // join, not a template: a template builds a tree of string pieces that the cache would keep, ~100 bytes a file.
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
}

const GONE: ReadOutcome = Object.freeze({ kind: 'gone' });
const UNCHANGED: ReadOutcome = Object.freeze({ kind: 'unchanged' });

function failed(message: string): ReadOutcome {
  return { kind: 'failed', message };
}

function callback<T>(call: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((err, value) => (err ? reject(err) : resolve(value))));
}

function formatBytes(n: number): string {
  const MiB = 1024 * 1024;
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/** `CODE (message)` for a Node system error, the message otherwise. */
export function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- err is unknown: a thrown non-Error has no message
  return e.code ? `${e.code} (${e.message.replace(/^\w+: /, '')})` : String(e.message ?? err);
}
