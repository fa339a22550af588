import { concatMap, map, mergeMap, type OperatorFunction, of, take, timer } from 'rxjs';
import {
  type BasicProperties,
  ConfigurationError,
  type Delivery,
  type FieldTable,
  type FieldValue,
  fieldTypesOf,
  type PublishTarget,
  TypedField,
} from '../src/index.js';

/** Options of {@link retryWithDelay}. */
export interface RetryWithDelayOptions {
  /** The queue the copies are republished to (through the default exchange): usually the one consumed. */
  queue: string;
  /**
   * Milliseconds to wait before each retry: `delays[n]` before the retry of a delivery that carries
   * retry count `n`. Its length is the number of retries; `[]` never retries.
   */
  delays: readonly number[];
  /** The header that carries the retry count. Default `'x-retry-count'`. */
  header?: string;
  /**
   * How a delivery that has used up its retries is settled: `'dead-letter'` (default) sends
   * basic.reject without requeue, to the queue's dead-letter exchange (or dropped when it has none);
   * `'requeue'` sends basic.nack with requeue, back into the queue, where it is delivered again at once
   * with the same count (and, on RabbitMQ 4.3, without counting toward a quorum queue's delivery
   * limit: it can loop). A retried delivery is acked (basic.ack) once its copy is published: the copy
   * is a new message, whose `x-delivery-count` starts again, so the retry count header is the limit.
   */
  onExhausted?: 'dead-letter' | 'requeue';
}

/** What {@link retryWithDelay} did with one failed delivery. */
export interface RetryOutcome {
  readonly delivery: Delivery;
  /**
   * `'retried'`: a copy was republished and the original acknowledged; `'dead-lettered'` or
   * `'requeued'`: the retries were used up and the original was settled by `onExhausted`.
   */
  readonly action: 'retried' | 'dead-lettered' | 'requeued';
  /** The retry count the delivery carried (0 for a first delivery). */
  readonly retryCount: number;
}

/**
 * Retries failed deliveries later, through the queue: takes deliveries whose processing failed, and for
 * each reads its retry count from a header (missing: 0). While the count is below `delays.length`, it
 * waits `delays[count]` ms, republishes a copy (same body and properties, the header incremented) to
 * `queue` through the default exchange, and acknowledges the original once the publish has emitted.
 * Past the last delay, it settles the original by `onExhausted` (default: dead-letter). Emits a
 * {@link RetryOutcome} per delivery, as each is done (deliveries wait concurrently, `mergeMap`-style).
 *
 * It is an operator over the *failed* deliveries rather than an `onError` option of `ackOnSuccess`
 * (whose policy is a fixed `FailurePolicy`): pipe the delivery into it from `catchError`, as in
 * the example, or from any stream of deliveries to retry.
 *
 * The original stays unacknowledged during the delay: it counts against the consumer's `prefetch`, so
 * with long delays raise `prefetch` or the consumer stalls while messages wait. The copy goes to the
 * back of the queue (no ordering), and it is a new message: publish-then-ack is at-least-once (if the
 * ack is lost, because the channel closed in between, the original is delivered again as well). When
 * the publish errors, the stream errors with it and the original is left unsettled (the broker
 * delivers it again when its channel closes); so does an unsubscription during the delay, before the
 * copy is published.
 *
 * @param channel Where the copies are published (any channel of the connection).
 * @param options `queue`, `delays`, `header`, `onExhausted`.
 *
 * @example
 * ```ts
 * import { retryWithDelay } from 'rxamqp/operators';
 *
 * const retry = retryWithDelay(channel, { queue: 'jobs', delays: [1_000, 10_000, 60_000] });
 * channel.consume('jobs', { prefetch: 50 }).pipe(
 *   mergeMap((d) =>
 *     defer(() => runJob(d.json<Job>())).pipe(
 *       map(() => void d.ack()),
 *       catchError(() => of(d).pipe(retry)), // 1s, 10s, 60s later, then to the DLX
 *     ),
 *   10),
 * ).subscribe();
 * ```
 */
export function retryWithDelay(
  channel: Pick<PublishTarget, 'publish'>,
  options: RetryWithDelayOptions,
): OperatorFunction<Delivery, RetryOutcome> {
  const { queue, delays } = options;
  const header = options.header ?? 'x-retry-count';
  const onExhausted = options.onExhausted ?? 'dead-letter';
  if (typeof queue !== 'string') {
    throw new ConfigurationError('retryWithDelay: queue must be a string');
  }
  for (const d of delays) {
    if (!(d >= 0) || !Number.isFinite(d)) {
      throw new ConfigurationError(`retryWithDelay: delays must be finite numbers >= 0, got ${d}`);
    }
  }
  if (onExhausted !== 'dead-letter' && onExhausted !== 'requeue') {
    throw new ConfigurationError(`retryWithDelay: onExhausted must be 'dead-letter' or 'requeue'`);
  }
  return (source) =>
    source.pipe(
      mergeMap((delivery) => {
        const retryCount = retryCountOf(delivery.properties.headers?.[header]);
        if (retryCount >= delays.length) {
          if (onExhausted === 'requeue') delivery.nack({ requeue: true });
          else delivery.reject({ requeue: false });
          const action = onExhausted === 'requeue' ? 'requeued' : 'dead-lettered';
          return of<RetryOutcome>({ delivery, action, retryCount });
        }
        return timer(delays[retryCount] ?? 0).pipe(
          concatMap(() =>
            channel.publish(
              '',
              queue,
              delivery.body,
              copyProperties(delivery.properties, header, retryCount + 1),
            ),
          ),
          take(1),
          map((): RetryOutcome => {
            delivery.ack();
            return { delivery, action: 'retried', retryCount };
          }),
        );
      }),
    );
}

/** The retry count a header value says: a non-negative integer (number, bigint, typed or numeric string), else 0. */
function retryCountOf(value: FieldValue | undefined): number {
  const raw = value instanceof TypedField ? value.value : value;
  const n =
    typeof raw === 'bigint' ? Number(raw) : typeof raw === 'string' ? Number(raw.trim() || Number.NaN) : raw;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : 0;
}

/**
 * The properties of the copy: the same, with the count header set. Header values whose decoded wire
 * type would not be inferred again are wrapped in a {@link TypedField}, so they go out as they came in.
 */
function copyProperties(properties: BasicProperties, header: string, count: number): BasicProperties {
  const original = properties.headers ?? {};
  const headers: FieldTable = { ...original };
  for (const [key, type] of Object.entries(fieldTypesOf(original))) {
    const value = headers[key];
    if (value !== undefined && !(value instanceof TypedField)) headers[key] = new TypedField(type, value);
  }
  headers[header] = count;
  return { ...properties, headers };
}
