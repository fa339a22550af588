/**
 * The public interfaces the operators are written against. `Channel` and `Publisher` are publish
 * targets and `Delivery` is a settleable message, but so can be a test double, a fake channel or
 * another backend's message (MQTT, an in-memory broker): anything that implements these works with
 * `rxamqp/operators`.
 *
 * @module
 */
import type { Observable } from 'rxjs';
import type { BasicProperties } from '../protocol/generated.js';
import type { PublishOptions, PublishOutcome } from './types.js';

/**
 * How a publish made with {@link PublishTarget.publishWith} reports back: once, with the outcome or
 * the error, and the `context` it was given (so that one function can serve every publish, with no
 * closure per message).
 *
 * @example
 * ```ts
 * const done: PublishCallback<number> = (id, outcome, error) =>
 *   outcome === undefined ? console.error(id, error?.message) : console.log(id, outcome.status);
 * ```
 */
export type PublishCallback<C> = (context: C, outcome: PublishOutcome | undefined, error?: Error) => void;

/**
 * A publish that is waiting (for the socket, an unblock or the operations queued before it).
 *
 * @example
 * ```ts
 * const handle = ch.publishWith('', 'jobs', body, undefined, false, 1, done);
 * if (handle?.cancel()) console.log('dropped before it was written: done will not be called');
 * ```
 */
export interface PublishHandle {
  /** Drops the message if it has not been written yet: true then, and `done` is never called for it. */
  cancel(): boolean;
}

/**
 * Something messages can be published to: a `Channel`, a `Publisher`, or a double of either. The
 * publishing operators (`publishConfirmed`, `answerRequests`, `retryWithDelay`) take one.
 *
 * @example
 * ```ts
 * // A test double that accepts everything:
 * const target: PublishTarget = {
 *   publish: () => of({ status: 'acked', seq: 1 } as const),
 * };
 * messages$.pipe(publishConfirmed(target)).subscribe();
 * ```
 */
export interface PublishTarget {
  /**
   * Publishes a message (a string body as UTF-8) and emits how it ended, then completes: see
   * `Channel.publish`.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Observable<PublishOutcome>;
  /**
   * Optional: whether the broker confirms this target's publishes (a channel after `confirmSelect()`,
   * a publisher with `confirm: true`). `publishConfirmed` refuses a target that says false, whose
   * outcomes would all be an unconfirmed `sent`; a target without it is trusted.
   */
  readonly confirmMode?: boolean;
  /**
   * Optional: the same publish without an Observable, for the hot path of windowed publishing. It
   * calls `done(context, outcome)` or `done(context, undefined, error)` exactly once, unless the
   * returned handle's `cancel()` dropped the message unwritten. Returns undefined when the message
   * was written at once.
   */
  publishWith?<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined;
}

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

/**
 * A received message that is settled once: what the settling operators (`ackOnSuccess`, `batchAck`,
 * `ackAll`, ...) need. `Delivery` implements it; so can a test double or another backend's message.
 * Each settling method returns true when the settlement was sent, false when it was not (already
 * settled, or it can no longer be).
 *
 * @example
 * ```ts
 * const fake: SettleableMessage = {
 *   body: new TextEncoder().encode('{"id":1}'),
 *   properties: {},
 *   fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'jobs' },
 *   settled: false,
 *   ack: () => true, nack: () => true, reject: () => true, markSettled: () => true,
 * };
 * ```
 */
export interface SettleableMessage {
  /** The message body. */
  readonly body: Uint8Array;
  /** The message properties (content type, headers, ...). */
  readonly properties: BasicProperties;
  /** Delivery tag, exchange, routing key, redelivered flag. */
  readonly fields: DeliveryFields;
  /** True once settled (always true for messages received without acknowledgement). */
  readonly settled: boolean;
  /** Acknowledges it (with `multiple`, every unsettled one up to it on the same channel). */
  ack(options?: { multiple?: boolean }): boolean;
  /** Rejects it, requeueing it unless `requeue: false` (with `multiple`, every unsettled one up to it). */
  nack(options?: { requeue?: boolean; multiple?: boolean }): boolean;
  /** Rejects this one message, requeueing it unless `requeue: false`. */
  reject(options?: { requeue?: boolean }): boolean;
  /**
   * Marks it settled without sending anything: for a message covered by another message's
   * `multiple: true` settlement (ack batching). False when it was settled already.
   */
  markSettled(): boolean;
  /**
   * Asked just before a handler starts on it: true when a drain (`Connection.drain` with
   * `prefetched: 'return'`) gave it back to its queue instead, and the handler must not run.
   * Optional: doubles may leave it out.
   */
  returnForDrain?(): boolean;
  /**
   * For operators that hold a message while a handler runs: registers `watcher`, to be told once if
   * the message can no longer be settled (its channel closed, or the broker took its consumer's
   * deliveries back after a consumer timeout). Returns false, registering nothing, when it already
   * cannot be; `unwatchSettlement` takes the watcher off. Optional: doubles may leave both out.
   */
  watchSettlement?(watcher: SettlementWatcher): boolean;
  /** Takes off a watcher registered by `watchSettlement`. */
  unwatchSettlement?(watcher: SettlementWatcher): void;
}

/**
 * What `SettleableMessage.watchSettlement` tells: the message can no longer be settled. `ackOnSuccess`
 * uses it to stop the handler of a delivery whose channel closed under it (a connection lost, a
 * consumer timeout) and free its place for the deliveries that replace it.
 *
 * @example
 * ```ts
 * const watcher: SettlementWatcher = { settlementLost: () => work.unsubscribe() };
 * if (delivery.watchSettlement?.(watcher) === false) return; // nothing to do: it comes again
 * ```
 */
export interface SettlementWatcher {
  settlementLost(): void;
}
