import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS, generate } from '../../../scripts/generate-validators.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// bulb validates with code ajv generated ahead of time; it must be what ajv generates from today's schemas.
test('the generated schema validators match the schemas and the installed ajv', () => {
  for (const t of TARGETS) {
    assert.equal(readFileSync(path.join(REPO, t.file), 'utf8'), generate(t), `${t.file} is stale: run \`npm run gen:validators\``);
  }
});
