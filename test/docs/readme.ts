import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { helpText } from '../../src/cli/help.js';

export const README = fileURLToPath(new URL('../../README.md', import.meta.url));

const HELP_BLOCK = /(<!-- help:start -->\n```text\n)([\s\S]*?)(\n```\n<!-- help:end -->)/;

export function readmeHelp(readme: string): string | undefined {
  return HELP_BLOCK.exec(readme)?.[2];
}

/** `npm run docs`: writes the current `--help` into the README, so the drift test passes again. */
export function updateReadme(): void {
  const readme = readFileSync(README, 'utf8');
  if (!HELP_BLOCK.test(readme)) throw new Error('README.md has no help:start/help:end block');
  writeFileSync(README, readme.replace(HELP_BLOCK, (_m, a: string, _b: string, c: string) => `${a}${helpText().trimEnd()}${c}`));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) updateReadme();
