/**
 * A health indicator for `@nestjs/terminus`, built on each connection's `state$` and `blocked$`. It
 * returns terminus's result shape (`{ [key]: { status: 'up' | 'down', ... } }`) without importing
 * terminus, which stays an optional peer dependency.
 *
 * @module
 */
import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { RxAmqpConnection } from './connection.js';
import { getConnectionToken } from './decorators.js';
import { DEFAULT_CONNECTION } from './options.js';

/** What a check of one connection reports (terminus's `HealthIndicatorResult` for one key). */
export type RxAmqpHealthResult = Record<
  string,
  {
    readonly status: 'up' | 'down';
    /** The connection's state: `CONNECTED`, `RECONNECTING`, `CONNECTING`, `CLOSED`, ... */
    readonly state: string;
    /** Whether the broker blocks the connection's publishes (a memory or disk alarm). */
    readonly blocked: boolean;
    readonly connection: string;
  }
>;

/** Options of one check. */
export interface RxAmqpHealthOptions {
  /** Which connection (its `forRoot` name). Default `'default'`. */
  readonly connection?: string;
  /**
   * Whether a blocked connection (the broker refuses publishes during a resource alarm) counts as
   * down. Default true: a service that publishes cannot do its work; false for consumers only.
   */
  readonly blockedIsDown?: boolean;
}

/**
 * Reports a connection `up` while it is open (and not blocked), `down` otherwise, for
 * `HealthCheckService.check`.
 *
 * @example
 * ```ts
 * @Controller('health')
 * class HealthController {
 *   constructor(private readonly health: HealthCheckService, private readonly amqp: RxAmqpHealthIndicator) {}
 *   @Get() @HealthCheck()
 *   check() { return this.health.check([() => this.amqp.isHealthy('rabbitmq')]); }
 * }
 * ```
 */
@Injectable()
export class RxAmqpHealthIndicator {
  // An explicit token: the design-time type would not survive a type-only import.
  constructor(@Inject(ModuleRef) private readonly moduleRef: ModuleRef) {}

  /** The health of a connection under `key` (default `'rabbitmq'`). */
  isHealthy(key = 'rabbitmq', options: RxAmqpHealthOptions = {}): RxAmqpHealthResult {
    const name = options.connection ?? DEFAULT_CONNECTION;
    const connection = this.moduleRef.get<RxAmqpConnection>(getConnectionToken(name), { strict: false });
    const { status, blocked } = connection.health();
    const up = status === 'CONNECTED' && !(blocked && (options.blockedIsDown ?? true));
    return { [key]: { status: up ? 'up' : 'down', state: status, blocked, connection: name } };
  }
}
