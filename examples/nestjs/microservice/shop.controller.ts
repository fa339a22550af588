/**
 * The microservice's handlers: `@EventPattern('order.*')` takes every order event (`order.placed`,
 * `order.paid`, ...) from the orders queue, records and logs it; `@MessagePattern('stock.get')`
 * answers a stock level over request/reply. The server acks an event once its handler returned, and
 * a request once its reply is sent: no hand-written ack.
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { RxAmqpContext } from 'rxamqp/nestjs';
import { OrderLog } from './order-log.js';
import { type OrderEvent, STOCK, type StockLevel } from './shop.js';

@Controller()
export class ShopController {
  // An explicit token: tsx (esbuild) emits no decorator metadata to infer it from.
  constructor(@Inject(OrderLog) private readonly log: OrderLog) {}

  @EventPattern('order.*')
  onOrder(@Payload() order: OrderEvent, @Ctx() context: unknown): void {
    // Typed `unknown` and cast: NestJS 12's typings refuse a context class under exactOptionalPropertyTypes.
    const ctx = context as RxAmqpContext;
    const pattern = ctx.getRoutingKey();
    this.log.record({ pattern, order });
    console.log(`event ${pattern} ${JSON.stringify(order)} (from ${ctx.getQueue()})`);
  }

  @MessagePattern('stock.get')
  stock(@Payload() sku: unknown): StockLevel {
    const level = typeof sku === 'string' ? STOCK[sku] : undefined;
    // Travels back to the client as an error reply: its `send()` errors with it.
    if (typeof sku !== 'string' || level === undefined) throw new RpcException(`unknown sku ${String(sku)}`);
    return { sku, level };
  }
}
