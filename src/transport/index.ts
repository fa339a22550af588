/**
 * The built-in transports: plain TCP and TLS, and {@link connectTransport}, which picks one.
 *
 * @module
 */
import { connectTcp } from './tcp.js';
import { connectTls } from './tls.js';
import type { Transport, TransportHandler, TransportTarget } from './transport.js';

export { connectTcp } from './tcp.js';
export { connectTls } from './tls.js';
export type { Transport, TransportConnector, TransportHandler, TransportTarget } from './transport.js';

/**
 * Opens the transport `target` asks for: TLS when `target.tls` is set, plain TCP otherwise. Same
 * contract as {@link connectTcp} and {@link connectTls}.
 *
 * @example
 * ```ts
 * const transport = await connectTransport(
 *   {
 *     hostname: options.hostname,
 *     port: options.port,
 *     tls: options.tls,
 *     socket: options.socket,
 *     timeoutMs: options.connectionTimeout,
 *     writeHighWaterMark: options.writeHighWaterMark,
 *   },
 *   handler,
 *   controller.signal,
 * );
 * ```
 */
export function connectTransport(
  target: TransportTarget,
  handler: TransportHandler,
  signal: AbortSignal,
): Promise<Transport> {
  return target.tls === undefined ? connectTcp(target, handler, signal) : connectTls(target, handler, signal);
}
