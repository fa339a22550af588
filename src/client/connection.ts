/**
 * The public connection and `connect()`: an AMQP connection as a cold Observable.
 *
 * @module
 */
import { inspect } from 'node:util';
import { BehaviorSubject, Observable, Subject, type Subscriber } from 'rxjs';
import type { ConnectOptions, ResolvedOptions } from '../config/options.js';
import { resolveOptions } from '../config/resolve-options.js';
import { ChannelCore } from '../core/channel-core.js';
import type { ConnectionCore, ConnectionCounters, Tune } from '../core/connection-core.js';
import { type ConnectionState, hostLabel, Supervisor } from '../core/supervisor.js';
import { ConfigurationError } from '../errors.js';
import type { FieldTable } from '../protocol/field-table.js';
import { Channel } from './channel.js';
import { Delivery } from './delivery.js';

export type { ConnectionCounters, Tune } from '../core/connection-core.js';
export type { ConnectionState, ConnectionStatus } from '../core/supervisor.js';

/**
 * A blocked or unblocked notification (see {@link Connection.blocked$}).
 *
 * @example
 * ```ts
 * conn.blocked$.pipe(filter((e) => e.blocked)).subscribe((e) => alert(e.reason));
 * ```
 */
export type BlockedEvent = { readonly blocked: true; readonly reason: string } | { readonly blocked: false };

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
  private readonly blockedSubject = new Subject<BlockedEvent>();

  /**
   * connection.blocked and connection.unblocked from the broker, as events: while a resource alarm
   * (memory or disk) is on, the broker blocks each connection that publishes, and says so. A subscriber that
   * comes while the connection is blocked gets `{ blocked: true, reason }` at once. Completes when the
   * connection ends. While blocked, publishes wait (see `whenBlocked` and `blockedTimeout`).
   *
   * @example
   * ```ts
   * conn.blocked$.subscribe((e) => console.warn(e.blocked ? `blocked: ${e.reason}` : 'unblocked'));
   * ```
   */
  readonly blocked$: Observable<BlockedEvent> = new Observable<BlockedEvent>((subscriber) => {
    if (this.core.blocked) subscriber.next({ blocked: true, reason: this.core.blockedReason ?? '' });
    if (this.core.isClosed) {
      subscriber.complete();
      return;
    }
    return this.blockedSubject.subscribe(subscriber);
  });

  /** @internal */
  constructor(private readonly core: ConnectionCore) {}

  /** @internal connection.blocked (reason) or unblocked (undefined) from the broker. */
  dispatchBlocked(reason: string | undefined): void {
    this.blockedSubject.next(reason === undefined ? { blocked: false } : { blocked: true, reason });
  }

  /** @internal The connection ended: blocked$ completes. */
  ended(): void {
    this.blockedSubject.complete();
  }

  /** `host:port` of the broker this connection went to (with several hosts, the one that answered). */
  get host(): string {
    return hostLabel(this.core.options);
  }

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
          if (error === undefined || this.core.lostToRecovery(error)) subscriber.complete();
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
        // On a lost recovering connection the next Connection brings the next channel.
        if (this.core.lostToRecovery(e)) subscriber.complete();
        else subscriber.error(e);
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

  /** The cached channel while open, or being opened. */
  private cached: { channel: Channel | undefined; waiters: Subscriber<Channel>[] } | undefined;

  /**
   * The connection's cached channel, for one-shot operations (declarations, bindings, purges, a
   * `get`): emits it and completes. The first call opens it; later calls reuse it; when an error closes
   * it (a 404 on a passive declare, say), the next call opens a fresh one. It closes with the
   * connection. Consumers and publishers that want their own flow control should use
   * {@link channel} instead: one channel each.
   *
   * @example
   * ```ts
   * conn.cachedChannel().pipe(switchMap((ch) => ch.queueDeclare('jobs', { durable: true }))).subscribe();
   * ```
   */
  cachedChannel(): Observable<Channel> {
    return new Observable<Channel>((subscriber) => {
      const cached = this.cached;
      if (cached?.channel?.isOpen) {
        subscriber.next(cached.channel);
        subscriber.complete();
        return;
      }
      if (cached !== undefined && cached.channel === undefined) {
        cached.waiters.push(subscriber);
        return () => {
          const i = cached.waiters.indexOf(subscriber);
          if (i >= 0) cached.waiters.splice(i, 1);
        };
      }
      const entry: NonNullable<Connection['cached']> = { channel: undefined, waiters: [subscriber] };
      this.cached = entry;
      this.channel().subscribe({
        next: (channel) => {
          entry.channel = channel;
          for (const w of entry.waiters.splice(0)) {
            w.next(channel);
            w.complete();
          }
        },
        error: (error: unknown) => {
          if (this.cached === entry) this.cached = undefined;
          for (const w of entry.waiters.splice(0)) w.error(error);
        },
        complete: () => {
          if (this.cached === entry) this.cached = undefined;
          // Lost with a recovering connection: complete like channel() (the next Connection has its own).
          const recovering = this.core.recovering;
          for (const w of entry.waiters.splice(0)) {
            if (recovering) w.complete();
            else w.error(this.core.channelError());
          }
        },
      });
      return () => {
        const i = entry.waiters.indexOf(subscriber);
        if (i >= 0) entry.waiters.splice(i, 1);
      };
    });
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
  return new ConnectionObservable(url, options);
}

/**
 * What {@link connect} returns: an `Observable<Connection>` that also reports its state.
 *
 * @example
 * ```ts
 * const connection$ = connect(url, { recovery: true });
 * connection$.state$.pipe(filter((s) => s.status === 'RECONNECTING')).subscribe((s) => log.warn(s.cause));
 * ```
 */
export class ConnectionObservable extends Observable<Connection> {
  private readonly states = new BehaviorSubject<ConnectionState>({ status: 'INITIAL' });

  /**
   * The state of this Observable's connection: the current state at once, then every change
   * (`CONNECTING`, `CONNECTED`, `RECONNECTING`, `CLOSING`, `CLOSED`, with the host and the cause). It
   * never completes: subscribing again to the connection Observable starts again. Without `shared`,
   * each subscription has its own connection and all of them report here.
   */
  readonly state$: Observable<ConnectionState> = this.states.asObservable();

  /** @internal */
  constructor(url: string | ConnectOptions | undefined, options: ConnectOptions | undefined) {
    let group: ConnectionGroup | undefined;
    super((subscriber) => {
      let resolved: ResolvedOptions;
      try {
        resolved = resolveOptions(url ?? {}, options);
      } catch (e) {
        this.states.next({ status: 'CLOSED', cause: e as Error });
        subscriber.error(e);
        return;
      }
      const report = (state: ConnectionState) => this.states.next(state);
      if (!resolved.shared) return new ConnectionGroup(resolved, report).add(subscriber);
      if (group === undefined || group.isOver) {
        // A group still closing when the next one starts no longer speaks for this Observable.
        const next: ConnectionGroup = new ConnectionGroup(resolved, (state) => {
          if (group === next) report(state);
        });
        group = next;
      }
      return group.add(subscriber);
    });
  }
}

/** The subscribers of one connection lifetime, and the supervisor that opens their connections. */
class ConnectionGroup {
  private readonly subscribers: Subscriber<Connection>[] = [];
  private current: Connection | undefined;
  private supervisor: Supervisor | undefined;
  private readonly connections = new WeakMap<ConnectionCore, Connection>();
  isOver = false;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly report: (state: ConnectionState) => void,
  ) {}

  add(subscriber: Subscriber<Connection>): () => void {
    this.subscribers.push(subscriber);
    if (this.current !== undefined) subscriber.next(this.current);
    if (this.supervisor === undefined && !this.isOver) {
      this.supervisor = new Supervisor(
        this.options,
        {
          opened: (core) => {
            const connection = new Connection(core);
            this.connections.set(core, connection);
            this.current = connection;
            for (const s of this.subscribers.slice()) s.next(connection);
          },
          lost: (core) => {
            const connection = this.connections.get(core);
            if (this.current === connection) this.current = undefined;
            connection?.ended();
          },
          ended: (error) => {
            this.isOver = true;
            const connection = this.current;
            this.current = undefined;
            connection?.ended();
            this.supervisor = undefined;
            const subscribers = this.subscribers.splice(0);
            for (const s of subscribers) {
              if (error === undefined) s.complete();
              else s.error(error);
            }
          },
          blocked: (core, reason) => this.connections.get(core)?.dispatchBlocked(reason),
        },
        this.report,
      );
      this.supervisor.start();
    }
    return () => {
      const i = this.subscribers.indexOf(subscriber);
      if (i >= 0) this.subscribers.splice(i, 1);
      if (this.subscribers.length === 0) {
        this.isOver = true;
        this.supervisor?.stop();
      }
    };
  }
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
  const recovery = options?.recovery ?? (typeof url === 'object' ? url.recovery : undefined);
  if (recovery !== undefined && recovery !== false) {
    // The promise can hold one Connection only: the ones recovery opens later would be out of reach.
    return Promise.reject(
      new ConfigurationError(
        'openConnection() does not recover: use connect(url, { recovery }) and switchMap, or createPublisher, to carry on across reconnects',
      ),
    );
  }
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
