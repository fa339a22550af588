/**
 * A NestJS microservice on RabbitMQ with the transport of `rxamqp/nestjs`: `RxAmqpServer` serves the
 * `@EventPattern('order.*')` and `@MessagePattern('stock.get')` handlers of `ShopController` from two
 * queues bound to a topic exchange; then, in the same program, an `RxAmqpClient` emits two order
 * events (confirmed by the broker) and asks for a stock level over request/reply. Once both events
 * were handled, the client and the microservice close (a drain) and it exits 0.
 *
 *   npx tsx examples/nestjs/microservice/main.ts
 *   AMQP_URL=amqp://user:password@host:5672/vhost npx tsx examples/nestjs/microservice/main.ts
 *
 * The broker defaults to amqp://guest:guest@localhost:5672. It declares the durable topic exchange
 * `example.ms.events` and the durable queues `example.ms.orders` (bound with `order.*`) and
 * `example.ms.stock` (bound with `stock.get`).
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { RxAmqpClient, RxAmqpServer } from 'rxamqp/nestjs';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { AppModule } from './app.module.js';
import { OrderLog } from './order-log.js';
import { EXCHANGE, ORDERS_QUEUE, STOCK_QUEUE, type StockLevel } from './shop.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';

try {
  // The server: each queue's patterns are its binding keys on the exchange.
  const app = await NestFactory.createMicroservice(AppModule, {
    strategy: new RxAmqpServer({
      url,
      exchange: EXCHANGE,
      queues: [
        { name: ORDERS_QUEUE, patterns: ['order.*'] },
        { name: STOCK_QUEUE, patterns: ['stock.get'] },
      ],
    }),
    // Nest's own lines only for problems (on stderr); the example prints its own.
    logger: ['error', 'warn'],
  });
  // On SIGTERM or SIGINT: the server drains (handlers running finish and are acked), then exit 0.
  app.enableShutdownHooks([], { useProcessExit: true });
  // Resolves once the exchange, the queues and their bindings are declared and consumed.
  await app.listen();
  console.log(`microservice listening on ${ORDERS_QUEUE} and ${STOCK_QUEUE}`);

  // The client: the pattern is the routing key on the exchange.
  const client = new RxAmqpClient({ url, exchange: EXCHANGE, timeout: 5000 });
  try {
    // emit() completes once the broker has confirmed the event.
    await lastValueFrom(client.emit('order.placed', { id: 1 }), { defaultValue: undefined });
    await lastValueFrom(client.emit('order.paid', { id: 1 }), { defaultValue: undefined });
    console.log('emitted order.placed and order.paid (confirmed)');

    // send(): a request over direct reply-to; errors with a TimeoutError when no reply comes in 5 s.
    const stock = await firstValueFrom(client.send<StockLevel, string>('stock.get', 'apple'));
    console.log(`stock of ${stock.sku}: ${stock.level}`);

    // Confirmed means the broker has the events: wait until the handler has seen both.
    await app.get(OrderLog).waitFor(2, 10_000);
  } finally {
    await client.close();
  }
  await app.close();
  console.log('done');
} catch (error) {
  // rxamqp's errors never show the password of the URL.
  console.error(`The example failed: ${(error as Error).message}`);
  process.exit(1);
}
