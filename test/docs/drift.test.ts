import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { helpText } from '../../src/cli/help.js';
import { CONFIG_SCHEMA, OPTIONS } from '../../src/config/schema.js';
import { ERROR_CODES } from '../../src/errors.js';
import { strategyNames } from '../../src/strategies/index.js';
import { README, readmeHelp } from './readme.js';

// README, --help, the config schema and the error codes must never disagree. Each test fails on drift in
// either direction; `npm run docs` rewrites the README's help block.

const readme = readFileSync(README, 'utf8');

test('the README shows `bulb --help` word for word', () => {
  assert.equal(readmeHelp(readme), helpText().trimEnd(), 'README help block is stale: run `npm run docs`');
});

test('every schema property has a flag and an env var in the options table, and back', () => {
  const props = Object.keys(CONFIG_SCHEMA.properties).sort();
  assert.deepEqual(OPTIONS.map((o) => o.key).sort(), props);
  for (const o of OPTIONS) {
    assert.ok(helpText().includes(o.flag), `--help lists ${o.flag}`);
    assert.ok(helpText().includes(o.env), `--help lists ${o.env}`);
  }
});

test('the README example config sets every setting and nothing else', () => {
  const block = /A config file with every setting:\n\n```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'README has the example config block');
  const keys = block.split('\n').map((l) => /^([A-Za-z]+):/.exec(l)?.[1]).filter((k): k is string => k !== undefined).sort();
  const settable = Object.keys(CONFIG_SCHEMA.properties).filter((k) => k !== 'adminToken').sort();
  assert.deepEqual(keys, settable);
});

test('every error code is documented in the README, and the README documents no other', () => {
  const table = /<!-- errors:start -->([\s\S]*?)<!-- errors:end -->/.exec(readme)?.[1] ?? '';
  const documented = [...table.matchAll(/`(BULB_E_[A-Z_]+)`/g)].map((m) => m[1]).sort();
  assert.deepEqual(documented, [...ERROR_CODES].sort());
});

test('every built-in strategy has a line in the README table, and back', () => {
  const section = readme.slice(readme.indexOf('### Strategies'), readme.indexOf('#### Custom strategies'));
  const rows = [...section.matchAll(/^\| `([a-z-]+)`( \(default\))? \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(rows, strategyNames().sort());
});

test("the README's Performance figures are bench/RESULTS.md's, copied by bench/readme.mjs", () => {
  // Spawned, not imported: the script is plain ESM that `npm run bench` runs, and this checks that entry point.
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../bench/readme.mjs', import.meta.url)), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
