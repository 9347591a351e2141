/**
 * One rule for what a backend URL may be, used by backend files, `--backend` and (later) DNS: an http or https
 * origin. Paths, queries, fragments and credentials are refused rather than silently dropped, because each of
 * them would mean something the proxy does not do.
 */
export type BackendUrl = { readonly url: string; readonly id: string } | { readonly error: string };

export function parseBackendUrl(input: string): BackendUrl {
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    return { error: `"${input}" is not a URL (expected http://HOST:PORT)` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { error: `"${input}" has scheme ${u.protocol.replace(/:$/, '')}; only http and https are allowed` };
  }
  if (u.username || u.password) return { error: `"${input}" contains credentials; they are not allowed in a backend URL` };
  if (u.hash || input.includes('#')) return { error: `"${input}" has a fragment; a backend URL is an origin only` };
  if (u.search || input.includes('?')) return { error: `"${input}" has a query; a backend URL is an origin only` };
  if (u.pathname !== '/' && u.pathname !== '') return { error: `"${input}" has a path; a backend URL is an origin only` };
  if (!u.hostname) return { error: `"${input}" has no host` };
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  // join, not a template: both strings live as long as the backend, and a template's result is a tree of
  // pieces that costs ~3 times the memory of the flat string join makes (it adds up at 10,000 backends).
  const url = [u.protocol, '//', u.hostname, ':', port].join('');
  // The id is host:port so the same server named by two sources (or by http and a file) is one backend.
  return { url, id: [u.hostname, port].join(':') };
}
