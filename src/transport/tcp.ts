/**
 * The plain TCP transport, and the socket adapter and connect procedure it shares with the TLS
 * transport (`tls.ts`): a `net.Socket` or `tls.TLSSocket` becomes a {@link Transport} the same way.
 *
 * @module
 */
import { connect as netConnect, type Socket, type TcpNetConnectOpts } from 'node:net';
import { isNativeError } from 'node:util/types';
import { ConnectionClosedError } from '../errors.js';
import { MAX_TIMER_MS } from '../util/runtime.js';
import type {
  ResolvedSocketOptions,
  Transport,
  TransportConnector,
  TransportHandler,
  TransportTarget,
} from './transport.js';

/** Size of the buffer a plain TCP transport reads into (reused for every read). */
export const READ_BUFFER_SIZE = 128 * 1024;

/** The largest chunk a TLS socket hands out at once (one TLS record). */
const TLS_RECORD_SIZE = 16 * 1024;

/**
 * Reading into one reused buffer (net's `onread` option) rather than a new buffer per read through the
 * stream machinery: each read reaches the sink as a view of that buffer, valid during the call. Bytes
 * read before a sink is attached (a peer that talks first) are copied and replayed on attaching.
 *
 * @example
 * ```ts
 * const reads = new ReusedReadBuffer(64 * 1024);
 * const socket = net.connect({ host, port, onread: reads.options });
 * reads.attach((chunk) => decoder.push(chunk));
 * ```
 */
export class ReusedReadBuffer {
  /** What to pass as `onread` to `net.connect`. */
  readonly options: { buffer: Buffer; callback: (bytes: number, buffer: Uint8Array) => boolean };
  private sink: ((chunk: Buffer) => void) | undefined;
  private early: Buffer[] | undefined;

  constructor(size: number) {
    const buffer = Buffer.allocUnsafeSlow(size);
    this.options = {
      buffer,
      callback: (bytes) => {
        const chunk = buffer.subarray(0, bytes);
        if (this.sink !== undefined) this.sink(chunk);
        else {
          this.early ??= [];
          this.early.push(Buffer.from(chunk));
        }
        return true;
      },
    };
  }

  /** The most bytes one read returns. */
  get size(): number {
    return this.options.buffer.length;
  }

  /** Sends every later read to `sink`, after the ones that came before. */
  attach(sink: (chunk: Buffer) => void): void {
    const early = this.early;
    this.early = undefined;
    this.sink = sink;
    if (early !== undefined) for (const chunk of early) sink(chunk);
  }
}

/**
 * `host:port` for messages, with an IPv6 address in brackets.
 *
 * @example
 * ```ts
 * formatRemote('::1', 5672); // '[::1]:5672'
 * formatRemote('localhost', 5672); // 'localhost:5672'
 * ```
 */
export function formatRemote(host: string, port: number): string {
  // Only an IPv6 address has a colon (host names cannot). node:net's isIPv6 would do too, but its
  // first call compiles a large regular expression: over 10 ms of a cold process's first connect.
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Applies `noDelay` and `keepAlive` to a socket (for a TLS socket, to the TCP socket under it).
 *
 * @example
 * ```ts
 * socket.once('connect', () => applySocketOptions(socket, { noDelay: true, keepAlive: 30_000, localAddress: undefined, family: 0 }));
 * ```
 */
export function applySocketOptions(socket: Socket, options: ResolvedSocketOptions): void {
  socket.setNoDelay(options.noDelay);
  const { keepAlive } = options;
  if (keepAlive === true) socket.setKeepAlive(true);
  else if (typeof keepAlive === 'number') socket.setKeepAlive(true, keepAlive);
}

function ignoreError(): void {
  // A late error on a socket that has already been given up; the attempt was settled.
}

/**
 * A connected `net.Socket` or `tls.TLSSocket` as a {@link Transport}. Shared by {@link connectTcp} and
 * `connectTls`; not meant to be built by hand (the connectors build it once the socket is ready).
 *
 * Events: each chunk read goes to `onData`; `onDrain` follows a `write` that returned false once the
 * socket's buffer has been flushed; `onClose` is called exactly once when the socket closes, with the
 * socket error that closed it or `undefined` for an orderly end (also after {@link destroy}, and when
 * the peer ends its side: the transport then ends its own side too, as AMQP has no half-open state).
 *
 * @example
 * ```ts
 * socket.once('connect', () => resolve(new SocketTransport(socket, handler, formatRemote(host, port), false)));
 * ```
 */
export class SocketTransport implements Transport {
  readonly remote: string;
  readonly secure: boolean;
  private readonly socket: Socket;
  private readonly handler: TransportHandler;
  /** Set by `end()`, `destroy()`, the peer's end and the close: writes are dropped from then on. */
  private stopped = false;
  /** The first socket error, reported by `onClose`. */
  private error: Error | undefined = undefined;
  readonly readChunkLimit: number;
  /**
   * A socket's `writableLength` counts every byte whose write has not completed, so at 0 it holds no
   * chunk: true.
   */
  readonly releasesWhenFlushed = true;

  /**
   * @param reads The socket's reused read buffer when it was opened with one (plain TCP); else its
   * reads come as `data` events.
   */
  constructor(
    socket: Socket,
    handler: TransportHandler,
    remote: string,
    secure: boolean,
    reads?: ReusedReadBuffer,
  ) {
    this.socket = socket;
    this.handler = handler;
    this.remote = remote;
    this.secure = secure;
    this.readChunkLimit = reads?.size ?? TLS_RECORD_SIZE;
    if (reads !== undefined) reads.attach(this.handleData);
    else socket.on('data', this.handleData);
    socket.on('drain', this.handleDrain);
    socket.on('error', this.handleError);
    socket.on('end', this.handleEnd);
    socket.once('close', this.handleClose);
  }

  /**
   * Queues bytes. Returns false when the socket's buffer has reached the high-water mark (wait for
   * `onDrain`), and also once the transport is ending or closed, when the bytes are dropped.
   */
  write(chunk: Uint8Array): boolean {
    if (this.stopped) return false;
    return this.socket.write(chunk);
  }

  /** Several chunks in one writev (corked while they are queued). */
  writeMany(chunks: readonly Uint8Array[]): boolean {
    if (this.stopped) return false;
    const socket = this.socket;
    socket.cork();
    let ok = true;
    for (let i = 0; i < chunks.length; i++) ok = socket.write(chunks[i]!);
    socket.uncork();
    return ok;
  }

  end(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.socket.end();
  }

  destroy(): void {
    this.stopped = true;
    if (!this.socket.destroyed) this.socket.destroy();
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.stopped) this.socket.resume();
  }

  private readonly handleData = (chunk: Buffer): void => {
    this.handler.onData(chunk);
  };

  private readonly handleDrain = (): void => {
    if (!this.stopped) this.handler.onDrain();
  };

  private readonly handleError = (error: Error): void => {
    if (this.error === undefined) this.error = error;
  };

  private readonly handleEnd = (): void => {
    // The peer half-closed: finish our side too so that the socket closes.
    this.stopped = true;
    if (!this.socket.writableEnded) this.socket.end();
  };

  private readonly handleClose = (): void => {
    this.stopped = true;
    const { socket } = this;
    socket.off('data', this.handleData);
    socket.off('drain', this.handleDrain);
    socket.off('end', this.handleEnd);
    // The error listener stays: nothing may ever emit an unhandled 'error'.
    this.handler.onClose(this.error);
  };
}

/**
 * How {@link establishTransport} opens a socket and what it waits for.
 *
 * @example
 * ```ts
 * const plan: ConnectPlan = { secure: false, open: () => net.connect({ host, port }) };
 * ```
 */
export interface ConnectPlan {
  /**
   * True for TLS: the socket is ready on `secureConnect` (not `connect`), and an error between the TCP
   * connection and the end of the handshake is a `TLS_HANDSHAKE_FAILED`.
   */
  readonly secure: boolean;
  /** Creates the socket and starts connecting. Called at most once, synchronously. */
  readonly open: () => Socket;
  /** The reused buffer `open` gave the socket to read into, if it did. */
  readonly reads?: ReusedReadBuffer;
}

function abortError(signal: AbortSignal, remote: string): Error {
  const reason: unknown = signal.reason;
  // isNativeError also recognises errors made in another realm (a vm context, a test sandbox).
  if (reason instanceof Error || isNativeError(reason)) return reason as Error;
  return new ConnectionClosedError('CONNECTION_LOST', `connecting to ${remote} was aborted`, {
    initiator: 'client',
    ...(reason === undefined ? {} : { cause: reason }),
  });
}

function errorText(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : error.message;
}

/**
 * The connect procedure shared by TCP and TLS: opens the socket, applies the socket options once the
 * TCP connection is up, and resolves with a {@link SocketTransport} when the socket is ready. Rejects
 * with `CONNECT_TIMEOUT` after `target.timeoutMs` (0 or a non-finite value: no limit),
 * `CONNECTION_LOST` for a socket error before the connection, `TLS_HANDSHAKE_FAILED` for an error
 * during the TLS handshake, or the abort reason. A failed attempt's socket is destroyed and every
 * listener and timer of the attempt is removed.
 *
 * @example
 * ```ts
 * const transport = await establishTransport(target, handler, signal, {
 *   secure: false,
 *   open: () => net.connect({ host: target.hostname, port: target.port }),
 * });
 * ```
 */
export function establishTransport(
  target: TransportTarget,
  handler: TransportHandler,
  signal: AbortSignal,
  plan: ConnectPlan,
): Promise<Transport> {
  const remote = formatRemote(target.hostname, target.port);
  if (signal.aborted) return Promise.reject(abortError(signal, remote));
  const { secure } = plan;
  return new Promise<Transport>((resolve, reject) => {
    const socket = plan.open();
    let connected = false;
    let timer: NodeJS.Timeout | undefined;

    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      if (secure) socket.off('secureConnect', onReady);
    };
    const fail = (error: Error): void => {
      cleanup();
      socket.on('error', ignoreError);
      socket.destroy();
      reject(error);
    };
    const onError = (error: Error): void => {
      if (connected && secure) {
        fail(
          new ConnectionClosedError(
            'TLS_HANDSHAKE_FAILED',
            `TLS handshake with ${remote} failed: ${error.message}`,
            {
              initiator: 'network',
              cause: error,
            },
          ),
        );
      } else {
        fail(
          new ConnectionClosedError(
            'CONNECTION_LOST',
            `could not connect to ${remote}: ${errorText(error)}`,
            {
              initiator: 'network',
              cause: error,
            },
          ),
        );
      }
    };
    const onReady = (): void => {
      cleanup();
      resolve(new SocketTransport(socket, handler, remote, secure, plan.reads));
    };
    const onConnect = (): void => {
      connected = true;
      applySocketOptions(socket, target.socket);
      if (!secure) onReady();
    };
    const onAbort = (): void => fail(abortError(signal, remote));
    const onTimeout = (): void => {
      timer = undefined;
      fail(
        new ConnectionClosedError(
          'CONNECT_TIMEOUT',
          `could not connect to ${remote} within ${target.timeoutMs} ms`,
          { initiator: 'network' },
        ),
      );
    };

    // The error listener goes on first: net and tls emit connect errors asynchronously, never from
    // inside connect(), so nothing can be emitted before this line.
    socket.on('error', onError);
    socket.once('connect', onConnect);
    if (secure) socket.once('secureConnect', onReady);
    signal.addEventListener('abort', onAbort, { once: true });
    const ms = target.timeoutMs;
    if (Number.isFinite(ms) && ms > 0) timer = setTimeout(onTimeout, Math.min(ms, MAX_TIMER_MS));
  });
}

/**
 * Opens a plain TCP transport: `net.connect` to `target.hostname:target.port` (with `family` and
 * `localAddress` from `target.socket`), the socket's writable high-water mark set to
 * `target.writeHighWaterMark`, then `noDelay` and `keepAlive` applied once connected. See
 * {@link TransportConnector} for the errors.
 *
 * @example
 * ```ts
 * const transport = await connectTcp(
 *   {
 *     scheme: 'amqp',
 *     url: 'amqp://127.0.0.1:5672/%2F',
 *     hostname: '127.0.0.1',
 *     port: 5672,
 *     tls: undefined,
 *     socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
 *     timeoutMs: 30_000,
 *     writeHighWaterMark: 1024 * 1024,
 *   },
 *   { onData: (chunk) => decoder.push(chunk), onDrain: () => {}, onClose: (e) => console.log('closed', e) },
 *   AbortSignal.timeout(30_000),
 * );
 * transport.write(PROTOCOL_HEADER);
 * ```
 */
export const connectTcp: TransportConnector = (target, handler, signal) => {
  const reads = new ReusedReadBuffer(READ_BUFFER_SIZE);
  return establishTransport(target, handler, signal, {
    secure: false,
    reads,
    open: () => {
      const options: TcpNetConnectOpts & { writableHighWaterMark: number } = {
        host: target.hostname,
        port: target.port,
        family: target.socket.family,
        writableHighWaterMark: target.writeHighWaterMark,
        onread: reads.options,
      };
      if (target.socket.localAddress !== undefined) options.localAddress = target.socket.localAddress;
      return netConnect(options);
    },
  });
};
