/**
 * A minimal DNS stub client: one question, UDP first, TCP when the answer comes back truncated (TC bit), with
 * messages encoded and decoded by `dns-packet`. bulb needs the records' TTLs to know when to look again, and
 * Node's `dns.resolveSrv` does not return them (only `resolve4/resolve6` with `{ ttl: true }` do), so the
 * source reads them from the DNS message itself.
 *
 * What a caller gets back is an *answer* (NOERROR or NXDOMAIN: the server said something authoritative about
 * the name) or a thrown `DnsQueryError` (timeout, network error, SERVFAIL, REFUSED, garbled reply: nothing is
 * known). That split is the whole failure model of the DNS source: answers replace the backend set, errors keep
 * the last-known-good one (compare grpc's dns resolver, which reports errors instead of pushing empty sets).
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import type * as DnsPacket from 'dns-packet';
import type { DecodedPacket, RecordType } from 'dns-packet';
import type { DnsServer } from './resolv-conf.js';

let dnsPacket: typeof DnsPacket | undefined;
/** `dns-packet`, loaded on the first query: a bulb that follows no DNS name never needs it. */
function packet(): typeof DnsPacket {
  dnsPacket ??= createRequire(import.meta.url)('dns-packet') as typeof DnsPacket;
  return dnsPacket;
}

/** A decoded reply; `rcode` is on every decoded packet, but @types/dns-packet does not declare it. */
export type Reply = DecodedPacket & { readonly rcode?: string };

/** The server answered: the name exists with these records (NOERROR, possibly none), or does not (NXDOMAIN). */
export interface DnsAnswer {
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  readonly reply: Reply;
  /** Which server answered, `host:port`, for logs. */
  readonly server: string;
  readonly transport: 'udp' | 'tcp';
}

/** Nothing authoritative is known: the caller keeps what it had. */
export class DnsQueryError extends Error {
  /** Short reason for logs and snapshots: `timeout`, `ECONNREFUSED`, `SERVFAIL`, ... */
  readonly reason: string;
  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DnsQueryError';
    this.reason = reason;
  }
}

export interface QueryOptions {
  /** Tried in order; the next one is asked when one times out, fails or answers SERVFAIL/REFUSED. */
  readonly servers: readonly DnsServer[];
  /** Per attempt, per server. */
  readonly timeoutMs: number;
  /** Rounds over the server list (UDP is lossy; one retransmission is what glibc does by default). */
  readonly attempts: number;
  /** Aborts every attempt in flight (the source's `stop()`). */
  readonly signal?: AbortSignal;
  /**
   * EDNS(0) UDP payload size to advertise. 1232 bytes is the DNS Flag Day 2020 value (no IP fragmentation on
   * any common path). 0 sends no OPT record, which limits UDP answers to 512 bytes (tests use it to force TCP).
   */
  readonly udpPayloadSize?: number;
}

export const DEFAULT_UDP_PAYLOAD_SIZE = 1232;
/** A DNS message over TCP is at most 65535 bytes (two-byte length prefix). */
const MAX_TCP_MESSAGE = 65_535;

/** Asks `name`/`type` (class IN, recursion desired) and returns the first answer any server gives. */
export async function query(name: string, type: RecordType, opts: QueryOptions): Promise<DnsAnswer> {
  let last: DnsQueryError | undefined;
  for (let attempt = 0; attempt < Math.max(1, opts.attempts); attempt++) {
    for (const server of opts.servers) {
      if (opts.signal?.aborted) throw new DnsQueryError(`query for ${name} ${type} aborted`, 'aborted');
      try {
        const answer = await queryServer(server, name, type, opts);
        const rcode = answer.reply.rcode ?? 'NOERROR';
        if (rcode === 'NOERROR' || rcode === 'NXDOMAIN') return { ...answer, rcode };
        // SERVFAIL, REFUSED, NOTIMP, FORMERR: this server cannot help now; another one might.
        last = new DnsQueryError(`${serverText(server)} answered ${rcode} for ${name} ${type}`, rcode);
      } catch (err) {
        last =
          err instanceof DnsQueryError
            ? err
            : new DnsQueryError(`query for ${name} ${type} to ${serverText(server)} failed: ${String(err)}`, 'error', { cause: err });
        if (last.reason === 'aborted') throw last;
      }
    }
  }
  throw last ?? new DnsQueryError(`no DNS server to ask for ${name} ${type}`, 'no-server');
}

async function queryServer(
  server: DnsServer,
  name: string,
  type: RecordType,
  opts: QueryOptions,
): Promise<Omit<DnsAnswer, 'rcode'>> {
  const payload = opts.udpPayloadSize ?? DEFAULT_UDP_PAYLOAD_SIZE;
  // node:crypto and node:dgram are loaded on the first query: a bulb that follows no DNS name never needs them.
  const id = process.getBuiltinModule('node:crypto').randomInt(0, 65_536);
  const message: DnsPacket.Packet = {
    type: 'query',
    id,
    flags: packet().RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: payload > 0 ? [{ type: 'OPT', name: '.', udpPayloadSize: payload, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  };
  const udp = await exchangeUdp(server, packet().encode(message), opts.timeoutMs, opts.signal, (r) => matches(r, id, name, type));
  if (!udp.flag_tc) return { reply: udp, server: serverText(server), transport: 'udp' };
  // Truncated: the full answer only fits over TCP (RFC 7766). Without EDNS that is anything over 512 bytes.
  const tcp = await exchangeTcp(server, packet().streamEncode(message), opts.timeoutMs, opts.signal);
  if (!matches(tcp, id, name, type)) throw new DnsQueryError(`${serverText(server)} sent a TCP reply that does not match the question`, 'mismatch');
  return { reply: tcp, server: serverText(server), transport: 'tcp' };
}

/** A reply belongs to our question: same id, a response, same question (names compare case-insensitively). */
function matches(reply: Reply, id: number, name: string, type: RecordType): boolean {
  const q = reply.questions?.[0];
  return reply.id === id && reply.type === 'response' && q?.type === type && q.name.toLowerCase() === name.toLowerCase();
}

function exchangeUdp(
  server: DnsServer,
  message: Buffer,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  accept: (r: Reply) => boolean,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = process.getBuiltinModule('node:dgram').createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (err: DnsQueryError | undefined, reply?: Reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.close();
      if (err) reject(err);
      // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- finish is called with a reply whenever err is undefined
      else resolve(reply!);
    };
    const onAbort = () => finish(new DnsQueryError('aborted', 'aborted'));
    const timer = setTimeout(() => finish(new DnsQueryError(`no answer from ${serverText(server)} within ${timeoutMs} ms`, 'timeout')), timeoutMs);
    signal?.addEventListener('abort', onAbort);
    socket.on('message', (msg) => {
      let reply: Reply;
      try {
        reply = packet().decode(msg);
      } catch {
        return; // garbage on our port: keep waiting for the real answer until the timeout
      }
      if (accept(reply)) finish(undefined, reply);
    });
    // A connected UDP socket reports ICMP "port unreachable" as ECONNREFUSED: a stopped server fails fast.
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish(new DnsQueryError(`${serverText(server)}: ${err.code ?? err.message}`, err.code ?? 'error', { cause: err })),
    );
    socket.connect(server.port, server.host, () => {
      socket.send(message, (err) => {
        if (err) finish(new DnsQueryError(`${serverText(server)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, (err as NodeJS.ErrnoException).code ?? 'error', { cause: err }));
      });
    });
  });
}

function exchangeTcp(server: DnsServer, message: Buffer, timeoutMs: number, signal: AbortSignal | undefined): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let buffered = Buffer.alloc(0);
    let settled = false;
    const finish = (err: DnsQueryError | undefined, reply?: Reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- finish is called with a reply whenever err is undefined
      else resolve(reply!);
    };
    const onAbort = () => finish(new DnsQueryError('aborted', 'aborted'));
    const timer = setTimeout(() => finish(new DnsQueryError(`no TCP answer from ${serverText(server)} within ${timeoutMs} ms`, 'timeout')), timeoutMs);
    signal?.addEventListener('abort', onAbort);
    socket.on('connect', () => socket.write(message));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_MESSAGE + 2) { finish(new DnsQueryError(`${serverText(server)} sent an oversized TCP reply`, 'garbled')); return; }
      if (buffered.length < 2) return;
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) return;
      try {
        finish(undefined, packet().decode(buffered.subarray(2, 2 + length)));
      } catch (err) {
        finish(new DnsQueryError(`${serverText(server)} sent an undecodable TCP reply`, 'garbled', { cause: err }));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish(new DnsQueryError(`${serverText(server)} (tcp): ${err.code ?? err.message}`, err.code ?? 'error', { cause: err })),
    );
    socket.on('close', () => finish(new DnsQueryError(`${serverText(server)} closed the TCP connection before answering`, 'closed')));
  });
}

/** `1.2.3.4:53`, `[::1]:53`. */
export function serverText(server: DnsServer): string {
  return net.isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
