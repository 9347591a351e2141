#!/usr/bin/env node
// Top self-time functions of a V8 CPU profile (`node --cpu-prof`), as a Markdown table: where a process spends
// its own time, which is what to look at first before optimising. bench/e2e.mjs uses it for `--cpu-prof DIR`.
//
//   node bench/profile-top.mjs PROFILE.cpuprofile [N]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** [{ fn, where, selfPct }] for the `n` functions with the most samples of their own (not their callees'). */
export function topSelf(file, n = 20) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byKey = new Map();
  let total = 0;
  for (const node of profile.nodes) {
    // Percentages are of the time the process was busy: waiting in epoll is not a cost.
    if (node.callFrame.functionName === '(idle)') continue;
    const hits = node.hitCount ?? 0;
    total += hits;
    const { functionName, url, lineNumber } = node.callFrame;
    // Node paths are long; the package or repo-relative part is enough to find the code.
    const short = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/');
    const key = `${functionName || '(anonymous)'}\t${short ? `${short}:${lineNumber + 1}` : ''}`;
    byKey.set(key, (byKey.get(key) ?? 0) + hits);
  }
  return [...byKey]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, hits]) => {
      const [fn, where] = key.split('\t');
      return { fn, where, selfPct: (100 * hits) / Math.max(1, total) };
    });
}

export function topSelfMarkdown(file, n = 20) {
  const rows = topSelf(file, n).map((r) => `| ${r.selfPct.toFixed(1)} | \`${r.fn}\` | ${r.where || '(native)'} |`);
  return ['| self % | function | where |', '| ---: | --- | --- |', ...rows].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(topSelfMarkdown(process.argv[2], Number(process.argv[3] ?? 20)) + '\n');
}
