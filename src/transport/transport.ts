/**
 * The transport seam: bytes in, bytes out and a backpressure signal. The connection state machine talks
 * only to these interfaces, never to a socket, so that TCP, TLS, WebSocket, in-memory or any other byte
 * stream can carry AMQP. A {@link TransportConnector} is all a runtime without TCP (a browser, a worker)
 * or a test needs to provide; `docs/transports.md` describes the contract in full.
 *
 * This module owns every type the seam uses (including the resolved TLS and socket settings) and
 * imports nothing from the rest of the client: the configuration depends on the transport, never the
 * other way round. It uses no Node built-in: byte chunks are `Uint8Array`s (Node's `Buffer` is one).
 *
 * @module
 */

/**
 * A custom host-name check, as in Node's `tls.connect`: an Error when the broker's certificate does not
 * fit `hostname`. `cert` is Node's `tls.PeerCertificate`; it is typed loosely so that these types
 * check where Node's types are absent (browsers).
 *
 * @example
 * ```ts
 * const check: ServerIdentityCheck = (hostname, cert) =>
 *   cert.subject?.CN === 'broker.internal' ? undefined : new Error(`unexpected certificate for ${hostname}`);
 * ```
 */
// biome-ignore lint/suspicious/noExplicitAny: Node's tls.PeerCertificate, absent where Node's types are
export type ServerIdentityCheck = (hostname: string, cert: any) => Error | undefined;

/**
 * A value that hides itself from logs and only gives its text through `reveal()`: rxamqp's `Secret`.
 * Declared here structurally so that the transport seam needs nothing from the configuration.
 *
 * @example
 * ```ts
 * const passphrase: SecretValue = new Secret('key-passphrase');
 * tls.connect({ passphrase: passphrase.reveal() });
 * ```
 */
export interface SecretValue {
  /** The secret text. Call it only where the value is handed to the TLS library. */
  reveal(): string;
}

/**
 * Resolved TLS settings: files already read, defaults applied. The built-in TLS transport hands them to
 * `tls.connect`; a custom connector that secures its stream itself (a `wss:` WebSocket, say) reads what
 * its library supports and should reject, rather than ignore, settings it cannot honour (a client
 * certificate, a custom CA) when they matter to the user.
 *
 * @example
 * ```ts
 * const tls: ResolvedTlsOptions = {
 *   ca: [caPem], cert: undefined, key: undefined, passphrase: undefined, pfx: undefined,
 *   rejectUnauthorized: true, servername: 'mq.example.com', minVersion: 'TLSv1.2',
 *   checkServerIdentity: undefined,
 * };
 * ```
 */
export interface ResolvedTlsOptions {
  /** CA certificates (PEM) to trust instead of the runtime's defaults. */
  readonly ca: (string | Uint8Array)[] | undefined;
  /** Client certificate chain (PEM). */
  readonly cert: string | Uint8Array | undefined;
  /** Client private key (PEM). Masked in `JSON.stringify` and `util.inspect` of the resolved settings. */
  readonly key: string | Uint8Array | undefined;
  /** Passphrase of the private key or PKCS#12 bundle (a `Secret`). */
  readonly passphrase: SecretValue | undefined;
  /** PKCS#12 bundle. Masked like `key`. */
  readonly pfx: Uint8Array | undefined;
  /** Verify the peer's certificate chain and host name. */
  readonly rejectUnauthorized: boolean;
  /** SNI and verification name; undefined sends no SNI (the peer is then checked against `hostname`). */
  readonly servername: string | undefined;
  /** Lowest TLS version accepted; undefined leaves the runtime's default. */
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
  /** A custom host-name check, as in Node's `tls.connect`. */
  readonly checkServerIdentity: ServerIdentityCheck | undefined;
}

/**
 * Resolved socket settings. They mean something to TCP-based transports; other connectors may ignore
 * them.
 *
 * @example
 * ```ts
 * const socket: ResolvedSocketOptions = { noDelay: true, keepAlive: 30_000, localAddress: undefined, family: 0 };
 * ```
 */
export interface ResolvedSocketOptions {
  /** Disable Nagle's algorithm. */
  readonly noDelay: boolean;
  /** TCP keep-alive: false, true, or the initial delay in milliseconds. */
  readonly keepAlive: boolean | number;
  /** Local address to bind, if any. */
  readonly localAddress: string | undefined;
  /** IP family to resolve the host name to: 4, 6 or 0 (either). */
  readonly family: 0 | 4 | 6;
}

/**
 * What a transport reports to its owner (the connection). The transport calls these from its I/O
 * callbacks, never synchronously from inside the connector call or from `write`, `end` or `destroy`
 * (except `onClose`, which `destroy` may trigger at once); the owner never throws from them.
 *
 * @example
 * ```ts
 * const handler: TransportHandler = {
 *   onData: (chunk) => decoder.push(chunk),
 *   onDrain: () => resumeWriting(),
 *   onClose: (error) => console.log('transport closed', error?.message),
 * };
 * ```
 */
export interface TransportHandler {
  /**
   * Bytes from the peer, in the order the peer sent them, with no framing implied (a chunk may hold
   * part of an AMQP frame or several frames). The chunk may be a view of a buffer the transport reuses
   * for its next read: the owner copies what must outlive the call. Never called after `onClose`.
   */
  onData(chunk: Uint8Array): void;
  /**
   * The outbound buffer dropped below the high-water mark after a `write` or `writeMany` returned
   * false: the owner may write again. Not called after `end`, `destroy` or `onClose`.
   */
  onDrain(): void;
  /**
   * The transport is closed: no `onData` or `onDrain` follows. `error` is what closed it (a network
   * error, a TLS alert), or undefined for an orderly end (the peer ended, or the owner called `end`
   * or `destroy`). Called exactly once, including after `destroy`.
   */
  onClose(error: Error | undefined): void;
}

/**
 * An open, bidirectional byte stream to the broker, as a {@link TransportConnector} resolves it.
 *
 * @example
 * ```ts
 * // Backpressure: stop writing when write() returns false, go on when the handler's onDrain fires.
 * if (!transport.write(frame)) pending = true; // wait for handler.onDrain()
 * // Shutting down: end() flushes what is queued, destroy() drops it.
 * transport.end();
 * ```
 */
export interface Transport {
  /**
   * Queues bytes for the peer, in order. The transport may keep a reference to `chunk` until it is
   * sent: the owner does not modify it afterwards. Returns false when the bytes queued and not yet
   * sent are at or above the target's `writeHighWaterMark` (the bytes are still queued; wait for
   * `onDrain` before writing more), and also once the transport is ending or closed (the bytes are
   * then dropped).
   */
  write(chunk: Uint8Array): boolean;
  /**
   * Queues several chunks at once, in order (a TCP transport sends them with one `writev`). Optional:
   * without it, each chunk goes through `write`. Same return value as `write` for the whole batch.
   */
  writeMany?(chunks: readonly Uint8Array[]): boolean;
  /** Ends the stream after the queued bytes are sent; `onClose` follows once the stream is closed. */
  end(): void;
  /** Closes at once, dropping queued bytes; `onClose(undefined)` follows if it has not yet been called. Idempotent. */
  destroy(): void;
  /** Bytes queued and not yet sent (0 if the transport cannot tell). */
  readonly bufferedBytes: number;
  /**
   * True when a {@link bufferedBytes} of 0 means the transport holds no reference to any chunk it was
   * given (every write has completed): the owner may then write over the memory of those chunks.
   * Absent or false: the owner never reuses memory it has written.
   */
  readonly releasesWhenFlushed?: boolean;
  /** Where the transport is connected, for messages: `host:port` or a URL. Never contains credentials. */
  readonly remote: string;
  /** True when the stream is encrypted (TLS, `wss:`). */
  readonly secure: boolean;
  /**
   * Stops reading from the peer until {@link resumeReading} (the bytes wait in the kernel or the
   * peer's buffers meanwhile). Optional: a transport without it is never paused. The owner uses it to
   * batch reads and to apply backpressure to the broker.
   */
  pauseReading?(): void;
  /** Reads again after {@link pauseReading}. */
  resumeReading?(): void;
  /** The most bytes one `onData` chunk can hold: a chunk this large means more may be waiting already. */
  readonly readChunkLimit?: number;
}

/**
 * Where and how a transport connects: what the user's URL and options resolve to for one connection
 * attempt (with several `hosts`, each attempt gets its own `hostname`, `port`, `tls` and `url`).
 *
 * @example
 * ```ts
 * // connect('wss://app:s3cret@mq.example.com/ws?vhost=orders', { transport }) gives the connector:
 * const target: TransportTarget = {
 *   scheme: 'wss',
 *   url: 'wss://mq.example.com:443/ws?vhost=orders', // no user information, no password
 *   hostname: 'mq.example.com',
 *   port: 443,
 *   tls: { ...resolvedTls, servername: 'mq.example.com' },
 *   socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
 *   timeoutMs: 30_000,
 *   writeHighWaterMark: 1024 * 1024,
 * };
 * ```
 */
export interface TransportTarget {
  /**
   * The URL scheme, lower case: `amqp` or `amqps` for the AMQP URLs and options objects (`amqps` when
   * TLS is on), else the scheme of the URL given (`ws`, `wss`, `memory`...), which only a connector
   * passed in the `transport` option handles.
   */
  readonly scheme: string;
  /**
   * The URL to connect to, without user information (no user name, no password): safe to log, unless
   * a secret was written into its query. For `amqp`/`amqps` it is rebuilt as
   * `scheme://host:port/vhost`; for other schemes it is the URL given, with the host and port of this
   * attempt, its path and query kept as written (a WebSocket connector opens it as it is), without any
   * `#fragment`.
   */
  readonly url: string;
  /** Host name or IP address (an IPv6 address without brackets). Empty when the URL names no host. */
  readonly hostname: string;
  /** Port, from the URL, the `port` option or the scheme's default; 0 when the scheme has none and none was given. */
  readonly port: number;
  /**
   * TLS settings, or undefined for a plain stream. When set, the connector encrypts the stream with
   * them, or rejects: it never falls back to plain text.
   */
  readonly tls: ResolvedTlsOptions | undefined;
  /** Socket settings (for TCP-based connectors). */
  readonly socket: ResolvedSocketOptions;
  /**
   * Give up connecting (for TCP: the connection plus the TLS handshake) after this many milliseconds.
   * The connection also enforces its own overall timeout through `signal`.
   */
  readonly timeoutMs: number;
  /** Outbound bytes at or above which `write` returns false. */
  readonly writeHighWaterMark: number;
}

/**
 * Opens a transport. Resolves once the stream is ready for AMQP bytes (after the TLS handshake for
 * TLS, after the `open` event for a WebSocket); the connection then writes the protocol header.
 *
 * Rejects when the stream cannot be opened, preferably with a `ConnectionClosedError` (code
 * `CONNECTION_LOST` with the underlying error as `cause`, `CONNECT_TIMEOUT`, `TLS_HANDSHAKE_FAILED`),
 * which the connection passes on as it is; any other error is wrapped in a `CONNECTION_LOST`
 * `ConnectionClosedError` with it as `cause`. A connector that throws synchronously is treated as
 * rejecting. When `signal` aborts, the connector gives up the attempt, releases what it opened and
 * rejects with `signal.reason`. A transport that opened after the connection gave up is destroyed.
 * The broker sends nothing before the client's protocol header, so no `onData` is expected before
 * the promise resolves.
 *
 * @example
 * ```ts
 * import { connect, type TransportConnector } from 'rxamqp';
 *
 * // Wraps another connector (such as a WebSocket one) to log every connection attempt.
 * const logging = (inner: TransportConnector): TransportConnector => async (target, handler, signal) => {
 *   console.log(`connecting to ${target.url}`); // target.url never holds the password
 *   return inner(target, handler, signal);
 * };
 * connect('wss://mq.example.com/ws', { transport: logging(webSocketConnector()) });
 * ```
 */
export type TransportConnector = (
  target: TransportTarget,
  handler: TransportHandler,
  signal: AbortSignal,
) => Promise<Transport>;
