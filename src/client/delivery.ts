/**
 * A message received from the broker (from `basic.get`, and from consumers), with the means to settle
 * it exactly once.
 *
 * @module
 */
import type { HeadersDecodeError } from '../errors.js';
import { utf8Decode } from '../protocol/bytes.js';
import type { BasicProperties } from '../protocol/generated.js';
import { jsonSafe } from '../util/runtime.js';
import type { DeliveryFields, SettleableMessage } from './interfaces.js';

export type { DeliveryFields } from './interfaces.js';

/** @internal How a delivery reaches its channel to settle. */
export interface Settler {
  settle(kind: 'ack' | 'nack' | 'reject', deliveryTag: number, multiple: boolean, requeue: boolean): boolean;
  /** True while a drain gives back the deliveries whose handlers have not started (`prefetched: 'return'`). */
  readonly returning?: boolean;
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

  /** The body decoded as UTF-8 text. */
  text(): string {
    return utf8Decode(this.body);
  }

  /** The body parsed as JSON. Throws a SyntaxError for a body that is not JSON. */
  json<T = unknown>(): T {
    return JSON.parse(utf8Decode(this.body)) as T;
  }

  /** Acknowledges the message (with `multiple`, every unsettled one up to it on the channel). */
  ack(options?: { multiple?: boolean }): boolean {
    return this.settle('ack', options?.multiple ?? false, false);
  }

  /** Rejects the message, requeueing it unless `requeue: false` (then it is dropped or dead-lettered). */
  nack(options?: { requeue?: boolean; multiple?: boolean }): boolean {
    return this.settle('nack', options?.multiple ?? false, options?.requeue ?? true);
  }

  /** Rejects this one message (basic.reject), requeueing it unless `requeue: false`. */
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
