/**
 * Decides *when* the directory source scans; never *what* it finds. Every chokidar event is only a trigger: after
 * a short quiet window the owner rescans the whole directory (`rescan`), so an event that was lost, reordered or
 * of a surprising type (the ConfigMap `..data` symlink swap, editors' rename dances) cannot leave the snapshot out
 * of step. A periodic resync catches events that never arrive at all.
 *
 * Also here: the fallback to chokidar's polling watcher when inotify runs out of watches, a new watcher when the
 * directory is replaced, and checking every `missingCheckMs` for a directory that is gone.
 */
import path from 'node:path';
import type { Stats } from 'node:fs';
import type { FSWatcher } from 'chokidar';
import type { SourceLogger } from '../source.js';

/** How the source currently learns about changes. `none` while the directory is missing or after stop. */
export type WatchMode = 'native' | 'polling' | 'none';

export interface WatcherOptions {
  /** Absolute and normalised. */
  readonly dir: string;
  readonly log: SourceLogger;
  /** Quiet window after the last event before rescanning. */
  readonly debounceMs: number;
  /** A steady stream of events still rescans at least this often; >= debounceMs. */
  readonly maxWaitMs: number;
  readonly resyncMs: number;
  readonly missingCheckMs: number;
  /** Start with the polling watcher. */
  readonly usePolling: boolean;
  readonly pollIntervalMs: number;
  /** Scan now. Called from timers and watcher events; the owner serialises scans. */
  readonly rescan: () => void;
}

export class DirectoryWatcher {
  private readonly options: WatcherOptions;
  private readonly dir: string;
  private readonly log: SourceLogger;
  /** Sticky: once the native watcher has failed we never go back to it. */
  private polling: boolean;
  private stopped = false;

  private fsWatcher: FSWatcher | undefined;
  /** `dev:ino` of the directory the watcher was created on; a replaced directory needs a new watcher. */
  private watchedIdentity: string | undefined;

  private debounceTimer: NodeJS.Timeout | undefined;
  private burstStart: number | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private missingTimer: NodeJS.Timeout | undefined;

  constructor(options: WatcherOptions) {
    this.options = options;
    this.dir = options.dir;
    this.log = options.log;
    this.polling = options.usePolling;
  }

  get mode(): WatchMode {
    if (!this.fsWatcher) return 'none';
    return this.polling ? 'polling' : 'native';
  }

  /** Rescan every `resyncMs` from now on, events or not. */
  startResync(): void {
    if (this.stopped || this.resyncTimer) return;
    this.resyncTimer = setInterval(() => this.trigger(), this.options.resyncMs);
  }

  /** Any event: rescan after `debounceMs` of quiet, but no later than `maxWaitMs` after the first event. */
  trigger(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.burstStart ??= now;
    clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.options.debounceMs, this.burstStart + this.options.maxWaitMs - now));
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.burstStart = undefined;
      this.options.rescan();
    }, wait);
  }

  /**
   * Make sure a watcher follows the directory the scan just found, `identity` being its `dev:ino`. Resolves once
   * the watcher is created, not once it is ready: chokidar lists the whole directory before it starts watching
   * (0.2 s at 10,000 files), and the first snapshot need not wait for that. A change in between is not lost: once
   * the watcher is ready it triggers one more scan, and later changes are events.
   */
  async watch(identity: string): Promise<void> {
    if (this.stopped || (this.fsWatcher && this.watchedIdentity === identity)) return;
    try {
      if (this.fsWatcher) {
        // Same path, different directory (replaced by rename): the old watcher still follows the old inode.
        this.log.info({ dir: this.dir }, 'directory was replaced; watching the new one');
        await this.close();
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
        interval: this.options.pollIntervalMs,
        binaryInterval: this.options.pollIntervalMs,
        ...(!this.polling && { ignored: ownWatchNotNeeded(this.dir) }),
      });
      this.fsWatcher = watcher;
      this.watchedIdentity = identity;
      // `raw` as well as the typed events: chokidar drops a `change` within 50 ms of the previous one on the same
      // path (its own throttle), so a second quick write would go unseen until the resync. Raw events are every
      // underlying fs.watch / fs.watchFile notification, unthrottled; the debounce coalesces them.
      watcher.on('all', () => this.trigger());
      watcher.on('raw', () => this.trigger());
      watcher.on('error', (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
      watcher.once('ready', () => {
        if (this.fsWatcher === watcher) this.trigger();
      });
    } catch (err) {
      // chokidar reports failures as `error` events; this is for one thrown synchronously instead.
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** The directory is gone or unreadable: a watcher on it watches nothing, so drop it and look again later. */
  async missing(): Promise<void> {
    await this.close();
    if (this.stopped) return;
    clearTimeout(this.missingTimer);
    this.missingTimer = setTimeout(() => {
      this.missingTimer = undefined;
      this.options.rescan();
    }, this.options.missingCheckMs);
  }

  /**
   * A watcher failure. Out of inotify watches or file descriptors: switch to polling for good, and rescan at once.
   * Anything else affects one entry at most; the next scan (or resync) sees the directory as it is.
   */
  fail(err: Error): void {
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
      // Not awaited: this is chokidar's error handler. close() only awaits chokidar's own close, and rescan()
      // catches what a scan throws (DirectorySource.runScan logs it).
      void this.close().then(() => this.options.rescan());
      return;
    }
    this.log.warn({ err, dir: this.dir, code }, 'directory watcher error');
    this.trigger();
  }

  /** No more triggers, timers or watchers. Idempotent. */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounceTimer);
    clearInterval(this.resyncTimer);
    clearTimeout(this.missingTimer);
    this.debounceTimer = this.resyncTimer = this.missingTimer = undefined;
    return this.close();
  }

  private async close(): Promise<void> {
    const w = this.fsWatcher;
    this.fsWatcher = undefined;
    this.watchedIdentity = undefined;
    if (w) await w.close();
  }
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
