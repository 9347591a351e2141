/**
 * The `--backend-tls-*` settings as a `BackendTlsSpec`: how https backends from `--backend`, DNS, and backend
 * files without a `tls` block of their own are reached. Checked at start-up (and by `bulb check`), so a bad path
 * stops bulb with the flag, the file and the reason.
 */
import type { Config } from '../config/types.js';
import { loadTlsMaterial, type BackendTlsSpec } from './material.js';

/** The flag behind each field, for messages. */
const FLAGS: Readonly<Record<string, string>> = {
  ca: '--backend-tls-ca',
  serverName: '--backend-tls-server-name',
  cert: '--backend-tls-cert',
  key: '--backend-tls-key',
  insecureSkipVerify: '--backend-tls-insecure',
};

/** What log lines call the global settings. */
export const GLOBAL_TLS_ORIGIN = '--backend-tls-*';

export function globalTlsSpec(config: Config): BackendTlsSpec {
  return Object.freeze({
    ...(config.backendTlsCa !== undefined && { ca: config.backendTlsCa }),
    ...(config.backendTlsServerName !== undefined && { serverName: config.backendTlsServerName }),
    ...(config.backendTlsCert !== undefined && { cert: config.backendTlsCert }),
    ...(config.backendTlsKey !== undefined && { key: config.backendTlsKey }),
    ...(config.backendTlsInsecure && { insecureSkipVerify: true }),
  });
}

/** One line per problem of the global settings' files, in flag terms (`--backend-tls-ca: cannot read ...`). */
export function globalTlsProblems(spec: BackendTlsSpec): string[] {
  const loaded = loadTlsMaterial(spec);
  if ('options' in loaded) return [];
  return loaded.problems.map(([field, m]) => `${FLAGS[field] ?? GLOBAL_TLS_ORIGIN}: ${m.replace(/\btls\.(\w+)/g, (_, f: string) => FLAGS[f] ?? f).replace(/\binsecureSkipVerify\b/g, '--backend-tls-insecure')}`);
}
