/**
 * Node's platform: TCP and TLS as the default connector, and `fs.readFileSync` for the TLS file
 * options. Together with `tcp.ts` and `tls.ts`, the only place of the configuration and transport code
 * that imports Node built-ins: the client's core receives this object (as a {@link Platform}) instead
 * of importing Node itself, so a browser build can leave it out.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Platform } from '../config/platform.js';
import { connectTcp } from './tcp.js';
import { connectTls } from './tls.js';
import type { Transport, TransportHandler, TransportTarget } from './transport.js';
import { connectWebSocket } from './websocket-node.js';

/**
 * Opens the transport `target` asks for: TLS when `target.tls` is set, plain TCP otherwise. Same
 * contract as {@link connectTcp} and {@link connectTls}. Node's default connector for amqp: and
 * amqps: URLs.
 *
 * @example
 * ```ts
 * const options = resolveOptions('amqps://mq.example.com', undefined, nodePlatform);
 * const transport = await connectTransport(transportTarget(options), handler, controller.signal);
 * transport.secure; // true
 * ```
 */
export function connectTransport(
  target: TransportTarget,
  handler: TransportHandler,
  signal: AbortSignal,
): Promise<Transport> {
  return target.tls === undefined ? connectTcp(target, handler, signal) : connectTls(target, handler, signal);
}

/**
 * The Node.js platform: {@link connectTransport} (TCP or TLS) for amqp: and amqps: URLs, a WebSocket
 * over the `ws` package for ws: and wss: URLs (a relay such as `rxamqp-relay`), the TLS file
 * options read with `fs.readFileSync`, and `Node.js <version>` as the `platform` client property.
 *
 * @example
 * ```ts
 * const options = resolveOptions('amqps://mq.example.com?cacertfile=/etc/ssl/mq-ca.pem', undefined, nodePlatform);
 * options.transport === connectTransport; // true
 * ```
 */
export const nodePlatform: Platform = Object.freeze({
  connector: connectTransport,
  schemes: Object.freeze({ ws: connectWebSocket, wss: connectWebSocket }),
  readFile: (path: string): Uint8Array => readFileSync(path),
  name: `Node.js ${process.version}`,
});
