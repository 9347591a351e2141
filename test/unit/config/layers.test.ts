import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The layers of src/: cli → config → values (and generated), discovery → values. An import that runs back up
// (config importing the CLI, config and discovery importing each other) is what this test keeps out.

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Every module under `dir` (relative to src/), with the src-relative paths of the bulb modules it imports. */
function importsUnder(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (rel: string) => {
    const abs = path.join(SRC, rel);
    const entries = rel.endsWith('.ts') ? [''] : readdirSync(abs);
    for (const name of entries) {
      const file = name === '' ? rel : path.join(rel, name);
      if (!file.endsWith('.ts')) {
        walk(file);
        continue;
      }
      const text = readFileSync(path.join(SRC, file), 'utf8');
      const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)].map((m) => (m[1] ?? m[2]));
      out.set(file, specs.map((s) => path.normalize(path.join(path.dirname(file), s))));
    }
  };
  walk(dir);
  return out;
}

function offending(dir: string, forbidden: (target: string) => boolean): string[] {
  return [...importsUnder(dir)].flatMap(([file, targets]) => targets.filter(forbidden).map((t) => `${file} imports ${t}`));
}

test('config imports neither the CLI nor discovery (nor anything that runs bulb)', () => {
  assert.deepEqual(offending('config', (t) => /^(cli|discovery|pool|proxy|health|admin|controller)\//.test(t) || t === 'main.js'), []);
});

test('discovery takes its value rules from values.ts, not from config or the CLI', () => {
  assert.deepEqual(offending('discovery', (t) => /^(config|cli)\//.test(t)), []);
});

test('values.ts and the generated validators import no other bulb module', () => {
  assert.deepEqual(offending('values.ts', () => true), []);
  assert.deepEqual(offending('generated', () => true), []);
});

test('the scan sees imports: the CLI imports config', () => {
  // Guards the test itself: a regex that matched nothing would pass the tests above vacuously.
  assert.ok(importsUnder('cli').get(path.join('cli', 'args.ts'))?.includes(path.join('config', 'load.js')));
});
