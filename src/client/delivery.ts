/**
 * A message received from the broker (from `basic.get`, and from consumers), with the means to settle
 * it exactly once.
 *
 * @module
 */
import type { BasicProperties } from '../protocol/generated.js';

/** Where a message came from and how it was delivered. */
export interface DeliveryFields {
  /** The tag to acknowledge it with, scoped to the channel it came on. */
  readonly deliveryTag: number;
  /** True when the broker delivered it before (it was requeued). */
  readonly redelivered: boolean;
  /** The exchange it was published to (`''` for the default exchange). */
  readonly exchange: string;
  /** The routing key it was published with. */
  readonly routingKey: string;
  /** The consumer it was delivered to (consumers only). */
  readonly consumerTag?: string;
  /** Messages left in the queue after it (`basic.get` only). */
  readonly messageCount?: number;
}

/** @internal How a delivery reaches its channel to settle. */
export interface Settler {
  settle(kind: 'ack' | 'nack' | 'reject', deliveryTag: number, multiple: boolean, requeue: boolean): boolean;
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
export class Delivery {
  private isSettled: boolean;

  constructor(
    /** The message body. */
    readonly body: Buffer,
    /** The message properties (content type, headers, ...). */
    readonly properties: BasicProperties,
    /** Delivery tag, exchange, routing key, redelivered flag. */
    readonly fields: DeliveryFields,
    private readonly settler: Settler | undefined,
  ) {
    this.isSettled = settler === undefined;
  }

  /** True once acked, nacked or rejected (always true for messages received with `noAck`). */
  get settled(): boolean {
    return this.isSettled;
  }

  /** The body decoded as UTF-8 text. */
  text(): string {
    return this.body.toString('utf8');
  }

  /** The body parsed as JSON. Throws a SyntaxError for a body that is not JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.body.toString('utf8')) as T;
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
   * @internal Marks the delivery settled without sending anything: for a delivery covered by another
   * delivery's `multiple: true` settlement (ack batching). Returns false when it was already settled.
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
