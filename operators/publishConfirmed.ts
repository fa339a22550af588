/**
 * `publishConfirmed`: publishes a stream of messages on a confirm-mode channel with a bounded number
 * awaiting the broker's confirms, emitting each message's outcome in source order.
 *
 * @module
 */
import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import type { Channel, PublishOutcome } from '../src/channel.js';
import { PublishNackedError } from '../src/errors.js';
import type { BasicProperties } from '../src/protocol/generated.js';

/** A message to publish. */
export interface OutgoingMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array | string;
  readonly properties?: BasicProperties;
  /** Return it (outcome `returned`) when no queue is bound to receive it. */
  readonly mandatory?: boolean;
}

/** What `publishConfirmed` emits for each message, in source order. */
export interface PublishResult<M extends OutgoingMessage = OutgoingMessage> {
  readonly message: M;
  /** The broker's answer to the last attempt (`sent` on a channel not in confirm mode). */
  readonly outcome: PublishOutcome;
  /** How many times it was published (more than 1 after nacks under a retry policy). */
  readonly attempts: number;
}

/** What a nack does. */
export type NackPolicy =
  /** Error the stream with a `PublishNackedError` (the default). */
  | 'error'
  /** Emit the `nacked` outcome and go on. */
  | 'emit'
  /** Publish it again, up to `retry` more times; then do `then` (default `'error'`). */
  | { readonly retry: number; readonly then?: 'error' | 'emit' };

/** Options of {@link publishConfirmed}. */
export interface PublishConfirmedOptions {
  /** Most publishes awaiting their confirm at once. Default 1000. */
  readonly window?: number;
  /** What a nack does. Default `'error'`. */
  readonly onNack?: NackPolicy;
}

/**
 * Publishes each message of the source on `channel` (put it in confirm mode first with
 * `confirmSelect()`), with at most `window` publishes awaiting the broker's confirms at once: the
 * next message goes out as a confirm comes back. Emits `{ message, outcome, attempts }` for every
 * message **in source order**, whatever order the broker answers in; `returned` outcomes (mandatory
 * messages no queue received) are emitted, not retried. Nacks follow `onNack`. The stream errors
 * with the channel's error if the channel or connection goes away (every publish in flight settles
 * then), and completes once the source has completed and every message has its outcome.
 *
 * RxJS cannot slow down a push source: messages beyond the window wait in the operator. Feed it from
 * a lazy source (a generator through `from`, a paged query) when the whole stream would not fit in
 * memory.
 *
 * @example
 * ```ts
 * ch.confirmSelect().pipe(
 *   switchMap(() => from(orders)),
 *   map((order) => ({ exchange: 'orders', routingKey: order.region, body: JSON.stringify(order) })),
 *   publishConfirmed(ch, { window: 500, onNack: { retry: 2 } }),
 * ).subscribe(({ message, outcome }) => console.log(message.routingKey, outcome.status));
 * ```
 */
export function publishConfirmed<M extends OutgoingMessage>(
  channel: Pick<Channel, 'publish'>,
  options: PublishConfirmedOptions = {},
): OperatorFunction<M, PublishResult<M>> {
  const window = options.window ?? 1000;
  if (!Number.isInteger(window) || window < 1) {
    throw new RangeError(`publishConfirmed: window must be a positive integer, got ${String(window)}`);
  }
  const policy = options.onNack ?? 'error';
  const retries = typeof policy === 'object' ? policy.retry : 0;
  const exhausted = typeof policy === 'object' ? (policy.then ?? 'error') : policy;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(
      `publishConfirmed: onNack.retry must be a non-negative integer, got ${String(retries)}`,
    );
  }

  /** Publishes `message` until it is not nacked or the retries are spent. */
  const attempt = (message: M, attempts: number): Observable<PublishResult<M>> =>
    channel
      .publish(message.exchange, message.routingKey, message.body, message.properties, {
        mandatory: message.mandatory ?? false,
      })
      .pipe(
        mergeMap((outcome) => {
          if (outcome.status !== 'nacked') return [{ message, outcome, attempts }];
          if (attempts <= retries) return attempt(message, attempts + 1);
          if (exhausted === 'emit') return [{ message, outcome, attempts }];
          throw new PublishNackedError(message.exchange, message.routingKey, outcome.seq, attempts);
        }),
      );

  return (source) =>
    defer(() => {
      // Outcomes come back in confirm order, which is publish order except after a retry: hold the
      // early ones until those before them are in.
      let index = 0;
      let next = 0;
      const early = new Map<number, PublishResult<M>>();
      return source.pipe(
        mergeMap((message) => {
          const position = index++;
          return attempt(message, 1).pipe(
            mergeMap((result) => {
              if (position !== next) {
                early.set(position, result);
                return [];
              }
              const ready = [result];
              next++;
              for (let r = early.get(next); r !== undefined; r = early.get(next)) {
                early.delete(next);
                ready.push(r);
                next++;
              }
              return ready;
            }),
          );
        }, window),
      );
    });
}
