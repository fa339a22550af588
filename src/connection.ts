/**
 * The public connection and `connect()`: an AMQP connection as a cold Observable.
 *
 * @module
 */
import { inspect } from 'node:util';
import { Observable } from 'rxjs';
import { ChannelCore } from './channel/channel-core.js';
import { Channel } from './channel.js';
import { ConnectionCore, type ConnectionCounters, type Tune } from './connection/connection-core.js';
import { Delivery } from './delivery.js';
import type { ConnectOptions } from './options.js';
import type { FieldTable } from './protocol/field-table.js';
import { resolveOptions } from './resolve-options.js';

export type { ConnectionCounters, Tune } from './connection/connection-core.js';

/** Options of `connection.channel()`. */
export interface ChannelOptions {
  /** Use this channel number instead of the lowest free one (1..channelMax). */
  id?: number;
}

/**
 * An open AMQP connection, as emitted by {@link connect}. It lives as long as that subscription.
 *
 * @example
 * ```ts
 * connect('amqp://localhost').pipe(
 *   tap((conn) => console.log(conn.serverProperties.product, conn.tune.heartbeat)),
 *   switchMap((conn) => conn.channel()),
 * ).subscribe();
 * ```
 */
export class Connection {
  /** @internal */
  constructor(private readonly core: ConnectionCore) {}

  /** What the broker said about itself in connection.start (product, version, capabilities...). */
  get serverProperties(): FieldTable {
    return this.core.serverProperties;
  }

  /** The negotiated channel_max, frame_max and heartbeat. */
  get tune(): Tune {
    return this.core.tune;
  }

  /** Bytes, frames and heartbeats sent and received so far. */
  get counters(): ConnectionCounters {
    return this.core.counters;
  }

  /** True until the connection closes. */
  get isOpen(): boolean {
    return this.core.isOpen;
  }

  /** True while the broker has blocked publishing on this connection (resource alarm). */
  get isBlocked(): boolean {
    return this.core.blocked;
  }

  /** The URL of the broker, without the password. */
  get url(): string {
    return this.core.options.displayUrl;
  }

  /**
   * Opens a channel when subscribed (emitting it once the broker has opened it) and closes it when
   * the subscription ends. Errors with a `ChannelClosedError` when the broker closes the channel or
   * the connection fails, and completes when the client closes the connection. Subscribing on a closed
   * connection errors with its `ConnectionClosedError`; when no channel number is free (or an explicit
   * `id` is taken or out of range) it errors with an `AmqpError` coded `CHANNEL_UNAVAILABLE`.
   *
   * @example
   * ```ts
   * conn.channel().pipe(switchMap((ch) => ch.queueDeclare('jobs'))).subscribe();
   * ```
   */
  channel(options: ChannelOptions = {}): Observable<Channel> {
    return new Observable<Channel>((subscriber) => {
      let channel: Channel | undefined;
      const core = new ChannelCore(this.core, {
        opened: () => subscriber.next(channel!),
        closed: (error) => {
          channel?.complete(error);
          if (error === undefined) subscriber.complete();
          else subscriber.error(error);
        },
        delivered: (method, properties, body) => channel?.dispatchDelivery(method, properties, body),
        consumerCancelled: (consumerTag) => channel?.dispatchCancel(consumerTag),
        confirmSelected: () => channel?.startConfirms(),
        confirmed: (method) => channel?.dispatchConfirm(method),
        returned: (method, properties, body) =>
          channel?.emitReturn({
            replyCode: method.replyCode,
            replyText: method.replyText,
            exchange: method.exchange,
            routingKey: method.routingKey,
            properties,
            body,
          }),
      });
      channel = new Channel(core);
      try {
        core.open(options.id);
      } catch (e) {
        subscriber.error(e);
        return;
      }
      return () => core.close();
    });
  }

  /**
   * Opens a channel for async/await code: resolves with it once open, and keeps it open until
   * `channel.close()` or the end of the connection (then `channel.error` says why, if it was not the
   * client). Prefer `channel()` in pipelines: `firstValueFrom(connection.channel())` would close the
   * channel as soon as the promise resolves, because it unsubscribes.
   *
   * @example
   * ```ts
   * const ch = await conn.openChannel();
   * await lastValueFrom(ch.queueDeclare('jobs'));
   * await lastValueFrom(ch.close());
   * ```
   */
  openChannel(options: ChannelOptions = {}): Promise<Channel> {
    return keepFirst(this.channel(options));
  }

  /** Why the connection ended, when it was not the client closing it; undefined while open. */
  get error(): Error | undefined {
    return this.core.error;
  }

  /**
   * Closes the connection (the connection.close handshake) when subscribed, like every operation; the
   * {@link connect} Observable then completes, and so do the channels still open on it. Emits once
   * the connection is closed.
   *
   * @example
   * ```ts
   * await lastValueFrom(conn.close());
   * ```
   */
  close(): Observable<void> {
    return new Observable<void>((subscriber) => {
      this.core.close(() => {
        subscriber.next();
        subscriber.complete();
      });
    });
  }

  [inspect.custom](): string {
    return `Connection { url: '${this.core.options.displayUrl}', open: ${this.core.isOpen} }`;
  }
}

/**
 * Connects to a broker. Cold: each subscription opens its own connection and emits the `Connection`
 * once the handshake is done; unsubscribing closes it with the connection.close handshake. It completes
 * when the client closes the connection (`connection.close()`), and errors with a typed error when the
 * broker or the network ends it: `ConnectionClosedError`, `AuthenticationError`, or a
 * `ConfigurationError` for a bad URL or option (passwords are never shown).
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
 */
export function connect(url?: string | ConnectOptions, options?: ConnectOptions): Observable<Connection> {
  return new Observable<Connection>((subscriber) => {
    let resolved: ReturnType<typeof resolveOptions>;
    try {
      resolved = resolveOptions(url ?? {}, options);
    } catch (e) {
      subscriber.error(e);
      return;
    }
    let connection: Connection | undefined;
    const core = new ConnectionCore(resolved, {
      opened: () => {
        connection = new Connection(core);
        subscriber.next(connection);
      },
      closed: (error) => {
        if (error === undefined) subscriber.complete();
        else subscriber.error(error);
      },
    });
    core.start();
    return () => core.close();
  });
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
  return keepFirst(connect(url, options));
}

/** Subscribes for good and resolves with the first value; errors after it are left to the resource. */
function keepFirst<T>(source: Observable<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let opened = false;
    source.subscribe({
      next: (value) => {
        opened = true;
        resolve(value);
      },
      error: (error: unknown) => {
        if (!opened) reject(error);
      },
    });
  });
}

export { Delivery };
