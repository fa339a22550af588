/**
 * What a fake delivery's settlement sent: the shape of basic.ack, basic.nack and basic.reject.
 *
 * @module
 */

/**
 * One settlement a fake channel received from a delivery (`ack()`, `nack()`, `reject()`), as the
 * broker would see it: the method, the delivery tag, `multiple` and `requeue` (false for an ack).
 * `markSettled()` sends nothing and makes no settlement.
 *
 * @example
 * ```ts
 * expect(channel.settlements).toEqual([settlement.ack(2, { multiple: true }), settlement.reject(3)]);
 * ```
 */
export interface Settlement {
  readonly kind: 'ack' | 'nack' | 'reject';
  readonly deliveryTag: number;
  readonly multiple: boolean;
  readonly requeue: boolean;
}

/**
 * Builds the settlements to expect, with the defaults of `Delivery`: `nack` and `reject` requeue
 * unless `requeue: false`; nothing is `multiple` unless said.
 *
 * @example
 * ```ts
 * expectObservable(channel.settlements$).toBe('-a-(bc)', {
 *   a: settlement.ack(1),
 *   b: settlement.nack(2, { requeue: false }),
 *   c: settlement.ack(4, { multiple: true }),
 * });
 * ```
 */
export const settlement = {
  /** basic.ack of `deliveryTag` (with `multiple`, of every unsettled tag up to it). */
  ack: (deliveryTag: number, options: { multiple?: boolean } = {}): Settlement => ({
    kind: 'ack',
    deliveryTag,
    multiple: options.multiple ?? false,
    requeue: false,
  }),
  /** basic.nack of `deliveryTag`, requeued unless `requeue: false`. */
  nack: (deliveryTag: number, options: { requeue?: boolean; multiple?: boolean } = {}): Settlement => ({
    kind: 'nack',
    deliveryTag,
    multiple: options.multiple ?? false,
    requeue: options.requeue ?? true,
  }),
  /** basic.reject of `deliveryTag`, requeued unless `requeue: false`. */
  reject: (deliveryTag: number, options: { requeue?: boolean } = {}): Settlement => ({
    kind: 'reject',
    deliveryTag,
    multiple: false,
    requeue: options.requeue ?? true,
  }),
} as const;
