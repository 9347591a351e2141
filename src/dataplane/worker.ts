/**
 * A data-plane worker thread: the traffic listener, the proxy and the strategy, over a pool view the controller
 * keeps current with snapshots. It decides nothing about backends; it moves bytes and reports back (see
 * workers.ts for the controller's side, and snapshot.ts for the report order).
 */
import type { AddressInfo, Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createLogger } from '../log.js';
import type { Reporter } from '../pool/snapshot.js';
import { createStrategy } from '../strategies/index.js';
import { defaultContext } from '../strategies/strategy.js';
import type { FromWorker, ReportBatch, ToWorker, WorkerInit } from './messages.js';
import { buildDataPlane, stopDataPlane, stopListening } from './plane.js';
import { loadCounters } from '../pool/load-slots.js';

if (!parentPort) throw new Error('dataplane/worker.js runs only as a worker thread (new Worker), not on its own');
const port = parentPort;
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

const log = createLogger(init.config.logLevel, (chunk) => post({ t: 'log', chunk })).child({ worker: init.index });

/** Reports gathered during one event-loop turn, sent as one message at its end. */
let batch: ReportBatch = { attempts: [], exchanges: [], retries: [], refused: [] };
let scheduled = false;
const sendBatch = (): void => {
  scheduled = false;
  if (batch.attempts.length === 0 && batch.exchanges.length === 0 && batch.retries.length === 0 && batch.refused.length === 0) return;
  post({ t: 'report', ...batch });
  batch = { attempts: [], exchanges: [], retries: [], refused: [] };
};
const schedule = (): void => {
  if (scheduled) return;
  scheduled = true;
  setImmediate(sendBatch);
};
let requests = 0;
const reporter: Reporter = {
  attemptDone(id, outcome, ewmaMs) {
    batch.attempts.push(id, outcome.status ?? -1, outcome.error ?? '', ewmaMs);
    schedule();
  },
  exchangeDone(backend, status, durationMs) {
    requests++;
    batch.exchanges.push(backend ?? '', status, durationMs);
    schedule();
  },
  retried(backend, error) {
    batch.retries.push(backend, error);
    schedule();
  },
  retryRefused(backend) {
    batch.refused.push(backend);
    schedule();
  },
};

const strategy = await createStrategy(init.config.strategy, defaultContext({ hashKey: init.config.hashKey, sharedLoad: true }));
const plane = buildDataPlane({ config: init.config, strategy, log, reporter, counters: loadCounters(init.load), stride: init.stride, worker: init.index });
plane.pool.apply(init.snapshot);

const lag = monitorEventLoopDelay({ resolution: 20 });
lag.enable();
let connections = 0;
plane.traffic.on('connection', (socket: Socket) => {
  connections++;
  socket.once('close', () => connections--);
});

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'snapshot':
      plane.pool.apply(m.snapshot);
      post({ t: 'applied', version: plane.pool.version });
      return;
    case 'flush': {
      sendBatch();
      const stats = { index: init.index, threadId, requests, connections, eventLoopLagSeconds: lag.mean / 1e9 || 0, eventLoopLagP99Seconds: lag.percentile(99) / 1e9 || 0, eventLoopLagMaxSeconds: lag.max / 1e9 || 0 };
      lag.reset();
      post({ t: 'flushed', id: m.id, stats });
      return;
    }
    case 'draining':
      plane.draining = true;
      return;
    case 'unlisten':
      // Its promise (every connection ended) is awaited by the 'stop' that follows.
      void stopListening(plane);
      post({ t: 'unlistened' });
      return;
    case 'stop':
      // Not awaited: a message handler. The controller waits for 'stopped', and terminates a worker that does
      // not send it by the deadline; a rejection here is a bug that ends the worker ('error' in WorkerGroup).
      void stopDataPlane(plane, m.deadline).then((drained) => {
        sendBatch();
        lag.disable();
        post({ t: 'stopped', drained });
        port.close();
      });
      return;
  }
});

plane.traffic.once('error', (err: NodeJS.ErrnoException) => post({ t: 'listen-error', message: err.message, code: err.code }));
// Every worker has its own listening socket on the same address (SO_REUSEPORT): the kernel spreads new
// connections over them, and a worker that dies takes only its own socket with it.
plane.traffic.listen({ host: init.listen.host, port: init.listen.port, reusePort: true }, () => {
  const a = plane.traffic.address() as AddressInfo;
  post({ t: 'listening', address: { host: a.address, port: a.port } });
});
