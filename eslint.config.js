// Lint for bulb: typescript-eslint's strict, type-aware set over every TypeScript file that tsconfig.json
// compiles, and eslint's recommended set over the plain JavaScript (bench, examples, the status page).
// Every rule switched off or relaxed below says why, beside it. See CONTRIBUTING.md.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // A disable comment that no longer silences anything is an error, so the exceptions stay true.
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    // dist/ is tsc output. src/generated/ is ajv's standalone code, written by `npm run generate`, not ours to
    // style; test/unit/config/generated-validators.test.ts checks it is fresh instead.
    ignores: ['dist/', 'src/generated/', 'node_modules/', '.tmp/'],
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      // Kept on, with node:test's test/describe/it/suite marked safe: they return a promise that the runner
      // itself awaits and reports on, so awaiting them in a file would only serialise what --test already does.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      // Kept on, with the convention tsc's noUnusedParameters already uses: a parameter named `_x` is there
      // for the shape of an interface (Strategy.pick's request, a factory's context) and is unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'all' }],
      // Relaxed: a Record<string, unknown> from parsed JSON/YAML is read as obj['key'], so the brackets say
      // "this key may be absent"; dot access stays required for declared properties.
      '@typescript-eslint/dot-notation': ['error', { allowIndexSignaturePropertyAccess: true }],
      // Relaxed: numbers in messages (ports, ms, counts) are what we mean to print; the rule still rejects
      // objects, undefined and null, the cases that print "[object Object]" or "undefined".
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Relaxed for arrow shorthand only: `() => server.close()`, `(err) => (err ? reject(err) : resolve())` are
      // callbacks whose caller discards the result; rewriting each as a block adds noise and no safety
      // (no-floating-promises and no-misused-promises still catch a promise returned there).
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Off: tsconfig does not set noUncheckedIndexedAccess, so an array slot, a regex group or a split() part
      // is typed as always present and every deliberate `=== undefined` guard on one reads as "unnecessary";
      // so do flags that change across an await (this.stopped) and JSON.stringify's undefined. Removing those
      // guards would change behaviour. Turn this back on together with noUncheckedIndexedAccess.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Relaxed to allow arrow functions: `() => {}` is how a Node callback or a logger slot is told "nothing
      // to do"; an empty method or function declaration is still reported.
      '@typescript-eslint/no-empty-function': ['error', { allow: ['arrowFunctions'] }],
      // Relaxed for a variable read before its one assignment: a closure built first (TlsStore's callbacks, a
      // timer's canceller) reaches a value made after it, and `let` is the only way to say so.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // In tests and benchmarks an `!` on a value the test just produced is an assertion: if it is wrong the test
    // fails at once, which is what a test should do. In src/ each `!` is rewritten or justified where it stands.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    // As for TypeScript: `_ctx` is a parameter kept for the shape of the interface (a custom strategy's factory).
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'all' }] },
  },
  {
    files: ['src/admin/status-page/assets/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
