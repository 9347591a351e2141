import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// test/README.md maps each capability to the files that test it; a file it does not name is a test a newcomer
// will not find, and a name it keeps after a file moved sends them nowhere.
const TEST = fileURLToPath(new URL('..', import.meta.url));
const map = readFileSync(join(TEST, 'README.md'), 'utf8');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

const named = (path: string) => map.includes(`\`${path}\``);

test('test/README.md names every test file by its path under test/', () => {
  const tests = files(TEST).filter((f) => f.endsWith('.test.ts')).map((f) => relative(TEST, f));
  assert.ok(tests.length > 50, `found the test files (${tests.length})`);
  assert.deepEqual(tests.filter((f) => !named(f)), [], 'name each new test file in the capability table of test/README.md');
});

test('every test file test/README.md names exists', () => {
  const mentioned = [...map.matchAll(/`((?:unit|integration|e2e|hostile|docs)\/[\w/.-]+\.test\.ts)`/g)].map((m) => m[1]);
  assert.ok(mentioned.length > 50);
  assert.deepEqual(mentioned.filter((f) => !existsSync(join(TEST, f))), [], 'test/README.md names a file that is gone: update the map');
});

test('test/README.md lists every helper in test/helpers/, and no other', () => {
  const helpers = readdirSync(join(TEST, 'helpers')).filter((f) => f.endsWith('.ts'));
  assert.deepEqual(helpers.filter((f) => !named(f)), [], 'add each new helper to the helpers table of test/README.md');
  const section = map.slice(map.indexOf('## Helpers'));
  const listed = [...section.matchAll(/^\| `([\w-]+\.ts)`(?:, `([\w-]+\.ts)`)?/gm)].flatMap((m) => [m[1], ...(m[2] ? [m[2]] : [])]);
  assert.deepEqual(listed.filter((f) => !helpers.includes(f)), [], 'the helpers table of test/README.md lists a file that is gone');
});
