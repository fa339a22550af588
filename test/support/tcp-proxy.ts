/**
 * A TCP proxy on 127.0.0.1 for failure tests: it forwards each connection it accepts to `target` and
 * back, and breaks the path on demand the ways a network breaks it. An orderly end on both sides
 * (`cut`), a reset (`reset`), a dead path that keeps the sockets open but lets nothing through
 * (`blackhole` / `unblackhole`), and a port that refuses connections (`refuse`).
 *
 * A blackhole holds bytes; it does not drop them. On a real dead path the network drops packets, but TCP
 * keeps the unacknowledged bytes and sends them again, so a connection either dies (its owner gives up,
 * for example on missed heartbeats) or, once the path is back, gets every byte in order. It never loses a
 * piece of the stream and carries on. So while the blackhole is on, the proxy stops reading from both
 * sockets (their peers' writes back up as they would behind a dead link) and keeps any chunk it had
 * already read. `unblackhole()` then delivers what was held, in order, and forwards again. An end or a
 * reset from one side during the blackhole is held too: the other side learns of it only when the path
 * comes back, as it would. A connection accepted while the blackhole is on does not reach the target
 * until then.
 *
 * The proxy catches every socket error, so a broken connection never becomes an unhandled error, and
 * `close()` destroys every socket and waits until all of them and the listener are closed, so that Jest
 * exits cleanly.
 *
 * @example
 * ```ts
 * const proxy = await startTcpProxy(await brokerEndpoint());
 * const conn$ = connect(proxy.url(await brokerUrl()));
 * // ... later, to lose the connection:
 * proxy.reset();
 * await proxy.close();
 * ```
 *
 * @module
 */
import { type AddressInfo, createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Rewrites an amqp:// URL's host:port to the proxy's, keeping credentials/vhost/query. */
  readonly url: (base: string) => string;
  /** Open client connections now. */
  readonly connections: number;
  /** Client connections accepted so far. */
  readonly accepted: number;
  /** Ends every proxied connection in both directions with FIN (orderly). New connections still accepted. */
  cut(): void;
  /** Destroys every proxied connection with RST (socket.resetAndDestroy()). */
  reset(): void;
  /**
   * Stops forwarding bytes in both directions but keeps the sockets open (a dead network path), until
   * unblackhole(). New connections are accepted but also blackholed while on. Bytes are held, not
   * dropped (see the module documentation).
   */
  blackhole(): void;
  /** Ends the blackhole: delivers the held bytes (and ends or resets) in order, then forwards again. */
  unblackhole(): void;
  /**
   * Refuse new connections (the listener is closed, so connecting fails with ECONNREFUSED) until
   * refuse(false), which listens again on the same port. Open connections are left alone.
   */
  refuse(on: boolean): void;
  /**
   * Stops listening, destroys every connection and resolves once all sockets and listeners are closed.
   * Rejects if listening again after `refuse(false)` failed (the port was taken meanwhile).
   */
  close(): Promise<void>;
}

/** What happens to the receiving side when the sending side is gone: an orderly end or a reset. */
type Teardown = 'end' | 'reset';

/** `up`: client to target; `down`: target to client. */
type Direction = 'up' | 'down';

/** What the connections share with the proxy. */
interface ProxyState {
  blackholed: boolean;
  readonly target: { readonly host: string; readonly port: number };
  /** Registers a socket so that `close()` can destroy it and wait for it. */
  readonly track: (socket: Socket) => void;
}

/** Swallows socket errors: each shows up as a `close` with `hadError`, which is what the proxy acts on. */
function ignore(): void {}

/** Sends RST and destroys; a socket still connecting is just destroyed. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

/** Ends the write side (FIN) once queued bytes are out. */
function endSocket(socket: Socket): void {
  if (!socket.destroyed && !socket.writableEnded) socket.end();
}

/** One client connection and its connection to the target. */
class ProxiedConnection {
  private upstream: Socket | undefined;
  private readonly held: Record<Direction, Buffer[]> = { up: [], down: [] };
  /** A teardown that arrived during the blackhole, to pass on after the held bytes. */
  private readonly pending: Record<Direction, Teardown | undefined> = { up: undefined, down: undefined };
  /** Set by `cut()`: nothing is forwarded any more, the sockets are only left to close. */
  private ended = false;

  constructor(
    readonly client: Socket,
    private readonly state: ProxyState,
  ) {
    state.track(client);
    client.setNoDelay(true);
    client.on('error', ignore);
    this.wire(client, 'up');
    if (state.blackholed) client.pause();
    else this.openUpstream();
  }

  /** Ends both sides with FIN and forgets anything held. */
  cut(): void {
    this.ended = true;
    this.held.up = [];
    this.held.down = [];
    this.pending.up = this.pending.down = undefined;
    for (const socket of this.sockets()) {
      endSocket(socket);
      // Keep reading (and dropping) so that the peers' FIN is seen and the sockets close.
      socket.resume();
    }
  }

  /** Resets both sides. */
  reset(): void {
    this.ended = true;
    for (const socket of this.sockets()) resetSocket(socket);
  }

  /** Stops reading from both sides. */
  hold(): void {
    if (this.ended) return;
    for (const socket of this.sockets()) socket.pause();
  }

  /** Delivers what was held, passes on held teardowns, and forwards again. */
  release(): void {
    if (this.ended) return;
    if (this.upstream === undefined) {
      // Accepted during the blackhole: the target has never heard of this connection. If the client
      // has gone meanwhile, it never will.
      if (this.client.destroyed) return;
      this.openUpstream();
    }
    for (const direction of ['up', 'down'] as const) {
      const to = this.destination(direction);
      const chunks = this.held[direction];
      this.held[direction] = [];
      if (to !== undefined && !to.destroyed && !to.writableEnded) {
        for (const chunk of chunks) to.write(chunk);
      }
      const teardown = this.pending[direction];
      this.pending[direction] = undefined;
      if (teardown !== undefined && to !== undefined) this.apply(to, teardown);
    }
    for (const socket of this.sockets()) if (!socket.destroyed) socket.resume();
  }

  /** Destroys both sides at once. */
  destroy(): void {
    this.ended = true;
    for (const socket of this.sockets()) socket.destroy();
  }

  private sockets(): Socket[] {
    return this.upstream === undefined ? [this.client] : [this.client, this.upstream];
  }

  private destination(direction: Direction): Socket | undefined {
    return direction === 'up' ? this.upstream : this.client;
  }

  private source(direction: Direction): Socket | undefined {
    return direction === 'up' ? this.client : this.upstream;
  }

  private openUpstream(): void {
    const { host, port } = this.state.target;
    const upstream = netConnect({ host, port });
    this.upstream = upstream;
    this.state.track(upstream);
    upstream.on('error', ignore);
    upstream.once('connect', () => upstream.setNoDelay(true));
    this.wire(upstream, 'down');
  }

  private wire(from: Socket, direction: Direction): void {
    from.on('data', (chunk: Buffer) => this.onData(direction, chunk));
    from.on('end', () => this.onGone(direction, 'end'));
    from.on('close', (hadError: boolean) => this.onGone(direction, hadError ? 'reset' : 'end'));
  }

  private onData(direction: Direction, chunk: Buffer): void {
    if (this.ended) return;
    const from = this.source(direction);
    const to = this.destination(direction);
    if (this.state.blackholed || to === undefined) {
      // Read before the pause took effect: keep it for when the path comes back.
      this.held[direction].push(chunk);
      from?.pause();
      return;
    }
    if (to.destroyed || to.writableEnded) return; // the other side is gone: nowhere to deliver
    if (!to.write(chunk) && from !== undefined) {
      from.pause();
      to.once('drain', () => {
        if (!this.state.blackholed && !from.destroyed) from.resume();
      });
    }
  }

  /** The sending side of `direction` ended (FIN) or closed (reset when `hadError`). */
  private onGone(direction: Direction, teardown: Teardown): void {
    if (this.ended) return;
    const to = this.destination(direction);
    if (this.state.blackholed || to === undefined) {
      // A reset outranks an end that may have come first.
      if (this.pending[direction] !== 'reset') this.pending[direction] = teardown;
      return;
    }
    this.apply(to, teardown);
  }

  private apply(to: Socket, teardown: Teardown): void {
    if (teardown === 'reset') resetSocket(to);
    else endSocket(to);
  }
}

/**
 * Starts a proxy on 127.0.0.1 (a free port) to `target`.
 *
 * @example
 * ```ts
 * const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5672 });
 * proxy.blackhole();
 * ```
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const links = new Set<ProxiedConnection>();
  /** Every socket not yet closed, with the promise of its close. */
  const sockets = new Map<Socket, Promise<void>>();
  /** Every listener not yet closed, with the promise of its close. */
  const servers = new Map<Server, Promise<void>>();
  let accepted = 0;
  let open = 0;
  let listener: Server | undefined;
  let listening: Promise<void> = Promise.resolve();
  let listenError: Error | undefined;
  let closing: Promise<void> | undefined;

  const state: ProxyState = {
    blackholed: false,
    target: { host: target.host, port: target.port },
    track: (socket) => {
      sockets.set(socket, new Promise<void>((resolve) => socket.once('close', () => resolve())));
      socket.once('close', () => sockets.delete(socket));
    },
  };

  const onConnection = (client: Socket): void => {
    if (closing !== undefined) {
      client.on('error', ignore);
      client.destroy();
      return;
    }
    accepted++;
    open++;
    const link = new ProxiedConnection(client, state);
    links.add(link);
    client.once('close', () => {
      open--;
      links.delete(link);
    });
  };

  /** A new listener on `port` (0: any free port); resolves with the port once it listens. */
  const listen = (port: number): Promise<number> => {
    const server = createServer(onConnection);
    servers.set(server, new Promise<void>((resolve) => server.once('close', () => resolve())));
    server.once('close', () => servers.delete(server));
    listener = server;
    return new Promise<number>((resolve, reject) => {
      // Kept for the server's whole life: a listener error must never go unhandled.
      server.on('error', (error) => {
        if (listener === server) listener = undefined;
        if (!server.listening) servers.delete(server); // it will never emit 'close'
        reject(error); // a no-op once listening
      });
      server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  };

  const port = await listen(0);

  const proxy: TcpProxy = {
    port,
    url: (base: string): string => {
      const url = new URL(base);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    get connections(): number {
      return open;
    },
    get accepted(): number {
      return accepted;
    },
    cut(): void {
      for (const link of links) link.cut();
    },
    reset(): void {
      for (const link of links) link.reset();
    },
    blackhole(): void {
      state.blackholed = true;
      for (const link of links) link.hold();
    },
    unblackhole(): void {
      if (!state.blackholed) return;
      state.blackholed = false;
      for (const link of links) link.release();
    },
    refuse(on: boolean): void {
      if (closing !== undefined) return;
      if (on) {
        // Existing connections stay; the server's own close event waits for them.
        listener?.close();
        listener = undefined;
      } else if (listener === undefined) {
        listening = listen(port).then(
          () => {},
          (error: Error) => {
            listenError = error;
          },
        );
      }
    },
    close(): Promise<void> {
      closing ??= (async () => {
        await listening;
        listener?.close();
        listener = undefined;
        for (const link of links) link.destroy();
        for (const socket of sockets.keys()) socket.destroy();
        await Promise.all([...sockets.values(), ...servers.values()]);
        if (listenError !== undefined) {
          throw new Error(`the TCP proxy could not listen on 127.0.0.1:${port} again`, {
            cause: listenError,
          });
        }
      })();
      return closing;
    },
  };
  return proxy;
}
