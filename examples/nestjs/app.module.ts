/**
 * The shop's root module: `RxAmqpModule.forRoot` with the broker's URL and the `shop` topic exchange
 * in its topology (declared again after each reconnect), terminus for `/health`, the HTTP controllers,
 * the order worker (`@Consume`) and the price service (`@Rpc`).
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RxAmqpModule } from 'rxamqp/nestjs';
import { HealthController } from './health.controller.js';
import { OrdersController } from './orders.controller.js';
import { OrdersWorker } from './orders.worker.js';
import { PricesController } from './prices.controller.js';
import { PricesRpc } from './prices.rpc.js';
import { SHOP_EXCHANGE } from './shop.js';

@Module({})
export class AppModule {
  /** The application on the broker at `url`. */
  static forBroker(url: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        RxAmqpModule.forRoot({
          url,
          topology: { exchanges: [{ name: SHOP_EXCHANGE, type: 'topic', durable: true }] },
          // On SIGTERM: consumers cancelled, handlers running finish and ack, confirms awaited.
          shutdown: { timeout: 10_000 },
        }),
        TerminusModule,
      ],
      controllers: [OrdersController, PricesController, HealthController],
      providers: [OrdersWorker, PricesRpc],
    };
  }
}
