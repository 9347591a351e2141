/**
 * Health checking, wired to the pool: one `ActiveChecker` per backend (started on 'added', re-read on 'updated',
 * stopped on 'removed') and one `OutlierDetector` fed by `Pool.onOutcome`. Both change routability only through
 * `Pool.setHealth`, each with its own cause, so a backend that passes its checks but keeps failing real requests
 * is still ejected, and an ejection ending does not bring back a backend whose checks fail.
 *
 * Threading: everything runs on the event loop; pool events arrive synchronously from the controller's apply step.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Backend } from '../pool/backend.js';
import type { Pool, PoolEvent } from '../pool/pool.js';
import { ActiveChecker, resolveSettings, type CheckReport, type CheckSettings, type HealthDefaults, type Probe } from './active.js';
import type { TlsMaterial } from '../tls/material.js';
import { OutlierDetector, type HealthLog, type OutlierSettings } from './passive.js';

export type { HealthDefaults } from './active.js';
export type { OutlierSettings } from './passive.js';

export interface HealthManagerOptions {
  readonly pool: Pool;
  readonly health: HealthDefaults;
  readonly outlier: OutlierSettings;
  readonly log: HealthLog;
  /** Told of every outlier ejection (metrics). */
  readonly onEjected?: (backend: Backend) => void;
  /** The TLS material of an https backend (the pool's, so checks verify as traffic does). */
  readonly tls?: (backend: Backend) => TlsMaterial | undefined;
  /** Tests only: a fake probe and fixed jitter. */
  readonly probe?: Probe;
  readonly rand?: () => number;
}

interface Watched {
  readonly backend: Backend;
  settings: CheckSettings;
  /** The url the checker probes (a spec update may change the backend's). */
  url: string;
  checker: ActiveChecker | undefined;
}

export class HealthManager {
  private readonly opts: HealthManagerOptions;
  private readonly watched = new Map<string, Watched>();
  private readonly outliers: OutlierDetector;
  private started = false;
  private stopped = false;
  private defaultSettings: CheckSettings | undefined;

  constructor(opts: HealthManagerOptions) {
    this.opts = opts;
    this.outliers = new OutlierDetector({
      pool: opts.pool,
      settings: opts.outlier,
      log: opts.log,
      ...(opts.onEjected && { onEjected: opts.onEjected }),
    });
  }

  /** Subscribes to the pool. Call once, before the sources start, so the first backends are checked at once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.pool.onEvent(this.onEvent);
    this.opts.pool.onOutcome(this.outliers.onOutcome);
    for (const b of this.opts.pool.all()) this.watch(b);
  }

  /** Stops every checker and ejection timer. Idempotent. Pool listeners stay registered but do nothing. */
  stop(): void {
    this.stopped = true;
    for (const w of this.watched.values()) w.checker?.stop();
    this.watched.clear();
    this.outliers.stop();
  }

  private readonly onEvent = (e: PoolEvent): void => {
    if (this.stopped) return;
    switch (e.kind) {
      case 'added':
        this.watch(e.backend);
        break;
      case 'updated':
        this.reread(e.backend);
        break;
      case 'removed':
        this.watched.get(e.backend.id)?.checker?.stop();
        this.watched.delete(e.backend.id);
        this.outliers.forget(e.backend.id);
        break;
      default:
        break;
    }
  };

  /** A backend's check settings; the many without a `health` block share one object. */
  private settingsFor(backend: Backend): CheckSettings {
    if (backend.spec.health !== undefined) return resolveSettings(this.opts.health, backend.spec.health);
    this.defaultSettings ??= resolveSettings(this.opts.health, undefined);
    return this.defaultSettings;
  }

  private watch(backend: Backend): void {
    if (this.watched.has(backend.id)) return;
    const settings = this.settingsFor(backend);
    const w: Watched = { backend, settings, url: backend.url, checker: undefined };
    this.watched.set(backend.id, w);
    if (settings.mode === 'off') return;
    // Pessimistic start only when checks run: with checks off nothing could ever bring the backend back.
    const initiallyHealthy = this.opts.health.initial === 'healthy';
    if (!initiallyHealthy) this.opts.pool.setHealth(backend.id, false, 'failing-checks');
    w.checker = this.newChecker(w, initiallyHealthy);
    w.checker.start();
  }

  private reread(backend: Backend): void {
    const w = this.watched.get(backend.id);
    if (!w) { this.watch(backend); return; }
    const settings = this.settingsFor(backend);
    if (isDeepStrictEqual(settings, w.settings) && backend.url === w.url) return;
    w.settings = settings;
    w.url = backend.url;
    if (settings.mode === 'off') {
      // Checks turned off: nothing may keep the backend out on their account.
      w.checker?.stop();
      w.checker = undefined;
      if (backend.checksFailing) this.setChecks(backend, true, 'health checks turned off', 0);
      return;
    }
    if (w.checker) w.checker.update(backend.url, settings);
    else {
      w.checker = this.newChecker(w, !backend.checksFailing);
      w.checker.start();
    }
  }

  private newChecker(w: Watched, initiallyHealthy: boolean): ActiveChecker {
    // A plain literal, not conditional spreads: V8 gives each object built by spreading its own hidden class
    // (~150 bytes), one per backend.
    const tls = this.opts.tls;
    return new ActiveChecker(w.url, w.settings, initiallyHealthy, {
      probe: this.opts.probe,
      rand: this.opts.rand,
      tls: tls && (() => (w.backend.url.startsWith('https:') ? tls(w.backend) : undefined)),
      onResult: (r: CheckReport) => {
        if (this.stopped || this.watched.get(w.backend.id) !== w) return;
        if (r.result.ok) this.outliers.checkPassed(w.backend);
        if (!r.changed) return;
        this.setChecks(w.backend, r.state.healthy, r.result.ok ? 'checks passing' : r.result.reason, r.streak);
      },
    });
  }

  /** Applies an active-check verdict and logs it: one line per state change, never per check. */
  private setChecks(backend: Backend, passing: boolean, reason: string, consecutive: number): void {
    this.opts.pool.setHealth(backend.id, passing, 'failing-checks');
    const fields = { backend: backend.id, healthy: backend.healthy, reason, consecutive };
    if (passing) this.opts.log.info(fields, backend.healthy ? 'backend passing health checks; back in rotation' : 'backend passing health checks; still ejected');
    else this.opts.log.warn(fields, 'backend failing health checks; out of rotation');
  }
}
