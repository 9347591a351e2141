/**
 * A discovery source that watches one directory of backend files (`*.json`, `*.yaml`, `*.yml`, see
 * `backend-file.ts`) and reports the backends of all of them as one snapshot.
 *
 * Level-triggered, like Traefik's file provider and a Kubernetes controller: a watcher event is only a *trigger*.
 * After a short quiet window the whole directory is listed and every file is checked again, so an event that
 * was lost, reordered, or of a surprising type (the ConfigMap `..data` symlink swap, editors' rename dances)
 * cannot leave the snapshot out of step. A periodic resync catches events that never arrive at all.
 *
 * Checking every file costs a `stat` per file: parsed results are cached per path keyed on
 * (dev, ino, size, mtimeNs, ctimeNs), so a rescan of many unchanged files reads and parses nothing.
 *
 * Per-file last-known-good: a file that stops being valid (parse or validation error, read error, too large,
 * dangling symlink) keeps its previous backends in the snapshot and adds a problem. A file that was never valid
 * contributes nothing. A file that is gone (deleted, even between listing and reading) contributes nothing.
 */
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync, statSync, type BigIntStats, type Stats } from 'node:fs';
import { lstat, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { FSWatcher } from 'chokidar';
import { extensionOf, parseBackendFile } from './backend-file.js';
import type { BackendSpec, DiscoverySource, Snapshot, SnapshotListener, SourceProblem } from './source.js';

/** The logging this source needs; a pino logger satisfies it. */
export interface SourceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DirectorySourceOptions {
  /** The directory to watch. Resolved to an absolute path; it need not exist yet. */
  dir: string;
  log: SourceLogger;
  /** Quiet window after the last watcher event before rescanning. Default 20 ms. */
  debounceMs?: number;
  /** A steady stream of events still rescans at least this often. Default 100 ms. */
  maxWaitMs?: number;
  /** Full rescan this often even without events. Default 30 s. */
  resyncMs?: number;
  /** While the directory is missing, check for it this often. Default 500 ms. */
  missingCheckMs?: number;
  /** Larger files are refused from their `stat`, never read. Default 1 MiB. */
  maxFileBytes?: number;
  /**
   * Start with chokidar's polling watcher (stat every `pollIntervalMs`) instead of inotify. The source switches
   * to polling on its own when the native watcher fails (inotify watch limit); this option is for file systems
   * without inotify (some network mounts) and for tests.
   */
  usePolling?: boolean;
  /** Poll interval of the polling watcher. Default 1000 ms. */
  pollIntervalMs?: number;
}

export const DIRECTORY_DEFAULTS = Object.freeze({
  debounceMs: 20,
  maxWaitMs: 100,
  resyncMs: 30_000,
  missingCheckMs: 500,
  maxFileBytes: 1024 * 1024,
  pollIntervalMs: 1000,
});

/** Files checked concurrently during a scan (libuv's thread pool has 4 threads by default). */
const SCAN_CONCURRENCY = 8;

/** How the source currently learns about changes. `none` while the directory is missing or after stop. */
export type WatchMode = 'native' | 'polling' | 'none';

/** Result of checking one file during a scan. */
type FileOutcome =
  | { kind: 'gone' } // deleted, or not a regular file: contributes nothing, state forgotten
  | { kind: 'parsed'; result: CachedParse }
  | { kind: 'failed'; problem: SourceProblem }; // could not be read: last-known-good applies

interface CachedParse {
  readonly backends: readonly BackendSpec[];
  readonly problems: readonly SourceProblem[];
  readonly pointers: readonly string[];
}

/** Everything the source remembers about one file across scans. */
interface FileState {
  /** Stat key of the content `parsed` came from. */
  key?: string;
  parsed?: CachedParse;
  /** Backends (and their pointers) from the last time the file was valid. */
  good?: { readonly backends: readonly BackendSpec[]; readonly pointers: readonly string[] };
  /** Problems logged last time, so a file that stays broken is logged once, not on every rescan. */
  loggedProblems?: string;
}

export class DirectorySource implements DiscoverySource {
  readonly name: string;
  /** Absolute path of the watched directory. */
  readonly dir: string;

  private readonly log: SourceLogger;
  private readonly debounceMs: number;
  private readonly maxWaitMs: number;
  private readonly resyncMs: number;
  private readonly missingCheckMs: number;
  private readonly maxFileBytes: number;
  private readonly pollIntervalMs: number;
  /** Sticky: once the native watcher has failed we never go back to it. */
  private polling: boolean;

  private listener: SnapshotListener | undefined;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private stopped = false;

  private watcher: FSWatcher | undefined;
  /** `dev:ino` of the directory the watcher was created on; a replaced directory needs a new watcher. */
  private watchedIdentity: string | undefined;

  private debounceTimer: NodeJS.Timeout | undefined;
  private burstStart: number | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private missingTimer: NodeJS.Timeout | undefined;
  /** The scan in progress, if any. Scans never overlap; a trigger during a scan asks for one more. */
  private scanning: Promise<void> | undefined;
  private scanAgain = false;
  /** True until `start` has scanned once: that scan reads with the synchronous calls (see `scanOnce`). */
  private syncReads = true;

  private readonly files = new Map<string, FileState>();
  /** Whether the directory was reachable at the last scan (for logging transitions once). */
  private dirError: string | undefined;
  private lastEmitted: Snapshot | undefined;

  constructor(options: DirectorySourceOptions) {
    this.dir = path.resolve(options.dir);
    this.name = `dir:${this.dir}`;
    this.log = options.log;
    this.debounceMs = options.debounceMs ?? DIRECTORY_DEFAULTS.debounceMs;
    this.maxWaitMs = Math.max(this.debounceMs, options.maxWaitMs ?? DIRECTORY_DEFAULTS.maxWaitMs);
    this.resyncMs = options.resyncMs ?? DIRECTORY_DEFAULTS.resyncMs;
    this.missingCheckMs = options.missingCheckMs ?? DIRECTORY_DEFAULTS.missingCheckMs;
    this.maxFileBytes = options.maxFileBytes ?? DIRECTORY_DEFAULTS.maxFileBytes;
    this.pollIntervalMs = options.pollIntervalMs ?? DIRECTORY_DEFAULTS.pollIntervalMs;
    this.polling = options.usePolling ?? false;
  }

  /** How changes are currently noticed (for `/status` pages and tests). */
  get watchMode(): WatchMode {
    if (!this.watcher) return 'none';
    return this.polling ? 'polling' : 'native';
  }

  start(onSnapshot: SnapshotListener): Promise<void> {
    this.startPromise ??= (async () => {
      this.listener = onSnapshot;
      try {
        await this.runScan();
      } finally {
        this.syncReads = false;
      }
      if (this.stopped) return;
      this.resyncTimer = setInterval(() => this.trigger(), this.resyncMs);
    })();
    return this.startPromise;
  }

  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopped = true;
      clearTimeout(this.debounceTimer);
      clearInterval(this.resyncTimer);
      clearTimeout(this.missingTimer);
      this.debounceTimer = this.resyncTimer = this.missingTimer = undefined;
      // Let a scan in progress finish (it emits nothing once stopped) so no handle outlives stop().
      await this.scanning;
      await this.closeWatcher();
    })();
    return this.stopPromise;
  }

  /**
   * Handle a watcher failure as if chokidar had emitted `error`. The real trigger is the inotify watch limit,
   * which tests cannot raise safely; this lets them exercise the fallback to polling.
   */
  simulateWatcherError(err: Error): void {
    this.onWatcherError(err);
  }

  // --- triggers -------------------------------------------------------------------------------------------------

  /** Any event: rescan after `debounceMs` of quiet, but no later than `maxWaitMs` after the first event. */
  private trigger(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.burstStart ??= now;
    clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.burstStart + this.maxWaitMs - now));
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.burstStart = undefined;
      void this.runScan();
    }, wait);
  }

  /** Run a scan now, or once more after the one in progress. Resolves when no scan is pending. */
  private runScan(): Promise<void> {
    if (this.scanning) {
      this.scanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.scanAgain = false;
          try {
            await this.scanOnce();
          } catch (err) {
            // A bug, not bad input (bad input becomes problems). Keep the source alive; the next trigger retries.
            this.log.error({ err, dir: this.dir }, 'directory scan failed unexpectedly');
          }
        } while (this.scanAgain && !this.stopped);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private onWatcherError(err: Error): void {
    if (this.stopped) return;
    const code = (err as NodeJS.ErrnoException).code;
    if (!this.polling && (code === 'ENOSPC' || code === 'EMFILE' || code === 'ENFILE')) {
      this.log.error(
        { err, dir: this.dir, code },
        code === 'ENOSPC'
          ? 'cannot watch the directory: the inotify watch limit (fs.inotify.max_user_watches) is reached; ' +
              'falling back to polling every second. Raise it with `sysctl -w fs.inotify.max_user_watches=524288`'
          : 'cannot watch the directory: too many open files; falling back to polling every second',
      );
      this.polling = true;
      void this.closeWatcher().then(() => this.runScan());
      return;
    }
    // Anything else affects one entry at most; the next scan (or resync) sees the directory as it is.
    this.log.warn({ err, dir: this.dir, code }, 'directory watcher error');
    this.trigger();
  }

  // --- watcher --------------------------------------------------------------------------------------------------

  private async ensureWatcher(identity: string): Promise<void> {
    if (this.watcher && this.watchedIdentity === identity) return;
    if (this.watcher) {
      // Same path, different directory (replaced by rename): the old watcher still follows the old inode.
      this.log.info({ dir: this.dir }, 'directory was replaced; watching the new one');
      await this.closeWatcher();
    }
    // Loaded here rather than imported: a bulb without a watched directory never needs chokidar.
    const { watch } = await import('chokidar');
    if (this.stopped) return;
    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      // Chokidar's atomic mode delays unlink events by 100 ms to pair them with adds; we re-read anyway.
      atomic: false,
      followSymlinks: true,
      // Permissions are reported by the scan, as problems on the file; the watcher need not complain too.
      ignorePermissionErrors: true,
      usePolling: this.polling,
      interval: this.pollIntervalMs,
      binaryInterval: this.pollIntervalMs,
      ...(!this.polling && { ignored: ownWatchNotNeeded(this.dir) }),
    });
    this.watcher = watcher;
    this.watchedIdentity = identity;
    // `raw` as well as the typed events: chokidar drops a `change` within 50 ms of the previous one on the same
    // path (its own throttle), so a second quick write would go unseen until the resync. Raw events are every
    // underlying fs.watch / fs.watchFile notification, unthrottled; the debounce coalesces them.
    watcher.on('all', () => this.trigger());
    watcher.on('raw', () => this.trigger());
    watcher.on('error', (err: unknown) => this.onWatcherError(err instanceof Error ? err : new Error(String(err))));
    // The scan that made this watcher goes on without waiting for it: chokidar lists the whole directory before
    // it starts watching it (0.2 s at 10,000 files), and the first snapshot need not wait for that. A change in
    // between is not lost: once the watcher is ready, one more scan picks it up, and later ones are events.
    watcher.once('ready', () => {
      if (this.watcher === watcher) this.trigger();
    });
  }

  private async closeWatcher(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    this.watchedIdentity = undefined;
    if (w) await w.close();
  }

  // --- scanning -------------------------------------------------------------------------------------------------

  private async scanOnce(): Promise<void> {
    if (this.stopped) return;
    let names: string[];
    let identity: string;
    try {
      const st = await stat(this.dir, { bigint: true });
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      identity = `${st.dev}:${st.ino}`;
    } catch (err) {
      await this.onDirectoryUnavailable(err);
      return;
    }
    try {
      await this.ensureWatcher(identity);
    } catch (err) {
      // chokidar reports failures as `error` events; this is for one thrown synchronously instead.
      this.onWatcherError(err instanceof Error ? err : new Error(String(err)));
    }
    if (this.stopped) return;
    try {
      names = await readdir(this.dir);
    } catch (err) {
      await this.onDirectoryUnavailable(err);
      return;
    }
    if (this.dirError !== undefined) {
      this.log.info({ dir: this.dir }, 'directory is back; watching it again');
      this.dirError = undefined;
    }

    // Code-unit order, not locale order: the same on every machine, and it decides duplicate-id winners.
    const candidates = names.filter(isBackendFileName).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const files = candidates.map((name) => entryPath(this.dir, name));
    // The first scan, while bulb is starting and serves nothing yet, uses the synchronous calls: each promise call
    // is a round trip through the thread pool, which made reading 10,000 files take ~1 s instead of ~0.1 s.
    // Later scans run while requests are served, so they never block the event loop on the file system (which
    // may be a slow network mount) and keep a few stats in flight at once instead: a 10,000-file rescan is then
    // bounded by the thread pool, not by round trips.
    const fs = this.syncReads ? SYNC_FS : ASYNC_FS;
    const checked = new Array<FileOutcome>(files.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const i = next++;
        checked[i] = await this.checkFile(files[i]!, fs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.syncReads ? 1 : SCAN_CONCURRENCY, files.length) }, worker));
    const seen = new Set<string>();
    const outcomes: Array<[string, Exclude<FileOutcome, { kind: 'gone' }>]> = [];
    files.forEach((file, i) => {
      const outcome = checked[i]!;
      if (outcome.kind === 'gone') return;
      seen.add(file);
      outcomes.push([file, outcome]);
    });
    for (const file of this.files.keys()) if (!seen.has(file)) this.files.delete(file);
    if (this.stopped) return;

    const backends: BackendSpec[] = [];
    const problems: SourceProblem[] = [];
    const claimedBy = new Map<string, string>(); // id -> file that declared it first
    for (const [file, outcome] of outcomes) {
      const state = this.files.get(file) ?? {};
      this.files.set(file, state);
      const fileProblems: SourceProblem[] = [];
      if (outcome.kind === 'parsed' && outcome.result.problems.length === 0) {
        state.good = outcome.result;
      } else {
        fileProblems.push(...(outcome.kind === 'parsed' ? outcome.result.problems : [outcome.problem]));
      }
      const good = state.good;
      good?.backends.forEach((spec, i) => {
        const winner = claimedBy.get(spec.id);
        if (winner !== undefined) {
          fileProblems.push(
            Object.freeze({
              file,
              pointer: good.pointers[i] ?? '',
              message: `duplicate id "${spec.id}": ${path.basename(winner)} also declares it and wins (first file by name); this entry is ignored`,
            }),
          );
          return;
        }
        claimedBy.set(spec.id, file);
        backends.push(spec);
      });
      this.logTransition(file, state, fileProblems, outcome.kind === 'parsed' && outcome.result.problems.length === 0);
      problems.push(...fileProblems);
    }
    this.emit(backends, problems, undefined);
  }

  /** Stat, and if the file changed since last time, read and parse it. */
  private async checkFile(file: string, fs: ScanFs): Promise<FileOutcome> {
    const fail = (message: string): FileOutcome => ({ kind: 'failed', problem: Object.freeze({ file, pointer: '', message }) });
    let st: BigIntStats;
    try {
      st = await fs.stat(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Deleted since the listing is just gone; a symlink whose target is missing is a mistake to report.
        try {
          const l = await fs.lstat(file);
          if (l.isSymbolicLink()) return fail('dangling symlink: its target does not exist');
        } catch {
          // The link itself is gone too.
        }
        return { kind: 'gone' };
      }
      return fail(`cannot stat file: ${errorText(err)}`);
    }
    // Directories, sockets, FIFOs named like backend files are not ours; skipped without a word.
    if (!st.isFile()) return { kind: 'gone' };
    if (st.size > BigInt(this.maxFileBytes)) return fail(`file is ${st.size} bytes; the limit is ${formatBytes(this.maxFileBytes)}`);

    const state = this.files.get(file);
    const key = statKey(st);
    if (state?.parsed && state.key === key) return { kind: 'parsed', result: state.parsed };

    let text: string;
    let readKey: string;
    try {
      const read = await fs.readCapped(file, this.maxFileBytes);
      if (read === undefined) return fail(`file is larger than the limit of ${formatBytes(this.maxFileBytes)}`);
      ({ text, key: readKey } = read);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kind: 'gone' };
      return fail(`cannot read file: ${errorText(err)}`);
    }
    const result = parseBackendFile(file, text, this.name);
    // Copies: an array grown by push keeps room for 16 more entries (~150 bytes), and these live as long as the
    // file does, two per file.
    const parsed: CachedParse = Object.freeze({
      backends: Object.freeze(result.backends.slice()),
      problems: Object.freeze(result.problems.slice()),
      pointers: Object.freeze(result.pointers.slice()),
    });
    const next = state ?? {};
    next.key = readKey;
    next.parsed = parsed;
    this.files.set(file, next);
    return { kind: 'parsed', result: parsed };
  }

  private async onDirectoryUnavailable(err: unknown): Promise<void> {
    const code = (err as NodeJS.ErrnoException).code;
    const error =
      code === 'ENOENT'
        ? `directory ${this.dir} does not exist`
        : code === 'ENOTDIR'
          ? `${this.dir} is not a directory`
          : `cannot read directory ${this.dir}: ${errorText(err)}`;
    if (this.dirError !== error) {
      this.log.error({ dir: this.dir, reason: error }, 'backend directory unavailable; keeping the last-known-good backends of every file');
      this.dirError = error;
    }
    // A watcher on a deleted directory watches nothing; a fresh one is made when the directory is back.
    await this.closeWatcher();
    if (this.stopped) return;
    clearTimeout(this.missingTimer);
    this.missingTimer = setTimeout(() => {
      this.missingTimer = undefined;
      void this.runScan();
    }, this.missingCheckMs);

    // Every known file's last-known-good, in name order, with the same duplicate-id rule as a normal scan.
    const backends: BackendSpec[] = [];
    const claimed = new Set<string>();
    const files = [...this.files.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const file of files) {
      for (const spec of this.files.get(file)?.good?.backends ?? []) {
        if (claimed.has(spec.id)) continue;
        claimed.add(spec.id);
        backends.push(spec);
      }
    }
    this.emit(backends, [], error);
  }

  /** One error line per problem when a file's problems change; one info line when it becomes clean again. */
  private logTransition(file: string, state: FileState, problems: readonly SourceProblem[], valid: boolean): void {
    const fingerprint = problems.length ? JSON.stringify(problems.map((p) => [p.pointer, p.message])) : undefined;
    if (fingerprint === state.loggedProblems) return;
    const hadProblems = state.loggedProblems !== undefined;
    state.loggedProblems = fingerprint;
    if (fingerprint === undefined) {
      if (hadProblems) this.log.info({ file, backends: state.good?.backends.length ?? 0 }, 'backend file is valid again');
      return;
    }
    const msg = valid
      ? 'backend file entry ignored'
      : state.good
        ? 'backend file rejected; keeping its last-known-good backends'
        : 'backend file rejected; it contributes no backends';
    for (const p of problems) this.log.error({ file, pointer: p.pointer, reason: p.message }, msg);
  }

  private emit(backends: BackendSpec[], problems: SourceProblem[], error: string | undefined): void {
    if (this.stopped || !this.listener) return;
    const snapshot: Snapshot = Object.freeze({
      source: this.name,
      backends: Object.freeze(backends),
      problems: Object.freeze(problems),
      ...(error === undefined ? {} : { error }),
    });
    // Specs and problems are plain frozen data in a deterministic order, and unchanged files give the very same
    // spec objects, so this is quick; it keeps no copy either (a JSON fingerprint was 1.5 MB at 10,000 files).
    if (this.lastEmitted !== undefined && isDeepStrictEqual(snapshot, this.lastEmitted)) return;
    this.lastEmitted = snapshot;
    this.listener(snapshot);
  }
}

/**
 * Which directory entries are backend files: top level, ending in `.json`, `.yaml` or `.yml`, not hidden
 * (dotfiles include Kubernetes' `..data` entries and editors' lock files) and not an editor's swap or backup.
 */
export function isBackendFileName(name: string): boolean {
  if (name.startsWith('.')) return false;
  if (name.endsWith('~') || name.endsWith('.swp') || name.endsWith('.swx')) return false;
  if (name.startsWith('#') && name.endsWith('#')) return false;
  return extensionOf(name) !== undefined;
}

/**
 * chokidar's `ignored` for the native watcher: regular files directly in `dir` get no watcher of their own.
 * The directory's own inotify watch already reports every write, attribute change, create, rename and delete
 * of its entries (as `raw` events, which trigger a rescan), so a watch per file adds nothing but its cost:
 * an inotify watch, ~2.6 KB of heap and a stat each (26 MB and 0.4 s at 10,000 files). Symlinks keep theirs,
 * since chokidar follows them to a target that may live elsewhere, where the directory's watch sees nothing;
 * so does everything that is not a regular file. Polling mode does not use this: it needs the per-file stat
 * polls to see in-place writes.
 *
 * chokidar asks twice per entry: with `lstat` stats while listing (a symlink shows as one here), then, for the
 * entries that passed, with `stat` stats that follow the link (where a symlink to a file shows as a file), so
 * the symlinks seen while listing are remembered.
 */
function ownWatchNotNeeded(dir: string): (p: string, stats?: Stats) => boolean {
  const symlinks = new Set<string>();
  return (p, stats) => {
    if (stats === undefined || path.dirname(p) !== dir) return false;
    if (stats.isSymbolicLink()) {
      symlinks.add(p);
      return false;
    }
    if (!stats.isFile() || symlinks.has(p)) return false;
    return true;
  };
}

/** What `readCapped` returns: the text, and the stat key of exactly the content read. */
interface ReadResult {
  readonly text: string;
  readonly key: string;
}

/** The file system calls a scan makes: the promise API, or the synchronous one (see `scanOnce`). */
interface ScanFs {
  stat(file: string): Promise<BigIntStats> | BigIntStats;
  lstat(file: string): Promise<Stats> | Stats;
  /** The file's text, or undefined when it is larger than `maxBytes`. */
  readCapped(file: string, maxBytes: number): Promise<ReadResult | undefined> | ReadResult | undefined;
}

/**
 * Read at most `maxBytes`. The key comes from `fstat` on the open descriptor, so it describes exactly the
 * content read even if the path was swapped in between. O_NONBLOCK: a FIFO swapped in after the stat must
 * not hang the scan (it has no effect on regular files).
 */
async function readCapped(file: string, maxBytes: number): Promise<ReadResult | undefined> {
  const fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
    if (st.size > BigInt(maxBytes)) return undefined;
    const buf = Buffer.alloc(Math.min(Number(st.size), maxBytes) + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return undefined;
    // Grown or shrunk while reading: the next event rescans; the key makes sure this content is not reused then.
    return { text: buf.subarray(0, length).toString('utf8'), key: statKey(st) };
  } finally {
    await fh.close();
  }
}

/** `readCapped`, with the synchronous calls. */
function readCappedSync(file: string, maxBytes: number): ReadResult | undefined {
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
    if (st.size > BigInt(maxBytes)) return undefined;
    const buf = Buffer.alloc(Math.min(Number(st.size), maxBytes) + 1);
    let length = 0;
    while (length < buf.length) {
      const bytesRead = readSync(fd, buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return undefined;
    return { text: buf.subarray(0, length).toString('utf8'), key: statKey(st) };
  } finally {
    closeSync(fd);
  }
}

const ASYNC_FS: ScanFs = {
  stat: (file) => stat(file, { bigint: true }),
  lstat: (file) => lstat(file),
  readCapped,
};

const SYNC_FS: ScanFs = {
  stat: (file) => statSync(file, { bigint: true }),
  lstat: (file) => lstatSync(file),
  readCapped: readCappedSync,
};

/**
 * `path.join(dir, name)` for an entry of `dir` (absolute and normalised, as `this.dir` is; `name` from readdir),
 * as one flat string. path.join assembles its result from many pieces that V8 keeps as a tree (~340 bytes for a
 * 40-character path, ~65 flat), and each path lives as long as its file: as a cache key and in every spec.
 */
function entryPath(dir: string, name: string): string {
  return [dir, name].join(dir.endsWith(path.sep) ? '' : path.sep);
}

function statKey(st: BigIntStats): string {
  // join, not a template: a template builds a tree of string pieces that the cache would keep, ~100 bytes a file.
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
}

function formatBytes(n: number): string {
  const MiB = 1024 * 1024;
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message.replace(/^\w+: /, '')})` : String(e.message ?? err);
}
