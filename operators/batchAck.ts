import { type MonoTypeOperatorFunction, Observable, type Subscription, timer } from 'rxjs';
import { ConfigurationError, type SettleableMessage } from '../src/index.js';

/** Options of {@link batchAck}. */
export interface BatchAckOptions {
  /**
   * Try to acknowledge once this many processed deliveries are waiting. Default: 1 when `timeMs` is not
   * set either (acknowledge as soon as possible), else unlimited. Keep it at most the consumer's
   * `prefetch` unless `timeMs` is set: with no more than `prefetch` unacknowledged messages, the broker
   * would otherwise stop sending before the batch fills, and wait forever.
   */
  count?: number;
  /**
   * Try to acknowledge this many milliseconds after a processed delivery arrived when no attempt was
   * scheduled. Default: no timer.
   */
  timeMs?: number;
}

/** Processed deliveries of one consumer waiting for their acknowledgement. */
interface ConsumerState<D> {
  /** The lowest delivery tag not yet acknowledged by this operator. */
  next: number;
  readonly done: Map<number, D>;
}

/**
 * Acknowledges processed deliveries in batches, with one `ack({ multiple: true })` per batch, and emits
 * each delivery unchanged once the acknowledgement covering it has been sent.
 *
 * Put it after the processing: its input is the deliveries whose processing has completed, in the order
 * they complete, which need not be the order of their delivery tags (`mergeMap` with concurrency). An
 * acknowledgement with `multiple: true` covers every unacknowledged delivery on the channel up to its
 * tag, so the operator only acknowledges up to tag T when it has received every tag from 1 to T:
 * a delivery still being processed leaves a gap, and nothing beyond the gap is acknowledged until it
 * arrives. Covered deliveries are marked settled (`markSettled()`).
 *
 * What this assumes (it cannot see the channel a delivery came on, only its consumer tag):
 * - **one consumer per channel, from the channel's first delivery**: the channel numbers deliveries
 *   from 1 across all its consumers (and `basic.get`); a tag that never reaches this operator is a gap
 *   that blocks every later acknowledgement of that consumer.
 * - **every delivery arrives**: a delivery you settle yourself (a failed one you rejected) must still
 *   pass through, settled, to fill its place (it is not acknowledged again). One dropped upstream (a
 *   `filter`, `decodeJson` skipping a body) blocks the batching for good.
 * - **one channel at a time**: place it inside the `switchMap` that makes the channel, so that it starts
 *   afresh with each channel. Deliveries are tracked per consumer tag; a tag lower than one already
 *   acknowledged is taken as a new channel (a reconnect reusing the consumer tag) and the state of the
 *   old one is dropped, but deliveries of the old channel still completing after that would be confused
 *   with the new channel's.
 *
 * A batch is attempted when `count` processed deliveries are waiting, and `timeMs` after a processed delivery
 * arrived when no attempt was scheduled. When the source completes or errors, and when the subscription ends,
 * whatever can be acknowledged is acknowledged; deliveries behind a gap stay unacknowledged (the broker
 * delivers them again once the channel closes) and are not emitted.
 *
 * @param options `count` and `timeMs` batching triggers.
 *
 * @example
 * ```ts
 * import { batchAck } from 'rxamqp/operators';
 *
 * connection.channel().pipe(
 *   switchMap((ch) =>
 *     ch.consume('events', { prefetch: 200 }).pipe(
 *       mergeMap((d) => store(d.json()).pipe(map(() => d)), 20),
 *       batchAck({ count: 50, timeMs: 200 }),
 *     ),
 *   ),
 * ).subscribe();
 * ```
 */
export function batchAck<D extends SettleableMessage>(
  options: BatchAckOptions = {},
): MonoTypeOperatorFunction<D> {
  const { timeMs } = options;
  const count = options.count ?? (timeMs === undefined ? 1 : Infinity);
  if (!(count >= 1)) throw new ConfigurationError(`batchAck: count must be at least 1, got ${count}`);
  if (timeMs !== undefined && !(timeMs >= 0)) {
    throw new ConfigurationError(`batchAck: timeMs must be a non-negative number, got ${timeMs}`);
  }
  return (source) =>
    new Observable<D>((subscriber) => {
      const consumers = new Map<string, ConsumerState<D>>();
      let waiting = 0;
      let timerSubscription: Subscription | undefined;

      const stopTimer = (): void => {
        timerSubscription?.unsubscribe();
        timerSubscription = undefined;
      };

      /** Acknowledges what can be; returns the covered deliveries, in tag order per consumer. */
      const flush = (): D[] => {
        stopTimer();
        const covered: D[] = [];
        for (const state of consumers.values()) {
          let last = state.next;
          while (state.done.has(last)) last++;
          if (last === state.next) continue;
          const batch: D[] = [];
          for (let tag = state.next; tag < last; tag++) {
            batch.push(state.done.get(tag)!);
            state.done.delete(tag);
          }
          state.next = last;
          waiting -= batch.length;
          // The highest delivery still unsettled carries the acknowledgement; those after it were
          // settled elsewhere and are no longer outstanding on the channel.
          let carrier = batch.length - 1;
          while (carrier >= 0 && batch[carrier]!.settled) carrier--;
          if (carrier >= 0) batch[carrier]!.ack({ multiple: true });
          for (const delivery of batch) delivery.markSettled();
          covered.push(...batch);
        }
        return covered;
      };

      const emit = (deliveries: D[]): void => {
        for (const delivery of deliveries) {
          if (subscriber.closed) return;
          subscriber.next(delivery);
        }
      };

      const add = (delivery: D): void => {
        const key = delivery.fields.consumerTag ?? '';
        const tag = delivery.fields.deliveryTag;
        let state = consumers.get(key);
        if (state === undefined || tag < state.next) {
          // First delivery of this consumer, or a tag already acknowledged: a new channel.
          if (state !== undefined) waiting -= state.done.size;
          state = { next: 1, done: new Map() };
          consumers.set(key, state);
        }
        if (state.done.has(tag)) return; // the same tag twice: keep the first
        state.done.set(tag, delivery);
        waiting++;
      };

      const subscription = source.subscribe({
        next: (delivery) => {
          add(delivery);
          if (waiting >= count) {
            emit(flush());
          } else if (timeMs !== undefined && timerSubscription === undefined) {
            timerSubscription = timer(timeMs).subscribe(() => {
              timerSubscription = undefined;
              emit(flush());
            });
          }
        },
        error: (error: unknown) => {
          emit(flush());
          subscriber.error(error);
        },
        complete: () => {
          emit(flush());
          subscriber.complete();
        },
      });

      return () => {
        subscription.unsubscribe();
        flush();
        consumers.clear();
      };
    });
}
