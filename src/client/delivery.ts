/**
 * A message received from the broker (from `basic.get`, and from consumers), with the means to settle
 * it exactly once.
 *
 * @module
 */
import type { HeadersDecodeError } from '../errors.js';
import { utf8Decode } from '../protocol/bytes.js';
import type { FieldValue } from '../protocol/field-table.js';
import { isFieldTable, TypedField } from '../protocol/field-table.js';
import type { BasicProperties } from '../protocol/generated.js';
import { jsonSafe } from '../util/runtime.js';
import type { DeliveryFields, SettleableMessage, SettlementWatcher } from './interfaces.js';

export type { DeliveryFields } from './interfaces.js';

/**
 * Why RabbitMQ dead-lettered a message: `rejected` (basic.reject or basic.nack without requeue),
 * `expired` (message or queue TTL), `maxlen` (the queue's length limit, `x-overflow: drop-head`),
 * `delivery_limit` (a quorum queue's `x-delivery-limit` was exceeded); other strings from later
 * brokers pass through as they are.
 */
export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit' | (string & {});

/**
 * One entry of a dead-lettered message's `x-death` header: RabbitMQ keeps one per queue and reason,
 * the most recent first, and counts how many times the message died that way.
 *
 * @example
 * ```ts
 * const [last] = delivery.deaths;
 * if (last?.reason === 'delivery_limit') log.warn(`gave up on it in ${last.queue} after ${last.count} deaths`);
 * ```
 */
export interface DeathRecord {
  /** The queue it was dead-lettered from. */
  readonly queue: string;
  /** Why. */
  readonly reason: DeathReason;
  /** How many times it was dead-lettered from `queue` for `reason`. */
  readonly count: number;
  /** The exchange it had been published to (`''` for the default exchange). */
  readonly exchange: string;
  /** Its routing keys (the routing key, plus `CC` and `BCC` ones). */
  readonly routingKeys: readonly string[];
  /** When it was dead-lettered (the first time for this queue and reason), when the broker said. */
  readonly time: Date | undefined;
  /** Its `expiration` property before dead-lettering removed it, if it had one. */
  readonly originalExpiration: string | undefined;
}

/**
 * The `x-delivery-count` header of a message from a quorum queue: how many times it was delivered
 * before and given back (counted by the broker toward the queue's `x-delivery-limit`), as a number.
 * Undefined when the header is absent: a classic queue, or a quorum queue's first delivery (RabbitMQ
 * 3.x leaves the header out until the first return; read undefined as 0 there). See
 * `Delivery.deliveryCount`.
 *
 * @example
 * ```ts
 * const previous = deliveryCountOf(message.properties) ?? 0;
 * ```
 */
export function deliveryCountOf(properties: BasicProperties): number | undefined {
  const n = integerOf(properties.headers?.['x-delivery-count']);
  return n !== undefined && n >= 0 ? n : undefined;
}

/**
 * The `x-death` header parsed into typed records (most recent first); an empty array when the message
 * was never dead-lettered. Entries that are not tables are skipped. See `Delivery.deaths`.
 *
 * @example
 * ```ts
 * const rejections = deathsOf(message.properties).filter((d) => d.reason === 'rejected').length;
 * ```
 */
export function deathsOf(properties: BasicProperties): readonly DeathRecord[] {
  const raw = unwrap(properties.headers?.['x-death']);
  if (!Array.isArray(raw)) return NO_DEATHS;
  const deaths: DeathRecord[] = [];
  for (const item of raw) {
    const entry = unwrap(item);
    if (!isFieldTable(entry)) continue;
    const keys = unwrap(entry['routing-keys']);
    const time = unwrap(entry.time);
    const expiration = textOf(entry['original-expiration']);
    deaths.push({
      queue: textOf(entry.queue) ?? '',
      reason: textOf(entry.reason) ?? '',
      count: integerOf(entry.count) ?? 1,
      exchange: textOf(entry.exchange) ?? '',
      routingKeys: Array.isArray(keys) ? keys.map(textOf).filter((k): k is string => k !== undefined) : [],
      time: time instanceof Date ? time : typeof time === 'number' ? new Date(time * 1000) : undefined,
      originalExpiration: expiration,
    });
  }
  return deaths;
}

const NO_DEATHS: readonly DeathRecord[] = Object.freeze([]);

function unwrap(value: FieldValue | undefined): FieldValue | undefined {
  return value instanceof TypedField ? (value.value as FieldValue) : value;
}

function integerOf(value: FieldValue | undefined): number | undefined {
  const v = unwrap(value);
  const n = typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) ? n : undefined;
}

function textOf(value: FieldValue | undefined): string | undefined {
  const v = unwrap(value);
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return utf8Decode(v);
  return undefined;
}

/** @internal How a delivery reaches its channel to settle. */
export interface Settler {
  settle(kind: 'ack' | 'nack' | 'reject', deliveryTag: number, multiple: boolean, requeue: boolean): boolean;
  /** True while a drain gives back the deliveries whose handlers have not started (`prefetched: 'return'`). */
  readonly returning?: boolean;
  /** See `Delivery.watchSettlement`: false when its deliveries can no longer be settled. */
  watch?(watcher: SettlementWatcher): boolean;
  unwatch?(watcher: SettlementWatcher): void;
}

/**
 * A message from the broker. `ack`, `nack` and `reject` settle it once: they return true when the
 * settlement was sent, false when it was not (already settled, received with `noAck`, or its channel
 * has closed: a delivery tag is only valid on the channel that delivered it).
 *
 * @example
 * ```ts
 * channel.get('jobs').subscribe((delivery) => {
 *   console.log(delivery.text(), delivery.properties.contentType);
 *   delivery.ack();
 * });
 * ```
 */
export class Delivery implements SettleableMessage {
  private isSettled: boolean;

  /** @internal Deliveries come from channels; tests build messages with `rxamqp/testing`. */
  constructor(
    /** The message body (a `Buffer` in Node). */
    readonly body: Uint8Array,
    /** The message properties (content type, headers, ...). */
    readonly properties: BasicProperties,
    /** Delivery tag, exchange, routing key, redelivered flag. */
    readonly fields: DeliveryFields,
    private readonly settler: Settler | undefined,
    /**
     * Set when the message's `headers` table could not be decoded (a field type no client writes, a
     * truncated value): the message came through with `properties.headers` undefined, and this error
     * holds the table's raw bytes. Reject or dead-letter such a message rather than acting on it
     * without its headers; `ackOnSuccess` and the other operators do not look at it.
     *
     * @example
     * ```ts
     * if (delivery.headersError !== undefined) delivery.reject({ requeue: false }); // to the DLX
     * ```
     */
    readonly headersError?: HeadersDecodeError,
  ) {
    this.isSettled = settler === undefined;
  }

  /**
   * What `JSON.stringify` shows (a logger, say): fields, properties (64-bit integers as strings, byte
   * arrays as their length), the body's size and whether it is settled; never the body or the channel.
   *
   * @example
   * ```ts
   * log.info({ delivery }); // {"fields":{...},"properties":{...},"bodySize":42,"settled":false}
   * ```
   */
  toJSON(): { fields: DeliveryFields; properties: unknown; bodySize: number; settled: boolean } {
    return {
      fields: this.fields,
      properties: jsonSafe(this.properties),
      bodySize: this.body.length,
      settled: this.isSettled,
    };
  }

  /** True once acked, nacked or rejected (always true for messages received with `noAck`). */
  get settled(): boolean {
    return this.isSettled;
  }

  /**
   * How many times the broker delivered this message before (a quorum queue's `x-delivery-count`
   * header), undefined when it does not count (classic queues) and on a quorum queue's first
   * delivery where the broker leaves the header out (RabbitMQ 3.x). What RabbitMQ counts toward the
   * queue's `x-delivery-limit`: on 4.3, a `reject({ requeue: true })`, not a `nack({ requeue: true })`;
   * before 4.3, every return (both, and a channel closing with the message unacknowledged).
   *
   * @example
   * ```ts
   * if ((delivery.deliveryCount ?? 0) >= 4) delivery.reject({ requeue: false }); // enough: to the DLX
   * ```
   */
  get deliveryCount(): number | undefined {
    return deliveryCountOf(this.properties);
  }

  /**
   * The message's `x-death` header as typed records, most recent first: where and why it was
   * dead-lettered before reaching this queue. Empty for a message that never was.
   *
   * @example
   * ```ts
   * for (const d of delivery.deaths) log.info(`${d.reason} in ${d.queue} x${d.count}`);
   * ```
   */
  get deaths(): readonly DeathRecord[] {
    return deathsOf(this.properties);
  }

  /**
   * For the settling operators, just before a handler would start on this delivery: while its
   * connection drains with `prefetched: 'return'`, gives the unsettled delivery back to its queue
   * (nack with requeue) and returns true, and the handler must not run; otherwise returns false and
   * changes nothing. Handlers already running are not affected: they finish and settle as usual.
   *
   * @example
   * ```ts
   * deliveries$.pipe(mergeMap((d) => (d.returnForDrain() ? EMPTY : handle(d)), 10)).subscribe();
   * ```
   */
  returnForDrain(): boolean {
    if (this.isSettled || this.settler?.returning !== true) return false;
    this.settle('nack', false, true);
    return true;
  }

  /**
   * For the operators that hold a delivery while its handler runs: registers `watcher`, told once if
   * the delivery can no longer be settled before it is (its channel closed: the connection was lost,
   * the broker closed the channel for a consumer timeout; or RabbitMQ 4.3 cancelled its consumer for
   * a timeout and took its deliveries back). Returns false, registering nothing, when that has
   * happened already. A delivery received with `noAck`, or from `get`, is never told (true).
   *
   * @example
   * ```ts
   * const watcher = { settlementLost: () => job.unsubscribe() };
   * if (!delivery.watchSettlement(watcher)) return; // its channel is gone: it will be delivered again
   * job = handle(delivery).subscribe({ complete: () => { delivery.unwatchSettlement(watcher); delivery.ack(); } });
   * ```
   */
  watchSettlement(watcher: SettlementWatcher): boolean {
    return this.settler?.watch?.(watcher) ?? true;
  }

  /** Takes off a watcher registered by {@link watchSettlement}. */
  unwatchSettlement(watcher: SettlementWatcher): void {
    this.settler?.unwatch?.(watcher);
  }

  /** The body decoded as UTF-8 text. */
  text(): string {
    return utf8Decode(this.body);
  }

  /** The body parsed as JSON. Throws a SyntaxError for a body that is not JSON. */
  json<T = unknown>(): T {
    return JSON.parse(utf8Decode(this.body)) as T;
  }

  /** Acknowledges the message (basic.ack; with `multiple`, every unsettled one up to it on the channel). */
  ack(options?: { multiple?: boolean }): boolean {
    return this.settle('ack', options?.multiple ?? false, false);
  }

  /**
   * Rejects the message with basic.nack, requeueing it unless `requeue: false` (then it is dropped or
   * dead-lettered). On RabbitMQ 4.3 and later a requeueing nack does not count toward a quorum queue's
   * delivery limit (use `reject` to count it); before 4.3 it counts.
   */
  nack(options?: { requeue?: boolean; multiple?: boolean }): boolean {
    return this.settle('nack', options?.multiple ?? false, options?.requeue ?? true);
  }

  /**
   * Rejects this one message with basic.reject, requeueing it unless `requeue: false` (then it is
   * dropped or dead-lettered). A requeueing reject counts toward a quorum queue's delivery limit (on
   * every RabbitMQ version): the way to give a message back so that a poison message ends.
   */
  reject(options?: { requeue?: boolean }): boolean {
    return this.settle('reject', false, options?.requeue ?? true);
  }

  /**
   * Marks the delivery settled without sending anything: for a delivery covered by another
   * delivery's `multiple: true` settlement (ack batching, as `batchAck` does). Returns false when it
   * was already settled.
   *
   * @example
   * ```ts
   * last.ack({ multiple: true });
   * for (const d of earlier) d.markSettled(); // covered by the multiple ack
   * ```
   */
  markSettled(): boolean {
    if (this.isSettled) return false;
    this.isSettled = true;
    return true;
  }

  private settle(kind: 'ack' | 'nack' | 'reject', multiple: boolean, requeue: boolean): boolean {
    if (this.isSettled || this.settler === undefined) return false;
    this.isSettled = true;
    return this.settler.settle(kind, this.fields.deliveryTag, multiple, requeue);
  }
}
