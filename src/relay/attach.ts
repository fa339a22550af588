/**
 * `attachRelay`: the relay inside an HTTP(S) server the application already runs, on the server's own
 * port, next to its pages and API.
 *
 * @module
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { ConfigurationError } from '../errors.js';
import { type RelayOptions, resolveRelayOptions } from './options.js';
import { RelayUpgrades } from './upgrade.js';

/**
 * A running relay, from {@link attachRelay} or {@link startRelay}.
 *
 * @example
 * ```ts
 * const relay = await startRelay({ port: 0 });
 * console.log(`ws://${relay.address?.host}:${relay.address?.port}`, relay.connections);
 * await relay.close();
 * ```
 */
export interface Relay {
  /** Where it listens ({@link startRelay}); undefined for a relay attached to a server of yours. */
  readonly address: { readonly host: string; readonly port: number } | undefined;
  /** WebSockets open now (each counted until both it and its broker socket have closed). */
  readonly connections: number;
  /**
   * Stops accepting, closes every WebSocket (1001) and its broker socket, and resolves once all are
   * closed (and, for {@link startRelay}, the server too; an attached relay leaves your server open).
   * Calling it again returns the same promise. Never rejects.
   */
  close(): Promise<void>;
}

/**
 * Embeds the relay in an existing Node `http` or `https` server: it handles the server's `upgrade`
 * events on `options.path` (every path when none is given) and leaves the server's ordinary requests
 * alone. With a `path`, upgrades on other paths are left to the server's other `upgrade` listeners
 * (and get 404 when there are none). `close()` detaches it.
 *
 * @throws ConfigurationError for an invalid option or something that is not a server.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { attachRelay } from 'rxamqp/relay';
 *
 * const server = createServer(app); // an express app, or any request listener
 * const relay = attachRelay(server, {
 *   broker: 'amqp://rabbitmq.internal:5672',
 *   path: '/amqp',
 *   allowedOrigins: ['https://app.example.com'],
 * });
 * server.listen(8080);
 * // On shutdown:
 * await relay.close();
 * server.close();
 * ```
 */
export function attachRelay(server: HttpServer | HttpsServer, options?: RelayOptions): Relay {
  const resolved = resolveRelayOptions(options);
  const events = server as HttpServer | undefined;
  if (typeof events?.on !== 'function' || typeof events.listenerCount !== 'function') {
    throw new ConfigurationError('attachRelay needs a node:http or node:https server');
  }
  const upgrades = new RelayUpgrades(resolved, () => events.listenerCount('upgrade') > 1);
  events.on('upgrade', upgrades.onUpgrade);
  let closing: Promise<void> | undefined;
  return {
    address: undefined,
    get connections() {
      return upgrades.connections;
    },
    close() {
      closing ??= (() => {
        events.off('upgrade', upgrades.onUpgrade);
        return upgrades.closeAll();
      })();
      return closing;
    },
  };
}
