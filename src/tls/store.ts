/**
 * The controller's TLS material, one entry per distinct `BackendTlsSpec` in use, loaded on first use and
 * reloaded when its files change (a renewed Kubernetes Secret swaps its `..data` symlink: the stat of the path,
 * which follows symlinks, then shows another inode). A change bumps the entry's version and calls `onChange`, so
 * the pool sends a new snapshot and every data plane opens its *new* connections with the new material; open
 * connections finish on the old one.
 *
 * Last good material wins: a reload that fails (a file gone, half written, garbled) is logged with the file and
 * the reason, once per change of the files, and the entry keeps what it had. Files are polled (one stat per
 * file per `pollMs`) rather than watched: a watch on a file is lost when the file is replaced, and the number of
 * files is small (a few per source).
 */
import { statSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { loadTlsMaterial, type BackendTlsSpec, type TlsConnectOptions, type TlsMaterial } from './material.js';

export interface TlsStoreLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface Entry {
  readonly id: number;
  readonly spec: BackendTlsSpec;
  /** Bumped on every material change. */
  generation: number;
  options: TlsConnectOptions | undefined;
  /** Set while no material has ever loaded. */
  error: string | undefined;
  /** The files' stat signature the material (or the last failure) was read at. */
  signature: string;
  material: TlsMaterial;
}

/** How often the files are stat'ed for changes, by default. */
export const TLS_POLL_MS = 1000;

export class TlsStore {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private nextId = 0;

  constructor(
    private readonly opts: {
      readonly log: TlsStoreLog;
      /** Called after a reload changed some material (not on first load). */
      readonly onChange?: () => void;
      readonly pollMs?: number;
      /**
       * The specs still in use (the pool's backends'); entries for any other are dropped at the next poll, so
       * a backend file whose tls block changed does not leave its old files polled forever.
       */
      readonly inUse?: () => Iterable<BackendTlsSpec>;
    },
  ) {}

  /**
   * The current material for `spec` (loaded now when it is new). `origin` names who declared it, for the log
   * lines (a backend file, `--backend-tls-*`).
   */
  material(spec: BackendTlsSpec, origin: string): TlsMaterial {
    const key = JSON.stringify(spec);
    let e = this.entries.get(key);
    if (e === undefined) {
      e = this.load(spec, origin);
      this.entries.set(key, e);
      this.startPolling();
    }
    return e.material;
  }

  /** Stops polling. Idempotent. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private load(spec: BackendTlsSpec, origin: string): Entry {
    const id = this.nextId++;
    if (spec.insecureSkipVerify === true) {
      this.opts.log.warn({ origin }, 'TLS certificate verification of backends is OFF (insecureSkipVerify): any certificate is accepted, so the connection can be intercepted');
    }
    const signature = filesSignature(spec);
    const loaded = loadTlsMaterial(spec);
    const e: Entry = { id, spec, generation: 0, options: undefined, error: undefined, signature, material: { version: `${id}:0`, error: '' } };
    if ('options' in loaded) e.options = loaded.options;
    else {
      e.error = loaded.problems.map(([, m]) => m).join('; ');
      for (const [, reason] of loaded.problems) this.opts.log.error({ origin, reason }, 'backend TLS material cannot be loaded; its https backends fail with 502 until it can');
    }
    e.material = materialOf(e);
    return e;
  }

  private startPolling(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.poll(), this.opts.pollMs ?? TLS_POLL_MS);
    this.timer.unref();
  }

  /** Re-reads the entries whose files changed since they were last read. */
  poll(): void {
    if (this.opts.inUse !== undefined) {
      const keep = new Set<string>();
      for (const spec of this.opts.inUse()) keep.add(JSON.stringify(spec));
      for (const key of this.entries.keys()) if (!keep.has(key)) this.entries.delete(key);
    }
    let changed = false;
    for (const e of this.entries.values()) {
      const signature = filesSignature(e.spec);
      if (signature === e.signature) continue;
      e.signature = signature;
      const loaded = loadTlsMaterial(e.spec);
      if ('problems' in loaded) {
        for (const [, reason] of loaded.problems) {
          this.opts.log.error({ reason, ...(e.options && { keeping: 'the last good material' }) }, e.options ? 'backend TLS files changed but cannot be loaded; keeping the last good material' : 'backend TLS material still cannot be loaded');
        }
        continue;
      }
      if (e.options !== undefined && isDeepStrictEqual(loaded.options, e.options)) continue;
      e.options = loaded.options;
      e.error = undefined;
      e.generation++;
      e.material = materialOf(e);
      this.opts.log.info({ files: [e.spec.ca, e.spec.cert, e.spec.key].filter((f) => f !== undefined) }, 'backend TLS material reloaded; new connections use it');
      changed = true;
    }
    if (changed) this.opts.onChange?.();
  }
}

function materialOf(e: Entry): TlsMaterial {
  const version = `${e.id}:${e.generation}`;
  return Object.freeze(e.options !== undefined ? { version, options: e.options } : { version, error: e.error ?? 'TLS material not loaded' });
}

/** mtime, size and inode of each file (following symlinks), or `-` for one that cannot be stat'ed. */
function filesSignature(spec: BackendTlsSpec): string {
  return [spec.ca, spec.cert, spec.key]
    .map((f) => {
      if (f === undefined) return '';
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return '-';
      }
    })
    .join('|');
}
