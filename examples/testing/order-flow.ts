/**
 * A small order-processing flow, the code under test in this folder's two tests: consume orders,
 * decode and validate each, publish its result with a publisher confirm, then ack the order; an order
 * that cannot be decoded or is invalid, or whose result the broker refuses, is rejected without
 * requeue, which dead-letters it when the queue has a dead-letter exchange.
 *
 * It is written against the public interfaces (`SettleableMessage` deliveries, a `PublishTarget` for
 * the results), so the same function runs on a real channel, on the embedded broker and on the marble
 * kit's fake channel:
 *
 *   processOrders(ch.consume('orders', { prefetch: 10 }), ch).subscribe();
 *
 * Tests: order-flow.marble.test.ts (virtual time, no broker) and order-flow.embedded.test.ts (the
 * embedded broker of `rxamqp/testing`, real AMQP frames).
 */
import type { PublishTarget, SettleableMessage } from 'rxamqp';
import { ackOnSuccess } from 'rxamqp/operators';
import { map, type Observable } from 'rxjs';

/** An order as it arrives (JSON). */
export interface Order {
  readonly id: string;
  readonly item: string;
  readonly quantity: number;
}

/** What the flow publishes for each order it accepts. */
export interface OrderResult {
  readonly orderId: string;
  readonly total: number;
}

/** Where results go: the default exchange, to this queue. */
export const RESULTS_QUEUE = 'order-results';

/** Prices in cents; an order for anything else is invalid. */
export const PRICES: Readonly<Record<string, number>> = { coffee: 250, tea: 200, cake: 400 };

/** An order that cannot be processed: it is dead-lettered, not retried. */
export class InvalidOrderError extends Error {
  override readonly name = 'InvalidOrderError';
}

/** Decodes and validates one order body. */
export function parseOrder(body: Uint8Array): Order {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new InvalidOrderError('not JSON');
  }
  const order = value as Partial<Order> | null;
  if (typeof order?.id !== 'string' || order.id === '') throw new InvalidOrderError('no id');
  if (typeof order.item !== 'string' || PRICES[order.item] === undefined) {
    throw new InvalidOrderError(`unknown item ${String(order.item)}`);
  }
  if (!Number.isInteger(order.quantity) || (order.quantity ?? 0) < 1)
    throw new InvalidOrderError('bad quantity');
  return order as Order;
}

/**
 * The flow: each delivery is parsed, its result published (and confirmed, on a confirm channel) and
 * the delivery acked; any failure rejects it without requeue. Emits the results published.
 */
export function processOrders<D extends SettleableMessage>(
  orders: Observable<D>,
  results: PublishTarget,
): Observable<OrderResult> {
  return orders.pipe(
    ackOnSuccess(
      (delivery) => {
        const order = parseOrder(delivery.body);
        const result: OrderResult = { orderId: order.id, total: (PRICES[order.item] ?? 0) * order.quantity };
        return results
          .publish('', RESULTS_QUEUE, JSON.stringify(result), {
            contentType: 'application/json',
            messageId: order.id,
          })
          .pipe(
            map((outcome) => {
              // `sent` without confirms; on a confirm channel only `acked` means the broker has it.
              if (outcome.status !== 'acked' && outcome.status !== 'sent') {
                throw new Error(`result of ${order.id} ${outcome.status}`);
              }
              return result;
            }),
          );
      },
      { onError: 'dead-letter' },
    ),
  );
}
