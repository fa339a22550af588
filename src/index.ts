/**
 * rxamqp: an AMQP 0-9-1 (RabbitMQ) client whose whole surface is RxJS. This is the universal entry,
 * which runs in browsers and any JavaScript runtime: it has no TCP, so `connect` opens `ws:` and `wss:`
 * URLs with the runtime's `WebSocket` (to a relay, `rxamqp-relay`, which opens TCP to the broker), and
 * any other URL needs a `transport` connector (an in-memory one, say). In Node, `import 'rxamqp'`
 * resolves to the Node entry instead, whose `connect` speaks TCP and TLS by default, and `ws:` through
 * the `ws` package.
 *
 * @example
 * ```ts
 * import { connect } from 'rxamqp';
 * import { switchMap } from 'rxjs';
 *
 * connect('wss://broker.example/amqp').pipe(
 *   switchMap((conn) => conn.channel()),
 *   switchMap((ch) => ch.queueDeclare('jobs')),
 * ).subscribe(({ queue }) => console.log('declared', queue));
 * ```
 *
 * @module
 */
import { type ConnectionObservable, connectWith, openConnectionWith } from './client/connect.js';
import type { Connection } from './client/connection.js';
import type { ConnectOptions } from './config/options.js';
import type { Platform } from './config/platform.js';
import { webSocketConnector } from './transport/websocket.js';

const WEB_SOCKET = webSocketConnector();

export * from './surface.js';

/**
 * No TCP: ws: and wss: URLs open the runtime's global `WebSocket` (to a relay such as `rxamqp-relay`);
 * any other URL needs a connector in the `transport` option.
 */
const UNIVERSAL: Platform = Object.freeze({ schemes: Object.freeze({ ws: WEB_SOCKET, wss: WEB_SOCKET }) });

/**
 * Connects to a broker through a WebSocket relay (`ws:`/`wss:` URLs) or the `transport` connector
 * given in the options, and emits the open
 * `Connection` (see the Node entry's `connect` for the whole contract: cold without `recovery`,
 * re-emitting after every reconnect with it, typed errors that never show a password).
 *
 * @example
 * ```ts
 * connect('ws://localhost:15670/ws').pipe(
 *   switchMap((conn) => conn.channel()),
 * ).subscribe();
 * ```
 */
export function connect(url?: string | ConnectOptions, options?: ConnectOptions): ConnectionObservable {
  return connectWith(UNIVERSAL, url, options);
}

/**
 * Connects for async/await code (a WebSocket relay for `ws:`/`wss:` URLs, or the `transport` connector); resolves
 * with the open connection (see `connect`).
 *
 * @example
 * ```ts
 * const conn = await openConnection('ws://localhost:15670/ws', { transport: webSocketConnector({ protocols: ['amqp'] }) });
 * ```
 */
export function openConnection(url?: string | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return openConnectionWith(UNIVERSAL, url, options);
}
