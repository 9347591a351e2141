/**
 * The discovery contract. A source watches one place where backends are declared (a directory, DNS, the
 * command line) and reports the *whole* set it currently sees, never a delta: the controller can then treat
 * every report the same way, and a lost or reordered event can never leave the pool out of step.
 * Models: Traefik's providers sending whole configurations, grpc's `resolver.State`.
 */

/** One backend as a source declares it. Frozen: the controller and the pool never mutate a spec. */
export interface BackendSpec {
  /** Stable identity across reports. Defaults to `host:port` of the URL, so two sources naming the same server agree. */
  readonly id: string;
  /** Normalised origin, `http://host:port` or `https://host:port` (no path, query, fragment or credentials). */
  readonly url: string;
  /** Integer >= 1. Relative share for the weighted strategies. */
  readonly weight: number;
  /** Which source declared it (the source's name). */
  readonly source: string;
  /** Where inside the source, for people: a file path, a DNS name, `--backend`. */
  readonly origin: string;
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
