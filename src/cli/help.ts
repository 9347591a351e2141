/**
 * `bulb --help`, generated from the settings table, so it cannot drift from what the loader accepts
 * (docs/configuration.md is generated from the same table and carries this text word for word).
 */
import { BUILTIN_STRATEGIES } from '../config/formats.js';
import { CONFIG_ENV, SETTINGS, type AnySetting } from '../config/settings.js';

/** Flags that are not settings: they choose what bulb does, or where the settings come from. */
export interface CommandFlag {
  readonly flag: `--${string}`;
  readonly short?: `-${string}`;
  readonly env?: `BULB_${string}`;
  /** Value placeholder, absent for a switch. */
  readonly value?: string;
  readonly description: string;
}

export const COMMAND_FLAGS: readonly CommandFlag[] = Object.freeze([
  {
    flag: '--config',
    env: CONFIG_ENV,
    value: 'FILE',
    description: 'Read settings from FILE (YAML or JSON; keys as in the flags, camelCase: listen, watchDirs, ...).',
  },
  { flag: '--check', description: 'Validate the settings and exit without serving; the same as `bulb check`.' },
  { flag: '--help', short: '-h', description: 'Print this help and exit.' },
  { flag: '--version', short: '-v', description: 'Print the version and exit.' },
] satisfies CommandFlag[]);

/** The notes at the end of `--help`: how values are written and combined. */
export const HELP_NOTES: readonly string[] = Object.freeze([
  'Precedence: config file < BULB_* environment variables < flags. An empty variable counts as unset.',
  'Durations: a number with a unit, ms, s, m or h (250ms, 2s, 1m, 1.5m); a bare number means seconds (1.5 = 1500ms).',
  "Lists: a repeatable flag or a comma-separated variable replaces the config file's list; it does not append to it.",
  'Watch directories are read at the top level only (subdirectories are ignored). Backend files are *.json, *.yaml and *.yml; dotfiles and editor backups are ignored. A backend file looks like:',
  "Relative paths (--watch-dir, a strategy module) are resolved against the current directory, or against the config file's folder when they come from the file.",
  `Built-in strategies: ${BUILTIN_STRATEGIES.join(', ')}.`,
]);

/** The example that follows the backend-file note. */
export const BACKEND_FILE_EXAMPLE = '{ "url": "http://10.0.0.5:8080", "weight": 3 }';

const WIDTH = 80;
const INDENT = '      ';

export function helpText(): string {
  const lines: string[] = [
    'bulb: a sidecar HTTP load balancer',
    '',
    'Usage:',
    '  bulb [flags]          run the load balancer',
    '  bulb check [flags]    validate the settings and exit (also: --check)',
    '',
    'Settings (config file key in brackets):',
  ];
  for (const s of SETTINGS) lines.push(...settingLines(s));
  lines.push('', 'Other flags:');
  for (const flag of COMMAND_FLAGS) lines.push(...commandLines(flag));
  lines.push('', 'Notes:');
  for (const note of HELP_NOTES) {
    lines.push(...wrap(note, '  '));
    if (note.endsWith('A backend file looks like:')) lines.push(`    ${BACKEND_FILE_EXAMPLE}`);
  }
  return lines.join('\n') + '\n';
}

/** A default as `--help` and the docs show it: lists joined, an empty value as `none`. */
export function shownDefault(s: AnySetting): string {
  const d: unknown = s.default;
  return Array.isArray(d) ? (d.length ? d.join(', ') : 'none') : d === '' ? 'none' : String(d);
}

function settingLines(s: AnySetting): string[] {
  const head = `  ${s.flag} ${s.value}${s.repeatable ? '  (repeatable)' : ''}  [${s.key}]`;
  const env = s.repeatable ? `${s.env} (comma-separated)` : s.env;
  return [head, ...wrap(`${s.help} Default: ${shownDefault(s)}. Env: ${env}.`, INDENT)];
}

function commandLines(flag: CommandFlag): string[] {
  const names = flag.short ? `${flag.short}, ${flag.flag}` : flag.flag;
  const head = `  ${names}${flag.value ? ` ${flag.value}` : ''}`;
  return [head, ...wrap(`${flag.description}${flag.env ? ` Env: ${flag.env}.` : ''}`, INDENT)];
}

/** Greedy word wrap to WIDTH columns; a word longer than the line stays whole. */
function wrap(text: string, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && indent.length + line.length + 1 + word.length > WIDTH) {
      out.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(indent + line);
  return out;
}
