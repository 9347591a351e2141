import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { parseCommandLine } from '../../src/cli/args.js';
import { parseDuration } from '../../src/values.js';
import { CONFIG_SCHEMA } from '../../src/config/schema.js';
import type { Config } from '../../src/config/types.js';
import { runBulb } from '../helpers/bulb.js';
import { tmpDir } from '../helpers/tmpdir.js';

// The deployment files are checked the way a cluster or compose would read them: parsed as YAML, bulb's
// arguments and environment taken from the parsed objects and handed to bulb's own config loader, and every
// embedded backend file run through `bulb check`. Nothing here greps text.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (...p: string[]) => join(ROOT, ...p);
const TOKEN = 'a-token-from-a-secret';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Every YAML document under deploy/, parsed; a syntax error fails here. */
function manifests(dir: string): { file: string; docs: Obj[] }[] {
  const out: { file: string; docs: Obj[] }[] = [];
  for (const name of readdirSync(at(dir)).sort()) {
    if (!/\.ya?ml$/.test(name)) continue;
    const text = readFileSync(at(dir, name), 'utf8');
    const docs = parseAllDocuments(text);
    for (const d of docs) assert.deepEqual(d.errors, [], `${dir}/${name} parses`);
    out.push({ file: `${dir}/${name}`, docs: docs.map((d) => d.toJS() as unknown).filter((d) => d !== null).map(obj) });
  }
  return out;
}

/** bulb's Config for a container's command line and environment, as bulb itself would load it. */
async function bulbConfig(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Config> {
  const r = await parseCommandLine({ argv: args, env, cwd: '/' });
  assert.equal(r.kind, 'run', `bulb ${args.join(' ')} runs bulb`);
  return (r as { config: Config }).config;
}

/** Docker compose interpolation of `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, with `vars` set. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}/g, (_m, name: string) => {
    const v = vars[name];
    assert.ok(v !== undefined, `\${${name}} is set in the test`);
    return v;
  });
}

async function checkPasses(args: string[]): Promise<string> {
  const r = await runBulb(['check', ...args], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `bulb check ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /check passed/);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------------
// Kubernetes

interface BulbContainer {
  readonly file: string;
  readonly workload: Obj;
  readonly pod: Obj;
  readonly container: Obj;
}

function bulbContainers(): BulbContainer[] {
  const out: BulbContainer[] = [];
  for (const { file, docs } of manifests('deploy/kubernetes')) {
    for (const doc of docs) {
      const pod = doc['kind'] === 'Pod' ? obj(doc['spec']) : obj(obj(obj(doc['spec'])['template'])['spec']);
      for (const c of [...list(pod['initContainers']), ...list(pod['containers'])].map(obj)) {
        if (String(c['image']).startsWith('bulb')) out.push({ file, workload: doc, pod, container: c });
      }
    }
  }
  return out;
}

function containerEnv(c: Obj): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of list(c['env']).map(obj)) {
    const ref = obj(obj(e['valueFrom'])['secretKeyRef']);
    const value = e['value'];
    env[String(e['name'])] = typeof value === 'string' || typeof value === 'number' ? String(value) : ref['name'] ? TOKEN : undefined;
  }
  return env;
}

test('kubernetes: both deployments exist and every bulb container accepts its arguments', async () => {
  const found = bulbContainers();
  assert.deepEqual([...new Set(found.map((b) => b.file))], ['deploy/kubernetes/dns-srv.yaml', 'deploy/kubernetes/sidecar.yaml']);
  for (const { file, container } of found) {
    const config = await bulbConfig(list(container['args']).map(String), containerEnv(container));
    assert.deepEqual(config.admin, { host: '0.0.0.0', port: 9901 }, `${file}: admin reachable by the probes`);
    assert.equal(config.adminToken, TOKEN, `${file}: admin token set`);
  }
});

test('kubernetes: token from a Secret, probes, grace period, resources, read-only root, non-root', async () => {
  for (const { file, workload, pod, container } of bulbContainers()) {
    const config = await bulbConfig(list(container['args']).map(String), containerEnv(container));
    const tokenEnv = list(container['env']).map(obj).find((e) => e['name'] === 'BULB_ADMIN_TOKEN');
    assert.ok(obj(obj(tokenEnv?.['valueFrom'])['secretKeyRef'])['key'], `${file}: BULB_ADMIN_TOKEN from a secretKeyRef`);

    const ports = new Map(list(container['ports']).map(obj).map((p) => [String(p['name']), Number(p['containerPort'])]));
    const probePort = (probe: string) => {
      const http = obj(obj(container[probe])['httpGet']);
      const port = http['port'];
      return { path: http['path'], port: typeof port === 'number' ? port : ports.get(String(port)) };
    };
    assert.deepEqual(probePort('livenessProbe'), { path: '/healthz', port: config.admin?.port }, `${file}: liveness`);
    assert.deepEqual(probePort('readinessProbe'), { path: '/readyz', port: config.admin?.port }, `${file}: readiness`);

    const grace = Number(pod['terminationGracePeriodSeconds']) * 1000;
    assert.ok(grace > config.drainTimeoutMs + config.shutdownDelayMs, `${file}: grace ${grace}ms > drain ${config.drainTimeoutMs}ms + delay ${config.shutdownDelayMs}ms`);

    const resources = obj(container['resources']);
    for (const kind of ['requests', 'limits']) {
      assert.ok(obj(resources[kind])['cpu'] && obj(resources[kind])['memory'], `${file}: resources.${kind}`);
    }
    const sc = obj(container['securityContext']);
    assert.equal(sc['readOnlyRootFilesystem'], true, `${file}: read-only root filesystem`);
    assert.equal(sc['runAsNonRoot'] ?? obj(pod['securityContext'])['runAsNonRoot'], true, `${file}: runAsNonRoot`);
    assert.equal(sc['allowPrivilegeEscalation'], false, `${file}: no privilege escalation`);
    // The image's USER is a name (node); the kubelet can only verify runAsNonRoot against a numeric uid.
    const uid = Number(sc['runAsUser'] ?? obj(pod['securityContext'])['runAsUser']);
    assert.ok(uid > 0, `${file}: numeric non-root runAsUser`);
    assert.ok(workload['kind'] === 'Deployment' || workload['kind'] === 'Pod');
  }
});

test('kubernetes sidecar: the watch dir is a mounted ConfigMap whose backend files pass bulb check', async (t) => {
  const { file, docs } = manifests('deploy/kubernetes').find((m) => m.file.endsWith('sidecar.yaml'))!;
  const sidecar = bulbContainers().find((b) => b.file === file)!;
  assert.equal(obj(sidecar.container)['restartPolicy'], 'Always', 'a native sidecar (init container that keeps running)');
  const config = await bulbConfig(list(sidecar.container['args']).map(String), containerEnv(sidecar.container));
  assert.equal(config.listen.host, '127.0.0.1', 'traffic only from inside the Pod');
  const app = list(sidecar.pod['containers']).map(obj)[0];
  assert.match(list(app['command']).join(' '), new RegExp(`127\\.0\\.0\\.1:${config.listen.port}`), 'the app talks to bulb on localhost');

  assert.equal(config.watchDirs.length, 1);
  const mount = list(sidecar.container['volumeMounts']).map(obj).find((m) => m['mountPath'] === config.watchDirs[0]);
  assert.ok(mount, `${config.watchDirs[0]} is a volume mount`);
  const volume = list(sidecar.pod['volumes']).map(obj).find((v) => v['name'] === mount['name'])!;
  const cmName = obj(volume['configMap'])['name'];
  const cm = docs.find((d) => d['kind'] === 'ConfigMap' && obj(d['metadata'])['name'] === cmName);
  assert.ok(cm, `ConfigMap ${String(cmName)} is in ${file}`);

  const dir = await tmpDir(t);
  const data = Object.entries(obj(cm['data']));
  assert.ok(data.length >= 2);
  for (const [name, text] of data) await writeFile(join(dir, name), String(text));
  const out = await checkPasses(['--watch-dir', dir]);
  assert.match(out, new RegExp(`${data.length} valid backend\\(s\\)`));
});

test('kubernetes DNS: --dns-srv names a headless Service of this file, by its port name', async () => {
  const { file, docs } = manifests('deploy/kubernetes').find((m) => m.file.endsWith('dns-srv.yaml'))!;
  const bulb = bulbContainers().find((b) => b.file === file)!;
  const config = await bulbConfig(list(bulb.container['args']).map(String), containerEnv(bulb.container));
  assert.equal(config.dnsSrv.length, 1);
  const [, port, , service, namespace] = /^_([a-z0-9-]+)\._(tcp)\.([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(config.dnsSrv[0]) ?? [];
  assert.ok(service, `${config.dnsSrv[0]} is a Kubernetes SRV name`);
  const svc = docs.find((d) => d['kind'] === 'Service' && obj(d['metadata'])['name'] === service)!;
  assert.equal(obj(svc['spec'])['clusterIP'], 'None', 'headless');
  assert.ok(list(obj(svc['spec'])['ports']).map(obj).some((p) => p['name'] === port), `Service ${service} has a port named ${port}`);
  assert.equal(namespace, 'default');
  const front = docs.find((d) => d['kind'] === 'Service' && obj(d['metadata'])['name'] === 'bulb');
  assert.ok(front, 'a Service in front of bulb');
});

// ---------------------------------------------------------------------------------------------------------
// Compose

function composeBulb(file: string): { compose: Obj; service: Obj; args: string[]; env: NodeJS.ProcessEnv } {
  const compose = obj(parse(readFileSync(at(file), 'utf8')));
  const service = obj(obj(compose['services'])['bulb']);
  assert.equal(obj(service['build'])['context'], '../..', `${file}: bulb is built from this repository`);
  const vars = { BULB_ADMIN_TOKEN: TOKEN };
  const command = service['command'];
  const args = (Array.isArray(command) ? command.map(String) : String(command).split(/\s+/)).map((a) => interpolate(a, vars));
  const env: NodeJS.ProcessEnv = {};
  const environment = service['environment'];
  if (Array.isArray(environment)) {
    for (const e of environment.map(String)) env[e.slice(0, e.indexOf('='))] = interpolate(e.slice(e.indexOf('=') + 1), vars);
  } else for (const [k, v] of Object.entries(obj(environment))) env[k] = interpolate(String(v), vars);
  return { compose, service, args, env };
}

test('compose: both variants parse, and bulb accepts the arguments and environment each gives it', async () => {
  const files = manifests('deploy/compose').map((m) => m.file);
  assert.deepEqual(files, ['deploy/compose/docker-compose.dns.yml', 'deploy/compose/docker-compose.files.yml']);
  for (const file of files) {
    const { service, args, env } = composeBulb(file);
    const config = await bulbConfig(args, env);
    assert.deepEqual(config.admin, { host: '0.0.0.0', port: 9901 }, file);
    assert.equal(config.adminToken, TOKEN, `${file}: admin token from the environment`);
    const ports = list(service['ports']).map(String);
    assert.ok(ports.includes(`${config.listen.port}:${config.listen.port}`), `${file}: traffic port published`);
    assert.ok(ports.includes(`127.0.0.1:${config.admin.port}:${config.admin.port}`), `${file}: admin published on the host's loopback only`);
    assert.equal(service['read_only'], true, `${file}: read-only root filesystem`);
    const grace = parseDuration(String(service['stop_grace_period']))!;
    assert.ok(grace > config.drainTimeoutMs + config.shutdownDelayMs, `${file}: stop_grace_period covers the drain`);
  }
});

test('compose DNS: --dns-a names the replicated hello-world service', async () => {
  const { compose, args, env } = composeBulb('deploy/compose/docker-compose.dns.yml');
  const config = await bulbConfig(args, env);
  assert.equal(config.dnsA.length, 1);
  const { host, port } = config.dnsA[0];
  const web = obj(obj(compose['services'])[host]);
  assert.equal(web['image'], 'strm/helloworld-http');
  assert.equal(obj(web['deploy'])['replicas'], 3);
  assert.equal(port, 80, 'the port the hello-world image serves on');
});

test('compose files: the mounted backends directory passes bulb check and names services of the file', async () => {
  const { compose, service, args, env } = composeBulb('deploy/compose/docker-compose.files.yml');
  const config = await bulbConfig(args, env);
  const volume = list(service['volumes']).map(String).find((v) => v.split(':')[1] === config.watchDirs[0]);
  assert.ok(volume, `${config.watchDirs[0]} is mounted`);
  const local = join(at('deploy/compose'), volume.split(':')[0]);
  await checkPasses(['--watch-dir', local]);
  for (const name of readdirSync(local)) {
    const host = new URL(String((parse(readFileSync(join(local, name), 'utf8')) as Obj)['url'])).hostname;
    const target = obj(obj(compose['services'])[host]);
    assert.equal(target['image'], 'strm/helloworld-http', `${name} points at the service ${host}`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Examples

/**
 * Settings examples/bulb.yaml shows commented out: the token (it belongs in a Secret, not a file), and settings that
 * name certificate files, which `bulb check` reads and which the repository does not ship.
 */
const COMMENTED_SETTINGS = ['adminToken', 'backendTlsCa', 'backendTlsCert', 'backendTlsKey', 'backendTlsServerName', 'tlsCert', 'tlsKey'];

test('examples: bulb.yaml sets every setting (the token and certificate files commented) and passes bulb check; so does the backends directory', async () => {
  const text = readFileSync(at('examples/bulb.yaml'), 'utf8');
  const doc = obj(parse(text));
  const settable = Object.keys(CONFIG_SCHEMA.properties).filter((k) => !COMMENTED_SETTINGS.includes(k)).sort();
  assert.deepEqual(Object.keys(doc).sort(), settable, 'examples/bulb.yaml has every setting');
  for (const k of COMMENTED_SETTINGS) assert.match(text, new RegExp(`^# ${k}: `, 'm'), `examples/bulb.yaml shows ${k}, commented`);
  await checkPasses(['--config', at('examples/bulb.yaml')]);
  const out = await checkPasses(['--watch-dir', at('examples/backends')]);
  assert.match(out, /4 valid backend\(s\)/);
});

test('examples: compose-replay.mjs replays the compose scenario and shows a removed backend leave', async () => {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [at('examples/compose-replay.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`compose-replay exited ${code}: ${stderr}\n${stdout}`));
    });
  });
  const [before, after] = out.split('$ rm web2.json');
  const served = (text: string | undefined) => [...(text ?? '').matchAll(/->\s+(\w+)/g)].map((m) => m[1]).sort();
  assert.deepEqual(served(before), ['web1', 'web1', 'web2', 'web2', 'web3', 'web3']);
  assert.deepEqual(served(after), ['web1', 'web1', 'web3', 'web3']);
});
