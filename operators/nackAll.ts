import { type MonoTypeOperatorFunction, tap } from 'rxjs';
import type { SettleableMessage } from '../src/index.js';

/** Options of {@link nackAll}. */
export interface NackAllOptions {
  /**
   * Put the messages back in the queue. Default true (as `Delivery.nack`); false drops or dead-letters
   * them. A requeueing basic.nack does not count toward a quorum queue's delivery limit on RabbitMQ 4.3
   * and later (it does before): right for giving messages back unprocessed (shutting down), wrong for
   * failures, which `rejectAll` or `ackOnSuccess`'s `'retry'` count.
   */
  requeue?: boolean;
}

/**
 * Negatively acknowledges each delivery (basic.nack, one at a time) as it passes, then emits it
 * unchanged. A delivery that is already settled (or whose channel has closed) passes without anything
 * being sent.
 *
 * @param options `requeue` (default true).
 *
 * @example
 * ```ts
 * import { nackAll } from 'rxamqp/operators';
 *
 * // Shutting down: give what is still buffered back to the queue.
 * pending$.pipe(nackAll({ requeue: true })).subscribe();
 * ```
 */
export function nackAll<D extends SettleableMessage>(
  options: NackAllOptions = {},
): MonoTypeOperatorFunction<D> {
  const requeue = options.requeue ?? true;
  return tap((delivery) => {
    delivery.nack({ requeue });
  });
}
