import { DataPool } from '../../src/dataplane/data-pool.js';
import type { Target } from '../../src/dataplane/target.js';
import type { Backend, Outcome } from '../../src/pool/backend.js';
import type { LoadSlots } from '../../src/pool/load-slots.js';
import { Pool, type PoolOptions } from '../../src/pool/pool.js';

/**
 * A controller pool with a data plane attached in this process, as `startBulb` wires them, but applying every
 * snapshot at once (synchronously) so unit tests can act and assert in one breath.
 */
const planes = new WeakMap<LoadSlots, DataPool>();

export function newPool(opts: PoolOptions & { loadChanged?: (t: Target) => void }): Pool {
  const { loadChanged, ...poolOpts } = opts;
  const pool = new Pool(poolOpts);
  const data = new DataPool({
    counters: pool.load.counters,
    stride: pool.load.stride,
    worker: 0,
    reporter: { attemptDone: pool.attemptDone, exchangeDone: () => {}, retried: () => {}, retryRefused: () => {} },
    ...(loadChanged && { loadChanged }),
  });
  pool.onChange(() => data.apply(pool.snapshot()));
  data.apply(pool.snapshot());
  planes.set(pool.load, data);
  return pool;
}

/** The data plane's view of a backend of a pool made by `newPool`. */
export function target(backend: Backend): Target {
  const t = planes.get(backend.load)?.get(backend.id);
  if (t === undefined) throw new Error(`${backend.id} is not in the data plane (was the pool made with newPool?)`);
  return t;
}

/** A request sent to `backend`, as the proxy sends one: `responded()` at headers, `done()` once at the end. */
export function begin(backend: Backend): { responded: () => void; done: (o: Outcome) => void } {
  const t = target(backend);
  const started = t.tryStart();
  if (started < 0) throw new Error(`${backend.id} is at its maxConnections`);
  let finished = false;
  return {
    responded: () => t.responded(started),
    done: (o) => {
      if (finished) return;
      finished = true;
      t.finish(o);
    },
  };
}
