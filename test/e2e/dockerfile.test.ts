import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine } from '../../src/cli/args.js';
import type { Config } from '../../src/config/types.js';

// No Docker engine runs here, so the Dockerfile is kept correct by construction and by what can be checked
// without building it: stages and base images, the user, the entrypoint against package.json's bin, that every
// file it copies exists and is not excluded by .dockerignore, the health check, and the ports against the CMD.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Splits a Dockerfile into instructions (continuation lines joined, comments dropped) grouped by stage. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) current += line.slice(0, -1) + ' ';
    else {
      lines.push(current + line);
      current = '';
    }
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(m, `FROM ${rest}`);
      const image = m[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_s, a?: string, b?: string) => args.get((a ?? b)!) ?? '');
      stages.push({ image, name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      assert.equal(upper, 'ARG', 'only ARG may come before the first FROM');
      const [name, value = ''] = rest.split('=');
      args.set(name, value);
    } else stages.at(-1)!.instructions.push({ op: upper, args: rest, stage: stages.length - 1 });
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const final = dockerfile.stages.at(-1)!;
const all = (op: string, stage: Stage = final) => stage.instructions.filter((i) => i.op === op);
const one = (op: string): Instruction => {
  const found = all(op);
  assert.equal(found.length, 1, `exactly one ${op} in the final stage`);
  return found[0];
};
const execForm = (i: Instruction): string[] => {
  const v: unknown = JSON.parse(i.args);
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${i.op} is in exec form (a JSON array)`);
  return v;
};

test('multi-stage on an official Node 24 LTS image: build compiles, the runtime has production dependencies only', () => {
  assert.ok(dockerfile.stages.length >= 2, 'multi-stage');
  for (const s of dockerfile.stages) assert.match(s.image, /^node:24(?:[.-]|$)/, `${s.name}: official Node 24 LTS image`);
  const runs = (s: Stage) => all('RUN', s).map((i) => i.args).join(' && ');
  const build = dockerfile.stages.find((s) => /\bnpm ci\b/.test(runs(s)) && /\bnpm run build\b/.test(runs(s)));
  assert.ok(build, 'a stage runs npm ci and npm run build');
  const copies = all('COPY').map((i) => i.args);
  const fromStage = (name: string) => dockerfile.stages.find((s) => s.name === name);
  const modules = copies.find((c) => /\bnode_modules\b/.test(c));
  assert.ok(modules, 'the runtime copies node_modules');
  const source = fromStage(/--from=(\S+)/.exec(modules)![1]);
  assert.ok(source && /\bnpm ci\b[^&]*--omit=dev/.test(runs(source)), 'node_modules come from an `npm ci --omit=dev` stage');
  assert.doesNotMatch(runs(final), /\bnpm (ci|install)\b/, 'the final stage installs nothing');
  for (const c of copies) {
    const from = /--from=(\S+)/.exec(c)?.[1];
    if (from) assert.ok(dockerfile.stages.indexOf(fromStage(from)!) < dockerfile.stages.length - 1, `COPY --from=${from} names an earlier stage`);
  }
});

test('runs as a non-root user', () => {
  const user = all('USER').at(-1)?.args;
  assert.ok(user, 'the final stage sets USER');
  assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user} is not root`);
});

test('ENTRYPOINT is bulb, the file package.json bin names, in the place the build puts it', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const workdir = all('WORKDIR').at(-1)!.args;
  const entry = execForm(one('ENTRYPOINT'));
  assert.deepEqual(entry, ['node', posix.join(workdir, pkg.bin['bulb'])]);
  // The runtime stage copies the build's dist/src to the same relative place, and bin.js is compiled from src/cli/bin.ts.
  assert.ok(all('COPY').some((i) => /--from=\S+\s+\S*dist\/src\s+\.\/dist\/src$/.test(i.args)), 'dist/src copied to ./dist/src');
  assert.ok(existsSync(join(ROOT, pkg.bin['bulb'].replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'))), 'bin source exists');
  assert.ok(all('COPY').some((i) => /^package\.json\s+\.\/$/.test(i.args)), 'package.json is in the image (bulb --version reads it)');
});

/** .dockerignore patterns as regular expressions (enough for the simple patterns it uses). */
function ignored(path: string): boolean {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const segments = path.split('/');
  return patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    // A pattern excludes a path when it matches the path or one of its leading directories.
    return segments.some((_, i) => re.test(segments.slice(0, i + 1).join('/')));
  });
}

test('every file the Dockerfile copies from the build context exists and is not excluded by .dockerignore', () => {
  assert.ok(existsSync(join(ROOT, '.dockerignore')), '.dockerignore exists');
  for (const i of dockerfile.stages.flatMap((s) => all('COPY', s).concat(all('ADD', s)))) {
    if (i.args.includes('--from=')) continue;
    const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      assert.ok(existsSync(join(ROOT, src)), `COPY source ${src} exists`);
      assert.ok(!ignored(src), `COPY source ${src} is not in .dockerignore`);
    }
  }
  for (const local of ['node_modules', 'dist', '.git', 'test']) assert.ok(ignored(local), `${local} stays out of the build context`);
});

async function cmdConfig(): Promise<Config> {
  const cmd = execForm(one('CMD'));
  const r = await parseCommandLine({ argv: cmd, env: {}, cwd: '/app' });
  assert.equal(r.kind, 'run');
  return (r as { config: Config }).config;
}

test('the default CMD is accepted by bulb, and EXPOSE lists exactly its traffic and admin ports', async () => {
  const config = await cmdConfig();
  assert.equal(config.listen.host, '0.0.0.0', 'traffic reachable from outside the container');
  assert.equal(config.admin?.host, '0.0.0.0', 'admin reachable by probes and other containers');
  const exposed = all('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.replace(/\/tcp$/, ''))).sort();
  assert.deepEqual(exposed, [config.listen.port, config.admin.port].sort());
  assert.deepEqual([...config.watchDirs], ['/etc/bulb/backends']);
  assert.ok(all('RUN').some((i) => i.args.includes('/etc/bulb/backends')), 'the default watch dir exists in the image');
});

test('HEALTHCHECK asks /healthz on the admin port, with node (the slim image has no curl)', async () => {
  const config = await cmdConfig();
  const hc = one('HEALTHCHECK').args;
  const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(hc)?.[1];
  assert.ok(cmd, 'HEALTHCHECK ... CMD [exec form]');
  const argv = JSON.parse(cmd) as string[];
  assert.equal(argv[0], 'node');
  assert.match(argv.join(' '), new RegExp(`http://127\\.0\\.0\\.1:${config.admin!.port}/healthz`));
  assert.match(hc, /--timeout=\d+s/);
});
