import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Poll `predicate` every `intervalMs` (default 10 ms) until it returns true; reject after `timeoutMs`.
 * Tests wait on an observable state instead of sleeping a fixed time, so they are fast on a quiet machine and
 * still pass on a loaded one (CI here has two shared cores: be generous with timeouts).
 * `what` names the awaited state in the timeout error; a function is called only then, so it can show the
 * latest state (logs, snapshots).
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what?: string | (() => string),
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) {
      const label = typeof what === 'function' ? what() : (what ?? predicate.toString());
      throw new Error(`waitFor: timed out after ${timeoutMs} ms waiting for ${label}`);
    }
    await sleep(intervalMs);
  }
}
