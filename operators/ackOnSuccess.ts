import {
  catchError,
  defaultIfEmpty,
  defer,
  EMPTY,
  filter,
  from,
  isObservable,
  map,
  mergeMap,
  type Observable,
  type OperatorFunction,
  of,
  take,
} from 'rxjs';
import { ConfigurationError, type Delivery, type SettleableMessage } from '../src/index.js';

/**
 * How a delivery whose processing failed is settled:
 * - `'requeue'`: `nack({ requeue: true })`, the broker delivers it again (to this or another consumer);
 * - `'reject'`: `reject({ requeue: false })`, the broker drops it, or dead-letters it when the queue has
 *   a dead-letter exchange;
 * - `'dead-letter'`: the same as `'reject'`, named for queues configured with `x-dead-letter-exchange`.
 */
export type FailurePolicy = 'requeue' | 'reject' | 'dead-letter';

/** Options of {@link ackOnSuccess}. */
export interface AckOnSuccessOptions<D extends SettleableMessage = Delivery> {
  /**
   * How many deliveries are processed at once (`mergeMap` semantics: the others wait, in order, and
   * results are emitted as they complete). Default 1. Set the consumer's `prefetch` to at least this
   * value: with fewer unacknowledged messages allowed, the broker never sends enough to fill it.
   */
  concurrency?: number;
  /** How a failed delivery is settled. Default `'reject'`. */
  onError?: FailurePolicy;
  /**
   * With `onError: 'requeue'`, whether a delivery that was already redelivered (`fields.redelivered`)
   * is requeued again when it fails. Default true; false rejects it instead (`requeue: false`), so that
   * a message that always fails (a "poison" message) does not loop forever.
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
 * are unsubscribed and their
 * deliveries, like the ones still waiting, are left unsettled: the broker delivers them again when the
 * channel closes.
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
 *     onError: 'requeue',
 *     requeueRedelivered: false,
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
  const policy = options.onError ?? 'reject';
  const requeueRedelivered = options.requeueRedelivered ?? true;
  const { onFailure } = options;
  return (source) =>
    source.pipe(
      mergeMap(
        (delivery) =>
          // A drain with `prefetched: 'return'` gives back what has not started: not processed here.
          delivery.returnForDrain?.() === true
            ? EMPTY
            : defer(() => toObservable(handler(delivery))).pipe(
                take(1),
                defaultIfEmpty(NOTHING),
                catchError((error: unknown) => {
                  settleFailed(delivery, policy, requeueRedelivered);
                  onFailure?.(error, delivery);
                  return EMPTY;
                }),
                map((result) => {
                  delivery.ack();
                  return result;
                }),
                filter((result): result is R => result !== NOTHING),
              ),
        concurrency,
      ),
    );
}

const NOTHING: unique symbol = Symbol('nothing');

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

/**
 * @internal Settles a delivery whose processing failed, by policy (shared by the operators that settle
 * failures). Returns whether anything was sent.
 */
export function settleFailed(
  delivery: SettleableMessage,
  policy: FailurePolicy,
  requeueRedelivered = true,
): boolean {
  if (policy === 'requeue' && (requeueRedelivered || !delivery.fields.redelivered)) {
    return delivery.nack({ requeue: true });
  }
  return delivery.reject({ requeue: false });
}
