/**
 * The browser side of the relay tests: a `ws` client that records what it receives and how it closed,
 * a refused upgrade's HTTP status, a raw upgrade over `net` for a client that never reads, and a
 * collector of the relay's log lines to await them.
 *
 * @example
 * ```ts
 * const client = await openClient(`ws://127.0.0.1:${relay.address!.port}`);
 * client.send(PROTOCOL_HEADER);
 * await client.waitForBytes(8);
 * expect((await client.closed).code).toBe(1000);
 * ```
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

/** How a WebSocket closed, as the client saw it. */
export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** A connected `ws` client. */
export class TestClient {
  readonly received: Buffer[] = [];
  receivedLength = 0;
  readonly closed: Promise<Closed>;
  private isClosed = false;
  private waiters: (() => void)[] = [];
  /** Called with each message (after it is recorded). */
  onMessage: ((data: Buffer) => void) | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on('error', () => {
      // The close that follows is what the tests look at.
    });
    ws.on('message', (data: Buffer) => {
      this.received.push(data);
      this.receivedLength += data.length;
      this.onMessage?.(data);
      this.notify();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => {
        this.isClosed = true;
        this.notify();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  /** Sends bytes as one binary message. */
  send(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  /** Waits until at least `n` bytes have arrived; rejects if the WebSocket closes first. */
  async waitForBytes(n: number): Promise<Buffer> {
    while (this.receivedLength < n) {
      if (this.isClosed) throw new Error(`closed after ${this.receivedLength} of ${n} bytes`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.bytes();
  }

  /** Closes (1000 by default) and waits for the close to complete. */
  async close(code = 1000): Promise<Closed> {
    this.ws.close(code);
    return this.closed;
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** Options of {@link openClient}. */
export interface ClientOptions {
  readonly origin?: string;
  readonly protocols?: string[];
  /** CA to trust for `wss://`. */
  readonly ca?: string;
}

function createWebSocket(url: string, options: ClientOptions): WebSocket {
  return new WebSocket(url, options.protocols ?? [], {
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    perMessageDeflate: false,
  });
}

/** Opens a WebSocket to the relay and waits for it to be open. */
export async function openClient(url: string, options: ClientOptions = {}): Promise<TestClient> {
  const ws = createWebSocket(url, options);
  const client = new TestClient(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_request, response: IncomingMessage) =>
      reject(new Error(`upgrade refused with ${response.statusCode}`)),
    );
    ws.once('error', reject);
  });
  return client;
}

/** Attempts an upgrade that the relay should refuse; resolves with the HTTP status and body. */
export async function refusedUpgrade(
  url: string,
  options: ClientOptions = {},
): Promise<{ status: number; body: string }> {
  const ws = createWebSocket(url, options);
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_request, response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
      response.on('error', reject);
    });
  });
}

/**
 * Does the WebSocket handshake over a bare TCP socket and returns the socket paused right after the
 * 101 response: a client that never reads what the relay sends.
 */
export async function rawUpgrade(port: number, path = '/'): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    head += chunk.toString('latin1');
  }
  socket.pause();
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
  return socket;
}

/** Collects log lines and lets a test wait for one. */
export class LogLines {
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  readonly log = (line: string): void => {
    this.lines.push(line);
    for (const wake of this.waiters.splice(0)) wake();
  };

  /** The first line (from `from` on) matching `pattern`, waiting for it. */
  async waitFor(pattern: RegExp, from = 0): Promise<string> {
    for (;;) {
      const line = this.lines.slice(from).find((l) => pattern.test(l));
      if (line !== undefined) return line;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Waits until `count` lines match `pattern`. */
  async waitForCount(pattern: RegExp, count: number): Promise<string[]> {
    for (;;) {
      const found = this.lines.filter((l) => pattern.test(l));
      if (found.length >= count) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}
