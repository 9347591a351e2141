/**
 * The discovery contract. A source watches one place where backends are declared (a directory, DNS, the
 * command line) and reports the *whole* set it currently sees, never a delta: the controller can then treat
 * every report the same way, and a lost or reordered event can never leave the pool out of step.
 * Models: Traefik's providers sending whole configurations, grpc's `resolver.State`.
 */

import type { BackendTlsSpec } from '../tls/material.js';

/** One backend as a source declares it. Frozen: the controller and the pool never mutate a spec. */
export interface BackendSpec {
  /** Stable identity across reports. Defaults to `host:port` of the URL, so two sources naming the same server agree. */
  readonly id: string;
  /** Normalised origin, `http://host:port` or `https://host:port` (no path, query, fragment or credentials). */
  readonly url: string;
  /** Integer >= 1. Relative share for the weighted strategies. */
  readonly weight: number;
  /**
   * RFC 2782 priority, lower preferred; absent means 0. Only DNS SRV sets it. Within one source, only the
   * healthy backends of the lowest priority that has any are routable; the next group takes over when the
   * whole group is down (see `Pool.rebuild`). Priorities of different sources are not compared.
   */
  readonly priority?: number;
  /** Which source declared it (the source's name). */
  readonly source: string;
  /** Where inside the source, for people: a file path, a DNS name, `--backend`. */
  readonly origin: string;
  /** At most this many requests in flight; at the limit the pool leaves it out of `routable`. Absent: no limit. */
  readonly maxConnections?: number;
  /** Slow-start ramp for this backend, ms; absent: the `--slow-start` default. */
  readonly slowStartMs?: number;
  /** Active health-check settings for this backend (a backend file's `health` block); each absent field takes the `--health-*` default. Frozen. */
  readonly health?: BackendHealthSpec;
  /** TLS to this backend when its url is https (a backend file's `tls` block, paths absolute); absent: the `--backend-tls-*` settings. Frozen. */
  readonly tls?: BackendTlsSpec;
}

/** A backend file's `health` block, parsed (durations in ms). Every field is optional. */
export interface BackendHealthSpec {
  readonly mode?: 'http' | 'tcp' | 'grpc' | 'off';
  readonly path?: string;
  /** The service a gRPC check asks about ('' = the whole server). */
  readonly service?: string;
  /** Accepted HTTP statuses, inclusive: `[200, 399]`. */
  readonly status?: readonly [number, number];
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly rise?: number;
  readonly fall?: number;
}

/** A piece of a source's input that was rejected; the rest of the source is still applied. */
export interface SourceProblem {
  /** The file path (or DNS name, or flag) the problem is in. */
  readonly file: string;
  /** JSON pointer into the document, `""` for the whole document. */
  readonly pointer: string;
  /** Readable reason, e.g. `weight must be >= 1`. */
  readonly message: string;
}

/**
 * The full desired state of one source at one moment. `error` is set when the source as a whole could not be
 * read (directory missing, DNS server down); it then carries its last-known-good backends.
 */
export interface Snapshot {
  readonly source: string;
  readonly backends: readonly BackendSpec[];
  readonly problems: readonly SourceProblem[];
  readonly error?: string;
}

export type SnapshotListener = (snapshot: Snapshot) => void;

/** The logging a source needs; a pino logger satisfies it. Sources log their own input's problems and transitions. */
export interface SourceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DiscoverySource {
  /** Unique among the running sources, e.g. `dir:/etc/bulb/backends`, `static`. */
  readonly name: string;
  /**
   * Begin watching. Resolves once the first snapshot has been delivered to `onSnapshot`, so the caller knows
   * the source has synced once. Never rejects for bad input: problems travel inside snapshots.
   * After that, `onSnapshot` is called whenever the source's view may have changed (identical reports are allowed;
   * the controller treats them as no-ops).
   */
  start(onSnapshot: SnapshotListener): Promise<void>;
  /** Stop watching and release every handle. Idempotent: every call returns the same promise. */
  stop(): Promise<void>;
}
