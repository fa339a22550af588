/**
 * The order worker: a `@Consume` handler on `shop.orders` (bound to the `shop` exchange with
 * `order.*`). It records each order it handles; `GET /orders` lists them. The module acks each
 * delivery once the handler returns, and the publisher may deliver an order twice after a reconnect
 * (it republishes what was not confirmed), so orders are kept by id.
 */
import { Injectable, Logger, ParseIntPipe } from '@nestjs/common';
import type { Delivery } from 'rxamqp';
import { AmqpDelivery, AmqpPayload, Consume } from 'rxamqp/nestjs';
import { type HandledOrder, ORDERS_QUEUE, type PlacedOrder, SHOP_EXCHANGE } from './shop.js';

@Injectable()
export class OrdersWorker {
  private readonly logger = new Logger(OrdersWorker.name);
  private readonly orders = new Map<string, HandledOrder>();

  /** The orders handled so far, oldest first. */
  get handled(): HandledOrder[] {
    return [...this.orders.values()];
  }

  @Consume({ queue: ORDERS_QUEUE, exchange: SHOP_EXCHANGE, routingKeys: ['order.*'], concurrency: 4 })
  handle(
    @AmqpPayload() order: PlacedOrder,
    // Pipes apply to handler parameters as they do to HTTP ones: a quantity that is not an integer
    // fails the handler (and the delivery goes by the failure policy, 'retry' by default).
    @AmqpPayload('quantity', new ParseIntPipe()) quantity: number,
    @AmqpDelivery() delivery: Delivery,
  ): void {
    if (this.orders.has(order.id)) return;
    this.orders.set(order.id, {
      ...order,
      quantity,
      event: delivery.fields.routingKey,
      handledAt: new Date().toISOString(),
    });
    this.logger.log(`handled order ${order.id}: ${quantity} x ${order.sku}`);
  }
}
