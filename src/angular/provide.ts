/**
 * `provideRxAmqp`: the environment providers that put one `RxAmqp` service (one connection) in an
 * application or a route. The service is built by a factory provider, without decorators, so that
 * the library needs no Angular compiler (nothing to link, no JIT) and works with any build.
 *
 * @module
 */
import {
  DestroyRef,
  type EnvironmentProviders,
  ErrorHandler,
  Injector,
  inject,
  makeEnvironmentProviders,
  NgZone,
  PLATFORM_ID,
  type Provider,
  provideEnvironmentInitializer,
  runInInjectionContext,
} from '@angular/core';
import type { ConnectOptions } from '../index.js';
import { type RxAmqpConfig, type RxAmqpConfigFactory, type SplitConfig, splitConfig } from './config.js';
import { RxAmqp } from './service.js';
import { NO_ZONE, type ZoneRunner } from './zone.js';

/**
 * Provides the `RxAmqp` service: one recovering connection to RabbitMQ through a WebSocket relay,
 * opened while the application starts (or on first use, `connectOn: 'first-use'`) and closed when
 * the injector that holds it is destroyed. Give the configuration as an object (checked at once: a
 * missing or non-WebSocket URL throws a `ConfigurationError`), or as a function run in an injection
 * context, which may `inject()` what it needs and return the configuration or a Promise of it.
 *
 * A `credentials` provider (`() => ({ username, password, expiresAt? })`, or a Promise or Observable
 * of it) is asked before every connection attempt, the first and each reconnect; it runs in the
 * injection context too, so it may `inject()` an auth service, and a token with an `expiresAt` is
 * refreshed on the open connection before it expires.
 *
 * In server-side rendering (`PLATFORM_ID` `'server'`) the service never connects: its state stays
 * `INITIAL` and its streams emit nothing; the browser's copy of the application connects.
 *
 * @example
 * ```ts
 * bootstrapApplication(App, {
 *   providers: [provideRxAmqp({ url: 'ws://localhost:15670/', heartbeat: 20, name: 'orders-ui' })],
 * });
 * ```
 * @example
 * ```ts
 * // The URL from an environment service, a token from the auth service at each (re)connect.
 * provideRxAmqp(() => ({
 *   url: inject(Environment).relayUrl,
 *   credentials: () => inject(Auth).token$.pipe(map((token) => ({ username: 'web', password: token.value, expiresAt: token.expiresAt }))),
 * }));
 * ```
 */
export function provideRxAmqp(config: RxAmqpConfig | RxAmqpConfigFactory): EnvironmentProviders {
  const checked = typeof config === 'function' ? undefined : splitConfig(config);
  const providers: (Provider | EnvironmentProviders)[] = [
    {
      provide: RxAmqp,
      useFactory: () => {
        const injector = inject(Injector);
        const zone: ZoneRunner = inject(NgZone, { optional: true }) ?? NO_ZONE;
        const errorHandler = inject(ErrorHandler, { optional: true });
        const destroyRef = inject(DestroyRef);
        // Server-side rendering: a page rendered on the server does not connect (its messages would
        // arrive after the HTML is sent); the browser's copy of the application does.
        const onServer = inject(PLATFORM_ID, { optional: true }) === 'server';
        const resolved = onServer ? undefined : (checked ?? resolveFactory(config as RxAmqpConfigFactory));
        const service = new RxAmqp(
          resolved === undefined
            ? undefined
            : mapConfig(resolved, (c) => withInjectionContext(c, injector, zone)),
          zone,
          (error) => {
            if (errorHandler === null) console.error(error);
            else zone.run(() => errorHandler.handleError(error));
          },
        );
        destroyRef.onDestroy(() => service.destroy());
        return service;
      },
    },
  ];
  // A factory's connectOn is known only once it has run: its service is created at startup, and
  // connects then unless the configuration says 'first-use'.
  if (checked === undefined || checked.connectOn === 'startup') {
    providers.push(
      provideEnvironmentInitializer(() => {
        inject(RxAmqp);
      }),
    );
  }
  return makeEnvironmentProviders(providers);
}

/**
 * Runs the factory (in the provider's injection context) and checks what it returns; a Promise is
 * checked once it resolves.
 */
function resolveFactory(factory: RxAmqpConfigFactory): SplitConfig | PromiseLike<SplitConfig> {
  const config = factory();
  if (typeof (config as PromiseLike<RxAmqpConfig> | null)?.then === 'function') {
    return Promise.resolve(config).then(splitConfig);
  }
  return splitConfig(config);
}

function mapConfig(
  config: SplitConfig | PromiseLike<SplitConfig>,
  f: (c: SplitConfig) => SplitConfig,
): SplitConfig | PromiseLike<SplitConfig> {
  return 'then' in config ? Promise.resolve(config).then(f) : f(config);
}

/**
 * The credentials provider, run inside Angular's zone and injection context: it may `inject()` an
 * auth service, and what it does synchronously (a redirect to a login page, say) is seen by Angular.
 */
function withInjectionContext(config: SplitConfig, injector: Injector, zone: ZoneRunner): SplitConfig {
  const provider = config.connect.credentials;
  if (typeof provider !== 'function') return config;
  const credentials: NonNullable<ConnectOptions['credentials']> = () =>
    zone.run(() => runInInjectionContext(injector, provider));
  return { ...config, connect: Object.freeze({ ...config.connect, credentials }) };
}
