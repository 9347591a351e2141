/**
 * A discovery source that watches one directory of backend files (`*.json`, `*.yaml`, `*.yml`, see
 * `../backend-file.ts`) and reports the backends of all of them as one snapshot.
 *
 * Level-triggered, like Traefik's file provider and a Kubernetes controller. The parts:
 * - `watcher.ts` decides when to scan: chokidar events (only triggers), debounce, periodic resync, the polling
 *   fallback, a missing or replaced directory.
 * - A scan (here) lists the whole directory and checks every file with `reader.ts`, which reads each file that
 *   changed with a size cap. Parsed results are cached per path keyed on the file's stat (dev, ino, size,
 *   mtimeNs, ctimeNs), so a rescan of many unchanged files costs a `stat` each and reads and parses nothing.
 * - `assemble.ts` turns what the scan found plus each file's last-known-good into the snapshot (pure).
 * - This class wires them, runs one scan at a time, logs what changed and emits snapshots that differ.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { extensionOf, parseBackendFile } from '../backend-file.js';
import type { BackendSpec, DiscoverySource, Snapshot, SnapshotListener, SourceLogger, SourceProblem } from '../source.js';
import { assemble, UNSEEN, type FileReport, type FileResult, type GoodFile, type ParsedFile } from './assemble.js';
import { ASYNC_FS, errorText, readFile, SYNC_FS, type ReaderFs } from './reader.js';
import { DirectoryWatcher, type WatchMode } from './watcher.js';
import { loadTlsMaterial } from '../../tls/material.js';

export type { WatchMode } from './watcher.js';

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

/** Files checked concurrently during a later scan (libuv's thread pool has 4 threads by default). */
const SCAN_CONCURRENCY = 8;

/** A file's last parse, and the stat key of the content it came from. */
interface CacheEntry {
  readonly key: string;
  readonly parsed: ParsedFile;
}

export class DirectorySource implements DiscoverySource {
  readonly name: string;
  /** Absolute path of the watched directory. */
  readonly dir: string;

  private readonly log: SourceLogger;
  private readonly maxFileBytes: number;
  private readonly watcher: DirectoryWatcher;

  private listener: SnapshotListener | undefined;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private stopped = false;

  /** The scan in progress, if any. Scans never overlap; a trigger during a scan asks for one more. */
  private scanning: Promise<void> | undefined;
  private scanAgain = false;
  /** True until `start` has scanned once: that scan reads with the synchronous calls (see `reader.ts`). */
  private syncReads = true;

  /** Per file present at the last scan: its last parse. */
  private readonly cache = new Map<string, CacheEntry>();
  /** Per file present at the last scan: its last-known-good, if it was ever valid (`assemble`'s state). */
  private good: ReadonlyMap<string, GoodFile> = new Map();
  /** Problems logged last time, per file that has any, so a file that stays broken is logged once. */
  private readonly loggedProblems = new Map<string, string>();
  /** Why the directory was unreachable at the last scan, if it was (to log transitions once). */
  private dirError: string | undefined;
  private lastEmitted: Snapshot | undefined;

  constructor(options: DirectorySourceOptions) {
    this.dir = path.resolve(options.dir);
    this.name = `dir:${this.dir}`;
    this.log = options.log;
    this.maxFileBytes = options.maxFileBytes ?? DIRECTORY_DEFAULTS.maxFileBytes;
    const debounceMs = options.debounceMs ?? DIRECTORY_DEFAULTS.debounceMs;
    this.watcher = new DirectoryWatcher({
      dir: this.dir,
      log: this.log,
      debounceMs,
      maxWaitMs: Math.max(debounceMs, options.maxWaitMs ?? DIRECTORY_DEFAULTS.maxWaitMs),
      resyncMs: options.resyncMs ?? DIRECTORY_DEFAULTS.resyncMs,
      missingCheckMs: options.missingCheckMs ?? DIRECTORY_DEFAULTS.missingCheckMs,
      usePolling: options.usePolling ?? false,
      pollIntervalMs: options.pollIntervalMs ?? DIRECTORY_DEFAULTS.pollIntervalMs,
      rescan: () => void this.runScan(),
    });
  }

  /** How changes are currently noticed (for `/status` pages and tests). */
  get watchMode(): WatchMode {
    return this.watcher.mode;
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
      this.watcher.startResync();
    })();
    return this.startPromise;
  }

  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopped = true;
      const closing = this.watcher.stop();
      // Let a scan in progress finish (it emits nothing once stopped) so no handle outlives stop().
      await this.scanning;
      await closing;
    })();
    return this.stopPromise;
  }

  /**
   * Handle a watcher failure as if chokidar had emitted `error`. The real trigger is the inotify watch limit,
   * which tests cannot raise safely; this lets them exercise the fallback to polling.
   */
  simulateWatcherError(err: Error): void {
    this.watcher.fail(err);
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

  private async scanOnce(): Promise<void> {
    if (this.stopped) return;
    let names: string[];
    try {
      const st = await stat(this.dir, { bigint: true });
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await this.watcher.watch(`${st.dev}:${st.ino}`);
      if (this.stopped) return;
      names = await readdir(this.dir);
    } catch (err) {
      await this.onDirectoryUnavailable(err);
      return;
    }
    if (this.dirError !== undefined) {
      this.log.info({ dir: this.dir }, 'directory is back; watching it again');
      this.dirError = undefined;
    }

    const files = names.filter(isBackendFileName).map((name) => entryPath(this.dir, name));
    const fs = this.syncReads ? SYNC_FS : ASYNC_FS;
    const checked = new Array<FileResult | undefined>(files.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const i = next++;
        checked[i] = await this.checkFile(files[i], fs);
      }
    };
    // The synchronous calls gain nothing from several workers; the asynchronous ones keep a few stats in flight,
    // so a rescan of 10,000 files is bounded by the thread pool, not by round trips.
    await Promise.all(Array.from({ length: Math.min(this.syncReads ? 1 : SCAN_CONCURRENCY, files.length) }, worker));
    const results = new Map<string, FileResult>();
    files.forEach((file, i) => {
      const result = checked[i];
      if (result !== undefined) results.set(file, result);
    });
    // Files that are gone are forgotten, with everything known about them.
    for (const file of this.cache.keys()) if (!results.has(file)) this.cache.delete(file);
    for (const file of this.loggedProblems.keys()) if (!results.has(file)) this.loggedProblems.delete(file);
    if (this.stopped) return;

    const assembly = assemble(results, this.good);
    this.good = assembly.good;
    for (const report of assembly.files) this.logTransition(report);
    this.emit(assembly.backends, assembly.problems, undefined);
  }

  /** What the scan found for one file: undefined if it is gone. Reads and parses only what changed. */
  private async checkFile(file: string, fs: ReaderFs): Promise<FileResult | undefined> {
    const cached = this.cache.get(file);
    const read = await readFile(fs, file, this.maxFileBytes, cached?.key);
    switch (read.kind) {
      case 'gone':
        return undefined;
      case 'failed':
        return { kind: 'failed', problem: Object.freeze({ file, pointer: '', message: read.message }) };
      case 'unchanged':
        // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- readFile says unchanged only when given cached's key
        return { kind: 'parsed', parsed: withTlsFiles(file, cached!.parsed) };
      case 'read': {
        const result = parseBackendFile(file, read.text, this.name);
        // Copies: an array grown by push keeps room for 16 more entries (~150 bytes), and these live as long as
        // the file does.
        const parsed: ParsedFile = Object.freeze({
          backends: Object.freeze(result.backends.slice()),
          problems: Object.freeze(result.problems.slice()),
          pointers: Object.freeze(result.pointers.slice()),
        });
        this.cache.set(file, { key: read.key, parsed });
        return { kind: 'parsed', parsed: withTlsFiles(file, parsed) };
      }
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
    await this.watcher.missing();
    // Every known file's last-known-good, by the same rules as a scan. The snapshot's `error` says what is wrong;
    // per-file problems (duplicates here) wait until the files can be looked at again.
    const kept = assemble(new Map([...this.good.keys()].map((file) => [file, UNSEEN])), this.good);
    this.emit(kept.backends, [], error);
  }

  /** One error line per problem when a file's problems change; one info line when it becomes clean again. */
  private logTransition({ file, problems, valid, good }: FileReport): void {
    const fingerprint = problems.length ? JSON.stringify(problems.map((p) => [p.pointer, p.message])) : undefined;
    const logged = this.loggedProblems.get(file);
    if (fingerprint === logged) return;
    if (fingerprint === undefined) {
      this.loggedProblems.delete(file);
      this.log.info({ file, backends: good?.backends.length ?? 0 }, 'backend file is valid again');
      return;
    }
    this.loggedProblems.set(file, fingerprint);
    const msg = valid
      ? 'backend file entry ignored'
      : good
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
 * `path.join(dir, name)` for an entry of `dir` (absolute and normalised, as `this.dir` is; `name` from readdir),
 * as one flat string. path.join assembles its result from many pieces that V8 keeps as a tree (~340 bytes for a
 * 40-character path, ~65 flat), and each path lives as long as its file: as a cache key and in every spec.
 */
function entryPath(dir: string, name: string): string {
  return [dir, name].join(dir.endsWith(path.sep) ? '' : path.sep);
}

/**
 * A parsed file whose `tls` blocks name files that cannot be used (missing, unreadable, not PEM, a key that does
 * not match its certificate) is rejected like any other bad entry: its last-known-good backends stay, with their
 * material. Checked on every scan, not only when the backend file changes, so a CA file that appears later is
 * picked up by the next scan (at most the resync interval).
 */
function withTlsFiles(file: string, parsed: ParsedFile): ParsedFile {
  if (!parsed.backends.some((b) => b.tls !== undefined)) return parsed;
  const problems: SourceProblem[] = [];
  const checked = new Map<string, [string, string][]>();
  parsed.backends.forEach((b, i) => {
    if (b.tls === undefined) return;
    const key = JSON.stringify(b.tls);
    let found = checked.get(key);
    if (found === undefined) {
      const loaded = loadTlsMaterial(b.tls);
      found = 'problems' in loaded ? loaded.problems : [];
      checked.set(key, found);
    }
    for (const [field, message] of found) problems.push(Object.freeze({ file, pointer: `${parsed.pointers[i]}/tls/${field}`, message }));
  });
  if (problems.length === 0) return parsed;
  return Object.freeze({ backends: Object.freeze([]), pointers: Object.freeze([]), problems: Object.freeze(problems) });
}
