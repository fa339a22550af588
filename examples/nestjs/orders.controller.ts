/**
 * `POST /orders` publishes an `order.placed` event to the `shop` exchange (persistent, JSON) with the
 * module's publisher and answers 202 with the order's id once the broker has confirmed it;
 * `GET /orders` lists the orders the worker has handled. The body goes through a validation pipe.
 */
import { randomUUID } from 'node:crypto';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Inject,
  Injectable,
  type PipeTransform,
  Post,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { Publisher } from 'rxamqp';
import { InjectPublisher } from 'rxamqp/nestjs';
import { lastValueFrom } from 'rxjs';
import { OrdersWorker } from './orders.worker.js';
import { type HandledOrder, type NewOrder, type PlacedOrder, SHOP_EXCHANGE } from './shop.js';

/** Checks the body of `POST /orders`: a SKU and a positive whole quantity, or 400. */
@Injectable()
export class NewOrderPipe implements PipeTransform<unknown, NewOrder> {
  transform(value: unknown): NewOrder {
    const { sku, quantity } = (value ?? {}) as Record<string, unknown>;
    if (typeof sku !== 'string' || sku === '')
      throw new BadRequestException('sku must be a non-empty string');
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1) {
      throw new BadRequestException('quantity must be a positive integer');
    }
    return { sku, quantity };
  }
}

@Controller('orders')
export class OrdersController {
  constructor(
    @InjectPublisher() private readonly publisher: Publisher,
    // Explicit tokens everywhere: tsx (esbuild) emits no decorator metadata to infer them from.
    @Inject(OrdersWorker) private readonly worker: OrdersWorker,
  ) {}

  @Post()
  @HttpCode(HttpStatus.ACCEPTED)
  async place(@Body(new NewOrderPipe()) order: NewOrder): Promise<{ id: string }> {
    const placed: PlacedOrder = { id: randomUUID(), ...order, placedAt: new Date().toISOString() };
    let status: string;
    try {
      // The publisher confirms: the outcome comes once the broker has the message (written to disk,
      // as it is persistent, on a durable queue). `mandatory`: an event no queue takes is returned.
      const outcome = await lastValueFrom(
        this.publisher.publish(
          SHOP_EXCHANGE,
          'order.placed',
          JSON.stringify(placed),
          { contentType: 'application/json', deliveryMode: 2, messageId: placed.id },
          { mandatory: true },
        ),
      );
      status = outcome.status;
    } catch (error) {
      // Not sent: the broker was away longer than the publisher holds messages, or we are stopping.
      throw new ServiceUnavailableException(`the order could not be placed: ${(error as Error).message}`);
    }
    if (status !== 'acked') throw new ServiceUnavailableException(`the order was not taken (${status})`);
    return { id: placed.id };
  }

  @Get()
  list(): HandledOrder[] {
    return this.worker.handled;
  }
}
