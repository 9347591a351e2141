/**
 * The command line: what bulb is asked to do (run, check, print help or its version) and the flags' values.
 * The flags come from the settings table (`src/config/settings.ts`) plus the few below that are not settings;
 * config then validates the values along with the environment and the config file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { SETTINGS, type AnySetting, type Config } from '../config/settings.js';
import { closest } from '../config/suggest.js';
import { InvalidArgumentError } from '../errors.js';
import { COMMAND_FLAGS, helpText } from './help.js';

export interface CommandLineOptions {
  /** The arguments after the command, e.g. `['check', '--listen', '127.0.0.1:0']`. */
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Base for relative paths given by flags, env vars and `--config`. */
  readonly cwd: string;
}

/** What the command line asks for. `help` and `version` do not read the config at all. */
export type CommandLine =
  | { readonly kind: 'run'; readonly config: Config }
  | { readonly kind: 'check'; readonly config: Config }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string };

/**
 * Parses the command line and, to run or check, loads the config; throws `InvalidArgumentError` for a bad flag
 * or env var and `InvalidConfigError` for a bad config file.
 */
export async function parseCommandLine(opts: CommandLineOptions): Promise<CommandLine> {
  const args = parseArgv(opts.argv);
  if (args.mode === 'help') return { kind: 'help', text: helpText() };
  if (args.mode === 'version') return { kind: 'version', text: `bulb ${await packageVersion()}` };
  const config = await loadConfig({ flags: args.values, configFile: args.config, env: opts.env, cwd: opts.cwd });
  return { kind: args.mode, config };
}

interface ParsedArgs {
  readonly mode: 'run' | 'check' | 'help' | 'version';
  readonly config: string | undefined;
  /** Raw flag values in order; a non-repeatable flag given twice keeps its last value. */
  readonly values: ReadonlyMap<AnySetting, readonly string[]>;
}

const SETTING_BY_FLAG = new Map<string, AnySetting>(SETTINGS.map((s) => [s.flag, s]));
const ALL_FLAGS = [...SETTINGS.map((s) => s.flag), ...COMMAND_FLAGS.map((c) => c.flag)];

/**
 * A small loop rather than `util.parseArgs`: parseArgs's own messages ("Unknown option '--x'. To specify a
 * positional argument starting with a '-', place it at the end…") are not the ones bulb wants to show, and it
 * cannot suggest the flag the user meant.
 */
function parseArgv(argv: readonly string[]): ParsedArgs {
  // --help and --version win over everything else on the line, including mistakes.
  if (argv.some((a) => a === '--help' || a === '-h')) return { mode: 'help', config: undefined, values: new Map() };
  if (argv.some((a) => a === '--version' || a === '-v')) return { mode: 'version', config: undefined, values: new Map() };

  let mode: 'run' | 'check' = 'run';
  let config: string | undefined;
  const values = new Map<AnySetting, string[]>();
  let i = 0;
  if (argv[0] === 'check') {
    mode = 'check';
    i = 1;
  }
  for (; i < argv.length; i++) {
    const token = argv[i];
    if (!token.startsWith('-') || token === '-') {
      if (token === 'check') throw new InvalidArgumentError('check: must come first, as in: bulb check [flags]');
      throw new InvalidArgumentError(`unexpected argument "${token}": bulb takes flags only (see bulb --help)`);
    }
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const name = eq === -1 ? token : token.slice(0, eq);
    const inline = eq === -1 ? undefined : token.slice(eq + 1);

    if (name === '--check') {
      if (inline !== undefined) throw new InvalidArgumentError('--check: takes no value');
      mode = 'check';
      continue;
    }
    const setting = SETTING_BY_FLAG.get(name);
    if (setting === undefined && name !== '--config') {
      const guess = closest(name, ALL_FLAGS);
      throw new InvalidArgumentError(
        `${name}: unknown flag${guess ? ` (did you mean ${guess}?)` : ''}; see bulb --help for the list`,
      );
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A value never starts with "-" for bulb's settings; a flag there means this one's value was forgotten.
      if (next !== undefined && !(next.startsWith('-') && next.length > 1)) {
        value = next;
        i++;
      }
    }
    const placeholder = setting ? setting.value : 'FILE';
    if (value === undefined) throw new InvalidArgumentError(`${name}: missing value (expected ${placeholder})`);
    if (setting === undefined) {
      if (value === '') throw new InvalidArgumentError(`--config: missing value (expected FILE)`);
      config = value;
    } else if (setting.repeatable) {
      values.set(setting, [...(values.get(setting) ?? []), value]);
    } else {
      values.set(setting, [value]);
    }
  }
  return { mode, config, values };
}

/** bulb's version, from the nearest package.json named bulb above this file (works from src/ and dist/src/). */
export async function packageVersion(): Promise<string> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg: unknown = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && (pkg as { name?: unknown }).name === 'bulb') {
        const version = (pkg as { version?: unknown }).version;
        if (typeof version === 'string') return version;
      }
    } catch {
      // no package.json here; keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
