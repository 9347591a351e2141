import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Snapshot } from '../../../src/discovery/source.js';
import { StaticSource } from '../../../src/discovery/static.js';

async function snapshotsOf(urls: string[]): Promise<Snapshot[]> {
  const source = new StaticSource(urls);
  const snaps: Snapshot[] = [];
  await source.start((s) => snaps.push(s));
  await source.stop();
  return snaps;
}

test('one snapshot, delivered before start() resolves, with normalised frozen specs of weight 1', async () => {
  const snaps = await snapshotsOf(['http://10.0.0.5:8080', 'https://api.example.com']);
  assert.equal(snaps.length, 1);
  const s = snaps[0];
  assert.deepEqual(s, {
    source: 'static',
    backends: [
      { id: '10.0.0.5:8080', url: 'http://10.0.0.5:8080', weight: 1, source: 'static', origin: '--backend' },
      { id: 'api.example.com:443', url: 'https://api.example.com:443', weight: 1, source: 'static', origin: '--backend' },
    ],
    problems: [],
  });
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.backends) && s.backends.every((b) => Object.isFrozen(b)));
});

test('name is "static"', () => {
  assert.equal(new StaticSource([]).name, 'static');
});

test('no URLs: an empty snapshot (a valid, synced source)', async () => {
  assert.deepEqual(await snapshotsOf([]), [{ source: 'static', backends: [], problems: [] }]);
});

test('bad URLs are re-checked and reported as problems; the good ones still apply', async () => {
  const [s] = await snapshotsOf(['ftp://x', 'http://ok:1', 'http://u:p@h:1', 'http://h:1/path']);
  assert.deepEqual(s.backends.map((b) => b.id), ['ok:1']);
  assert.deepEqual(s.problems, [
    { file: '--backend', pointer: '/0', message: 'url: "ftp://x" has scheme ftp; only http, https and h2c are allowed' },
    { file: '--backend', pointer: '/2', message: 'url: "http://u:p@h:1" contains credentials; they are not allowed in a backend URL' },
    { file: '--backend', pointer: '/3', message: 'url: "http://h:1/path" has a path; a backend URL is an origin only' },
  ]);
});

test('the same backend named twice is one backend and a problem', async () => {
  const [s] = await snapshotsOf(['http://a', 'http://a:80/']);
  assert.deepEqual(s.backends.map((b) => b.id), ['a:80']);
  assert.deepEqual(s.problems, [{ file: '--backend', pointer: '/1', message: 'duplicate backend "a:80": --backend http://a already names it' }]);
});

test('start() and stop() are idempotent; start emits only once', async () => {
  const source = new StaticSource(['http://a:1']);
  let calls = 0;
  const p1 = source.start(() => calls++);
  assert.equal(source.start(() => calls++), p1);
  await p1;
  assert.equal(calls, 1);
  const s1 = source.stop();
  assert.equal(source.stop(), s1);
  await s1;
});

test('the caller\'s array is copied: changing it later changes nothing', async () => {
  const urls = ['http://a:1'];
  const source = new StaticSource(urls);
  urls.push('http://b:1');
  let snap: Snapshot | undefined;
  await source.start((s) => (snap = s));
  assert.deepEqual(snap!.backends.map((b) => b.id), ['a:1']);
});
