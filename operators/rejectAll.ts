import { type MonoTypeOperatorFunction, tap } from 'rxjs';
import type { SettleableMessage } from '../src/index.js';

/** Options of {@link rejectAll}. */
export interface RejectAllOptions {
  /**
   * Put the messages back in the queue. Default true (as `Delivery.reject`); false drops or dead-letters
   * them. A requeueing basic.reject counts toward a quorum queue's delivery limit (on every RabbitMQ
   * version), so a message rejected again and again is dead-lettered at the queue's limit; on a
   * classic queue, which has no limit, it loops.
   */
  requeue?: boolean;
}

/**
 * Rejects each delivery (basic.reject) as it passes, then emits it unchanged. A delivery that is
 * already settled (or whose channel has closed) passes without anything being sent. Note that the
 * default, like `Delivery.reject`'s, requeues: pass `requeue: false` to dead-letter.
 *
 * @param options `requeue` (default true).
 *
 * @example
 * ```ts
 * import { rejectAll } from 'rxamqp/operators';
 *
 * channel.consume('inbox').pipe(
 *   filter((d) => d.properties.contentType !== 'application/json'),
 *   rejectAll({ requeue: false }), // to the queue's dead-letter exchange
 * ).subscribe((d) => log.warn('not JSON', d.fields.deliveryTag));
 * ```
 */
export function rejectAll<D extends SettleableMessage>(
  options: RejectAllOptions = {},
): MonoTypeOperatorFunction<D> {
  const requeue = options.requeue ?? true;
  return tap((delivery) => {
    delivery.reject({ requeue });
  });
}
