/**
 * A small NestJS shop on rxamqp (`rxamqp/nestjs`): orders placed over HTTP are published to RabbitMQ
 * with confirms, a worker consumes them, a price service answers over request/reply, and `/health`
 * reports the connection.
 *
 *   npx tsx examples/nestjs/main.ts
 *   AMQP_URL=amqp://user:password@host:5672/vhost PORT=8080 npx tsx examples/nestjs/main.ts
 *
 *   curl -X POST localhost:3000/orders -H 'content-type: application/json' -d '{"sku":"apple","quantity":3}'
 *   curl localhost:3000/orders
 *   curl 'localhost:3000/prices/apple?quantity=12'
 *   curl localhost:3000/health
 *
 * The broker defaults to amqp://guest:guest@localhost:5672. SIGTERM or SIGINT shuts it down
 * gracefully (the handlers' work finishes and is acknowledged) and it exits 0.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
const port = Number(process.env.PORT ?? 3000);

try {
  const app = await NestFactory.create(AppModule.forBroker(url));
  // On a signal: Nest's shutdown hooks (the connection drains), then exit 0 rather than re-raising
  // the signal, so that the process manager sees a clean exit.
  app.enableShutdownHooks([], { useProcessExit: true });
  await app.listen(port);
  console.log(`Shop listening on http://localhost:${port}`);
} catch (error) {
  // rxamqp's errors never show the password of the URL.
  console.error(`The shop could not start: ${(error as Error).message}`);
  process.exit(1);
}
