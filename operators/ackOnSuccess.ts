import {
  from,
  isObservable,
  mergeMap,
  Observable,
  type OperatorFunction,
  of,
  type Subscriber,
  type Subscription,
  type TeardownLogic,
  take,
} from 'rxjs';
import {
  ConfigurationError,
  type Delivery,
  deliveryCountOf,
  probeOf,
  type SettleableMessage,
  type SettlementWatcher,
  withinDelivery,
} from '../src/index.js';

/**
 * How a delivery whose processing failed is settled, and the AMQP method each sends:
 *
 * | policy          | sends                                                                              |
 * | --------------- | ---------------------------------------------------------------------------------- |
 * | `'retry'`       | `basic.reject` with `requeue: true` while attempts remain, then `requeue: false`   |
 * | `'requeue'`     | `basic.nack` with `requeue: true` (`basic.reject`, no requeue, past `requeueRedelivered: false`) |
 * | `'reject'`      | `basic.reject` with `requeue: false`                                               |
 * | `'dead-letter'` | `basic.reject` with `requeue: false` (the same, named for queues with a DLX)       |
 *
 * - `'retry'` gives the message back to be delivered again, a bounded number of times. It sends
 *   basic.reject, which RabbitMQ counts toward a quorum queue's `x-delivery-limit` (4.3 counts only
 *   rejects; earlier versions count nacks too), so the broker dead-letters a poison message at the
 *   queue's limit. The client bounds it too: on a quorum queue (the delivery carries
 *   `x-delivery-count`) it requeues until the attempt that reaches `maxDeliveries` (default
 *   {@link DEFAULT_MAX_DELIVERIES}), then rejects without requeue; on a classic queue (no count) it
 *   requeues a first delivery once and rejects a redelivered one without requeue.
 * - `'requeue'` puts it back without counting on RabbitMQ 4.3 and later: a message that always fails
 *   loops for ever on a quorum queue (and on a classic one) unless `requeueRedelivered: false`.
 * - `'reject'` and `'dead-letter'` end it at once: the broker drops it, or dead-letters it (reason
 *   `rejected`) when the queue has a dead-letter exchange.
 */
export type FailurePolicy = 'retry' | 'requeue' | 'reject' | 'dead-letter';

/**
 * The default `maxDeliveries` of the `'retry'` failure policy: RabbitMQ 4's default delivery limit of
 * quorum queues (20), so that the broker's limit and the client's agree when neither is configured.
 */
export const DEFAULT_MAX_DELIVERIES = 20;

/** Options of {@link ackOnSuccess}. */
export interface AckOnSuccessOptions<D extends SettleableMessage = Delivery> {
  /**
   * How many deliveries are processed at once (`mergeMap` semantics: the others wait, in order, and
   * results are emitted as they complete). Default 1. Set the consumer's `prefetch` to at least this
   * value: with fewer unacknowledged messages allowed, the broker never sends enough to fill it.
   */
  concurrency?: number;
  /**
   * How a failed delivery is settled (see {@link FailurePolicy}). Default `'retry'`: basic.reject
   * with requeue, bounded by the broker's delivery limit and by `maxDeliveries`. (Earlier versions
   * defaulted to `'reject'`, which dead-letters at the first failure: pass it to keep that.)
   */
  onError?: FailurePolicy;
  /**
   * With `onError: 'retry'`, the most deliveries of one message: the failure of the attempt that
   * reaches it rejects without requeue (to the dead-letter exchange). Read from `x-delivery-count`
   * (quorum queues); on classic queues, which do not count, a message is tried twice at most.
   * Default {@link DEFAULT_MAX_DELIVERIES}.
   */
  maxDeliveries?: number;
  /**
   * With `onError: 'requeue'`, whether a delivery that was already redelivered (`fields.redelivered`)
   * is requeued again (basic.nack) when it fails. Default true; false rejects it instead
   * (basic.reject, `requeue: false`), so that a message that always fails (a "poison" message) does
   * not loop forever. (`'retry'`, the default policy, is bounded without it.)
   */
  requeueRedelivered?: boolean;
  /**
   * Called after a failed delivery was settled, with what the handler threw (or its Promise rejected
   * with, or its Observable errored with): the place for logging. If it throws, the stream errors.
   */
  onFailure?: (error: unknown, delivery: D) => void;
}

/** What a handler may return: the result itself, a Promise of it, or an Observable whose first value is it. */
export type HandlerResult<R> = R | PromiseLike<R> | Observable<R>;

/**
 * Processes each delivery with `handler` and settles it by the outcome: acknowledges it and emits the
 * handler's result when the handler succeeds; settles it by `onError` when the handler fails, and goes
 * on with the next delivery (a failing message never errors the stream).
 *
 * The handler may return a plain value, a Promise (its resolution is the result) or an Observable (its
 * first value is the result; the operator unsubscribes from it after that value). An Observable that
 * completes without a value counts as success: the delivery is acknowledged and nothing is emitted.
 * Any other value (array, iterable) is itself the result.
 *
 * Up to `concurrency` deliveries are processed at once, with `mergeMap` semantics: results are emitted
 * as handlers finish, not necessarily in delivery order. Keep the consumer's `prefetch` at least as high
 * as `concurrency` (and bounded: deliveries waiting for a free slot are buffered here).
 *
 * When the source completes (a connection drain completes the consumer stream), the operator completes
 * once the running handlers have finished. A drain with `prefetched: 'return'` makes each delivery
 * still waiting for a slot go back to its queue when its turn comes (`returnForDrain()`), without
 * running the handler. When the subscription ends (unsubscription, source error), running handlers
 * are unsubscribed and their deliveries, like the ones still waiting, are left unsettled: the broker
 * delivers them again when the channel closes.
 *
 * A delivery that can no longer be settled (`watchSettlement`: its channel closed, as after a
 * connection loss or a consumer timeout, or RabbitMQ 4.3 took it back after a consumer timeout) is let
 * go: a handler running for it is unsubscribed (a Promise's result is ignored), nothing is emitted for
 * it and its place is freed for the deliveries that replace it; one still waiting is not processed.
 * The broker delivers it again.
 *
 * @param handler Processes one delivery; throwing, rejecting or erroring marks it failed.
 * @param options `concurrency`, failure policy and `onFailure` callback.
 *
 * @example
 * ```ts
 * import { ackOnSuccess } from 'rxamqp/operators';
 *
 * channel.consume('orders', { prefetch: 20 }).pipe(
 *   ackOnSuccess((d) => saveOrder(d.json<Order>()), {
 *     concurrency: 10,
 *     onError: 'retry', // the default: basic.reject with requeue, at most 5 deliveries, then the DLX
 *     maxDeliveries: 5,
 *     onFailure: (error, d) => log.warn({ error, tag: d.fields.deliveryTag }, 'order failed'),
 *   }),
 * ).subscribe((saved) => log.info(saved.id));
 * ```
 */
export function ackOnSuccess<R, D extends SettleableMessage = Delivery>(
  handler: (delivery: D) => HandlerResult<R>,
  options: AckOnSuccessOptions<D> = {},
): OperatorFunction<D, R> {
  const concurrency = options.concurrency ?? 1;
  if (!(concurrency >= 1) || (!Number.isInteger(concurrency) && concurrency !== Infinity)) {
    throw new ConfigurationError(`ackOnSuccess: concurrency must be a positive integer, got ${concurrency}`);
  }
  const policy = failurePolicyOf('ackOnSuccess', options.onError, 'retry');
  const requeueRedelivered = options.requeueRedelivered ?? true;
  const maxDeliveries = maxDeliveriesOf('ackOnSuccess', options.maxDeliveries);
  const settings: Settings<R, D> = {
    handler,
    policy,
    requeueRedelivered,
    maxDeliveries,
    onFailure: options.onFailure,
  };
  return (source) => source.pipe(mergeMap((delivery) => new Processing(delivery, settings), concurrency));
}

/** What every delivery of one `ackOnSuccess` is processed with. */
interface Settings<R, D extends SettleableMessage> {
  readonly handler: (delivery: D) => HandlerResult<R>;
  readonly policy: FailurePolicy;
  readonly requeueRedelivered: boolean;
  readonly maxDeliveries: number;
  readonly onFailure: ((error: unknown, delivery: D) => void) | undefined;
}

const NOTHING: unique symbol = Symbol('nothing');

/**
 * The processing of one delivery, as the Observable `mergeMap` subscribes to: runs the handler,
 * settles the delivery by its outcome and emits the result. One object per delivery (the Observable,
 * the observer of the handler's Observable and the watcher of the delivery's settlement) instead of a
 * chain of operators.
 */
class Processing<R, D extends SettleableMessage> extends Observable<R> implements SettlementWatcher {
  private subscriber: Subscriber<R> | undefined;
  /** The subscription to the handler's Observable, when it returned one. */
  private work: Subscription | undefined;
  /** Settled, abandoned or unsubscribed: later outcomes of the handler are ignored. */
  private done = false;
  private watching = false;

  constructor(
    private readonly delivery: D,
    private readonly settings: Settings<R, D>,
  ) {
    super(startProcessing);
  }

  /** Subscribed by mergeMap: the delivery's turn has come. */
  start(subscriber: Subscriber<R>): TeardownLogic {
    const delivery = this.delivery;
    // A drain with `prefetched: 'return'` gives back what has not started: not processed here.
    if (delivery.returnForDrain?.() === true) {
      subscriber.complete();
      return;
    }
    // Its channel is gone (a connection lost, a consumer timeout): it will be delivered again.
    if (delivery.watchSettlement !== undefined) {
      if (!delivery.watchSettlement(this)) {
        subscriber.complete();
        return;
      }
      this.watching = true;
    }
    this.subscriber = subscriber;
    // In the delivery's trace context when the connection traces (its process span): the handler,
    // the subscription to its result and the continuation of its promise, so that what they start
    // (an ack, a reply, a publish further on) belongs to this delivery's trace.
    return probeOf(delivery) === undefined
      ? this.begin(delivery)
      : withinDelivery(delivery, () => this.begin(delivery));
  }

  /** Runs the handler and follows its result. */
  private begin(delivery: D): TeardownLogic {
    let result: HandlerResult<R>;
    try {
      result = this.settings.handler(delivery);
    } catch (error) {
      this.error(error);
      return;
    }
    if (isObservable(result)) {
      // take(1) closes the handler's subscriber at its first value, so that a source emitting
      // synchronously stops there rather than when its subscribe returns.
      const work = result.pipe(take(1)).subscribe(this);
      if (this.done) work.unsubscribe();
      else this.work = work;
    } else if (isPromiseLike(result)) {
      result.then(
        (value) => this.next(value),
        (error: unknown) => this.error(error),
      );
    } else {
      this.next(result);
      return;
    }
    return () => this.stop();
  }

  /** The handler's result (its Observable's first value): the delivery is acked and the result emitted. */
  next(value: R | typeof NOTHING): void {
    if (this.done) return;
    this.finish();
    const subscriber = this.subscriber!;
    try {
      this.delivery.ack();
    } catch (thrown) {
      // A message double's ack that throws: the stream errors, as the operators' own errors do.
      subscriber.error(thrown);
      return;
    }
    if (value !== NOTHING) subscriber.next(value);
    subscriber.complete();
  }

  /** The handler failed: the delivery is settled by the failure policy. */
  error(error: unknown): void {
    if (this.done) return;
    this.finish();
    const { policy, requeueRedelivered, maxDeliveries, onFailure } = this.settings;
    const subscriber = this.subscriber!;
    try {
      settleFailed(this.delivery, policy, requeueRedelivered, maxDeliveries);
      onFailure?.(error, this.delivery);
    } catch (thrown) {
      subscriber.error(thrown);
      return;
    }
    subscriber.complete();
  }

  /** The handler's Observable completed without a value: success, nothing emitted. */
  complete(): void {
    this.next(NOTHING);
  }

  /** The delivery can no longer be settled: the handler is stopped and nothing is emitted for it. */
  settlementLost(): void {
    if (this.done) return;
    this.watching = false;
    this.finish();
    this.subscriber?.complete();
  }

  /** Unsubscribed (the stream ended): the handler is stopped and the delivery left unsettled. */
  private stop(): void {
    if (!this.done) this.finish();
  }

  private finish(): void {
    this.done = true;
    if (this.watching) {
      this.watching = false;
      this.delivery.unwatchSettlement?.(this);
    }
    const work = this.work;
    if (work !== undefined) {
      this.work = undefined;
      work.unsubscribe();
    }
  }
}

/** The subscribe function of every `Processing`: one function, the state found through `this`. */
function startProcessing<R>(this: Observable<R>, subscriber: Subscriber<R>): TeardownLogic {
  return (this as Processing<R, SettleableMessage>).start(subscriber);
}

/** @internal A handler's result (value, Promise or Observable) as an Observable; shared by the operators. */
export function toObservable<R>(result: HandlerResult<R>): Observable<R> {
  if (isObservable(result)) return result;
  if (isPromiseLike(result)) return from(result);
  return of(result);
}

function isPromiseLike<R>(value: HandlerResult<R>): value is PromiseLike<R> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** @internal Checks a failure policy option eagerly (shared by the operators). */
export function failurePolicyOf(
  operator: string,
  policy: FailurePolicy | undefined,
  fallback: FailurePolicy,
): FailurePolicy {
  if (policy === undefined) return fallback;
  if (policy !== 'retry' && policy !== 'requeue' && policy !== 'reject' && policy !== 'dead-letter') {
    throw new ConfigurationError(
      `${operator}: onError must be 'retry', 'requeue', 'reject' or 'dead-letter', got ${String(policy)}`,
    );
  }
  return policy;
}

/** @internal Checks a `maxDeliveries` option eagerly (shared by the operators). */
export function maxDeliveriesOf(operator: string, value: number | undefined): number {
  const n = value ?? DEFAULT_MAX_DELIVERIES;
  if (!(n >= 1) || (!Number.isInteger(n) && n !== Infinity)) {
    throw new ConfigurationError(`${operator}: maxDeliveries must be a positive integer, got ${n}`);
  }
  return n;
}

/**
 * @internal Settles a delivery whose processing failed, by policy (shared by the operators that settle
 * failures; see {@link FailurePolicy} for the methods sent). Returns whether anything was sent.
 */
export function settleFailed(
  delivery: SettleableMessage,
  policy: FailurePolicy,
  requeueRedelivered = true,
  maxDeliveries = DEFAULT_MAX_DELIVERIES,
): boolean {
  if (policy === 'retry') return delivery.reject({ requeue: mayRetry(delivery, maxDeliveries) });
  if (policy === 'requeue' && (requeueRedelivered || !delivery.fields.redelivered)) {
    return delivery.nack({ requeue: true });
  }
  return delivery.reject({ requeue: false });
}

/**
 * Whether a failed delivery has attempts left: this was delivery `x-delivery-count + 1` on a quorum
 * queue; on a queue that does not count, a first delivery has one more and a redelivered one none.
 */
function mayRetry(delivery: SettleableMessage, maxDeliveries: number): boolean {
  const previous = deliveryCountOf(delivery.properties);
  if (previous === undefined) return !delivery.fields.redelivered && maxDeliveries > 1;
  return previous + 1 < maxDeliveries;
}
