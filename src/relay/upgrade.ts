/**
 * The relay's door: it takes an HTTP server's `upgrade` requests, refuses with a plain HTTP status
 * what it must not accept (another path, an origin not allowed, too many connections, shutting down),
 * completes the WebSocket handshake for the rest, and keeps the count of the connections it opened so
 * that it can close them all.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { RelayConnection } from './bridge.js';
import { openLine, type RequestInfo, refusedLine, requestInfo } from './log.js';
import type { ResolvedRelayOptions } from './options.js';

/** The subprotocol the relay accepts when a browser offers it. */
export const RELAY_SUBPROTOCOL = 'amqp';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  403: 'Forbidden',
  404: 'Not Found',
  503: 'Service Unavailable',
};

function ignoreError(): void {
  // An upgrade socket the peer reset: nothing to do, the socket is closing.
}

/** Answers an upgrade request with a status and no WebSocket, then closes the socket. */
function refuse(socket: Duplex, status: number, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `\r\n${body}`,
  );
}

/**
 * Takes the `upgrade` events of one HTTP(S) server for the relay.
 *
 * @example
 * ```ts
 * const door = new RelayUpgrades(resolveRelayOptions({ path: '/amqp' }), () => server.listenerCount('upgrade') > 1);
 * server.on('upgrade', door.onUpgrade);
 * // ... later:
 * server.off('upgrade', door.onUpgrade);
 * await door.closeAll();
 * ```
 */
export class RelayUpgrades {
  private readonly open = new Set<RelayConnection>();
  /** Handshakes started and not finished: they count towards `maxConnections` too. */
  private pending = 0;
  private nextId = 1;
  private closing = false;
  private readonly idle: (() => void)[] = [];
  private readonly server: WebSocketServer;

  /**
   * @param othersListening Whether another `upgrade` listener may take a request on another path;
   *   when none does, such a request gets 404 rather than a socket left hanging.
   */
  constructor(
    private readonly options: ResolvedRelayOptions,
    private readonly othersListening: () => boolean,
  ) {
    this.server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxMessageBytes,
      // Compression would cost CPU and memory per connection, and compressing secrets next to
      // attacker-chosen bytes leaks them (CRIME); AMQP frames gain little from it anyway.
      perMessageDeflate: false,
      handleProtocols: (offered) => (offered.has(RELAY_SUBPROTOCOL) ? RELAY_SUBPROTOCOL : false),
    });
  }

  /** WebSockets open now (until both sides of each have closed). */
  get connections(): number {
    return this.open.size;
  }

  /** The server's `upgrade` listener. */
  readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const { options } = this;
    const info = requestInfo(request);
    if (options.path !== undefined && info.path !== options.path) {
      // Not ours: another listener's, or nobody's.
      if (this.othersListening()) return;
      socket.on('error', ignoreError);
      this.refuse(socket, info, 404, 'no WebSocket relay on this path');
      return;
    }
    socket.on('error', ignoreError);
    if (this.closing) {
      this.refuse(socket, info, 503, 'the relay is shutting down');
      return;
    }
    if (!this.originAllowed(info.origin)) {
      this.refuse(
        socket,
        info,
        403,
        info.origin === undefined
          ? 'an Origin header is required'
          : this.options.allowedOrigins === undefined
            ? 'origin not allowed (the relay allows no browser origin: set allowedOrigins)'
            : 'origin not allowed',
      );
      return;
    }
    if (this.open.size + this.pending >= options.maxConnections) {
      this.refuse(socket, info, 503, 'too many connections');
      return;
    }
    this.pending++;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      this.pending--;
      socket.off('close', settle);
    };
    // ws answers a malformed handshake itself (400) without calling back: the close settles it.
    socket.once('close', settle);
    this.server.handleUpgrade(request, socket, head, (websocket) => {
      settle();
      this.accept(websocket, info);
    });
  };

  /**
   * Stops accepting (later upgrades get 503), closes every connection with 1001 and resolves when all
   * of them are closed.
   */
  closeAll(): Promise<void> {
    this.closing = true;
    for (const connection of this.open) connection.shutDown();
    const closed =
      this.open.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.idle.push(resolve));
    return closed.then(
      () =>
        new Promise<void>((resolve) => {
          this.server.close(() => resolve());
        }),
    );
  }

  private accept(websocket: WebSocket, info: RequestInfo): void {
    const id = this.nextId++;
    this.options.log?.(openLine(id, info, this.options.broker.label, websocket.protocol));
    const connection = new RelayConnection(websocket, id, info, this.options, () => {
      this.open.delete(connection);
      if (this.open.size === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
    this.open.add(connection);
    if (this.closing) connection.shutDown();
  }

  private originAllowed(origin: string | undefined): boolean {
    const { allowedOrigins, allowNoOrigin } = this.options;
    if (origin === undefined) return allowNoOrigin;
    // No list: browsers are refused (the safe default); '*' lets any page in.
    if (allowedOrigins === undefined) return false;
    if (allowedOrigins === '*') return true;
    if (typeof allowedOrigins !== 'function') return allowedOrigins.has(origin);
    try {
      return allowedOrigins(origin) === true;
    } catch {
      // A predicate that fails refuses: an error must not open the door.
      return false;
    }
  }

  private refuse(socket: Duplex, info: RequestInfo, status: number, reason: string): void {
    this.options.log?.(refusedLine(info, status, reason));
    refuse(socket, status, `${reason}\n`);
  }
}
