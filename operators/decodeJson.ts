import { EMPTY, mergeMap, type OperatorFunction, of } from 'rxjs';
import type { Delivery } from '../src/index.js';
import { type FailurePolicy, failurePolicyOf, settleFailed } from './ackOnSuccess.js';

/** A delivery with its body parsed as JSON. */
export interface DecodedJson<T> {
  readonly delivery: Delivery;
  readonly value: T;
}

/** Options of {@link decodeJson}. */
export interface DecodeJsonOptions {
  /**
   * How a delivery whose body is not JSON is settled: `'reject'` (default) and `'dead-letter'` send
   * basic.reject with `requeue: false`; `'requeue'` sends basic.nack with `requeue: true` (it will
   * fail again: only for a queue where another consumer can read it; it does not count toward a
   * quorum queue's delivery limit on RabbitMQ 4.3); `'retry'` sends basic.reject with requeue a
   * bounded number of times (see `FailurePolicy`).
   */
  onError?: FailurePolicy;
  /** Called after an undecodable delivery was settled, with the SyntaxError. If it throws, the stream errors. */
  onFailure?: (error: unknown, delivery: Delivery) => void;
}

/**
 * Parses each delivery's body as JSON (UTF-8) and emits `{ delivery, value }`. A delivery whose body is
 * not JSON is settled by `onError` (default: rejected without requeue, so dead-lettered if the queue
 * has a dead-letter exchange), reported to `onFailure` and skipped: it does not error the stream.
 *
 * The type parameter is an assertion, not a validation: check the shape yourself if the producer is
 * not trusted.
 *
 * @param options Failure policy and `onFailure` callback.
 *
 * @example
 * ```ts
 * import { ackAll, decodeJson } from 'rxamqp/operators';
 *
 * channel.consume('orders').pipe(
 *   decodeJson<Order>({ onFailure: (error, d) => log.warn({ error, tag: d.fields.deliveryTag }) }),
 *   mergeMap(({ delivery, value }) => saveOrder(value).pipe(map(() => delivery)), 4),
 *   ackAll(),
 * ).subscribe();
 * ```
 */
export function decodeJson<T = unknown>(
  options: DecodeJsonOptions = {},
): OperatorFunction<Delivery, DecodedJson<T>> {
  const policy = failurePolicyOf('decodeJson', options.onError, 'reject');
  const { onFailure } = options;
  return mergeMap((delivery) => {
    let value: T;
    try {
      value = delivery.json<T>();
    } catch (error) {
      settleFailed(delivery, policy);
      onFailure?.(error, delivery);
      return EMPTY;
    }
    return of({ delivery, value });
  });
}
