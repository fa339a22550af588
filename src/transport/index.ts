/**
 * The built-in transports of Node: plain TCP and TLS, {@link connectTransport}, which picks one, and
 * `nodePlatform`, which makes it the default connector. Everything here imports Node built-ins; the
 * seam itself (`transport.ts`) does not.
 *
 * @module
 */

export { connectTransport, nodePlatform } from './node.js';
export { connectTcp } from './tcp.js';
export { connectTls } from './tls.js';
export type {
  ResolvedSocketOptions,
  ResolvedTlsOptions,
  SecretValue,
  Transport,
  TransportConnector,
  TransportHandler,
  TransportTarget,
} from './transport.js';
