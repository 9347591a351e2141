#!/usr/bin/env node
// Copies the figures of bench/RESULTS.md into docs/performance.md (between the `<!-- bench:start -->` and
// `<!-- bench:end -->` markers), so the published tables are always a run's own output and never typed by hand.
// `npm run bench` calls it after a full run; test/docs/drift.test.ts checks that docs/performance.md still
// matches RESULTS.md. (The name is historical: the figures lived in the README until the docs split.)
//
//   node bench/readme.mjs            # rewrite docs/performance.md from bench/RESULTS.md
//   node bench/readme.mjs --check    # exit 1 if docs/performance.md is not what RESULTS.md gives
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS = path.join(REPO, 'bench/RESULTS.md');
export const PERFORMANCE_MD = path.join(REPO, 'docs/performance.md');
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

/**
 * docs/performance.md's view of a RESULTS.md: the run's header lines, then every benchmark's heading, tables and
 * PASS/FAIL lines, without each benchmark's own machine lines (the run's header has them) or the diagnostics
 * folded away in <details>.
 */
export function readmeBlock(results) {
  const lines = results.split('\n');
  const out = ['<!-- Copied from bench/RESULTS.md by `node bench/readme.mjs`; do not edit by hand. -->', ''];
  let inDetails = false;
  let section = 'header';
  let last = '';
  const push = (l) => {
    if (l === '' && (last === '' || out.length === 0)) return;
    out.push(l);
    last = l;
  };
  for (const line of lines) {
    if (line.startsWith('<details')) inDetails = true;
    if (inDetails) {
      if (line.startsWith('</details>')) inDetails = false;
      continue;
    }
    if (line.startsWith('# ') || line.startsWith('<!--') || line.startsWith('> ')) continue;
    if (line.startsWith('## ')) {
      section = 'bench';
      push('');
      push(`## ${line.slice(3)}`);
      push('');
      continue;
    }
    if (line.startsWith('### ')) {
      push('');
      push(`### ${line.slice(4)}`);
      push('');
      continue;
    }
    // The run's header keeps machine, date and command; each benchmark's repeat of them is left out.
    if (section === 'header' ? line.startsWith('- ') : line.startsWith('|') || /^- \*\*(PASS|FAIL)\*\*/.test(line)) push(line);
    else if (line === '') push('');
  }
  while (out[out.length - 1] === '') out.pop();
  return out.join('\n');
}

/** `doc` (docs/performance.md's text) with the block between the markers replaced by what `results` gives. */
export function withBlock(doc, results) {
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/performance.md has no ${START} ... ${END} block`);
  return `${doc.slice(0, a + START.length)}\n${readmeBlock(results)}\n${doc.slice(b)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const doc = readFileSync(PERFORMANCE_MD, 'utf8');
  const next = withBlock(doc, readFileSync(RESULTS, 'utf8'));
  if (process.argv.includes('--check')) {
    if (next !== doc) {
      process.stderr.write('docs/performance.md figures differ from bench/RESULTS.md: run `node bench/readme.mjs`\n');
      process.exitCode = 1;
    }
  } else {
    writeFileSync(PERFORMANCE_MD, next);
    process.stderr.write(`docs/performance.md: figures copied from ${path.relative(REPO, RESULTS)}\n`);
  }
}
