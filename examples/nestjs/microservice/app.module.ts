/**
 * The microservice's root module: the shop controller and the log of the order events it handled.
 * The transport is not here: `main.ts` gives `RxAmqpServer` to `createMicroservice` as its strategy.
 */
import { Module } from '@nestjs/common';
import { OrderLog } from './order-log.js';
import { ShopController } from './shop.controller.js';

@Module({
  controllers: [ShopController],
  providers: [OrderLog],
})
export class AppModule {}
