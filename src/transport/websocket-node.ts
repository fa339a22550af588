/**
 * The WebSocket transport in Node, over the `ws` package (an optional peer dependency, loaded on the
 * first `ws:`/`wss:` connection, so that programs that never use a relay do not need it). Unlike a
 * browser's WebSocket, `ws` can apply every TLS setting (a CA, a client certificate, the SNI name), can
 * pause reading, and hands out Node Buffers without a copy.
 *
 * @module
 */
import { ConnectionClosedError } from '../errors.js';
import { MAX_TIMER_MS } from '../util/runtime.js';
import type { Transport, TransportConnector, TransportTarget } from './transport.js';
import {
  openWebSocket,
  protocolList,
  type WebSocketConnectorOptions,
  type WebSocketLike,
} from './websocket.js';

/** What this module uses of the `ws` package. */
type WsModule = typeof import('ws');

/**
 * Options of {@link nodeWebSocketConnector}.
 *
 * @example
 * ```ts
 * const options: NodeWebSocketConnectorOptions = { protocols: ['amqp'], origin: 'https://app.example.com' };
 * ```
 */
export interface NodeWebSocketConnectorOptions extends Pick<WebSocketConnectorOptions, 'protocols'> {
  /** The `Origin` header to send (a relay with an origin allow-list checks it). Default: none. */
  readonly origin?: string;
  /** Extra HTTP headers for the upgrade request (a proxy's authorization, say). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Where the `ws` module comes from. Default: `import('ws')`. For tests and bundlers. */
  readonly load?: () => WsModule | PromiseLike<WsModule>;
}

let loaded: Promise<WsModule> | undefined;

function loadWs(): Promise<WsModule> {
  loaded ??= import('ws').then(
    (m) => ((m as unknown as { default?: WsModule }).default ?? m) as WsModule,
    (error: unknown) => {
      loaded = undefined; // installed later: try again next time
      throw error;
    },
  );
  return loaded;
}

/**
 * A connector for `ws:` and `wss:` URLs in Node, over the `ws` package: AMQP through a WebSocket relay
 * (`rxamqp-relay`). `rxamqp`'s Node entry uses it for those URLs by default; build one yourself to send
 * an `Origin` or extra headers. Every TLS setting of the connection applies to `wss:` (CA, client
 * certificate, passphrase, verification, SNI name).
 *
 * @example
 * ```ts
 * import { connect, nodeWebSocketConnector } from 'rxamqp';
 *
 * connect('ws://relay.internal:15670/amqp', {
 *   transport: nodeWebSocketConnector({ origin: 'https://app.example.com' }),
 * });
 * ```
 */
export function nodeWebSocketConnector(options: NodeWebSocketConnectorOptions = {}): TransportConnector {
  const protocols = protocolList(options.protocols);
  const load = options.load ?? loadWs;
  return async (target, handler, signal): Promise<Transport> => {
    let ws: WsModule;
    try {
      ws = await load();
    } catch (error) {
      throw new ConnectionClosedError(
        'CONNECTION_LOST',
        "ws: and wss: URLs in Node need the 'ws' package: npm install ws",
        { initiator: 'client', cause: error },
      );
    }
    const WebSocket = ((ws as { WebSocket?: unknown }).WebSocket ?? ws) as unknown as WsConstructor;
    return openWebSocket(
      target,
      handler,
      signal,
      () => new WebSocket(target.url, protocols, wsOptions(target, options)),
      'nodebuffer',
    );
  };
}

type WsConstructor = new (url: string, protocols: string[] | undefined, options: object) => WebSocketLike;

/** The `ws` client options for `target`: no compression, TLS settings passed through. */
function wsOptions(target: TransportTarget, options: NodeWebSocketConnectorOptions): object {
  const result: Record<string, unknown> = {
    // Compressing AMQP frames costs CPU for little: bodies are often compressed or small.
    perMessageDeflate: false,
    handshakeTimeout: Math.min(target.timeoutMs, MAX_TIMER_MS),
    family: target.socket.family === 0 ? undefined : target.socket.family,
    localAddress: target.socket.localAddress,
  };
  if (options.origin !== undefined) result.origin = options.origin;
  if (options.headers !== undefined) result.headers = { ...options.headers };
  const tls = target.tls;
  if (tls !== undefined) {
    result.ca = tls.ca;
    result.cert = tls.cert;
    result.key = tls.key;
    result.pfx = tls.pfx;
    result.passphrase = tls.passphrase?.reveal();
    result.rejectUnauthorized = tls.rejectUnauthorized;
    if (tls.servername !== undefined) result.servername = tls.servername;
    if (tls.minVersion !== undefined) result.minVersion = tls.minVersion;
    if (tls.checkServerIdentity !== undefined) result.checkServerIdentity = tls.checkServerIdentity;
  }
  for (const key of Object.keys(result)) if (result[key] === undefined) delete result[key];
  return result;
}

/**
 * Node's default connector for `ws:` and `wss:` URLs: {@link nodeWebSocketConnector} with no options.
 *
 * @example
 * ```ts
 * connect('ws://127.0.0.1:15670/', { transport: connectWebSocket });
 * ```
 */
export const connectWebSocket: TransportConnector = nodeWebSocketConnector();
