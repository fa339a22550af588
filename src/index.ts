/**
 * rxamqp: an AMQP 0-9-1 (RabbitMQ) client whose whole surface is RxJS. This is the universal entry,
 * which runs in browsers and any JavaScript runtime: it has no built-in transport, so `connect` needs
 * a `transport` connector (a WebSocket one, an in-memory one). In Node, `import 'rxamqp'` resolves to
 * the Node entry instead, whose `connect` speaks TCP and TLS by default.
 *
 * @example
 * ```ts
 * import { connect } from 'rxamqp';
 * import { switchMap } from 'rxjs';
 *
 * connect('wss://broker.example/amqp', { transport: myWebSocketConnector }).pipe(
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

export * from './surface.js';

/** No built-in transport: every connection names its `transport`. */
const UNIVERSAL: Platform = Object.freeze({});

/**
 * Connects to a broker through the `transport` connector given in the options, and emits the open
 * `Connection` (see the Node entry's `connect` for the whole contract: cold without `recovery`,
 * re-emitting after every reconnect with it, typed errors that never show a password).
 *
 * @example
 * ```ts
 * connect('ws://localhost:15670/ws', { transport: webSocketConnector }).pipe(
 *   switchMap((conn) => conn.channel()),
 * ).subscribe();
 * ```
 */
export function connect(url?: string | ConnectOptions, options?: ConnectOptions): ConnectionObservable {
  return connectWith(UNIVERSAL, url, options);
}

/**
 * Connects for async/await code through the `transport` connector given in the options; resolves
 * with the open connection (see `connect`).
 *
 * @example
 * ```ts
 * const conn = await openConnection('ws://localhost:15670/ws', { transport: webSocketConnector });
 * ```
 */
export function openConnection(url?: string | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return openConnectionWith(UNIVERSAL, url, options);
}
