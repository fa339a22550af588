/**
 * What the configuration needs from the runtime, injected rather than imported so that `src/config`
 * reaches no Node built-in and runs anywhere (Node, browsers, workers, Deno, Bun). Node's platform is
 * `nodePlatform` in `src/transport/node.ts`; a browser build passes an empty platform (`{}`) and every
 * connection then names its `transport`.
 *
 * @module
 */
import type { TransportConnector } from '../transport/transport.js';

/**
 * The runtime's services the configuration uses.
 *
 * @example
 * ```ts
 * // Node: TCP/TLS and file reading (what `nodePlatform` is).
 * const node: Platform = { connector: connectTransport, readFile: (path) => readFileSync(path), name: `Node.js ${process.version}` };
 * // A browser: no TCP; ws: and wss: URLs open the global WebSocket (to a relay).
 * const browser: Platform = { schemes: { ws: webSocketConnector(), wss: webSocketConnector() } };
 * resolveOptions('wss://mq.example.com/ws', undefined, browser);
 * ```
 */
export interface Platform {
  /** Opens transports for amqp: and amqps: URLs when the `transport` option is not given (Node: TCP/TLS). */
  readonly connector?: TransportConnector;
  /**
   * Connectors for other URL schemes, by lower-case scheme, used when the `transport` option is not
   * given: `ws` and `wss` (a WebSocket relay) in Node and in browsers.
   */
  readonly schemes?: Readonly<Record<string, TransportConnector>>;
  /**
   * Reads a file an option names by path (TLS ca/cert/key/pfx files). Absent in browsers. Throws when
   * the file cannot be read; an error's `code` (such as `ENOENT`) is shown in the message.
   */
  readonly readFile?: (path: string) => Uint8Array;
  /**
   * The runtime as the `platform` client property shows it to the broker (the management UI), such as
   * `Node.js v22.1.0`. Left out, the property is not sent.
   */
  readonly name?: string;
}
