/**
 * Child-process entry for `startBackendProcess`: runs one `startBackend` and takes orders over IPC, so a test can
 * SIGKILL a real backend process by PID and start it again on the same address.
 *
 * argv: NAME HOST PORT. Sends `{ type: 'ready', port }` once listening; answers `{ type: 'mode', mode, delayMs, healthzStatus }`
 * with `{ type: 'ack', id }`.
 */
import { startBackend, type BackendMode } from './backend.js';

interface Order {
  readonly type: 'mode';
  readonly id: number;
  readonly mode: BackendMode;
  readonly delayMs?: number;
  /** null: /healthz follows the mode again. */
  readonly healthzStatus?: number | null;
}

const [name = 'child', host = '127.0.0.1', port = '0'] = process.argv.slice(2);
const backend = await startBackend(name, { host, port: Number(port) });
process.on('message', (order: Order) => {
  if (order.type !== 'mode') return;
  backend.mode = order.mode;
  if (order.delayMs !== undefined) backend.delayMs = order.delayMs;
  if (order.healthzStatus !== undefined) backend.healthzStatus = order.healthzStatus ?? undefined;
  process.send?.({ type: 'ack', id: order.id });
});
// Orphaned (the test runner died): exit rather than hold the port.
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', port: backend.port });
