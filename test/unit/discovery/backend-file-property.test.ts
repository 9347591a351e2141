import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { parseBackendFile } from '../../../src/discovery/backend-file.js';

// Whatever a file holds, parsing it never throws, and every outcome is either valid backends or readable
// problems that name the file; never both, never neither for a non-empty invalid document.

const check = (file: string, text: string) => {
  const r = parseBackendFile(file, text, 'dir:/x');
  assert.ok(r.backends.length === 0 || r.problems.length === 0, 'all-or-nothing');
  for (const p of r.problems) {
    assert.equal(p.file, file);
    assert.equal(typeof p.pointer, 'string');
    assert.ok(p.pointer === '' || p.pointer.startsWith('/'), p.pointer);
    assert.ok(p.message.length > 0 && !p.message.includes('\n'), JSON.stringify(p.message));
  }
  for (const b of r.backends) {
    assert.ok(Object.isFrozen(b));
    assert.match(b.url, /^https?:\/\/[^/?#@]+:\d+$/);
    assert.ok(Number.isInteger(b.weight) && b.weight >= 1 && b.weight <= 1_000_000);
  }
  return r;
};

test('property: any bytes, as JSON or YAML, parse to backends or to named problems, never a throw', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.constantFrom('a.json', 'a.yaml'), (text, file) => {
      check(file, text);
    }),
    { numRuns: 500 },
  );
});

test('property: any JSON value is either a valid backend document or rejected with problems', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('a.json', 'a.yaml'), (value, file) => {
      const text = file.endsWith('.json') ? JSON.stringify(value) : toYaml(value);
      const r = check(file, text);
      if (value === null || typeof value !== 'object') assert.ok(r.problems.length > 0, 'a scalar is never a backend file');
    }),
    { numRuns: 500 },
  );
});

test('property: backend-shaped objects with arbitrary field values are accepted exactly when every field is valid', () => {
  const weight = fc.oneof(fc.integer({ min: -5, max: 2_000_000 }), fc.double(), fc.constant('3'), fc.constant(null));
  const url = fc.oneof(
    fc.constantFrom('http://127.0.0.2:8080', 'https://api.internal', 'ftp://x', 'file:///etc/passwd', 'javascript:alert(1)', 'http://u:p@h:1', 'http://h:1/#f', 'http://h:1/path', 'not a url'),
    fc.webUrl(),
  );
  fc.assert(
    fc.property(url, fc.option(weight, { nil: undefined }), (u, w) => {
      const doc: Record<string, unknown> = { url: u };
      if (w !== undefined) doc['weight'] = w;
      const r = check('b.json', JSON.stringify(doc));
      const weightOk = w === undefined || (typeof w === 'number' && Number.isInteger(w) && w >= 1 && w <= 1_000_000);
      if (!weightOk) assert.ok(r.problems.some((p) => p.pointer === '/weight'), `weight ${String(w)} must be rejected`);
      if (/^(ftp|file|javascript):/.test(u) || u.includes('@') || u.includes('#')) assert.ok(r.problems.length > 0, `${u} must be rejected`);
    }),
    { numRuns: 500 },
  );
});

test('deep and aliased YAML is refused without blowing up', () => {
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  check('deep.json', deep);
  check('deep.yaml', deep);
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
  const r = check('bomb.yaml', bomb);
  assert.ok(r.problems.length > 0);
});
