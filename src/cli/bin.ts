#!/usr/bin/env node
// First: V8 flags must be set before the code they affect runs.
import './v8-flags.js';
import { BulbError } from '../errors.js';
import { createLogger, flushLogs } from '../log.js';
import { startBulb } from '../main.js';
import { parseCommandLine } from './args.js';
import { runCheck } from './check.js';

/** Prints a readable error, never a stack trace, and sets a non-zero exit code. */
function fail(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof BulbError ? ` (${err.code})` : '';
  process.stderr.write(`bulb: ${message}${code}\n`);
  if (err instanceof BulbError && err.code === 'BULB_E_INVALID_ARGUMENT' && !message.includes('--help')) process.stderr.write('Run "bulb --help" for usage.\n');
  process.exitCode = err instanceof BulbError && err.code === 'BULB_E_INVALID_ARGUMENT' ? 2 : 1;
}

async function main(): Promise<void> {
  const result = await parseCommandLine({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  if (result.kind === 'help' || result.kind === 'version') {
    process.stdout.write(result.text.endsWith('\n') ? result.text : `${result.text}\n`);
    return;
  }
  if (result.kind === 'check') {
    process.exitCode = await runCheck(result.config, process.stdout);
    return;
  }
  const config = result.config;
  const log = createLogger(config.logLevel);
  const bulb = await startBulb(config, log);

  const stop = (signal: NodeJS.Signals) => {
    // Not awaited: a signal handler. A shutdown that rejects is a bug; the rejection reaches the
    // uncaughtException handler below, which logs it and exits 70.
    void bulb.shutdown(signal).then(() => {
      flushLogs(log);
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('uncaughtException', (err) => {
    // A bug, not bad input: log it whole for the operator (never to a client) and let the supervisor restart us.
    log.fatal({ err }, 'uncaught exception; exiting');
    flushLogs(log);
    process.exit(70);
  });
}

main().catch(fail);
