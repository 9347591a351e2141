import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';

export interface WsEcho {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, as a backend URL for bulb. */
  readonly url: string;
}

/**
 * A real WebSocket backend on a loopback address that answers every message `m` with `echo:m`. Every
 * connection is terminated and the server closed when the test ends.
 */
export async function startWsEcho(t: TestContext, host = '127.0.0.1'): Promise<WsEcho> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${(m as Buffer).toString()}`)));
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { host, port, url: `http://${host}:${port}` };
}

/** A WebSocket client connected to `url` (`ws://` or an `http://` URL, converted); terminated when the test ends. */
export async function openWs(t: TestContext, url: string): Promise<WebSocket> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'));
  t.after(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Sends `text` and resolves with the next message that arrives, as text. */
export function sendAndReceive(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => ws.once('message', (m) => resolve((m as Buffer).toString())));
  ws.send(text);
  return reply;
}
