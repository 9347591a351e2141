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
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
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

  private readonly files = new Map<string, FileState>();
  /** Whether the directory was reachable at the last scan (for logging transitions once). */
  private dirError: string | undefined;
  private lastEmitted: string | undefined;

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
      await this.runScan();
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
    });
    this.watcher = watcher;
    this.watchedIdentity = identity;
    // `raw` as well as the typed events: chokidar drops a `change` within 50 ms of the previous one on the same
    // path (its own throttle), so a second quick write would go unseen until the resync. Raw events are every
    // underlying fs.watch / fs.watchFile notification, unthrottled; the debounce coalesces them.
    watcher.on('all', () => this.trigger());
    watcher.on('raw', () => this.trigger());
    watcher.on('error', (err: unknown) => this.onWatcherError(err instanceof Error ? err : new Error(String(err))));
    // Scan only once the watcher is ready: anything that changes after the listing is then seen as an event.
    await new Promise<void>((resolve) => {
      const guard = setTimeout(resolve, 10_000);
      watcher.once('ready', () => {
        clearTimeout(guard);
        resolve();
      });
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
    const files = candidates.map((name) => path.join(this.dir, name));
    // A few stats in flight at once: a 10,000-file rescan is then bounded by the thread pool, not by round trips.
    const checked = new Array<FileOutcome>(files.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const i = next++;
        checked[i] = await this.checkFile(files[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SCAN_CONCURRENCY, files.length) }, worker));
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
        state.good = { backends: outcome.result.backends, pointers: outcome.result.pointers };
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
  private async checkFile(file: string): Promise<FileOutcome> {
    const fail = (message: string): FileOutcome => ({ kind: 'failed', problem: Object.freeze({ file, pointer: '', message }) });
    let st: BigIntStats;
    try {
      st = await stat(file, { bigint: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Deleted since the listing is just gone; a symlink whose target is missing is a mistake to report.
        try {
          const l = await lstat(file);
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
      const read = await this.readCapped(file);
      if (read === undefined) return fail(`file is larger than the limit of ${formatBytes(this.maxFileBytes)}`);
      ({ text, key: readKey } = read);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kind: 'gone' };
      return fail(`cannot read file: ${errorText(err)}`);
    }
    const result = parseBackendFile(file, text, this.name);
    const parsed: CachedParse = Object.freeze({
      backends: Object.freeze(result.backends),
      problems: Object.freeze(result.problems),
      pointers: Object.freeze(result.pointers),
    });
    const next = state ?? {};
    next.key = readKey;
    next.parsed = parsed;
    this.files.set(file, next);
    return { kind: 'parsed', result: parsed };
  }

  /**
   * Read at most `maxFileBytes`. The key comes from `fstat` on the open descriptor, so it describes exactly the
   * content read even if the path was swapped in between. O_NONBLOCK: a FIFO swapped in after the stat must
   * not hang the scan (it has no effect on regular files).
   */
  private async readCapped(file: string): Promise<{ text: string; key: string } | undefined> {
    const fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
      if (st.size > BigInt(this.maxFileBytes)) return undefined;
      const buf = Buffer.alloc(Math.min(Number(st.size), this.maxFileBytes) + 1);
      let length = 0;
      while (length < buf.length) {
        const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > this.maxFileBytes) return undefined;
      // Grown or shrunk while reading: the next event rescans; the key makes sure this content is not reused then.
      return { text: buf.subarray(0, length).toString('utf8'), key: statKey(st) };
    } finally {
      await fh.close();
    }
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
    // Specs and problems are plain frozen data in a deterministic order, so JSON is a faithful deep compare.
    const fingerprint = JSON.stringify(snapshot);
    if (fingerprint === this.lastEmitted) return;
    this.lastEmitted = fingerprint;
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

function statKey(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
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
