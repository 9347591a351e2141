import type { Config } from '../config/types.js';
import { DirectorySource } from '../discovery/directory/index.js';
import type { DiscoverySource, Snapshot } from '../discovery/source.js';
import { StaticSource } from '../discovery/static.js';
import { createStrategy } from '../strategies/index.js';
import { defaultContext } from '../strategies/strategy.js';
import { globalTlsProblems, globalTlsSpec } from '../tls/global.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** Takes one snapshot from a source, exactly as the running bulb would see it, and stops it. */
async function snapshotOnce(source: DiscoverySource): Promise<Snapshot> {
  let snap: Snapshot | undefined;
  await source.start((s) => (snap ??= s));
  await source.stop();
  if (snap === undefined) throw new Error(`${source.name}: start() resolved before its first snapshot`);
  return snap;
}

/**
 * `bulb check`: the config was already validated by loading it; this validates the strategy and every backend
 * file with the very code the running bulb uses. Prints one line per problem and returns the exit code.
 */
export async function runCheck(config: Config, out: NodeJS.WritableStream): Promise<number> {
  let problems = 0;
  const say = (line: string) => out.write(`${line}\n`);
  if (config.configFile) say(`ok    config ${config.configFile}`);
  try {
    const s = await createStrategy(config.strategy, defaultContext({ hashKey: config.hashKey }));
    say(`ok    strategy ${s.name}`);
  } catch (err) {
    problems++;
    say(`error strategy: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const line of globalTlsProblems(globalTlsSpec(config))) {
    problems++;
    say(`error ${line}`);
  }
  const sources: DiscoverySource[] = [];
  if (config.backends.length > 0) sources.push(new StaticSource(config.backends));
  for (const dir of config.watchDirs) sources.push(new DirectorySource({ dir, log: quiet }));
  for (const source of sources) {
    const snap = await snapshotOnce(source);
    if (snap.error) {
      problems++;
      say(`error ${source.name}: ${snap.error}`);
    }
    for (const p of snap.problems) {
      problems++;
      say(`error ${p.file}: ${p.pointer || '(whole file)'}: ${p.message}`);
    }
    say(`${snap.problems.length || snap.error ? 'warn ' : 'ok   '} ${source.name}: ${snap.backends.length} valid backend(s)`);
  }
  say(problems === 0 ? 'check passed' : `check failed: ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}
