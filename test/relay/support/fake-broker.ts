/**
 * A fake "broker" for the relay's limit and close tests: a TCP server on 127.0.0.1 (or a TLS one, with
 * a certificate given) that speaks no AMQP at all. It records the bytes the relay sends it, sends what a
 * test asks (a flood of patterned bytes, respecting backpressure and reporting when it is held back),
 * and ends or resets on demand. A TLS fake can hold its handshakes until the test releases them.
 *
 * @example
 * ```ts
 * const broker = await startFakeBroker();
 * const relay = await startRelay({ port: 0, broker: broker.url });
 * const connection = await broker.nextConnection();
 * await connection.waitForBytes(8);
 * ```
 *
 * @module
 */
import { once } from 'node:events';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';

/** The flood's bytes: byte i of the stream is i % 251 (a prime, so chunk boundaries never line up). */
export const PATTERN_MODULUS = 251;
const CHUNK = 64 * 1024;
const PATTERN = Buffer.from(Array.from({ length: CHUNK + PATTERN_MODULUS }, (_, i) => i % PATTERN_MODULUS));

/** `length` bytes of the pattern starting at stream offset `offset`. */
export function patternAt(offset: number, length: number): Buffer {
  const start = offset % PATTERN_MODULUS;
  if (length <= CHUNK) return PATTERN.subarray(start, start + length);
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const part = patternAt(offset + done, Math.min(CHUNK, length - done));
    part.copy(out, done);
    done += part.length;
  }
  return out;
}

/** Checks a stream against the pattern chunk by chunk; throws at the first wrong byte. */
export class PatternChecker {
  offset = 0;

  push(chunk: Uint8Array): void {
    const expected = patternAt(this.offset, chunk.length);
    if (!Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).equals(expected)) {
      throw new Error(
        `the stream differs from the pattern within bytes ${this.offset}..${this.offset + chunk.length}`,
      );
    }
    this.offset += chunk.length;
  }
}

/** A flood in progress (see {@link FakeConnection.flood}). */
export interface Flood {
  /** Bytes handed to the socket so far. */
  readonly sent: number;
  /**
   * Resolves with the bytes sent when the socket has refused more (a write returned false) and not
   * drained for `stallMs`: the reader stopped reading. Rejects if `limit` bytes went out first.
   */
  readonly stalled: Promise<number>;
  /** Resolves when the flood has stopped (limit reached, `stop()`, or the socket closed). */
  readonly finished: Promise<number>;
  /** Stops writing after the current chunk. */
  stop(): void;
}

/** One connection the relay opened to the fake broker. */
export class FakeConnection {
  readonly received: Buffer[] = [];
  receivedLength = 0;
  /** True once the relay half-closed (FIN). */
  ended = false;
  closed = false;
  readonly whenEnded: Promise<void>;
  readonly whenClosed: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.on('error', () => {
      // The relay destroying its socket is what several tests wait for.
    });
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.receivedLength += chunk.length;
      this.notify();
    });
    this.whenEnded = new Promise((resolve) =>
      socket.once('end', () => {
        this.ended = true;
        resolve();
      }),
    );
    this.whenClosed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        this.notify();
        resolve();
      }),
    );
  }

  /** Every byte received so far. */
  bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  /** Waits until at least `n` bytes have arrived; rejects if the socket closes first. */
  async waitForBytes(n: number): Promise<Buffer> {
    while (this.receivedLength < n) {
      if (this.closed) throw new Error(`the relay closed after ${this.receivedLength} of ${n} bytes`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.bytes();
  }

  /**
   * Writes the pattern as fast as the socket takes it, waiting for `drain` whenever a write returns
   * false, up to `limit` bytes; `stallMs` without a drain counts as stalled (see {@link Flood}).
   */
  flood(limit: number, stallMs = 300): Flood {
    const { socket } = this;
    let sent = 0;
    let stopped = false;
    let onStall: (n: number) => void = () => {};
    let onNoStall: (e: Error) => void = () => {};
    const stalled = new Promise<number>((resolve, reject) => {
      onStall = resolve;
      onNoStall = reject;
    });
    stalled.catch(() => {});
    const finished = (async () => {
      while (!stopped && sent < limit && !socket.destroyed) {
        const size = Math.min(CHUNK, limit - sent);
        const ok = socket.write(patternAt(sent, size));
        sent += size;
        if (ok) {
          // Let I/O run now and then, as a real sender's event loop would.
          if (sent % (16 * CHUNK) === 0) await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const timer = setTimeout(() => onStall(sent), stallMs);
        await Promise.race([once(socket, 'drain'), once(socket, 'close')]).catch(() => {});
        clearTimeout(timer);
      }
      onNoStall(new Error(`no stall: all ${sent} bytes went out`));
      return sent;
    })();
    return {
      get sent() {
        return sent;
      },
      stalled,
      finished,
      stop() {
        stopped = true;
      },
    };
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** A running fake broker. */
export interface FakeBroker {
  readonly port: number;
  /** `amqp://127.0.0.1:port`, or `amqps://localhost:port` for a TLS fake. */
  readonly url: string;
  /** Every connection accepted, in order. */
  readonly connections: readonly FakeConnection[];
  /** The next connection accepted (or the first one not yet taken by this method). */
  nextConnection(): Promise<FakeConnection>;
  /** TLS fake with `holdHandshakes`: lets the handshakes held so far, and later ones, complete. */
  releaseHandshakes(): void;
  /** Resolves once a handshake is being held (TLS fake with `holdHandshakes`). */
  handshakeHeld(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link startFakeBroker}. */
export interface FakeBrokerOptions {
  /** Serve TLS with this certificate and key (PEM): the URL becomes `amqps://localhost:port`. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** TLS only: hold every handshake (in the SNI callback) until `releaseHandshakes()`. */
  readonly holdHandshakes?: boolean;
  /** Accept TCP connections and never answer anything (a TLS handshake then never completes). */
  readonly silent?: boolean;
}

/** Starts a fake broker on 127.0.0.1, any free port. */
export async function startFakeBroker(options: FakeBrokerOptions = {}): Promise<FakeBroker> {
  const connections: FakeConnection[] = [];
  const sockets = new Set<Socket>();
  let taken = 0;
  let wake: (() => void) | undefined;
  const held: (() => void)[] = [];
  const heldWaiters: (() => void)[] = [];
  let holding = options.holdHandshakes === true;

  const accept = (socket: Socket): void => {
    connections.push(new FakeConnection(socket));
    wake?.();
  };
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };

  let server: Server;
  const { tls } = options;
  if (tls === undefined || options.silent === true) {
    server = createNetServer((socket) => {
      track(socket);
      if (options.silent !== true) accept(socket);
    });
  } else {
    const context = createSecureContext({ cert: tls.cert, key: tls.key });
    const tlsServer = createTlsServer({
      cert: tls.cert,
      key: tls.key,
      SNICallback: (_name, callback) => {
        const go = (): void => callback(null, context);
        if (!holding) go();
        else {
          held.push(go);
          for (const notify of heldWaiters.splice(0)) notify();
        }
      },
    });
    tlsServer.on('connection', track);
    tlsServer.on('tlsClientError', (_e, socket) => socket.destroy());
    tlsServer.on('secureConnection', (socket) => {
      track(socket);
      accept(socket);
    });
    server = tlsServer;
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: tls === undefined ? `amqp://127.0.0.1:${port}` : `amqps://localhost:${port}`,
    connections,
    async nextConnection() {
      while (connections.length <= taken) await new Promise<void>((resolve) => (wake = resolve));
      return connections[taken++]!;
    },
    releaseHandshakes() {
      holding = false;
      for (const go of held.splice(0)) go();
    },
    async handshakeHeld() {
      if (held.length === 0) await new Promise<void>((resolve) => heldWaiters.push(resolve));
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** A port where nothing listens (found by listening and closing again). */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
