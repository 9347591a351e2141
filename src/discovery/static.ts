/**
 * The `--backend URL` source: a fixed list from the command line (or the config file's `backends`). It reports
 * once and never changes. The URLs were validated when the config was loaded, but they are checked again with
 * the same rule here, so a caller that skipped validation still gets problems instead of a bad backend.
 */
import { parseBackendUrl } from '../values.js';
import type { BackendSpec, DiscoverySource, SnapshotListener, SourceProblem } from './source.js';

/** What static backends report as their file and origin. */
export const STATIC_ORIGIN = '--backend';

export class StaticSource implements DiscoverySource {
  readonly name = 'static';
  private readonly urls: readonly string[];
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(urls: readonly string[]) {
    this.urls = Object.freeze([...urls]);
  }

  /** Delivers the single snapshot synchronously, then resolves. */
  start(onSnapshot: SnapshotListener): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/require-await -- async so that a throw while building the snapshot becomes a rejection
    this.startPromise ??= (async () => {
      const backends: BackendSpec[] = [];
      const problems: SourceProblem[] = [];
      const firstById = new Map<string, number>();
      this.urls.forEach((input, i) => {
        const parsed = parseBackendUrl(input);
        // The pointer is the position among the --backend values, so two bad flags can be told apart.
        const pointer = `/${i}`;
        if ('error' in parsed) {
          problems.push(Object.freeze({ file: STATIC_ORIGIN, pointer, message: `url: ${parsed.error}` }));
          return;
        }
        const earlier = firstById.get(parsed.id);
        if (earlier !== undefined) {
          problems.push(
            Object.freeze({
              file: STATIC_ORIGIN,
              pointer,
              message: `duplicate backend "${parsed.id}": --backend ${this.urls[earlier]} already names it`,
            }),
          );
          return;
        }
        firstById.set(parsed.id, i);
        backends.push(Object.freeze({ id: parsed.id, url: parsed.url, weight: 1, source: this.name, origin: STATIC_ORIGIN }));
      });
      onSnapshot(Object.freeze({ source: this.name, backends: Object.freeze(backends), problems: Object.freeze(problems) }));
    })();
    return this.startPromise;
  }

  /** Nothing to release; idempotent like every source's stop. */
  stop(): Promise<void> {
    this.stopPromise ??= Promise.resolve();
    return this.stopPromise;
  }
}
