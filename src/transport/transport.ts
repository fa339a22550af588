/**
 * The transport interface: bytes in, bytes out and a backpressure signal. The connection state machine
 * talks only to this, never to a socket, so TCP, TLS and (later) WebSocket or in-memory transports are
 * interchangeable.
 *
 * @module
 */
import type { ResolvedSocketOptions, ResolvedTlsOptions } from '../config/options.js';

/**
 * What a transport reports to its owner. Called from the transport's I/O callbacks; the owner must not
 * throw from them.
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
   * Bytes from the peer, in order. The chunk may be a view of a buffer the transport reuses for its
   * next read: copy what must outlive the call.
   */
  onData(chunk: Buffer): void;
  /** The outbound buffer dropped below its high-water mark after `write` returned false. */
  onDrain(): void;
  /** The transport is closed, with the error that closed it (undefined for an orderly end). Called once. */
  onClose(error: Error | undefined): void;
}

/**
 * An open, bidirectional byte stream to the broker.
 *
 * @example
 * ```ts
 * if (!transport.write(bytes)) await drained; // wait for handler.onDrain()
 * ```
 */
export interface Transport {
  /** Queues bytes for the peer. False when the outbound buffer is above its high-water mark. */
  write(chunk: Buffer): boolean;
  /**
   * Queues several chunks at once, in order (a TCP transport sends them with one writev). Optional:
   * without it, each chunk goes through `write`. Same return value as `write`.
   */
  writeMany?(chunks: readonly Buffer[]): boolean;
  /** Ends the stream after the queued bytes are sent. */
  end(): void;
  /** Closes at once, dropping queued bytes. Idempotent. */
  destroy(): void;
  /** Bytes queued and not yet sent. */
  readonly bufferedBytes: number;
  /** `host:port` of the peer, for messages (never contains credentials). */
  readonly remote: string;
  /** True for TLS. */
  readonly secure: boolean;
  /**
   * Stops reading from the peer until {@link resumeReading} (bytes wait in the kernel meanwhile).
   * Optional: a transport without it is never paused.
   */
  pauseReading?(): void;
  /** Reads again after {@link pauseReading}. */
  resumeReading?(): void;
  /** The most bytes one read can return: a chunk this large means more may be waiting already. */
  readonly readChunkLimit?: number;
}

/** Where and how a transport connects. */
export interface TransportTarget {
  readonly hostname: string;
  readonly port: number;
  /** TLS settings, or undefined for plain TCP. */
  readonly tls: ResolvedTlsOptions | undefined;
  readonly socket: ResolvedSocketOptions;
  /** Give up connecting (TCP connect plus TLS handshake) after this many milliseconds. */
  readonly timeoutMs: number;
  /** Outbound bytes above which `write` returns false (the socket's writableHighWaterMark). */
  readonly writeHighWaterMark: number;
}

/**
 * Opens a transport. Resolves once the stream is ready for AMQP bytes (after the TLS handshake for TLS);
 * rejects with a {@link ConnectionClosedError} (`CONNECT_TIMEOUT`, `CONNECTION_LOST` with the socket
 * error as `cause`) or, for TLS verification failures, with the TLS error as `cause`. Aborting `signal`
 * destroys the attempt and rejects.
 *
 * @example
 * ```ts
 * const transport = await connectTcp(target, handler, AbortSignal.timeout(5000));
 * ```
 */
export type TransportConnector = (
  target: TransportTarget,
  handler: TransportHandler,
  signal: AbortSignal,
) => Promise<Transport>;
