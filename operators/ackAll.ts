import { type MonoTypeOperatorFunction, tap } from 'rxjs';
import type { SettleableMessage } from '../src/index.js';

/**
 * Acknowledges each delivery as it passes, then emits it unchanged. A delivery that is already settled
 * (or whose channel has closed) passes without anything being sent: see `Delivery.ack`'s return value.
 * Ack as the last step of processing, or first for at-most-once handling.
 *
 * @example
 * ```ts
 * import { ackAll } from 'rxamqp/operators';
 *
 * channel.consume('logs').pipe(
 *   concatMap((d) => writeLine(d.text()).pipe(map(() => d))),
 *   ackAll(),
 * ).subscribe();
 * ```
 */
export function ackAll<D extends SettleableMessage>(): MonoTypeOperatorFunction<D> {
  return tap((delivery) => {
    delivery.ack();
  });
}
