/**
 * rxamqp for Node.js: the whole public surface, with `connect` and `openConnection` speaking TCP and
 * TLS by default (a `transport` option still replaces them). Package consumers reach this file as
 * `rxamqp` through the `node` export condition; everything else gets the universal entry.
 *
 * @example
 * ```ts
 * import { connect } from 'rxamqp';
 * import { switchMap } from 'rxjs';
 *
 * connect('amqp://localhost').pipe(
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
import { setDiagnosticSink } from './telemetry/diagnostics.js';
import { nodeDiagnosticSink } from './telemetry/node-diagnostics.js';
import { nodePlatform } from './transport/node.js';

// Node's diagnostics channels hear the lifecycle events too (see DIAGNOSTICS_CHANNELS).
setDiagnosticSink(nodeDiagnosticSink);

export * from './surface.js';
export { DIAGNOSTICS_CHANNELS } from './telemetry/node-diagnostics.js';
export { connectTcp, connectTls, connectTransport, nodePlatform } from './transport/index.js';
export {
  connectWebSocket,
  type NodeWebSocketConnectorOptions,
  nodeWebSocketConnector,
} from './transport/websocket-node.js';

/**
 * Connects to a broker, and emits the open `Connection`. Without `recovery` it is cold: each
 * subscription opens its own connection (unless `shared: true`); unsubscribing closes it with the
 * connection.close handshake. It completes when the client closes the connection
 * (`connection.close()`), and errors with a typed error when the broker or the network ends it:
 * `ConnectionClosedError`, `AuthenticationError`, or a `ConfigurationError` for a bad URL or option
 * (passwords are never shown).
 *
 * With `recovery`, it emits a fresh `Connection` after every reconnect: a lost connection's channels
 * and consumer streams complete (rather than error), so a pipeline built with `switchMap` re-opens
 * them on the next `Connection` by itself. It errors only when an error cannot be retried (a refused
 * login, say) or the retries run out. Recovering connections are shared: every subscriber gets the
 * same socket, closed after the last one leaves. `state$` tells where it stands.
 *
 * @param url a RabbitMQ URI (`amqp://user:pass@host:5672/vhost?heartbeat=30`), or an options object.
 * @param options options that override those of the URL.
 *
 * @example
 * ```ts
 * connect('amqp://guest:guest@localhost:5672', { name: 'orders' }).pipe(
 *   switchMap((conn) => conn.channel()),
 *   switchMap((ch) => ch.queueDeclare('orders', { durable: true })),
 * ).subscribe(({ queue, messageCount }) => console.log(queue, messageCount));
 * ```
 * @example
 * ```ts
 * const connection$ = connect(url, { recovery: true, heartbeat: 10 });
 * connection$.state$.subscribe((s) => console.log(s.status, s.host, s.cause?.message));
 * connection$.pipe(
 *   switchMap((conn) => conn.channel()),
 *   switchMap((ch) => ch.consume('orders', { prefetch: 50 })), // resumes after every reconnect
 *   ackOnSuccess((d) => handle(d)),
 * ).subscribe();
 * ```
 */
export function connect(url?: string | ConnectOptions, options?: ConnectOptions): ConnectionObservable {
  return connectWith(nodePlatform, url, options);
}

/**
 * Connects for async/await code: resolves with the connection once open, and keeps it open until
 * `connection.close()` or until the broker or the network ends it (then `connection.error` says why).
 * Rejects with the typed error when it cannot connect. In pipelines prefer {@link connect}:
 * `firstValueFrom(connect(url))` would close the connection as soon as the promise resolves.
 *
 * @example
 * ```ts
 * const conn = await openConnection('amqp://localhost');
 * const ch = await conn.openChannel();
 * await lastValueFrom(ch.publish('', 'jobs', 'hello'));
 * await lastValueFrom(conn.close());
 * ```
 */
export function openConnection(url?: string | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return openConnectionWith(nodePlatform, url, options);
}
