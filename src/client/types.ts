/**
 * The option and outcome types of the public facade: what channel methods take and what publishes,
 * confirms and returns report.
 *
 * @module
 */
import type { HeadersDecodeError } from '../errors.js';
import type { FieldTable } from '../protocol/field-table.js';
import type { BasicProperties } from '../protocol/generated.js';

/** Options of `exchangeDeclare`. */
export interface ExchangeDeclareOptions {
  /** Survive a broker restart. Default false. */
  durable?: boolean;
  /** Deleted when its last binding is removed. Default false. */
  autoDelete?: boolean;
  /** Only other exchanges may publish to it. Default false. */
  internal?: boolean;
  /** Only check that it exists (404 closes the channel if not). Default false. */
  passive?: boolean;
  /** Extra arguments, such as `alternate-exchange`. */
  arguments?: FieldTable;
}

/** Options of `queueDeclare`. */
export interface QueueDeclareOptions {
  /** Survive a broker restart. Default false. */
  durable?: boolean;
  /** Used only by this connection and deleted when it closes. Default false. */
  exclusive?: boolean;
  /** Deleted when its last consumer goes. Default false. */
  autoDelete?: boolean;
  /** Only check that it exists (404 closes the channel if not). Default false. */
  passive?: boolean;
  /** Extra arguments: `x-queue-type`, `x-message-ttl`, `x-dead-letter-exchange`, ... */
  arguments?: FieldTable;
}

/** What queue.declare-ok reports. */
export interface QueueDeclareOk {
  /** The queue's name (the generated one for a server-named queue). */
  readonly queue: string;
  readonly messageCount: number;
  readonly consumerCount: number;
}

/** Options of `publish`. */
export interface PublishOptions {
  /** Return the message (see `returns$`) when no queue is bound to receive it. Default false. */
  mandatory?: boolean;
}

/**
 * How a publish ended. Without confirm mode, `sent`: the connection has taken its frames, in order, and
 * writes them to the socket at the end of the turn (a publish on a writable connection is `sent` at
 * once, before `subscribe()` returns). On a channel
 * in confirm mode (`confirmSelect()`), the broker's answer for its sequence number `seq`: `acked`
 * (the broker took responsibility for it), `nacked` (it could not), or `returned` (a `mandatory`
 * message no queue was bound to receive: the broker returned it, then acked it).
 */
export type PublishOutcome =
  | { readonly status: 'sent' }
  | { readonly status: 'acked' | 'nacked'; readonly seq: number }
  | { readonly status: 'returned'; readonly seq: number; readonly returned: ReturnedMessage };

/**
 * One publish of a confirm-mode channel, as `confirms$` reports it: the outcome from the broker, or
 * `failed` when the channel or connection went away before the broker answered.
 */
export type Confirmation =
  | Exclude<PublishOutcome, { readonly status: 'sent' }>
  | { readonly status: 'failed'; readonly seq: number; readonly error: Error };

/** A `mandatory` message the broker could not route, sent back by basic.return. */
export interface ReturnedMessage {
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
  /** Set when its `headers` table could not be decoded (then `properties.headers` is undefined). */
  readonly headersError?: HeadersDecodeError;
}

/** Options of `consume`. */
export interface ConsumeOptions {
  /**
   * How many unacknowledged messages the broker may send to this consumer (basic.qos per consumer,
   * set just before basic.consume). Default: the channel's current setting (unlimited unless `qos` set it).
   * RabbitMQ (3.10 at least) also lifts a channel-wide limit set with `qos(n, { global: true })` when
   * it receives this per-consumer basic.qos: on a channel with a global limit, leave `prefetch` out.
   */
  prefetch?: number;
  /** A consumer tag of your choice; default: one the broker generates. */
  consumerTag?: string;
  /** Deliveries count as acknowledged on sending (no `ack()` needed, at-most-once). Default false. */
  noAck?: boolean;
  /** Be the queue's only consumer (403 ACCESS_REFUSED closes the channel if another exists). Default false. */
  exclusive?: boolean;
  /** Do not receive messages published on this connection. RabbitMQ ignores it. Default false. */
  noLocal?: boolean;
  /** Consumer arguments: `x-priority`, `x-stream-offset`, `x-cancel-on-ha-failover`, ... */
  arguments?: FieldTable;
}

/** With `nowait: true` the broker sends no reply: the Observable emits once the method is on the socket. */
export interface NoWait {
  nowait?: boolean;
}

/** Options of `connection.channel()`. */
export interface ChannelOptions {
  /** Use this channel number instead of the lowest free one (1..channelMax). */
  id?: number;
}

/**
 * A blocked or unblocked notification (see `Connection.blocked$`).
 *
 * @example
 * ```ts
 * conn.blocked$.pipe(filter((e) => e.blocked)).subscribe((e) => alert(e.reason));
 * ```
 */
export type BlockedEvent = { readonly blocked: true; readonly reason: string } | { readonly blocked: false };
