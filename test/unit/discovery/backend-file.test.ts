import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBackendFile } from '../../../src/discovery/backend-file.js';
import { BACKEND_FILE_SCHEMA, MAX_WEIGHT } from '../../../src/discovery/backend-file-schema.js';
import type { SourceProblem } from '../../../src/discovery/source.js';

const SRC = 'dir:/etc/bulb/backends';
const json = (value: unknown): string => JSON.stringify(value);
const parseJson = (value: unknown) => parseBackendFile('/b/a.json', json(value), SRC);

/** The single problem of a rejected file, asserting the file contributes nothing. */
function onlyProblem(result: { backends: unknown[]; problems: SourceProblem[] }): SourceProblem {
  assert.deepEqual(result.backends, [], 'a rejected file contributes no backends');
  assert.equal(result.problems.length, 1, `expected one problem, got ${JSON.stringify(result.problems)}`);
  return result.problems[0];
}

describe('valid files', () => {
  test('one backend object, with defaults for weight and id', () => {
    const r = parseJson({ url: 'http://10.0.0.5:8080' });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.backends, [{ id: '10.0.0.5:8080', url: 'http://10.0.0.5:8080', weight: 1, source: SRC, origin: '/b/a.json' }]);
    assert.deepEqual(r.pointers, ['']);
  });

  test('an array with explicit weight and id; url normalised with the default port', () => {
    const r = parseJson([
      { url: 'http://10.0.0.5:8080', weight: 3, id: 'web-1' },
      { url: 'https://api.example.com' },
      { url: 'HTTP://Example.COM:80/' },
    ]);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.backends.map((b) => [b.id, b.url, b.weight]),
      [
        ['web-1', 'http://10.0.0.5:8080', 3],
        ['api.example.com:443', 'https://api.example.com:443', 1],
        ['example.com:80', 'http://example.com:80', 1],
      ],
    );
    assert.deepEqual(r.pointers, ['/0', '/1', '/2']);
  });

  test('an empty array is a valid file with no backends', () => {
    assert.deepEqual(parseJson([]), { backends: [], problems: [], pointers: [] });
  });

  test('YAML, with .yaml and .yml', () => {
    const text = '# backends\n- url: http://10.0.0.5:8080\n  weight: 2\n- url: http://10.0.0.6:8080\n  id: b.6\n';
    for (const file of ['/b/x.yaml', '/b/x.yml', '/b/X.YML']) {
      const r = parseBackendFile(file, text, SRC);
      assert.deepEqual(r.problems, [], file);
      assert.deepEqual(r.backends.map((b) => [b.id, b.weight, b.origin]), [['10.0.0.5:8080', 2, file], ['b.6', 1, file]]);
    }
    const one = parseBackendFile('/b/one.yaml', 'url: http://h:1\n', SRC);
    assert.deepEqual(one.backends.map((b) => b.url), ['http://h:1']);
  });

  test('YAML uses the core schema: `no`, `on` stay strings (and so are rejected as ids only if invalid)', () => {
    const r = parseBackendFile('/b/x.yaml', 'url: http://h:1\nid: no\n', SRC);
    assert.deepEqual(r.problems, []);
    assert.equal(r.backends[0].id, 'no');
  });

  test('a UTF-8 byte order mark is accepted', () => {
    const r = parseBackendFile('/b/a.json', `\uFEFF${json({ url: 'http://h:1' })}`, SRC);
    assert.deepEqual(r.problems, []);
  });

  test('weight bounds: 1 and MAX_WEIGHT are accepted', () => {
    assert.equal(MAX_WEIGHT, 1_000_000);
    const r = parseJson([{ url: 'http://a:1', weight: 1 }, { url: 'http://b:1', weight: MAX_WEIGHT }]);
    assert.deepEqual(r.backends.map((b) => b.weight), [1, MAX_WEIGHT]);
  });

  test('id: the allowed characters, up to 128 of them', () => {
    const r = parseJson([{ url: 'http://a:1', id: 'A-z_0.9:x' }, { url: 'http://b:1', id: 'x'.repeat(128) }]);
    assert.deepEqual(r.problems, []);
  });

  test('specs are frozen', () => {
    const r = parseJson([{ url: 'http://a:1' }, { url: 'http://b:1' }]);
    for (const spec of r.backends) {
      assert.ok(Object.isFrozen(spec));
      assert.throws(() => {
        (spec as { weight: number }).weight = 9;
      }, TypeError);
    }
  });

  test('the input document is not modified (defaults are not written into it)', () => {
    const doc = { url: 'http://a:1' };
    parseBackendFile('/b/a.json', json(doc), SRC);
    assert.deepEqual(doc, { url: 'http://a:1' });
  });
});

describe('whole-file problems (pointer "")', () => {
  const cases: [string, string, string, RegExp][] = [
    ['empty file', '/b/a.json', '', /^file is empty/],
    ['whitespace only', '/b/a.yaml', '  \n\n', /^file is empty/],
    ['invalid JSON, with line and column', '/b/a.json', '{\n  "url": "http://a:1",\n}', /^invalid JSON: .*\(line 3, column 1\)$/],
    ['invalid YAML', '/b/a.yaml', 'url: [\n', /^invalid YAML: /],
    ['duplicate YAML keys', '/b/a.yaml', 'url: http://a:1\nurl: http://b:1\n', /^invalid YAML: Map keys must be unique/],
    ['two YAML documents', '/b/a.yaml', 'url: http://a:1\n---\nurl: http://b:1\n', /^invalid YAML: /],
    ['a number', '/b/a.json', '42', /^expected a backend object or an array of them \(got a number 42\)$/],
    ['a string', '/b/a.json', '"http://a:1"', /got a string "http:\/\/a:1"/],
    ['null', '/b/a.json', 'null', /\(got null\)$/],
    ['true (YAML scalar)', '/b/a.yaml', 'true', /got a boolean true/],
    ['a YAML plain scalar', '/b/a.yaml', 'hello', /got a string "hello"/],
    ['binary garbage with NUL bytes', '/b/a.json', '\u0000\u0001\u00ff\u0000PNG', /^file is not text/],
    ['binary garbage without NUL bytes', '/b/a.json', '\u0089PNG\r\n\u001a\n\u00ff\u00fe', /^invalid JSON: /],
    ['binary garbage as YAML', '/b/a.yaml', '\u0089PNG\r\n\u001a\n\u00ff\u00fe', /./],
    ['unsupported extension', '/b/a.txt', '{}', /^unsupported file extension/],
  ];
  for (const [name, file, text, message] of cases) {
    test(name, () => {
      const p = onlyProblem(parseBackendFile(file, text, SRC));
      assert.equal(p.pointer, '');
      assert.equal(p.file, file);
      assert.match(p.message, message);
      assert.ok(!p.message.includes('\n'), 'a problem message is one line');
    });
  }
});

describe('entry problems', () => {
  test('weights 0, -1, 1.5, huge, a string: each message says what was wrong', () => {
    const cases: [unknown, string][] = [
      [0, 'weight must be an integer >= 1 (got 0)'],
      [-1, 'weight must be an integer >= 1 (got -1)'],
      [1.5, 'weight must be an integer >= 1 (got 1.5)'],
      ['3', 'weight must be an integer >= 1 (got "3")'],
      [null, 'weight must be an integer >= 1 (got null)'],
      [MAX_WEIGHT + 1, `weight must be an integer <= ${MAX_WEIGHT} (got 1000001)`],
      [1e300, `weight must be an integer <= ${MAX_WEIGHT} (got 1e+300)`],
    ];
    for (const [weight, message] of cases) {
      const p = onlyProblem(parseJson({ url: 'http://a:1', weight }));
      assert.deepEqual({ pointer: p.pointer, message: p.message }, { pointer: '/weight', message }, `weight ${String(weight)}`);
    }
  });

  test('an unknown field is an error, pointing at the field', () => {
    const p = onlyProblem(parseJson([{ url: 'http://a:1' }, { url: 'http://b:1', wieght: 2 }]));
    assert.equal(p.pointer, '/1/wieght');
    assert.match(p.message, /^unknown field "wieght"/);
  });

  test('url is required and must be a string', () => {
    assert.equal(onlyProblem(parseJson({ weight: 2 })).message, 'missing required field "url"');
    assert.deepEqual(onlyProblem(parseJson([{ url: 5 }])), { file: '/b/a.json', pointer: '/0/url', message: 'url must be a string (got 5)' });
  });

  test('an array element that is not an object', () => {
    const p = onlyProblem(parseJson([{ url: 'http://a:1' }, 'http://b:1']));
    assert.equal(p.pointer, '/1');
    assert.match(p.message, /^expected a backend object like .* \(got a string "http:\/\/b:1"\)$/);
  });

  test('URL rule: schemes, credentials, fragment, query, path, nonsense', () => {
    const cases: [string, string][] = [
      ['ftp://x', 'url: "ftp://x" has scheme ftp; only http, https and h2c are allowed'],
      ['file:///etc/passwd', 'url: "file:///etc/passwd" has scheme file; only http, https and h2c are allowed'],
      ['javascript:alert(1)', 'url: "javascript:alert(1)" has scheme javascript; only http, https and h2c are allowed'],
      ['http://user:pw@a:1', 'url: "http://user:pw@a:1" contains credentials; they are not allowed in a backend URL'],
      ['http://a:1/#frag', 'url: "http://a:1/#frag" has a fragment; a backend URL is an origin only'],
      ['http://a:1?x=1', 'url: "http://a:1?x=1" has a query; a backend URL is an origin only'],
      ['http://a:1/api', 'url: "http://a:1/api" has a path; a backend URL is an origin only'],
      ['10.0.0.5:8080', 'url: "10.0.0.5:8080" is not a URL (expected http://HOST:PORT)'],
      ['not a url', 'url: "not a url" is not a URL (expected http://HOST:PORT)'],
    ];
    for (const [url, message] of cases) {
      const p = onlyProblem(parseJson([{ url }]));
      assert.deepEqual({ pointer: p.pointer, message: p.message }, { pointer: '/0/url', message }, url);
    }
  });

  test('id pattern and type', () => {
    for (const id of ['', 'a b', 'x'.repeat(129), 'é', 'a/b']) {
      const p = onlyProblem(parseJson({ url: 'http://a:1', id }));
      assert.equal(p.pointer, '/id');
      assert.match(p.message, /^id must be 1 to 128 characters from A-Z a-z 0-9 \. _ : - \(got /);
    }
    assert.equal(onlyProblem(parseJson({ url: 'http://a:1', id: 7 })).message, 'id must be a string (got 7)');
  });

  test('duplicate ids in one file: explicit, and defaulted from the same host:port', () => {
    const explicit = onlyProblem(parseJson([{ url: 'http://a:1', id: 'x' }, { url: 'http://b:1', id: 'x' }]));
    assert.deepEqual(explicit, { file: '/b/a.json', pointer: '/1/id', message: 'duplicate id "x": entry /0 already uses it' });
    const defaulted = onlyProblem(parseJson([{ url: 'http://a' }, { url: 'http://a:80/' }]));
    assert.deepEqual(defaulted, { file: '/b/a.json', pointer: '/1/url', message: 'duplicate id "a:80": entry /0 already uses it' });
  });

  test('all-or-nothing: one bad entry rejects the file, and every problem is reported in document order', () => {
    const r = parseJson([
      { url: 'http://good:1' },
      { url: 'ftp://x' },
      { url: 'http://c:1', weight: 0 },
      { url: 'http://d:1', wieght: 2 },
      { url: 'http://good:1' },
    ]);
    assert.deepEqual(r.backends, []);
    assert.deepEqual(r.pointers, []);
    assert.deepEqual(
      r.problems.map((p) => p.pointer),
      ['/1/url', '/2/weight', '/3/wieght', '/4/url'],
    );
    assert.ok(r.problems.every((p) => Object.isFrozen(p)));
  });
});

test('BACKEND_FILE_SCHEMA is a plain JSON Schema that forbids unknown fields', () => {
  const backend = BACKEND_FILE_SCHEMA.definitions.backend;
  assert.equal(backend.additionalProperties, false);
  assert.deepEqual(backend.required, ['url']);
  assert.deepEqual(Object.keys(backend.properties).sort(), ['health', 'id', 'maxConnections', 'slowStart', 'tls', 'url', 'weight']);
  assert.equal(backend.properties.weight.maximum, MAX_WEIGHT);
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(BACKEND_FILE_SCHEMA)));
});

test('maxConnections and slowStart are read onto the spec, and bad values are named', () => {
  const ok = parseBackendFile('b.yaml', 'url: http://127.0.0.2:80\nmaxConnections: 10\nslowStart: 30s\n', 'dir:/x');
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.backends[0].maxConnections, 10);
  assert.equal(ok.backends[0].slowStartMs, 30_000);
  const bad = parseBackendFile('b.json', JSON.stringify({ url: 'http://127.0.0.2:80', maxConnections: 0, slowStart: 'soon' }), 'dir:/x');
  assert.deepEqual(
    bad.problems.map((p) => `${p.pointer}: ${p.message}`),
    ['/maxConnections: maxConnections must be an integer >= 1 (got 0)', '/slowStart: slowStart must be a duration like 250ms, 2s or 1m, or a number of seconds (got "soon")'],
  );
});

test('a tls block: paths resolved against the file, fields named in problems, https only, cert and key together', () => {
  const ok = parseBackendFile('/etc/bulb/backends/b.yaml', 'url: https://127.0.0.2:8443\ntls:\n  ca: ../tls/ca.pem\n  serverName: api.internal\n  cert: /abs/client.pem\n  key: client-key.pem\n', 'dir:/x');
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.backends[0].tls, { ca: '/etc/bulb/tls/ca.pem', serverName: 'api.internal', cert: '/abs/client.pem', key: '/etc/bulb/backends/client-key.pem' });
  assert.ok(Object.isFrozen(ok.backends[0].tls));
  const insecure = parseBackendFile('/d/b.json', JSON.stringify({ url: 'https://a:1', tls: { insecureSkipVerify: true } }), 'dir:/d');
  assert.deepEqual(insecure.backends[0].tls, { insecureSkipVerify: true });
  const bad = (doc: unknown) => parseBackendFile('/d/b.json', JSON.stringify(doc), 'dir:/d').problems.map((p) => `${p.pointer}: ${p.message}`);
  assert.deepEqual(bad({ url: 'https://a:1', tls: { caFile: 'x' } }), ['/tls/caFile: unknown field "caFile" in tls (allowed: ca, serverName, cert, key, insecureSkipVerify)']);
  assert.deepEqual(bad({ url: 'https://a:1', tls: { ca: 3 } }), ['/tls/ca: tls.ca must be the path of a PEM file (got 3)']);
  assert.deepEqual(bad({ url: 'https://a:1', tls: { insecureSkipVerify: 'yes' } }), ['/tls/insecureSkipVerify: tls.insecureSkipVerify must be true or false (got "yes")']);
  assert.deepEqual(bad({ url: 'https://a:1', tls: 'on' }), ['/tls: tls must be an object like {"ca": "/etc/bulb/tls/ca.pem"} (got a string "on")']);
  assert.deepEqual(bad({ url: 'https://a:1', tls: { cert: 'c.pem' } }), ['/tls/key: tls.cert is set without tls.key (a client certificate needs its private key)']);
  assert.deepEqual(bad({ url: 'https://a:1', tls: { ca: 'c.pem', insecureSkipVerify: true } }), ['/tls/ca: tls.ca is set but insecureSkipVerify turns verification off; drop one of them']);
  assert.deepEqual(bad([{ url: 'http://a:1', tls: { ca: 'c.pem' } }]), ['/0/tls: tls is set but the url is http; TLS settings apply to https backends only']);
});
