import { EMPTY, mergeMap, type OperatorFunction, of } from 'rxjs';
import type { Delivery, SettleableMessage } from '../src/index.js';
import { type FailurePolicy, failurePolicyOf, settleFailed } from './ackOnSuccess.js';

/** A delivery (or another settleable message) with its body parsed as JSON. */
export interface DecodedJson<T, D extends SettleableMessage = Delivery> {
  readonly delivery: D;
  readonly value: T;
}

/** Options of {@link decodeJson}. */
export interface DecodeJsonOptions<D extends SettleableMessage = Delivery> {
  /**
   * How a delivery whose body is not JSON is settled: `'reject'` (default) and `'dead-letter'` send
   * basic.reject with `requeue: false`; `'requeue'` sends basic.nack with `requeue: true` (it will
   * fail again: only for a queue where another consumer can read it; it does not count toward a
   * quorum queue's delivery limit on RabbitMQ 4.3); `'retry'` sends basic.reject with requeue a
   * bounded number of times (see `FailurePolicy`).
   */
  onError?: FailurePolicy;
  /** Called after an undecodable delivery was settled, with the SyntaxError. If it throws, the stream errors. */
  onFailure?: (error: unknown, delivery: D) => void;
}

/**
 * Parses each delivery's body as JSON (UTF-8) and emits `{ delivery, value }`. A delivery whose body is
 * not JSON is settled by `onError` (default: rejected without requeue, so dead-lettered if the queue
 * has a dead-letter exchange), reported to `onFailure` and skipped: it does not error the stream.
 *
 * The type parameter is an assertion, not a validation: check the shape yourself if the producer is
 * not trusted. Any `SettleableMessage` works (the messages of `rxamqp/mq`, test doubles): the second
 * type parameter names it.
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
export function decodeJson<T = unknown, D extends SettleableMessage = Delivery>(
  options: DecodeJsonOptions<D> = {},
): OperatorFunction<D, DecodedJson<T, D>> {
  const policy = failurePolicyOf('decodeJson', options.onError, 'reject');
  const { onFailure } = options;
  return mergeMap((delivery) => {
    let value: T;
    try {
      value = parse<T>(delivery);
    } catch (error) {
      settleFailed(delivery, policy);
      onFailure?.(error, delivery);
      return EMPTY;
    }
    return of({ delivery, value });
  });
}

const decoder = new TextDecoder();

/** The body as JSON: with the message's own `json()` when it has one (a `Delivery`'s is Node's fast path). */
function parse<T>(message: SettleableMessage): T {
  const own = (message as { json?: () => T }).json;
  if (typeof own === 'function') return own.call(message);
  return JSON.parse(decoder.decode(message.body)) as T;
}
