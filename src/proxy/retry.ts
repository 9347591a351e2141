import type { IncomingMessage } from 'node:http';

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Errors that mean the backend never produced a response byte. */
const BEFORE_RESPONSE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

/** A request with a body cannot be replayed: http-proxy has already streamed it to the failed backend. */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Whether a failed attempt may be sent to another backend. It must have failed before any response byte,
 * the request must carry no body, and either the method is idempotent or the request provably never reached
 * the application: the connection was refused, or a reused keep-alive socket turned out to be closed (the
 * race Node's docs describe for `reusedSocket`).
 */
export function mayRetry(req: IncomingMessage, code: string, reusedSocket: boolean): boolean {
  if (!BEFORE_RESPONSE.has(code) || hasBody(req)) return false;
  if (IDEMPOTENT.has(req.method ?? '')) return true;
  return code === 'ECONNREFUSED' || (reusedSocket && code === 'ECONNRESET');
}
