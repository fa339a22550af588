/**
 * `RxAmqpClient`: a NestJS `ClientProxy` on rxamqp. Requests (`send`) go over RabbitMQ's direct
 * reply-to with a timeout; events (`emit`) go through a confirming publisher that holds them while
 * disconnected and publishes again those whose confirm was lost with a connection.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import {
  BehaviorSubject,
  defer,
  EMPTY,
  filter,
  lastValueFrom,
  Observable,
  of,
  retry,
  type Subscription,
  switchMap,
  take,
  tap,
  timeout,
  timer,
} from 'rxjs';
import type { Channel } from '../../client/channel.js';
import type { ConnectionObservable } from '../../client/connect.js';
import type { Connection } from '../../client/connection.js';
import { DIRECT_REPLY_TO } from '../../client/consumers.js';
import type { Delivery } from '../../client/delivery.js';
import { createPublisher, type Publisher } from '../../client/publisher.js';
import { redactUrl } from '../../config/url.js';
import { PublishNackedError } from '../../errors.js';
import { connect } from '../../node.js';
import type { BasicProperties } from '../../protocol/generated.js';
import { applyTopology } from '../../topology/apply.js';
import { defineTopology, type Topology } from '../../topology/specs.js';
import { INSPECT } from '../../util/runtime.js';
import type { EncodedMessage, ReplyPacket } from './envelope.js';
import {
  type ResolvedClientOptions,
  type RxAmqpClientOptions,
  type RxAmqpEvents,
  type RxAmqpStatus,
  resolveClientOptions,
  statusOf,
  tell,
} from './options.js';

/** Wait before the reply consumer that failed on a live connection is started again, in ms. */
const RESTART_DELAY = 1000;

/** A request waiting for its replies. */
interface PendingRequest {
  readonly callback: (packet: WritePacket) => void;
  /** The channel it was published on: its replies come back only there. */
  channel: Channel | undefined;
  /** Replies are decoded in order, one after the other. */
  decoding: Promise<void>;
}

/**
 * A NestJS client for {@link RxAmqpServer} (and for Nest's own RMQ server, whose JSON envelope it
 * speaks by default). `send(pattern, data)` publishes a request with `replyTo:
 * 'amq.rabbitmq.reply-to'` and emits the replies (streamed ones too), erroring with RxJS's
 * `TimeoutError` when none comes within `timeout`. `emit(pattern, data)` resolves once the broker has
 * confirmed the event; events emitted while the connection is down are held and sent after the
 * reconnect (at least once: a confirm lost with a connection publishes the event again). With
 * `exchange`, the pattern is the routing key (an event no queue is bound for is dropped by the broker,
 * and confirmed all the same); with `queue`, messages go straight to that queue.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     ClientsModule.register([
 *       { name: 'SHOP', customClass: RxAmqpClient, options: { url: process.env.AMQP_URL!, exchange: 'shop', timeout: 5000 } },
 *     ]),
 *   ],
 * })
 * class AppModule {}
 *
 * // in a service: constructor(@Inject('SHOP') private readonly client: ClientProxy) {}
 * const invoice = await firstValueFrom(this.client.send('invoice.get', { id }));
 * await lastValueFrom(this.client.emit('orders.created', order), { defaultValue: undefined });
 * ```
 */
// The status type parameter stays `string` so that the class is a `Type<ClientProxy>` for
// `ClientsModule`'s `customClass`; the `status` getter is narrowed instead.
export class RxAmqpClient extends ClientProxy<RxAmqpEvents, string> {
  private readonly logger = new Logger('RxAmqpClient');
  private readonly config: ResolvedClientOptions;
  private connection$: ConnectionObservable | undefined;
  private publisher: Publisher | undefined;
  private connecting: Promise<ConnectionObservable> | undefined;
  private subscriptions: Subscription[] = [];
  /** The channel whose direct reply-to consumer is running; requests are published on it. */
  private readonly replyChannel = new BehaviorSubject<Channel | undefined>(undefined);
  private readonly pending = new Map<string, PendingRequest>();
  private readonly listeners: { [K in keyof RxAmqpEvents]: RxAmqpEvents[K][] } = { state: [], error: [] };

  /**
   * Checks the options (a `ConfigurationError` for a missing URL, a bad exchange, neither or both of
   * `exchange` and `queue`...); nothing connects until the first `connect()`, `send()` or `emit()`.
   *
   * @example
   * ```ts
   * const client = new RxAmqpClient({ url: 'amqp://localhost', queue: 'orders' });
   * ```
   */
  constructor(options: RxAmqpClientOptions) {
    super();
    this.config = resolveClientOptions(options);
  }

  /** What `JSON.stringify` shows: the URL without its password, never the options (secrets). */
  toJSON(): { url: string } {
    const url = this.config.url;
    return { url: typeof url === 'string' ? redactUrl(url) : '(connection options)' };
  }

  /** What `util.inspect` and `console.log` show: as `toJSON`, never a secret. */
  [INSPECT](): string {
    return `RxAmqpClient { url: '${this.toJSON().url}' }`;
  }

  /**
   * The connection's status (see {@link RxAmqpStatus}): the current one at once, then each change.
   *
   * @example
   * ```ts
   * client.status.subscribe((s) => console.log('client', s));
   * ```
   */
  override get status(): Observable<RxAmqpStatus> {
    return super.status as Observable<RxAmqpStatus>;
  }

  /**
   * Connects (once; later calls return the same Promise): resolves with the rxamqp connection
   * Observable once the first connection is open (and the exchange declared), rejects when it cannot
   * connect for good (a refused login, say).
   *
   * @example
   * ```ts
   * await client.connect();
   * ```
   */
  connect(): Promise<ConnectionObservable> {
    if (this.connecting === undefined) {
      this.connecting = this.start();
      // Callers that do not wait for it (emit's hot path) must not make it an unhandled rejection.
      this.connecting.catch(() => undefined);
    }
    return this.connecting;
  }

  /**
   * Sends a request and emits its replies; errors with the handler's `{ err }`, or with RxJS's
   * `TimeoutError` when no reply comes within the `timeout` option.
   *
   * @example
   * ```ts
   * const sum = await firstValueFrom(client.send<number>('math.sum', [1, 2, 3]));
   * ```
   */
  override send<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput): Observable<TResult> {
    return super.send<TResult, TInput>(pattern, data).pipe(timeout({ first: this.config.timeout }));
  }

  /**
   * Closes: pending requests fail, events still held or awaiting their confirms are given up to
   * `closeTimeout` ms to go out, then the connection is closed. `connect()` may be called again after.
   *
   * @example
   * ```ts
   * await client.close();
   * ```
   */
  async close(): Promise<void> {
    const connection$ = this.connection$;
    const publisher = this.publisher;
    if (connection$ === undefined) return;
    this.connection$ = undefined;
    this.publisher = undefined;
    this.connecting = undefined;
    this.failPending(undefined, new Error('RxAmqpClient closed'));
    const timeout = this.config.closeTimeout;
    try {
      if (publisher !== undefined) await lastValueFrom(publisher.drain({ timeout }));
      await lastValueFrom(connection$.drain({ timeout }), { defaultValue: undefined });
    } catch (error) {
      this.report('closing', error);
    }
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this._status$.next('closed');
  }

  /**
   * Listens to `'state'` (each connection state) and `'error'` (what the client logged).
   *
   * @example
   * ```ts
   * client.on('state', (s) => console.log(s.status, s.cause?.message));
   * ```
   */
  override on<K extends keyof RxAmqpEvents = keyof RxAmqpEvents, C extends RxAmqpEvents[K] = RxAmqpEvents[K]>(
    event: K,
    callback: C,
  ): void {
    const list = this.listeners[event] as RxAmqpEvents[K][] | undefined;
    if (list === undefined)
      throw new Error(`RxAmqpClient: unknown event '${String(event)}' (use 'state' or 'error')`);
    list.push(callback);
  }

  /**
   * The rxamqp `ConnectionObservable` (its `state$`, `drain()`); throws before `connect()`.
   *
   * @example
   * ```ts
   * client.unwrap<ConnectionObservable>().state$.subscribe((s) => console.log(s.status));
   * ```
   */
  unwrap<T = ConnectionObservable>(): T {
    if (this.connection$ === undefined) {
      throw new Error('RxAmqpClient: not initialized; call connect() before unwrap()');
    }
    return this.connection$ as T;
  }

  /** Nest's request path: publishes `packet` and calls `callback` with each reply. */
  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const id = randomUUID();
    const routingKey = this.normalizePattern(packet.pattern);
    const entry: PendingRequest = { callback, channel: undefined, decoding: Promise.resolve() };
    this.pending.set(id, entry);
    const fail = (err: unknown): void => {
      if (this.pending.delete(id)) callback({ err });
    };
    const publishing = defer(async () => this.config.envelope.encode({ ...packet, id, routingKey }))
      .pipe(
        // Direct reply-to answers on the channel that consumes it: publish on that channel, once open.
        switchMap((encoded) =>
          this.replyChannel.pipe(
            filter((channel): channel is Channel => channel !== undefined),
            take(1),
            switchMap((channel) => {
              entry.channel = channel;
              const [exchange, key] = this.target(encoded, routingKey);
              return channel.publish(exchange, key, encoded.body, {
                ...encoded.properties,
                replyTo: DIRECT_REPLY_TO,
                correlationId: id,
                expiration: String(this.config.timeout),
              });
            }),
          ),
        ),
      )
      .subscribe({ error: fail });
    return () => {
      publishing.unsubscribe();
      this.pending.delete(id);
    };
  }

  /** Nest's event path: resolves once the broker confirmed the event. */
  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const publisher = this.publisher;
    if (publisher === undefined) throw new Error('RxAmqpClient: closed');
    const routingKey = this.normalizePattern(packet.pattern);
    const encoded = await this.config.envelope.encode({ ...packet, routingKey });
    const [exchange, key] = this.target(encoded, routingKey);
    const properties: BasicProperties = this.config.persistent
      ? { deliveryMode: 2, ...encoded.properties }
      : { ...encoded.properties };
    const outcome = await lastValueFrom(publisher.publish(exchange, key, encoded.body, properties));
    if (outcome.status === 'nacked') throw new PublishNackedError(exchange, key, outcome.seq, 1);
    return undefined as T;
  }

  /** Where a message goes: the exchange with the pattern (or the envelope's key), or the queue. */
  private target(encoded: EncodedMessage, routingKey: string): [exchange: string, routingKey: string] {
    const { exchange, queue } = this.config;
    if (exchange !== undefined) return [exchange.name, encoded.routingKey ?? routingKey];
    return ['', queue!];
  }

  private start(): Promise<ConnectionObservable> {
    const connection$ = connect(this.config.url, this.config.connectOptions);
    this.connection$ = connection$;
    this.publisher = createPublisher(connection$, {
      confirm: true,
      republish: true,
      whileDisconnected: 'buffer',
      maxBuffered: this.config.maxBuffered,
      bufferTimeout: this.config.bufferTimeout,
    });
    this.subscriptions.push(
      connection$.state$.subscribe((state) => {
        this._status$.next(statusOf(state));
        tell(this.listeners.state, state);
      }),
    );
    const exchange = this.config.exchange;
    const topology = exchange === undefined ? undefined : defineTopology({ exchanges: [exchange] });
    return new Promise<ConnectionObservable>((resolve, reject) => {
      let ready = false;
      this.subscriptions.push(
        connection$
          .pipe(
            switchMap((conn) =>
              declared(conn, topology).pipe(
                tap(() => {
                  if (ready) return;
                  ready = true;
                  resolve(connection$);
                }),
                switchMap(() => conn.channel()),
                switchMap((channel) => this.replies(channel)),
                retry({
                  delay: (error: unknown) => {
                    if (!conn.isOpen || conn.isDraining) return EMPTY;
                    if (!ready) throw error;
                    this.report('the reply consumer failed; starting it again', error);
                    return timer(RESTART_DELAY);
                  },
                }),
              ),
            ),
          )
          .subscribe({
            next: (reply) => this.onReply(reply),
            error: (error: unknown) => {
              this.failPending(undefined, error);
              if (!ready) {
                ready = true;
                this.connecting = undefined;
                reject(error);
              } else {
                this.report('the connection ended', error);
              }
            },
            // Closed before the first connection opened: whoever waits for it learns so.
            complete: () => {
              if (ready) return;
              ready = true;
              reject(new Error('RxAmqpClient: closed before it connected'));
            },
          }),
      );
    });
  }

  /** The direct reply-to consumer of `channel`, which is the request channel while it runs. */
  private replies(channel: Channel): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      // basic.consume goes out first: publishes with this replyTo are queued behind it.
      const consuming = channel.consume(DIRECT_REPLY_TO, { noAck: true }).subscribe(subscriber);
      this.replyChannel.next(channel);
      return () => {
        consuming.unsubscribe();
        if (this.replyChannel.value === channel) this.replyChannel.next(undefined);
        // Their replies can only come to this channel's consumer: they will not come now.
        this.failPending(channel, new Error('RxAmqpClient: the connection was lost before the reply'));
      };
    });
  }

  private onReply(delivery: Delivery): void {
    const id = delivery.properties.correlationId;
    const entry = id === undefined ? undefined : this.pending.get(id);
    if (entry === undefined || id === undefined) return; // abandoned (timed out) or unknown: dropped
    const { routingKey, exchange } = delivery.fields;
    entry.decoding = entry.decoding.then(async () => {
      let reply: ReplyPacket;
      try {
        reply = await this.config.envelope.decodeReply({
          body: delivery.body,
          properties: delivery.properties,
          routingKey,
          exchange,
        });
      } catch (error) {
        reply = { err: error, isDisposed: true };
      }
      if (this.pending.get(id) !== entry) return;
      const last = reply.isDisposed === true || reply.err !== undefined;
      if (last) this.pending.delete(id);
      entry.callback(writePacketOf(reply, last));
    });
  }

  /** Fails the requests published on `channel` (all of them without one). */
  private failPending(channel: Channel | undefined, err: unknown): void {
    for (const [id, entry] of [...this.pending]) {
      if (channel !== undefined && entry.channel !== channel) continue;
      this.pending.delete(id);
      try {
        entry.callback({ err });
      } catch (error) {
        this.report('a request callback failed', error);
      }
    }
  }

  /** Logs an error (rxamqp's errors never show a password) and tells the `'error'` listeners. */
  private report(what: string, error: unknown): void {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.logger.error(`${what}: ${detail}`);
    tell(this.listeners.error, error);
  }
}

/** Declares the exchange on a fresh connection (nothing to do without one). */
function declared(conn: Connection, topology: Topology | undefined): Observable<unknown> {
  return topology === undefined ? of(undefined) : applyTopology(conn, topology);
}

/** A reply packet as Nest's callback takes it: only the fields that are set. */
function writePacketOf(reply: ReplyPacket, last: boolean): WritePacket {
  const packet: WritePacket = {};
  if (reply.err !== undefined) packet.err = reply.err;
  if ('response' in reply) packet.response = reply.response;
  if (reply.status !== undefined) packet.status = reply.status;
  if (last) packet.isDisposed = true;
  return packet;
}
