import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIGURATION_MD, configurationDoc } from '../../scripts/docs-config.js';
import { parseCommandLine } from '../../src/cli/args.js';
import { COMMAND_FLAGS, helpText } from '../../src/cli/help.js';
import { CONFIG_SCHEMA } from '../../src/config/schema.js';
import { ENV_VARS, SETTINGS } from '../../src/config/settings.js';
import { ERROR_CODES } from '../../src/errors.js';
import { strategyNames } from '../../src/strategies/index.js';
import { tmpDir } from '../helpers/tmpdir.js';

// README, docs/, --help, the config schema and the error codes must never disagree. Each test fails on drift in
// either direction; `npm run docs:config` rewrites docs/configuration.md from the settings table. Each check reads
// the page that now holds its text: the error codes are in docs/operating.md, the strategy table in
// docs/strategies.md, the benchmark figures in docs/performance.md.

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const readme = readFileSync(README, 'utf8');
const configuration = readFileSync(CONFIGURATION_MD, 'utf8');
const doc = (name: string): string => readFileSync(join(DOCS, name), 'utf8');
/** README.md and every page of docs/, by repository path. */
const pages: [string, string][] = [
  ['README.md', readme],
  ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).sort().map((f): [string, string] => [`docs/${f}`, doc(f)]),
];

/** Flags that other programs take in the docs' commands (docker, kubectl, node, wrk, bench scripts), not bulb. */
const OTHER_PROGRAMS_FLAGS = new Set([
  '--build', '--cert', '--connections', '--cpu-prof', '--duration', '--expose-gc', '--from-literal', '--health-cmd',
  '--heap-growing-percent', '--http2', '--http2-prior-knowledge', '--image', '--import', '--key', '--kill-worker-every', '--max-http-header-size', '--max-semi-space-size',
  '--min-semi-space-size', '--no-healthcheck',
  '--read-only', '--replicas', '--restart', '--rm', '--rounds', '--scale', '--stay', '--systems', '--wasm-tiering-budget',
]);

test('docs/configuration.md is what `npm run docs:config` writes from the settings table', () => {
  assert.equal(configuration, configurationDoc(), 'docs/configuration.md is stale: run `npm run docs:config`');
});

test('docs/configuration.md shows `bulb --help` word for word', () => {
  const block = /## `bulb --help`\n\n```text\n([\s\S]*?)\n```\n/.exec(configuration)?.[1];
  assert.equal(block, helpText().trimEnd(), 'the help block of docs/configuration.md is stale: run `npm run docs:config`');
});

test('every schema property has a flag and an env var in the settings table, and back', () => {
  const props = Object.keys(CONFIG_SCHEMA.properties).sort();
  assert.deepEqual(SETTINGS.map((s) => s.key).sort(), props);
  for (const s of SETTINGS) {
    assert.ok(helpText().includes(s.flag), `--help lists ${s.flag}`);
    assert.ok(helpText().includes(s.env), `--help lists ${s.env}`);
  }
});

test('docs/configuration.md documents every flag, variable and key, and none that bulb does not have', () => {
  const tables = configuration.slice(configuration.indexOf('## Settings'), configuration.indexOf('## A config file'));
  const rows = tables.split('\n').filter((l) => l.startsWith('| `'));
  const documentedFlags = [...new Set(rows.flatMap((r) => [...r.matchAll(/`(-{1,2}[a-z][a-z0-9-]*)/g)].map((m) => m[1])))].sort();
  const flags = [...SETTINGS.map((s) => s.flag), ...COMMAND_FLAGS.flatMap((c) => (c.short ? [c.short, c.flag] : [c.flag]))].sort();
  assert.deepEqual(documentedFlags, flags);
  const documentedEnv = [...new Set(rows.flatMap((r) => [...r.matchAll(/`(BULB_[A-Z0-9_]+)`/g)].map((m) => m[1])))].sort();
  assert.deepEqual(documentedEnv, [...ENV_VARS].sort());
  const documentedKeys = rows.map((r) => /^\| `([A-Za-z][A-Za-z0-9]*)` \|/.exec(r)?.[1]).filter((k): k is string => k !== undefined);
  assert.deepEqual(documentedKeys, SETTINGS.map((s) => s.key));
});

test('the example config in docs/configuration.md sets every setting and nothing else, and bulb accepts it', async (t) => {
  const block = /## A config file with every setting\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(configuration)?.[1];
  assert.ok(block, 'docs/configuration.md has the example config block');
  const keys = block.split('\n').map((l) => /^([A-Za-z][A-Za-z0-9]*):/.exec(l)?.[1]).filter((k): k is string => k !== undefined).sort();
  const settable = Object.keys(CONFIG_SCHEMA.properties).filter((k) => k !== 'adminToken').sort();
  assert.deepEqual(keys, settable);
  const file = join(await tmpDir(t), 'bulb.yaml');
  writeFileSync(file, block);
  const r = await parseCommandLine({ argv: ['check', '--config', file], env: {}, cwd: '/' });
  assert.equal(r.kind, 'check');
});

test('the README links to docs/configuration.md, and every flag the README and docs/ mention is one bulb has (or another program\'s)', () => {
  assert.ok(readme.includes('](docs/configuration.md)'), 'README links to docs/configuration.md');
  assert.ok(pages.length > 5, 'the scan sees the docs/ pages');
  const bulbFlags = new Set<string>([...SETTINGS.map((s) => s.flag), ...COMMAND_FLAGS.map((c) => c.flag)]);
  const unknown = pages.flatMap(([name, text]) =>
    // `--backend-tls-*` (or `\*` in generated Markdown) names a family: some bulb flag must start with it.
    [...new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*(?:\\?\*)?/g)].map((m) => m[0]))]
      .filter((f) => !bulbFlags.has(f) && !OTHER_PROGRAMS_FLAGS.has(f))
      .filter((f) => !(f.endsWith('*') && [...bulbFlags].some((b) => b.startsWith(f.replace(/\\?\*$/, '')))))
      .sort()
      .map((f) => `${name}: ${f}`),
  );
  assert.deepEqual(unknown, [], 'the docs mention flags bulb does not have (if one belongs to another program, add it to OTHER_PROGRAMS_FLAGS)');
});

test('every error code is documented in docs/operating.md, and it documents no other', () => {
  const table = /<!-- errors:start -->([\s\S]*?)<!-- errors:end -->/.exec(doc('operating.md'))?.[1] ?? '';
  const documented = [...table.matchAll(/`(BULB_E_[A-Z_]+)`/g)].map((m) => m[1]).sort();
  assert.deepEqual(documented, [...ERROR_CODES].sort());
});

test('every built-in strategy has a line in the docs/strategies.md table, and back', () => {
  const strategies = doc('strategies.md');
  const section = strategies.slice(strategies.indexOf('# Strategies'), strategies.indexOf('## Custom strategies'));
  const rows = [...section.matchAll(/^\| `([a-z-]+)`( \(default\))? \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(rows, strategyNames().sort());
});

test("docs/performance.md's figures are bench/RESULTS.md's, copied by bench/readme.mjs", () => {
  // Spawned, not imported: the script is plain ESM that `npm run bench` runs, and this checks that entry point.
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../bench/readme.mjs', import.meta.url)), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test("the README's quick start runs scripts package.json has, and CI runs the README's test command", () => {
  const block = /## Quick start\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const commands = block.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
  assert.deepEqual(commands, ['npm ci && npm run demo', 'npm ci && npm test']);
  const scripts = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.ok(scripts.demo?.includes('examples/demo.mjs'), 'npm run demo starts examples/demo.mjs');
  assert.ok(scripts.test?.includes('--test'), 'npm test runs the test runner');
  const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
  assert.ok(ci.split('\n').includes('npm ci && npm test'), '.ci/run runs the README\'s test command');
});
