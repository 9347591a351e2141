import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import GithubSlugger from 'github-slugger';
import MarkdownIt, { type Token } from 'markdown-it';

// Every relative link and #anchor in the README, docs/ and SECURITY.md resolves, every docs/ page the code cites
// exists, and the package ships every file the docs link to. Links are read with markdown-it (so a link inside a
// code block is not a link) and anchors are made with github-slugger, the slugs GitHub gives headings.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const md = new MarkdownIt({ html: true });

/** The Markdown pages whose links must resolve, repository-relative. */
function pages(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', 'SECURITY.md', ...docs.sort()];
}

/** Every token, the inline children included. */
function* walk(tokens: Token[]): Generator<Token> {
  for (const t of tokens) {
    yield t;
    if (t.children) yield* walk(t.children);
  }
}

/** A page's links and images (href or src as written), and the anchors its headings and `id`/`name` attributes make. */
function scan(text: string): { links: string[]; anchors: Set<string> } {
  const tokens = md.parse(text, {});
  const links: string[] = [];
  for (const t of walk(tokens)) {
    if (t.type === 'link_open') links.push(String(t.attrGet('href') ?? ''));
    if (t.type === 'image') links.push(String(t.attrGet('src') ?? ''));
  }
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  tokens.forEach((t, i) => {
    if (t.type !== 'heading_open') return;
    // GitHub slugs the heading's rendered text: code spans keep their content, markup is dropped.
    const inline = tokens[i + 1];
    const plain = (inline.children ?? []).filter((c) => c.type === 'text' || c.type === 'code_inline').map((c) => c.content).join('');
    anchors.add(slugger.slug(plain));
  });
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
  return { links, anchors };
}

const anchorCache = new Map<string, Set<string>>();
const anchorsOf = (file: string): Set<string> => {
  let a = anchorCache.get(file);
  if (!a) anchorCache.set(file, (a = scan(readFileSync(file, 'utf8')).anchors));
  return a;
};

/** Why `href`, written in `page`, does not resolve; undefined when it does (or is not a relative link). */
function broken(page: string, href: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return undefined; // https:, mailto:: not ours to check offline
  if (href === '') return 'empty link';
  const hash = href.indexOf('#');
  const target = hash < 0 ? href : href.slice(0, hash);
  const fragment = hash < 0 ? undefined : decodeURIComponent(href.slice(hash + 1));
  const file = target === '' ? path.join(ROOT, page) : path.resolve(path.dirname(path.join(ROOT, page)), decodeURIComponent(target));
  if (!file.startsWith(ROOT)) return `${target} is outside the repository`;
  if (!existsSync(file)) return `${path.relative(ROOT, file)} does not exist`;
  if (fragment === undefined) return undefined;
  if (!file.endsWith('.md') || !statSync(file).isFile()) return `#${fragment} on ${path.relative(ROOT, file)}, which is not a Markdown page`;
  return anchorsOf(file).has(fragment) ? undefined : `${path.relative(ROOT, file)} has no heading #${fragment}`;
}

test('every relative link and #anchor in the README, docs/ and SECURITY.md resolves', () => {
  const problems = pages().flatMap((page) =>
    scan(readFileSync(path.join(ROOT, page), 'utf8')).links.flatMap((href) => {
      const why = broken(page, href);
      return why ? [`${page}: (${href}) ${why}`] : [];
    }),
  );
  assert.deepEqual(problems, []);
});

test('the link check sees links and anchors, and fails a broken one', () => {
  // Guards the test itself: a parser that found no links, or anchors that matched anything, would pass vacuously.
  const readme = scan(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  assert.ok(readme.links.includes('docs/configuration.md'));
  assert.ok(readme.anchors.has('how-it-works'));
  assert.ok(anchorsOf(path.join(ROOT, 'docs/health.md')).has('per-backend-the-health-block'), 'code spans keep their text in a slug');
  assert.equal(broken('README.md', 'docs/operating.md#binary-node-24-lts'), undefined);
  assert.match(broken('README.md', 'docs/operating.md#no-such-heading') ?? '', /no heading/);
  assert.match(broken('README.md', 'nowhere/page.md') ?? '', /does not exist/);
  assert.equal(scan('```\n[not a link](nowhere.md)\n```\n').links.length, 0, 'a link in a code block is not a link');
  assert.deepEqual([...scan('# A\n# A\n').anchors], ['a', 'a-1'], 'repeated headings get -1, -2 as on GitHub');
});

/** Files under `dir` (repository-relative) whose text may cite a doc. */
function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => /\.(ts|mjs|js|sh)$/.test(f) && statSync(path.join(ROOT, f)).isFile());
}

test('every docs/ page cited in src/, test/, bench/ and scripts/ exists', () => {
  const files = ['src', 'test', 'bench', 'scripts'].flatMap(sources);
  const cited = files.flatMap((f) =>
    [...readFileSync(path.join(ROOT, f), 'utf8').matchAll(/(?<![\w/.-])docs\/[\w./-]*\.(?:md|png)/g)].map((m) => ({ file: f, doc: m[0] })),
  );
  assert.ok(cited.some((c) => c.doc === 'docs/configuration.md'), 'the scan sees citations');
  assert.deepEqual(
    cited.filter((c) => !existsSync(path.join(ROOT, c.doc))).map((c) => `${c.file} cites ${c.doc}`),
    [],
  );
});

test('the package ships every file the README and docs/ link to', () => {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })) as [
    { files: { path: string }[] },
  ];
  const shipped = new Set(packed[0].files.map((f) => f.path));
  const linked = pages()
    .filter((p) => shipped.has(p))
    .flatMap((page) =>
      scan(readFileSync(path.join(ROOT, page), 'utf8'))
        .links.filter((h) => !/^[a-z][a-z0-9+.-]*:/i.test(h) && !h.startsWith('#'))
        .map((h) => path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, page)), decodeURIComponent(h.split('#')[0])))),
    );
  assert.ok(linked.includes('docs/configuration.md'));
  assert.deepEqual([...new Set(linked.filter((f) => !shipped.has(f)))].sort(), []);
});

test('docs/README.md, the index, links every page in docs/', () => {
  const index = scan(readFileSync(path.join(ROOT, 'docs/README.md'), 'utf8')).links.map((h) => h.split('#')[0]);
  const missing = readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md') && f !== 'README.md' && !index.includes(f));
  assert.deepEqual(missing, [], 'add each new page to the table of docs/README.md');
});
