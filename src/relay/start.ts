/**
 * `startRelay`: the relay as a server of its own (what the `rxamqp-relay` bin runs), plain `ws://` or,
 * with a certificate, `wss://`.
 *
 * @module
 */
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Relay } from './attach.js';
import { resolveStartRelayOptions, type StartRelayOptions } from './options.js';
import { RelayUpgrades } from './upgrade.js';

/** A plain request to a WebSocket-only server: say so, and what to do instead. */
function upgradeRequired(_request: unknown, response: ServerResponse): void {
  const body = 'rxamqp relay: connect with a WebSocket (ws:// or wss://)\n';
  response.writeHead(426, {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}

/**
 * Starts a standalone relay: an HTTP (or, with `tls`, HTTPS) server that accepts WebSockets on
 * `options.path` (any path when none is given; other paths get 404) and answers plain requests with
 * 426. Listens on `host` (default `'127.0.0.1'`) and `port` (default 15670; 0 picks a free one, see
 * `relay.address`). Resolves once listening.
 *
 * @throws ConfigurationError (as a rejection, before listening) for an invalid option; the server's
 *   listen error (`EADDRINUSE`, `EACCES`...) when it cannot listen.
 * @example
 * ```ts
 * import { startRelay } from 'rxamqp/relay';
 *
 * const relay = await startRelay({
 *   port: 15670,
 *   host: '0.0.0.0',
 *   broker: 'amqp://rabbitmq.internal:5672',
 *   allowedOrigins: ['https://app.example.com'],
 *   log: console.log,
 * });
 * process.once('SIGTERM', () => void relay.close());
 * ```
 */
export async function startRelay(options?: StartRelayOptions): Promise<Relay> {
  const { relay: resolved, listen } = resolveStartRelayOptions(options);
  const server: HttpServer =
    listen.tls === undefined
      ? createHttpServer(upgradeRequired)
      : (createHttpsServer(
          { cert: listen.tls.cert, key: listen.tls.key },
          upgradeRequired,
        ) as unknown as HttpServer);
  const upgrades = new RelayUpgrades(resolved, () => false);
  server.on('upgrade', upgrades.onUpgrade);

  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
  // After listening, a server error (rare: the listening socket failing) is logged, never thrown.
  server.on('error', (error: NodeJS.ErrnoException) =>
    resolved.log?.(`relay server error: ${error.code ?? error.message}`),
  );

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    await upgrades.closeAll();
    // Keep-alive connections of plain requests (the 426 answers) would hold the server open.
    server.closeAllConnections();
    await serverClosed;
  };
  return {
    address: { host: address.address, port: address.port },
    get connections() {
      return upgrades.connections;
    },
    close() {
      closing ??= close();
      return closing;
    },
  };
}
