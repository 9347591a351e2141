import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The README's "How it works" table names every part of src/ and what it may import. This holds the code to it:
// a module that imports a part its row does not list (type-only imports count), or a part of src/ the table does
// not name, fails here. docs/design.md gives the reasons; test/unit/config/layers.test.ts pins the oldest rules.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SRC = path.join(ROOT, 'src');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** A part of src/: a folder (`discovery`) or a top-level module (`values`, for src/values.ts). */
type Part = string;

/** The README's layout table: each part and the parts it may import (`*` = anything). */
function layoutTable(text: string): Map<Part, Set<Part> | '*'> {
  const block = /<!-- layout:start -->([\s\S]*?)<!-- layout:end -->/.exec(text)?.[1];
  assert.ok(block, 'README has the <!-- layout:start/end --> table');
  const rules = new Map<Part, Set<Part> | '*'>();
  for (const line of block.split('\n')) {
    const m = /^\| `src\/([a-z-]+)(?:\.ts|\/)` \|[^|]*\| ([^|]+) \|$/.exec(line);
    if (!m) continue;
    const allowed = m[2].trim();
    rules.set(
      m[1],
      allowed === 'anything' ? '*' : allowed === 'nothing' ? new Set() : new Set([...allowed.matchAll(/`([a-z-]+)`/g)].map((x) => x[1])),
    );
  }
  return rules;
}

/** The part a src-relative path belongs to. */
const partOf = (rel: string): Part => (rel.includes(path.sep) ? rel.split(path.sep)[0] : rel.replace(/\.[jt]s$/, ''));

/** Every .ts module under src/ (src-relative), with the src-relative paths of the bulb modules it imports. */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(SRC, rel))) {
      const file = path.join(rel, name);
      if (statSync(path.join(SRC, file)).isDirectory()) walk(file);
      else if (file.endsWith('.ts')) {
        const text = readFileSync(path.join(SRC, file), 'utf8');
        const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)].map((m) => (m[1] ?? m[2]));
        out.set(file, specs.map((s) => path.normalize(path.join(path.dirname(file), s))));
      }
    }
  };
  walk('');
  return out;
}

/** `file imports target` for every import that crosses into a part its own part's row does not allow. */
function violations(graph: Map<string, string[]>, rules: Map<Part, Set<Part> | '*'>): string[] {
  return [...graph].flatMap(([file, targets]) => {
    const allowed = rules.get(partOf(file));
    if (allowed === '*') return [];
    return targets
      .filter((t) => partOf(t) !== partOf(file) && !allowed?.has(partOf(t)))
      .map((t) => `${file} imports ${t} (${partOf(file)} may import ${allowed ? [...allowed].join(', ') || 'nothing' : 'nothing: it has no row'})`);
  });
}

test('the README layout table names every part of src/, and only those', () => {
  const parts = readdirSync(SRC)
    .filter((n) => statSync(path.join(SRC, n)).isDirectory() || n.endsWith('.ts'))
    .map((n) => n.replace(/\.ts$/, ''))
    .sort();
  const rules = layoutTable(readme);
  assert.deepEqual([...rules.keys()].sort(), parts);
  for (const [part, allowed] of rules) {
    if (allowed === '*') continue;
    for (const p of allowed) assert.ok(parts.includes(p), `${part}'s row names ${p}, which is no part of src/`);
  }
});

test('no module imports a part of src/ that its row of the README layout table does not allow', () => {
  assert.deepEqual(violations(imports(), layoutTable(readme)), []);
});

test('the scan sees imports, and the check catches one that runs against the table', () => {
  // Guards the test itself: a scan that found nothing, or a check that allowed everything, would pass vacuously.
  const graph = imports();
  assert.ok(graph.get(path.join('cli', 'args.ts'))?.includes(path.join('config', 'load.js')));
  assert.ok(graph.get(path.join('proxy', 'proxy.ts'))?.includes(path.join('dataplane', 'data-pool.js')), 'type-only imports are seen');
  const rules = layoutTable(readme);
  const before = violations(graph, rules).length;
  graph.set(path.join('values.ts'), [path.join('config', 'settings.js')]);
  graph.set(path.join('config', 'x.ts'), [path.join('cli', 'args.js')]);
  assert.equal(violations(graph, rules).length, before + 2);
});
