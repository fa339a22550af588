/**
 * The public types of the embedded broker: its options, and what its inspection methods return.
 *
 * @module
 */
import type { FieldTable } from '../../protocol/field-table.js';
import type { BasicProperties } from '../../protocol/generated.js';

/**
 * A user the embedded broker accepts, and the virtual hosts it may open (all when absent).
 *
 * @example
 * ```ts
 * const user: BrokerUser = { username: 'app', password: 's3cret', vhosts: ['/', 'orders'] };
 * ```
 */
export interface BrokerUser {
  readonly username: string;
  readonly password: string;
  readonly vhosts?: readonly string[];
}

/**
 * Options of {@link EmbeddedBroker}. Everything has a default that behaves like a fresh RabbitMQ 3.10
 * with guest/guest and the vhost `/`.
 *
 * @example
 * ```ts
 * let now = 0;
 * const broker = new EmbeddedBroker({ users: [{ username: 'app', password: 'pw' }], clock: () => now });
 * ```
 */
export interface EmbeddedBrokerOptions {
  /** Who may log in. Default: guest/guest. */
  readonly users?: readonly BrokerUser[];
  /** The virtual hosts. Default `['/']`. */
  readonly vhosts?: readonly string[];
  /**
   * The time in milliseconds (message TTL, queue expiry, `x-death` times). Default `Date.now`. Expiry
   * is checked whenever the broker handles anything (a frame from any client, a hook, an inspection).
   */
  readonly clock?: () => number;
  /**
   * Let the broker use timers of its own: it then expires messages and queues on schedule and sends
   * heartbeats on an interval. Default false: no timer at all (heartbeats from the client are
   * answered instead), so a test decides when time passes.
   */
  readonly timers?: boolean;
  /** channel_max proposed in connection.tune. Default 2047, as RabbitMQ. */
  readonly channelMax?: number;
  /** frame_max proposed in connection.tune. Default 131072, as RabbitMQ. */
  readonly frameMax?: number;
  /** Heartbeat proposed in connection.tune, in seconds. Default 60, as RabbitMQ. */
  readonly heartbeat?: number;
  /** Seed of the generated names (`amq.gen-…`, `amq.ctag-…`): the same seed gives the same names. */
  readonly seed?: number;
  /**
   * RabbitMQ's consumer timeout (`consumer_timeout`): a channel holding a delivery unacknowledged
   * for this many milliseconds is closed with 406 PRECONDITION_FAILED. Default 1800000 (30 minutes,
   * RabbitMQ 3.10's default); 0 turns it off. Checked, like expiry, whenever the broker handles
   * anything (and on a timer with `timers`).
   */
  readonly consumerTimeout?: number;
  /**
   * What the consumer timeout does, as RabbitMQ's `consumer_timeout_response`: `'close-channel'`
   * (the default, RabbitMQ 3.x and before 4.3) closes the channel with 406; `'notify-consumer'`
   * (RabbitMQ 4.3's default) cancels each consumer holding a timed-out delivery with basic.cancel,
   * takes its unsettled deliveries back to their queues and ignores their late settlements (a client
   * that did not announce `consumer_cancel_notify`, a timed-out basic.get, or a delivery of a consumer
   * already cancelled still gets the close, as RabbitMQ 4.4 does).
   */
  readonly consumerTimeoutResponse?: 'close-channel' | 'notify-consumer';
}

/**
 * A client connection, as {@link EmbeddedBroker.connections} lists it.
 *
 * @example
 * ```ts
 * const info: ConnectionInfo | undefined = broker.connections().find((c) => c.name === 'orders-api');
 * ```
 */
export interface ConnectionInfo {
  /** The broker's number for the connection (1, 2, ...). */
  readonly id: number;
  /** The `connection_name` the client sent (the `name` option of rxamqp's connect). */
  readonly name: string | undefined;
  readonly user: string;
  readonly vhost: string;
  readonly state: 'opening' | 'open' | 'closing';
  readonly clientProperties: FieldTable;
  readonly channels: number;
  /** True while a block holds its publishes. */
  readonly blocked: boolean;
  readonly channelMax: number;
  readonly frameMax: number;
  readonly heartbeat: number;
}

/**
 * A message in a queue, as {@link EmbeddedBroker.queue} shows it.
 *
 * @example
 * ```ts
 * const [first] = broker.queue('jobs')!.messages;
 * expect(new TextDecoder().decode(first!.body)).toBe('hello');
 * ```
 */
export interface MessageInfo {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
  readonly redelivered: boolean;
  /** Returns counted by a quorum queue. */
  readonly deliveryCount: number;
  /** When it expires (clock milliseconds), if it has a TTL. */
  readonly expiresAt: number | undefined;
}

/**
 * A queue, as {@link EmbeddedBroker.queues} and {@link EmbeddedBroker.queue} show it.
 *
 * @example
 * ```ts
 * expect(broker.queue('jobs')).toMatchObject({ messageCount: 0, unackedCount: 2, consumerCount: 1 });
 * ```
 */
export interface QueueInfo {
  readonly name: string;
  readonly vhost: string;
  readonly type: 'classic' | 'quorum';
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
  /** Ready messages. */
  readonly messageCount: number;
  /** Body bytes of the ready messages. */
  readonly messageBytes: number;
  /** Delivered and not yet acknowledged. */
  readonly unackedCount: number;
  readonly consumerCount: number;
  readonly consumerTags: readonly string[];
  /** The ready messages, oldest first. */
  readonly messages: readonly MessageInfo[];
}

/**
 * An exchange, as {@link EmbeddedBroker.exchanges} shows it.
 *
 * @example
 * ```ts
 * expect(broker.exchange('logs')).toMatchObject({ type: 'fanout', durable: true });
 * ```
 */
export interface ExchangeInfo {
  readonly name: string;
  readonly vhost: string;
  readonly type: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

/**
 * A binding, as {@link EmbeddedBroker.bindings} lists it (the default exchange's implicit bindings
 * are not listed).
 *
 * @example
 * ```ts
 * expect(broker.bindings()).toContainEqual(expect.objectContaining({ source: 'logs', destination: 'audit' }));
 * ```
 */
export interface BindingInfo {
  readonly source: string;
  readonly destination: string;
  readonly destinationType: 'queue' | 'exchange';
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

/**
 * A publish as a nack rule sees it (see {@link EmbeddedBroker.nackPublishes}).
 *
 * @example
 * ```ts
 * const rule = (p: PublishedMessage) => p.routingKey === 'payments';
 * ```
 */
export interface PublishedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}
