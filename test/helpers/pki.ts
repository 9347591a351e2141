/**
 * A throwaway PKI made at test time with the `openssl` command line: CAs, server certificates (with DNS and IP
 * subject alternative names, optionally already expired) and client certificates, as PEM files in a temp dir.
 * `openssl ca` rather than `x509 -req`, because OpenSSL 3.0's x509 cannot set a start date in the past
 * (`-not_before` arrived in 3.4) and an expired certificate needs one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Issued {
  /** Paths of the PEM certificate and its (unencrypted) key. */
  readonly cert: string;
  readonly key: string;
}

export interface Ca extends Issued {
  readonly name: string;
  /** Issues a server certificate for `names` (DNS names and IP addresses), valid now unless `expired`; CN `cn` or the first name. */
  server(file: string, names: readonly string[], opts?: { readonly expired?: boolean; readonly cn?: string }): Issued;
  /** Issues a client certificate (extendedKeyUsage clientAuth) with CN `cn`. */
  client(file: string, cn: string): Issued;
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? String(err)}`, { cause: err });
  }
}

/** `YYMMDDHHMMSSZ`, the form `openssl ca -startdate/-enddate` takes (UTCTime). */
function utcTime(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

/** Makes a CA named `name` under `dir` (its own subfolder), able to issue certificates. */
export function makeCa(dir: string, name: string): Ca {
  const home = join(dir, name);
  mkdirSync(join(home, 'issued'), { recursive: true });
  writeFileSync(join(home, 'index.txt'), '');
  writeFileSync(join(home, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
  const conf = join(home, 'ca.cnf');
  writeFileSync(
    conf,
    [
      '[ca]',
      'default_ca = this',
      '[this]',
      `dir = ${home}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir/issued',
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      'copy_extensions = none',
      '[anything]',
      'commonName = supplied',
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      `CN = ${name}`,
      '[v3_ca]',
      'basicConstraints = critical, CA:true',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const cert = join(home, 'ca.pem');
  const key = join(home, 'ca-key.pem');
  openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-config', conf, '-extensions', 'v3_ca'], home);

  const issue = (file: string, cn: string, ext: string, start: Date, end: Date): Issued => {
    const leafKey = join(dir, `${file}-key.pem`);
    const csr = join(home, `${file}.csr`);
    const leaf = join(dir, `${file}.pem`);
    const extFile = join(home, `${file}.ext`);
    writeFileSync(extFile, `${ext}\n`);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey, '-out', csr, '-subj', `/CN=${cn}`], home);
    openssl(['ca', '-batch', '-notext', '-config', conf, '-cert', cert, '-keyfile', key, '-in', csr, '-out', leaf, '-startdate', utcTime(start), '-enddate', utcTime(end), '-extfile', extFile], home);
    return { cert: leaf, key: leafKey };
  };
  const day = 86_400_000;
  return {
    name,
    cert,
    key,
    server(file, names, opts) {
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(', ');
      const now = Date.now();
      const [start, end] = opts?.expired ? [new Date(now - 10 * day), new Date(now - day)] : [new Date(now - day), new Date(now + 30 * day)];
      return issue(file, opts?.cn ?? names[0] ?? 'server', `basicConstraints = CA:false\nkeyUsage = digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = ${san}`, start, end);
    },
    client(file, cn) {
      const now = Date.now();
      return issue(file, cn, 'basicConstraints = CA:false\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth', new Date(now - day), new Date(now + 30 * day));
    },
  };
}

/** The PEM text of a file (for servers that want the bytes, not the path). */
export function pem(path: string): string {
  return readFileSync(path, 'utf8');
}
