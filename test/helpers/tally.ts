/**
 * Sends requests through bulb one after another and reports who answered. Test backends answer with their
 * name (see backend.ts), so the body names the backend; strategies and discovery tests assert on exact
 * sequences (`answers`) or counts (`tally`).
 */
import type http from 'node:http';
import { request, type Reply } from './http.js';

export interface SendOptions {
  /** The path of the i-th request (a string: the same path every time). Default `/n0`, `/n1`, ... */
  readonly path?: string | ((i: number) => string);
  readonly headers?: http.OutgoingHttpHeaders;
}

/** `n` sequential GETs to `bulb.url`, each on a fresh connection; the replies in order. */
export async function send(bulb: { readonly url: string }, n: number, opts: SendOptions = {}): Promise<Reply[]> {
  const path = opts.path ?? ((i: number) => `/n${i}`);
  const out: Reply[] = [];
  for (let i = 0; i < n; i++) out.push(await request(`${bulb.url}${typeof path === 'string' ? path : path(i)}`, { headers: opts.headers }));
  return out;
}

/** Which backend answered each of `n` sequential requests (the body), in order. */
export async function answers(bulb: { readonly url: string }, n: number, opts: SendOptions = {}): Promise<string[]> {
  return (await send(bulb, n, opts)).map((r) => r.body);
}

/** How often each value occurs: `['a', 'b', 'a']` → `{ a: 2, b: 1 }`. */
export function count(xs: readonly string[]): Record<string, number> {
  return xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
}

/**
 * How many of `n` sequential requests each backend answered; a non-200 counts under its status code
 * (`{ a: 5, '503': 1 }`), so a failure never passes for a backend's name.
 */
export async function tally(bulb: { readonly url: string }, n: number, opts: SendOptions = {}): Promise<Record<string, number>> {
  return count((await send(bulb, n, opts)).map((r) => (r.status === 200 ? r.body : String(r.status))));
}
