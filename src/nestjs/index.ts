/**
 * `rxamqp/nestjs`: rxamqp in NestJS's idioms. `RxAmqpModule.forRoot` opens a recovering connection with
 * its topology and publisher; `@Consume` and `@Rpc` handlers on providers and controllers consume with
 * guards, interceptors, pipes and exception filters in the path, settle by policy, come back after
 * each reconnect and drain on shutdown. NestJS (`@nestjs/common`, `@nestjs/core`) is an optional peer
 * dependency: importing `rxamqp` never loads it.
 *
 * @example
 * ```ts
 * import { AmqpPayload, Consume, RxAmqpModule } from 'rxamqp/nestjs';
 *
 * @Injectable()
 * class Worker {
 *   @Consume({ queue: 'jobs', concurrency: 4 })
 *   run(@AmqpPayload() job: Job) { return this.jobs.run(job); }
 * }
 *
 * @Module({ imports: [RxAmqpModule.forRoot({ url: 'amqp://localhost' })], providers: [Worker] })
 * class AppModule {}
 * ```
 *
 * @module
 */
import 'reflect-metadata';

export { type ReadyConnection, RxAmqpConnection } from './connection.js';
export {
  AmqpDelivery,
  AmqpHeaders,
  type AmqpParamPipe,
  AmqpPayload,
  CONTEXT_TYPE,
  Consume,
  getConnectionObservableToken,
  getConnectionToken,
  getPublisherToken,
  getTopologyToken,
  InjectConnection,
  InjectPublisher,
  InjectRxAmqp,
  InjectTopology,
  Rpc,
} from './decorators.js';
export { decodePayload, PayloadDecodeError, RPC_ERROR_HEADER } from './handlers.js';
export { RxAmqpHealthIndicator, type RxAmqpHealthOptions, type RxAmqpHealthResult } from './health.js';
export {
  RXAMQP_MODULE_OPTIONS,
  RxAmqpModule,
  type RxAmqpModuleExtras,
  type RxAmqpModuleForRootAsyncOptions,
  type RxAmqpModuleForRootOptions,
} from './module.js';
export type {
  ConsumeHandlerOptions,
  HandlerDefaults,
  HandlerFailurePolicy,
  HandlerSource,
  ResolvedModuleOptions,
  RpcHandlerOptions,
  RxAmqpModuleOptions,
} from './options.js';
export * from './transport/index.js';
