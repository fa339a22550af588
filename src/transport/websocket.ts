/**
 * The WebSocket transport: AMQP bytes carried in binary WebSocket messages to a relay
 * (`rxamqp-relay`, or any WebSocket-to-TCP relay) that copies them to the broker's TCP port. RabbitMQ
 * has no AMQP 0-9-1 WebSocket listener of its own, so a browser always goes through such a relay.
 *
 * This module is universal: it uses only what the WHATWG `WebSocket` interface offers (browsers, Deno,
 * Bun, Node 22+'s global), and the `ws` package in Node fits it too (see `websocket-node.ts`). The
 * browser's `WebSocket` has no drain event: the high-water signal is `bufferedAmount`, polled while a
 * writer waits.
 *
 * @module
 */
import { ConnectionClosedError } from '../errors.js';
import { MAX_TIMER_MS, messageOf } from '../util/runtime.js';
import type { Transport, TransportConnector, TransportHandler, TransportTarget } from './transport.js';

/**
 * The part of the WHATWG `WebSocket` interface the transport uses: the browser's `WebSocket` and the
 * `ws` package's both have it.
 *
 * @example
 * ```ts
 * const socket: WebSocketLike = new WebSocket('wss://mq.example.com/amqp');
 * ```
 */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onclose:
    | ((event: { readonly code: number; readonly reason: string; readonly wasClean?: boolean }) => void)
    | null;
  /** `ws` only: drops the connection at once, without the closing handshake (optional). */
  terminate?(): void;
  /** `ws` only: stops reading from the socket (optional). */
  pause?(): void;
  /** `ws` only: reads again (optional). */
  resume?(): void;
}

/**
 * A `WebSocket` constructor: the browser's global one, the `ws` package's, or a test double.
 *
 * @example
 * ```ts
 * const Ctor: WebSocketConstructor = globalThis.WebSocket;
 * ```
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * Options of {@link webSocketConnector}.
 *
 * @example
 * ```ts
 * const options: WebSocketConnectorOptions = { protocols: ['amqp'] };
 * ```
 */
export interface WebSocketConnectorOptions {
  /**
   * The `WebSocket` class to open sockets with. Default: `globalThis.WebSocket` (browsers, workers,
   * Deno, Bun, Node 22+). In Node, `rxamqp`'s own entry uses the `ws` package for `ws:`/`wss:` URLs.
   */
  readonly WebSocket?: WebSocketConstructor;
  /** Subprotocols to offer in the handshake (`Sec-WebSocket-Protocol`). Default: none. */
  readonly protocols?: string | readonly string[];
}

/** WebSocket close code of a normal close (RFC 6455). */
const NORMAL_CLOSURE = 1000;
/** Polling the outbound buffer: first after this many ms, doubling up to DRAIN_POLL_MAX_MS. */
const DRAIN_POLL_MIN_MS = 1;
const DRAIN_POLL_MAX_MS = 50;
const OPEN = 1;
/**
 * The largest WebSocket message the transport sends: a large body goes in slices. A relay holds a
 * whole message in memory before passing it on (rxamqp-relay refuses messages above 32 MiB with
 * 1009), and slices keep that small whatever the body's size.
 */
const MAX_MESSAGE_BYTES = 1024 * 1024;

function join(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/**
 * A connector that opens `target.url` (a `ws:` or `wss:` URL, without user information) as a
 * WebSocket with `WebSocket` (the global one unless given) and carries AMQP over it. TLS (`wss:`) is the
 * runtime's: a browser verifies the relay's certificate with its own trust store, so TLS options that
 * a browser cannot apply (a CA, a client certificate, turning verification off) make the attempt fail
 * with a clear error instead of being ignored.
 *
 * @example
 * ```ts
 * import { connect, webSocketConnector } from 'rxamqp';
 *
 * // In a browser, ws: and wss: URLs use the global WebSocket without this; pass it to offer a
 * // subprotocol or to use another WebSocket class.
 * connect('wss://app.example.com/amqp?vhost=orders', {
 *   transport: webSocketConnector({ protocols: ['amqp'] }),
 *   username: 'web', password: token,
 * });
 * ```
 */
export function webSocketConnector(options: WebSocketConnectorOptions = {}): TransportConnector {
  const protocols = protocolList(options.protocols);
  return (target, handler, signal) => {
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Ctor === undefined) {
      return Promise.reject(
        new ConnectionClosedError(
          'CONNECTION_LOST',
          `this runtime has no WebSocket to open ${shownUrl(target.url)} with: pass one as webSocketConnector({ WebSocket })`,
          { initiator: 'client' },
        ),
      );
    }
    const refused = browserTlsProblem(target);
    if (refused !== undefined) {
      return Promise.reject(new ConnectionClosedError('CONNECTION_LOST', refused, { initiator: 'client' }));
    }
    return openWebSocket(target, handler, signal, () => new Ctor(target.url, protocols));
  };
}

/**
 * `url` without its query and fragment, for messages and `Transport.remote`: a WebSocket URL's query
 * often carries a token (browsers cannot set headers on a WebSocket), and no message may show it.
 *
 * @example
 * ```ts
 * shownUrl('wss://app.example.com/amqp?access_token=abc'); // 'wss://app.example.com/amqp'
 * ```
 */
export function shownUrl(url: string): string {
  return url.replace(/[?#].*$/s, '');
}

/** The subprotocols to offer, as the `WebSocket` constructors take them. */
export function protocolList(protocols: string | readonly string[] | undefined): string[] | undefined {
  return protocols === undefined ? undefined : typeof protocols === 'string' ? [protocols] : [...protocols];
}

/** Why a `wss:` target's TLS settings cannot be honoured by a browser-style WebSocket, if they cannot. */
function browserTlsProblem(target: TransportTarget): string | undefined {
  const tls = target.tls;
  if (tls === undefined) return undefined;
  const unsupported: string[] = [];
  if (tls.ca !== undefined) unsupported.push('ca');
  if (tls.cert !== undefined || tls.key !== undefined || tls.pfx !== undefined)
    unsupported.push('a client certificate');
  if (!tls.rejectUnauthorized) unsupported.push('rejectUnauthorized: false');
  if (tls.checkServerIdentity !== undefined) unsupported.push('checkServerIdentity');
  if (tls.minVersion !== undefined) unsupported.push('minVersion');
  if (tls.servername !== undefined && tls.servername !== target.hostname) unsupported.push('servername');
  if (unsupported.length === 0) return undefined;
  return (
    `a WebSocket uses the runtime's own TLS settings and cannot apply ${unsupported.join(', ')} ` +
    `to ${shownUrl(target.url)}: trust the relay's certificate in the runtime instead`
  );
}

/**
 * Opens a WebSocket with `create` and resolves with a {@link Transport} over it once it is open. The
 * WebSocket's events go to `handler` from then on. Shared by the universal connector and Node's `ws`
 * one, which differ only in how the socket is made (and `ws` hands out Node Buffers: `binaryType`
 * `'nodebuffer'` saves a copy per message).
 *
 * @example
 * ```ts
 * const transport = await openWebSocket(target, handler, signal, () => new WebSocket(target.url));
 * ```
 */
export function openWebSocket(
  target: TransportTarget,
  handler: TransportHandler,
  signal: AbortSignal,
  create: () => WebSocketLike,
  binaryType = 'arraybuffer',
): Promise<Transport> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<Transport>((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = create();
    } catch (e) {
      // A malformed URL or a refused port (a browser's SecurityError) throws at once.
      reject(
        new ConnectionClosedError(
          'CONNECTION_LOST',
          `could not open a WebSocket to ${shownUrl(target.url)}: ${messageOf(e)}`,
          {
            initiator: 'network',
            cause: e,
          },
        ),
      );
      return;
    }
    socket.binaryType = binaryType;
    let settled = false;
    const settle = (): void => {
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const giveUp = (error: unknown): void => {
      settle();
      detach(socket);
      closeQuietly(socket);
      reject(error);
    };
    const onAbort = (): void => giveUp(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => {
        giveUp(
          new ConnectionClosedError(
            'CONNECT_TIMEOUT',
            `could not open a WebSocket to ${shownUrl(target.url)} within ${target.timeoutMs} ms`,
            { initiator: 'network' },
          ),
        );
      },
      Math.min(target.timeoutMs, MAX_TIMER_MS),
    );
    // A browser tells nothing about why a WebSocket failed (on purpose): the close code is all there
    // is. `ws` says more (an HTTP status the relay refused with, a TLS error): kept as the cause.
    let failure: Error | undefined;
    socket.onerror = (event) => {
      failure = errorOf(event) ?? failure;
    };
    socket.onclose = (event) => {
      if (settled) return;
      const why = failure === undefined ? describeClose(event.code, event.reason) : failure.message;
      giveUp(
        new ConnectionClosedError(
          'CONNECTION_LOST',
          `could not open a WebSocket to ${shownUrl(target.url)}: ${why}`,
          {
            initiator: 'network',
            ...(failure === undefined ? {} : { cause: failure }),
          },
        ),
      );
    };
    socket.onopen = () => {
      if (settled) return;
      settle();
      resolve(new WebSocketTransport(socket, target, handler));
    };
  });
}

/** The Error an error event carries: `ws`'s do (ECONNRESET, an HTTP status), a browser's never. */
function errorOf(event: unknown): Error | undefined {
  const error = (event as { error?: unknown } | null)?.error;
  return error instanceof Error ? error : undefined;
}

/** A close for a message: `opened` tells a refused attempt (1006 before open) from a dropped connection. */
function describeClose(code: number, reason: string, opened = false): string {
  const why =
    code === 1006
      ? opened
        ? 'closed abnormally (1006: the connection dropped without a close frame)'
        : 'closed abnormally (1006: refused, unreachable, or not a WebSocket server)'
      : code === 1009
        ? 'closed with code 1009 (a message too big for the peer: a relay limit such as maxMessageBytes)'
        : `closed with code ${code}`;
  return reason === '' ? why : `${why}: ${reason}`;
}

function detach(socket: WebSocketLike): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  // Keep an error listener: `ws` emits 'error' events that must be listened to.
  socket.onerror = () => undefined;
}

function closeQuietly(socket: WebSocketLike, code = NORMAL_CLOSURE): void {
  try {
    socket.close(code);
  } catch {
    // Closing a socket that is still connecting throws in some runtimes; it is dropped either way.
  }
}

/** A {@link Transport} over an open WebSocket. */
class WebSocketTransport implements Transport {
  readonly remote: string;
  readonly secure: boolean;
  readonly pauseReading?: () => void;
  readonly resumeReading?: () => void;
  private readonly highWaterMark: number;
  private ended = false;
  private closed = false;
  /** True while a writer waits for the buffer to go below the mark. */
  private waitingForDrain = false;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private pollDelay = DRAIN_POLL_MIN_MS;

  constructor(
    private readonly socket: WebSocketLike,
    target: TransportTarget,
    private readonly handler: TransportHandler,
  ) {
    this.remote = shownUrl(target.url);
    this.secure = target.scheme === 'wss';
    this.highWaterMark = target.writeHighWaterMark;
    if (typeof socket.pause === 'function' && typeof socket.resume === 'function') {
      this.pauseReading = () => socket.pause?.();
      this.resumeReading = () => socket.resume?.();
    }
    socket.onmessage = (event) => this.onMessage(event.data);
    // `ws` reports why a connection dropped (ECONNRESET...) in an error event before the close.
    let failure: Error | undefined;
    socket.onerror = (event) => {
      failure = errorOf(event) ?? failure;
    };
    socket.onclose = (event) => {
      const clean = event.code === NORMAL_CLOSURE || (this.ended && event.wasClean !== false);
      const why =
        failure === undefined ? describeClose(event.code, event.reason, true) : `failed: ${failure.message}`;
      this.finish(
        clean
          ? undefined
          : new ConnectionClosedError('CONNECTION_LOST', `the WebSocket to ${this.remote} ${why}`, {
              initiator: 'network',
              ...(failure === undefined ? {} : { cause: failure }),
            }),
      );
    };
  }

  get bufferedBytes(): number {
    return this.closed ? 0 : this.socket.bufferedAmount;
  }

  write(chunk: Uint8Array): boolean {
    if (this.ended || this.closed) return false;
    if (this.socket.readyState !== OPEN) return false;
    this.sendSliced(chunk);
    return this.checkHighWater();
  }

  writeMany(chunks: readonly Uint8Array[]): boolean {
    if (chunks.length === 1) return this.write(chunks[0]!);
    if (this.ended || this.closed || this.socket.readyState !== OPEN) return false;
    // Small chunks (frames of a batch) are joined into messages of up to MAX_MESSAGE_BYTES: each
    // message costs a frame header (and, from a client, a masking pass), and the relay does not care
    // where messages split the byte stream. A large chunk (a big body) goes in slices of its own.
    let batch: Uint8Array[] = [];
    let batched = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      this.socket.send(batch.length === 1 ? batch[0]! : join(batch, batched));
      batch = [];
      batched = 0;
    };
    for (const chunk of chunks) {
      if (chunk.length >= MAX_MESSAGE_BYTES) {
        flush();
        this.sendSliced(chunk);
      } else {
        if (batched + chunk.length > MAX_MESSAGE_BYTES) flush();
        batch.push(chunk);
        batched += chunk.length;
      }
    }
    flush();
    return this.checkHighWater();
  }

  /** Sends `chunk` in messages of at most MAX_MESSAGE_BYTES (views, no copy). */
  private sendSliced(chunk: Uint8Array): void {
    if (chunk.length <= MAX_MESSAGE_BYTES) {
      this.socket.send(chunk);
      return;
    }
    for (let offset = 0; offset < chunk.length; offset += MAX_MESSAGE_BYTES) {
      this.socket.send(chunk.subarray(offset, offset + MAX_MESSAGE_BYTES));
    }
  }

  end(): void {
    if (this.ended || this.closed) return;
    this.ended = true;
    this.stopPolling();
    // close() discards nothing already handed to send(): the browser sends the queued messages, then
    // the close frame. So the orderly end is a close at once.
    closeQuietly(this.socket);
  }

  destroy(): void {
    if (this.closed) return;
    this.ended = true;
    detach(this.socket);
    // `ws` would wait up to 30 s for a dead peer's close frame after close(), holding the process
    // open: terminate() drops the socket at once. A browser's WebSocket has only close().
    if (typeof this.socket.terminate === 'function') this.socket.terminate();
    else closeQuietly(this.socket);
    this.finish(undefined);
  }

  private checkHighWater(): boolean {
    if (this.socket.bufferedAmount < this.highWaterMark) return true;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      this.pollDelay = DRAIN_POLL_MIN_MS;
      this.schedulePoll();
    }
    return false;
  }

  private schedulePoll(): void {
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      if (this.closed || this.ended) return;
      const buffered = this.socket.bufferedAmount;
      // An empty buffer always drains (a writeHighWaterMark of 0 would otherwise never drain).
      if (buffered === 0 || buffered < this.highWaterMark) {
        this.waitingForDrain = false;
        this.handler.onDrain();
        return;
      }
      this.pollDelay = Math.min(this.pollDelay * 2, DRAIN_POLL_MAX_MS);
      this.schedulePoll();
    }, this.pollDelay);
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.waitingForDrain = false;
  }

  private onMessage(data: unknown): void {
    if (this.closed) return;
    if (data instanceof ArrayBuffer) {
      this.handler.onData(new Uint8Array(data));
    } else if (ArrayBuffer.isView(data)) {
      this.handler.onData(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else if (Array.isArray(data)) {
      // `ws` with binaryType 'fragments'.
      for (const part of data as Uint8Array[]) this.handler.onData(part);
    } else {
      // A text message: the relay is not speaking AMQP bytes. Nothing sensible can follow.
      const error = new ConnectionClosedError(
        'PROTOCOL_ERROR',
        `the WebSocket peer at ${this.remote} sent a text message; an AMQP relay sends binary messages only`,
        { initiator: 'network' },
      );
      detach(this.socket);
      closeQuietly(this.socket, 1003);
      this.finish(error);
    }
  }

  private finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPolling();
    detach(this.socket);
    this.handler.onClose(error);
  }
}
