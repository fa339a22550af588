/**
 * The public connection: an open AMQP connection, the channels it opens, its blocked notifications.
 *
 * @module
 */
import { Observable, Subject, type Subscriber } from 'rxjs';
import { type Secret, toSecret } from '../config/secret.js';
import type { ConnectionCore, ConnectionCounters, Tune } from '../core/connection-core.js';
import { hostLabel } from '../core/supervisor.js';
import { type ChannelClosedError, ConfigurationError, isConsumerTimeout } from '../errors.js';
import { utf8Length } from '../protocol/bytes.js';
import type { FieldTable } from '../protocol/field-table.js';
import { INSPECT } from '../util/runtime.js';
import { Channel, type ChannelEvents } from './channel.js';
import { ConnectionDrain, checkDrainOptions, type DrainOptions, type DrainProgress } from './drain.js';
import type { BlockedEvent, ChannelOptions } from './types.js';

export type { ConnectionCounters, Tune } from '../core/connection-core.js';

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

  /** The channels open (or opening) on this connection, for a drain. */
  private readonly live = new Set<Channel>();
  /** The drain, once started. */
  private drainRun: ConnectionDrain | undefined;

  /** @internal */
  constructor(private readonly core: ConnectionCore) {}

  /**
   * Drains the connection for a graceful shutdown, when subscribed:
   *
   * 1. every consumer of every channel is cancelled (basic.cancel, awaited: a delivery crossing it
   *    goes back to the queue) and its delivery stream completes, so that an `ackOnSuccess` after it
   *    completes once its running handlers finish; from now on `consume()` fails with a
   *    `DrainingError`;
   * 2. the drain waits until every delivery handed out has been settled (`prefetched: 'finish'`), or
   *    only those whose handlers had started (`'return'`: the rest go back to the queue unprocessed);
   * 3. the held acks are sent, new publishes fail with a `DrainingError`, and the drain waits for the
   *    publishes accepted before (those waiting for the socket or for an unblock included) to be
   *    written and confirmed;
   * 4. the connection closes; the `connect()` Observable completes.
   *
   * Steps 2 and 3 are bounded by `timeout` (default 25 s): past it, the connection closes anyway and
   * the broker requeues what is still unsettled. Emits a {@link DrainProgress} as each phase begins
   * and a last one, `closed`, then completes; errors with the connection's error if it is lost
   * meanwhile. The first subscription starts the drain and later ones see it from its start;
   * unsubscribing only stops listening (a drain half done would leave the consumers cancelled).
   * Channels stay usable throughout, for the handlers that finish. On a connection already closed it
   * emits `closed` at once (or errors with the connection's error). Invalid options throw a
   * `ConfigurationError` at the call.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => {
   *   conn.drain({ timeout: 20_000 }).subscribe({
   *     next: (p) => console.log(p.phase, p.unsettled, p.unconfirmed),
   *     complete: () => process.exit(0),
   *   });
   * });
   * ```
   */
  drain(options: DrainOptions = {}): Observable<DrainProgress> {
    checkDrainOptions(options);
    return new Observable<DrainProgress>((subscriber) => {
      this.drainRun ??= new ConnectionDrain(this.core, () => this.live, options);
      return this.drainRun.observable().subscribe(subscriber);
    });
  }

  /** True once `drain()` has started: consumers are refused, and publishes soon. */
  get isDraining(): boolean {
    return this.core.draining;
  }

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
   * On a recovering connection (`connect(url, { recovery })`), a channel the broker closes for
   * RabbitMQ's delivery acknowledgement timeout (`consumer_timeout`: a delivery held unacknowledged
   * too long; see `isConsumerTimeout`) is replaced: its consumers and pending operations complete,
   * and a fresh channel is opened and emitted, with `reopenedAfter` set to the timeout. A pipeline that
   * consumes in a `switchMap` after it starts its consumer again, and the broker delivers the
   * messages it took back again (`redelivered: true`). While the connection drains (recovering or
   * not), such a close completes the Observable instead, as the drain ends consumers.
   *
   * @example
   * ```ts
   * conn.channel().pipe(switchMap((ch) => ch.queueDeclare('jobs'))).subscribe();
   * ```
   */
  channel(options: ChannelOptions = {}): Observable<Channel> {
    return new Observable<Channel>((subscriber) => {
      let current: Channel | undefined;
      const open = (reopenedAfter: ChannelClosedError | undefined): void => {
        const channel = new Channel(
          this.core,
          {
            opened: (ch) => subscriber.next(ch),
            replaces: (error) => this.replacesChannel(error),
            closed: (error) => {
              this.live.delete(channel);
              if (error !== undefined && this.replacesChannel(error)) {
                // Whoever consumed may have left as its consumers completed: nothing to reopen for.
                if (subscriber.closed) return;
                if (this.core.draining || !this.core.isOpen) {
                  subscriber.complete();
                  return;
                }
                this.core.debug(`channel ${channel.id} closed by a consumer timeout; opening a fresh one`);
                open(error);
                return;
              }
              if (error === undefined || this.core.lostToRecovery(error)) subscriber.complete();
              else subscriber.error(error);
            },
          },
          reopenedAfter,
        );
        current = channel;
        try {
          channel.open(options.id);
          this.live.add(channel);
        } catch (e) {
          // On a lost recovering connection the next Connection brings the next channel.
          if (this.core.lostToRecovery(e)) subscriber.complete();
          else subscriber.error(e);
        }
      };
      open(undefined);
      return () => current?.closeNow();
    });
  }

  /**
   * Whether a channel the broker closed with `error` is replaced by a fresh one (see `channel()`): a
   * consumer timeout on a recovering connection. During a drain it ends like the drain's consumers
   * (the Observable completes, no fresh channel), with or without recovery.
   */
  private replacesChannel(error: ChannelClosedError): boolean {
    return (this.core.recovers || this.core.draining) && isConsumerTimeout(error);
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
    // Not keepFirst(channel()): a subscription kept for the channel's life would cost every open
    // channel ~1 KB (subscriber, observer, closures and their contexts). The channels opened here share
    // one events object, which forgets each once it has opened.
    this.openings ??= new ChannelOpenings(this.core, this.live);
    const openings = this.openings;
    return new Promise<Channel>((resolve, reject) => {
      const channel = new Channel(this.core, openings);
      openings.waiting.set(channel, { resolve, reject });
      try {
        channel.open(options.id);
        this.live.add(channel);
      } catch (e) {
        openings.closed(undefined, channel, e);
      }
    });
  }

  /** The events of the channels of `openChannel` (made with the first). */
  private openings: ChannelOpenings | undefined;

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
   * Hands the broker a new secret for this open connection when subscribed
   * (`connection.update-secret`): an OAuth 2 token that replaces one about to expire, without
   * reconnecting. Emits once and completes when the broker accepted it; later reconnects of this
   * `connect()` then log in with it (unless a `credentials` provider is set: it is asked instead). A
   * broker that refuses the secret closes the connection: the Observable errors with that
   * `ConnectionClosedError` (recovery, if on, reconnects). Errors with a `ConfigurationError` for a
   * secret that is not a non-empty string or `Secret`. The secret never appears in an error or a log.
   *
   * RabbitMQ (3.10) checks the new secret with the backends whose credentials can expire: the OAuth 2
   * backend takes any token with a valid signature, audience and scopes (neither its `sub` nor its
   * `exp` is checked) and refuses anything else with 530 NOT_ALLOWED; the internal backend accepts any
   * secret without checking it, so a wrong one only shows when a reconnect logs in with it.
   *
   * @example
   * ```ts
   * auth.tokenRefreshed$.pipe(switchMap((token) => conn.updateSecret(token, 'token refreshed'))).subscribe();
   * ```
   */
  updateSecret(secret: string | Secret, reason = 'rxamqp: the secret was rotated'): Observable<void> {
    return new Observable<void>((subscriber) => {
      const value = toSecret(secret);
      if (
        value === undefined ||
        value.reveal() === '' ||
        value.reveal().includes('\0') ||
        typeof reason !== 'string' ||
        utf8Length(reason) > 255
      ) {
        subscriber.error(
          new ConfigurationError(
            'updateSecret takes a non-empty secret (a string or a Secret) without NUL characters and a string reason of at most 255 bytes',
          ),
        );
        return;
      }
      this.core.updateSecret(value, reason, (error) => {
        if (error !== undefined) {
          subscriber.error(error);
          return;
        }
        subscriber.next();
        subscriber.complete();
      });
    });
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

  /**
   * What `JSON.stringify` shows (a logger, say): the URL without its password, the host and the state.
   *
   * @example
   * ```ts
   * JSON.stringify(conn); // {"url":"amqp://guest:***@localhost:5672/%2F","host":"localhost:5672","open":true,"blocked":false}
   * ```
   */
  toJSON(): { url: string; host: string; open: boolean; blocked: boolean } {
    return { url: this.url, host: this.host, open: this.isOpen, blocked: this.isBlocked };
  }

  [INSPECT](): string {
    return `Connection { url: '${this.core.options.displayUrl}', open: ${this.core.isOpen} }`;
  }
}

/**
 * The events of the channels opened by `openChannel`: each settles its promise once and is then
 * forgotten. A channel that ends before it opened rejects with why (the connection's error when the
 * client closed it meanwhile).
 */
class ChannelOpenings implements ChannelEvents {
  readonly waiting = new Map<Channel, { resolve(channel: Channel): void; reject(error: unknown): void }>();

  constructor(
    private readonly core: ConnectionCore,
    private readonly live: Set<Channel>,
  ) {}

  opened(channel: Channel): void {
    const waiter = this.waiting.get(channel);
    if (waiter === undefined) return;
    this.waiting.delete(channel);
    waiter.resolve(channel);
  }

  closed(error: ChannelClosedError | undefined, channel: Channel, thrown?: unknown): void {
    this.live.delete(channel);
    const waiter = this.waiting.get(channel);
    if (waiter === undefined) return;
    this.waiting.delete(channel);
    waiter.reject(thrown ?? error ?? this.core.channelError());
  }
}

/** @internal Subscribes for good and resolves with the first value; errors after it are left to the resource. */
export function keepFirst<T>(source: Observable<T>): Promise<T> {
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
