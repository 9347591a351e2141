/**
 * `bulb --help`, generated from the options table and the schema's descriptions, so it cannot drift from what
 * the loader accepts (the docs drift test checks the README against the same table).
 */
import {
  BUILTIN_STRATEGIES,
  COMMAND_FLAGS,
  DEFAULTS,
  OPTIONS,
  describeSetting,
  type CommandFlag,
  type SettingOption,
} from '../config/schema.js';

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
  for (const option of OPTIONS) lines.push(...settingLines(option));
  lines.push('', 'Other flags:');
  for (const flag of COMMAND_FLAGS) lines.push(...commandLines(flag));
  lines.push(
    '',
    'Notes:',
    ...wrap(
      'Precedence: config file < BULB_* environment variables < flags. An empty variable counts as unset.',
      '  ',
    ),
    ...wrap(
      'Durations: a number with a unit, ms, s, m or h (250ms, 2s, 1m, 1.5m); a bare number means seconds (1.5 = 1500ms).',
      '  ',
    ),
    ...wrap(
      'Lists: a repeatable flag or a comma-separated variable replaces the config file\'s list; it does not append to it.',
      '  ',
    ),
    ...wrap(
      'Watch directories are read at the top level only (subdirectories are ignored). Backend files are *.json, *.yaml and *.yml; dotfiles and editor backups are ignored. A backend file looks like:',
      '  ',
    ),
    '    { "url": "http://10.0.0.5:8080", "weight": 3 }',
    ...wrap(
      'Relative paths (--watch-dir, a strategy module) are resolved against the current directory, or against the config file\'s folder when they come from the file.',
      '  ',
    ),
    ...wrap(`Built-in strategies: ${BUILTIN_STRATEGIES.join(', ')}.`, '  '),
  );
  return lines.join('\n') + '\n';
}

function settingLines(option: SettingOption): string[] {
  const head = `  ${option.flag} ${option.value}${option.repeatable ? '  (repeatable)' : ''}  [${option.key}]`;
  const dflt = DEFAULTS[option.key];
  const shownDefault = Array.isArray(dflt) ? (dflt.length ? dflt.join(', ') : 'none') : dflt === '' ? 'none' : String(dflt);
  const env = option.repeatable ? `${option.env} (comma-separated)` : option.env;
  return [head, ...wrap(`${describeSetting(option.key)} Default: ${shownDefault}. Env: ${env}.`, INDENT)];
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
