/**
 * `RxAmqpModule`: one connection per `forRoot` / `forRootAsync` (named, several allowed), built with
 * Nest's `ConfigurableModuleBuilder`. Each connection comes with its publisher, its topology, its
 * handlers (found by their decorators) and its shutdown.
 *
 * @module
 */
import {
  type ConfigurableModuleAsyncOptions,
  ConfigurableModuleBuilder,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type Provider,
} from '@nestjs/common';
import {
  DiscoveryModule,
  DiscoveryService,
  ExternalContextCreator,
  MetadataScanner,
  ModuleRef,
} from '@nestjs/core';
import { map } from 'rxjs';
import { describe, RxAmqpConnection } from './connection.js';
import {
  getConnectionObservableToken,
  getConnectionToken,
  getPublisherToken,
  getTopologyToken,
} from './decorators.js';
import { HandlerRunner } from './handlers.js';
import { RxAmqpHealthIndicator } from './health.js';
import { checkModuleOptions, DEFAULT_CONNECTION, type RxAmqpModuleOptions } from './options.js';

/** The injection token of a module's options (each `forRoot` has its own, inside its module). */
export const RXAMQP_MODULE_OPTIONS = 'rxamqp:module-options';

/** What `forRoot` takes beside the options: the connection's name, and whether the module is global. */
export interface RxAmqpModuleExtras {
  /** The connection's name, for several connections (`@InjectPublisher('events')`). Default `'default'`. */
  readonly name?: string;
  /** Make the connection's providers injectable everywhere without importing the module. Default false. */
  readonly isGlobal?: boolean;
  /**
   * Wait at bootstrap until the connection is open and the topology and handlers' queues declared
   * (the application fails to start when they cannot be). Default true; false starts in the background.
   */
  readonly waitForConnection?: boolean;
}

/** The lifecycle of one connection: started at bootstrap, drained at shutdown. */
class ConnectionLifecycle implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger: Logger;

  constructor(
    private readonly connection: RxAmqpConnection,
    private readonly runner: HandlerRunner,
    private readonly wait: boolean,
  ) {
    this.logger = new Logger(`RxAmqp:${connection.name}`);
  }

  async onApplicationBootstrap(): Promise<void> {
    const starting = this.connection.start(this.wait).then(() => this.runner.start());
    if (this.wait) await starting;
    else {
      starting.catch((error: unknown) => this.logger.error(`could not start: ${describe(error)}`));
    }
  }

  /**
   * The drain runs at the earliest shutdown hook Nest has (`onModuleDestroy`): the handlers still
   * running finish before the modules that import this one are destroyed and before any
   * `beforeApplicationShutdown` hook (a module torn down in the same round may still go first).
   */
  async onModuleDestroy(): Promise<void> {
    await this.connection.shutdown();
  }

  onApplicationShutdown(): void {
    this.runner.stop();
  }
}

const { ConfigurableModuleClass } = new ConfigurableModuleBuilder<RxAmqpModuleOptions>({
  optionsInjectionToken: RXAMQP_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<RxAmqpModuleExtras>(
    { isGlobal: false, name: DEFAULT_CONNECTION, waitForConnection: true },
    (definition, extras) => {
      const name = extras.name ?? DEFAULT_CONNECTION;
      const lifecycleToken = `rxamqp:lifecycle:${name}`;
      const providers: Provider[] = [
        {
          provide: getConnectionToken(name),
          useFactory: (options: RxAmqpModuleOptions) => {
            checkModuleOptions(options, name);
            return new RxAmqpConnection({ ...options, name });
          },
          inject: [RXAMQP_MODULE_OPTIONS],
        },
        {
          provide: getPublisherToken(name),
          useFactory: (connection: RxAmqpConnection) => connection.publisher,
          inject: [getConnectionToken(name)],
        },
        {
          provide: getTopologyToken(name),
          useFactory: (connection: RxAmqpConnection) => connection.ready$.pipe(map((ready) => ready.applied)),
          inject: [getConnectionToken(name)],
        },
        {
          provide: getConnectionObservableToken(name),
          useFactory: (connection: RxAmqpConnection) => connection.connection$,
          inject: [getConnectionToken(name)],
        },
        {
          provide: lifecycleToken,
          useFactory: (
            connection: RxAmqpConnection,
            discovery: DiscoveryService,
            scanner: MetadataScanner,
            contextCreator: ExternalContextCreator,
            moduleRef: ModuleRef,
          ) =>
            new ConnectionLifecycle(
              connection,
              new HandlerRunner(
                connection,
                discovery,
                scanner,
                contextCreator,
                moduleRef,
                extras.waitForConnection ?? true,
              ),
              extras.waitForConnection ?? true,
            ),
          inject: [
            getConnectionToken(name),
            DiscoveryService,
            MetadataScanner,
            ExternalContextCreator,
            ModuleRef,
          ],
        },
      ];
      return {
        ...definition,
        global: extras.isGlobal ?? false,
        imports: [...(definition.imports ?? []), DiscoveryModule],
        providers: [...(definition.providers ?? []), MetadataScanner, RxAmqpHealthIndicator, ...providers],
        exports: [
          getConnectionToken(name),
          getPublisherToken(name),
          getConnectionObservableToken(name),
          getTopologyToken(name),
          RxAmqpHealthIndicator,
        ],
      };
    },
  )
  .build();

/**
 * The NestJS module of rxamqp: `RxAmqpModule.forRoot(options)` (or `forRootAsync({ useFactory,
 * inject, imports })`) opens one recovering connection, declares its topology (again after each
 * reconnect), starts the `@Consume` and `@Rpc` handlers of the application's providers and
 * controllers, and drains it all on shutdown. Give `name` for several connections.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     RxAmqpModule.forRootAsync({
 *       isGlobal: true,
 *       imports: [ConfigModule],
 *       inject: [ConfigService],
 *       useFactory: (config: ConfigService) => ({ url: config.getOrThrow('AMQP_URL') }),
 *     }),
 *   ],
 *   providers: [OrdersWorker],
 * })
 * export class AppModule {}
 * ```
 */
@Module({})
export class RxAmqpModule extends ConfigurableModuleClass {}

/** The argument of `RxAmqpModule.forRoot`: the options and the extras. */
export type RxAmqpModuleForRootOptions = RxAmqpModuleOptions & RxAmqpModuleExtras;
/** The argument of `RxAmqpModule.forRootAsync`: how to make the options (Nest's async options), and the extras. */
export type RxAmqpModuleForRootAsyncOptions = ConfigurableModuleAsyncOptions<RxAmqpModuleOptions> &
  RxAmqpModuleExtras;
