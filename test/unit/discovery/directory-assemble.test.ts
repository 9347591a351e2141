/**
 * The directory source's pure snapshot assembly: what a scan found per file, plus each file's last-known-good,
 * gives the snapshot's backends and problems and the next last-known-good. Each test feeds scans in turn, carrying
 * `good` from one to the next as the source does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assemble,
  UNSEEN,
  type Assembly,
  type FileResult,
  type GoodFile,
  type ParsedFile,
} from '../../../src/discovery/directory/assemble.js';
import type { BackendSpec, SourceProblem } from '../../../src/discovery/source.js';

const DIR = '/etc/bulb/backends';

function spec(id: string, file: string, weight = 1): BackendSpec {
  return Object.freeze({ id, url: `http://${id}`, weight, source: `dir:${DIR}`, origin: file });
}

/** A file that parsed cleanly, declaring `ids` (entry i at pointer `/i`). */
function valid(file: string, ...ids: string[]): FileResult {
  const parsed: ParsedFile = {
    backends: ids.map((id) => spec(id, file)),
    pointers: ids.map((_, i) => `/${i}`),
    problems: [],
  };
  return { kind: 'parsed', parsed };
}

/** A file that parsed with a problem: all or nothing, so it declares no backends. */
function invalid(file: string, message: string): FileResult {
  return { kind: 'parsed', parsed: { backends: [], pointers: [], problems: [{ file, pointer: '/weight', message }] } };
}

function unreadable(file: string, message: string): FileResult {
  return { kind: 'failed', problem: { file, pointer: '', message } };
}

const f = (name: string): string => `${DIR}/${name}`;

/** Runs scans in order, each with the previous one's `good`, and returns every assembly. */
function scans(...found: [string, FileResult][][]): Assembly[] {
  let good: ReadonlyMap<string, GoodFile> = new Map();
  return found.map((entries) => {
    const a = assemble(new Map(entries), good);
    good = a.good;
    return a;
  });
}

const ids = (a: Assembly): string[] => a.backends.map((b) => b.id);
const messages = (a: Assembly): [string, string, string][] => a.problems.map((p: SourceProblem) => [p.file, p.pointer, p.message]);

test('valid files: their backends in file order, no problems, each file its own last-known-good', () => {
  const [a] = scans([
    [f('b.json'), valid(f('b.json'), 'b1', 'b2')],
    [f('a.json'), valid(f('a.json'), 'a1')],
  ]);
  assert.deepEqual(ids(a), ['a1', 'b1', 'b2']);
  assert.deepEqual(a.problems, []);
  assert.deepEqual([...a.good.keys()], [f('a.json'), f('b.json')]);
  assert.deepEqual(
    a.files.map((r) => [r.file, r.valid, r.problems.length, r.good?.backends.length]),
    [
      [f('a.json'), true, 0, 1],
      [f('b.json'), true, 0, 2],
    ],
  );
});

test('a file turning invalid keeps its old backends and adds its problem; fixed, its new content applies', () => {
  const [, broken, fixed] = scans(
    [
      [f('a.json'), valid(f('a.json'), 'a1')],
      [f('b.json'), valid(f('b.json'), 'b1', 'b2')],
    ],
    [
      [f('a.json'), valid(f('a.json'), 'a1')],
      [f('b.json'), invalid(f('b.json'), 'weight must be an integer >= 1 (got 0)')],
    ],
    [
      [f('a.json'), valid(f('a.json'), 'a1')],
      [f('b.json'), valid(f('b.json'), 'b3')],
    ],
  );
  assert.deepEqual(ids(broken), ['a1', 'b1', 'b2'], 'b.json keeps what it had');
  assert.deepEqual(messages(broken), [[f('b.json'), '/weight', 'weight must be an integer >= 1 (got 0)']]);
  const report = broken.files.find((r) => r.file === f('b.json'))!;
  assert.equal(report.valid, false);
  assert.deepEqual(report.good?.backends.map((b) => b.id), ['b1', 'b2']);

  assert.deepEqual(ids(fixed), ['a1', 'b3']);
  assert.deepEqual(fixed.problems, []);
});

test('a file that cannot be read keeps its last-known-good too, with the read problem', () => {
  const [, a] = scans(
    [[f('a.json'), valid(f('a.json'), 'a1')]],
    [[f('a.json'), unreadable(f('a.json'), 'file is 2000000 bytes; the limit is 1 MiB')]],
  );
  assert.deepEqual(ids(a), ['a1']);
  assert.deepEqual(messages(a), [[f('a.json'), '', 'file is 2000000 bytes; the limit is 1 MiB']]);
});

test('a file that was never valid contributes only its problem, and has no last-known-good', () => {
  const [a] = scans([
    [f('a.json'), invalid(f('a.json'), 'bad')],
    [f('b.json'), valid(f('b.json'), 'b1')],
  ]);
  assert.deepEqual(ids(a), ['b1']);
  assert.deepEqual(messages(a), [[f('a.json'), '/weight', 'bad']]);
  assert.deepEqual([...a.good.keys()], [f('b.json')]);
  assert.equal(a.files[0].good, undefined);
});

test('a deleted file drops its backends and is forgotten: back with bad content, it has nothing to keep', () => {
  const [, deleted, back] = scans(
    [
      [f('a.json'), valid(f('a.json'), 'a1')],
      [f('b.json'), valid(f('b.json'), 'b1')],
    ],
    [[f('a.json'), valid(f('a.json'), 'a1')]],
    [
      [f('a.json'), valid(f('a.json'), 'a1')],
      [f('b.json'), invalid(f('b.json'), 'bad')],
    ],
  );
  assert.deepEqual(ids(deleted), ['a1']);
  assert.deepEqual([...deleted.good.keys()], [f('a.json')]);
  assert.deepEqual(ids(back), ['a1'], 'the old b1 is not resurrected');
});

test('duplicate ids across files: the first file by name wins; the other file gets a problem naming both', () => {
  const [a] = scans([
    [f('b.json'), valid(f('b.json'), 'x', 'b1')],
    [f('a.json'), valid(f('a.json'), 'a1', 'x')],
  ]);
  assert.deepEqual(ids(a), ['a1', 'x', 'b1']);
  assert.equal(a.backends[1].origin, f('a.json'));
  assert.deepEqual(messages(a), [
    [f('b.json'), '/0', 'duplicate id "x": a.json also declares it and wins (first file by name); this entry is ignored'],
  ]);
  const b = a.files[1];
  assert.equal(b.valid, true, 'a duplicate is the other file\'s doing, not an invalid file');
  assert.equal(b.problems.length, 1);
});

test('a kept last-known-good still loses a duplicate id to an earlier file', () => {
  const [, a] = scans(
    [[f('b.json'), valid(f('b.json'), 'x')]],
    [
      [f('a.json'), valid(f('a.json'), 'x')],
      [f('b.json'), invalid(f('b.json'), 'bad')],
    ],
  );
  assert.deepEqual(ids(a), ['x']);
  assert.equal(a.backends[0].origin, f('a.json'));
  assert.deepEqual(
    messages(a).map(([file, , message]) => [file, message]),
    [
      [f('b.json'), 'bad'],
      [f('b.json'), 'duplicate id "x": a.json also declares it and wins (first file by name); this entry is ignored'],
    ],
  );
});

test('deterministic: the same files in any input order give the same assembly, in code-unit order of paths', () => {
  const entries: [string, FileResult][] = [
    [f('b.yaml'), valid(f('b.yaml'), 'shared', 'b')],
    [f('B.json'), valid(f('B.json'), 'B')],
    [f('a.json'), invalid(f('a.json'), 'bad')],
    [f('ä.json'), valid(f('ä.json'), 'shared')],
    [f('a-1.json'), valid(f('a-1.json'), 'a-1', 'shared')],
  ];
  const forward = assemble(new Map(entries), new Map());
  const backward = assemble(new Map([...entries].reverse()), new Map());
  assert.deepEqual(backward, forward);
  // Code units: 'B' (0x42) < 'a' (0x61); '-' (0x2d) < '.' (0x2e); 'ä' (0xe4) after every ASCII letter.
  assert.deepEqual(
    forward.files.map((r) => r.file),
    [f('B.json'), f('a-1.json'), f('a.json'), f('b.yaml'), f('ä.json')],
  );
  assert.deepEqual(ids(forward), ['B', 'a-1', 'shared', 'b']);
  assert.deepEqual(
    forward.problems.map((p) => p.file),
    [f('a.json'), f('b.yaml'), f('ä.json')],
  );
});

test('files not looked at (the directory is unavailable) keep their last-known-good without problems of their own', () => {
  const [first] = scans([
    [f('a.json'), valid(f('a.json'), 'a1')],
    [f('b.json'), invalid(f('b.json'), 'bad')],
  ]);
  const kept = assemble(new Map([...first.good.keys()].map((file) => [file, UNSEEN])), first.good);
  assert.deepEqual(ids(kept), ['a1']);
  assert.deepEqual(kept.problems, []);
  assert.equal(kept.good.get(f('a.json')), first.good.get(f('a.json')), 'the same last-known-good object');
});

test('pure: the inputs are not modified, and unchanged specs are passed through as the same objects', () => {
  const parsed = valid(f('a.json'), 'a1');
  const results = new Map([[f('a.json'), parsed]]);
  const lastGood = new Map<string, GoodFile>();
  const a = assemble(results, lastGood);
  assert.equal(lastGood.size, 0);
  assert.equal(results.size, 1);
  assert.equal(a.backends[0], (parsed as Extract<FileResult, { kind: 'parsed' }>).parsed.backends[0]);
});
