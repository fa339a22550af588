/**
 * The options of `rxamqp/nestjs`: the module's (one connection each), and the handlers' (one consumer
 * each), validated once at bootstrap with a `ConfigurationError` that never shows a password.
 *
 * @module
 */
import type { Delivery } from '../client/delivery.js';
import type { DrainOptions } from '../client/drain.js';
import type { PublisherOptions } from '../client/publisher.js';
import type { ConnectOptions } from '../config/options.js';
import { redactUrl } from '../config/url.js';
import { ConfigurationError } from '../errors.js';
import type { FieldTable } from '../protocol/field-table.js';
import type { ExchangeRef, QueueRef, Topology } from '../topology/specs.js';

/** The name of the connection when none is given. */
export const DEFAULT_CONNECTION = 'default';

/**
 * What becomes of a delivery whose handler failed (threw, rejected, errored):
 * - `'retry'` (default): basic.reject with requeue while attempts remain (bounded by the quorum queue's
 *   delivery count and `maxDeliveries`; a classic queue's message is tried twice), then without: a
 *   poison message never loops (see `ackOnSuccess`);
 * - `'requeue'`: basic.nack with requeue (not counted by RabbitMQ 4.3's delivery limit), a redelivered
 *   one rejected without requeue: at most two attempts;
 * - `'reject'` / `'dead-letter'`: basic.reject without requeue (to the queue's dead-letter exchange);
 * - a function: settles the delivery itself (it must ack, nack or reject it; what it throws is logged
 *   and the delivery rejected without requeue).
 *
 * @example
 * ```ts
 * @Consume({ queue: 'payments', onError: 'dead-letter' })
 * ```
 */
export type HandlerFailurePolicy =
  | 'retry'
  | 'requeue'
  | 'reject'
  | 'dead-letter'
  | ((error: unknown, delivery: Delivery) => void);

/**
 * Options of `RxAmqpModule.forRoot`: one connection, its topology, its publisher, the defaults of its
 * handlers and how it shuts down.
 *
 * @example
 * ```ts
 * RxAmqpModule.forRoot({
 *   url: 'amqp://guest:guest@localhost:5672',
 *   topology: { exchanges: [{ name: 'orders', type: 'topic', durable: true }] },
 *   handlers: { onError: 'dead-letter', prefetch: 20 },
 * });
 * ```
 */
export interface RxAmqpModuleOptions {
  /** The broker's URL (`amqp://` or `amqps://`); its password never appears in errors or logs. */
  readonly url?: string;
  /**
   * Options of rxamqp's `connect()`. `recovery` defaults to true here (a module's connection comes
   * back after a loss, and so do its handlers and topology); `shared` is always true.
   */
  readonly connection?: Omit<ConnectOptions, 'shared'>;
  /** Exchanges, queues and bindings declared when the connection opens, and again after each reconnect. */
  readonly topology?: Topology;
  /** The injectable `Publisher`'s options. Default: confirms, buffered while disconnected, republished. */
  readonly publisher?: PublisherOptions;
  /** Defaults of the handlers of this connection (each handler may override them). */
  readonly handlers?: HandlerDefaults;
  /**
   * Shutdown (with `app.enableShutdownHooks()` or `app.close()`): the connection drains (consumers
   * cancelled, running handlers finish, acks and confirms flushed) for at most `timeout` ms (default
   * 25000), then closes.
   */
  readonly shutdown?: Pick<DrainOptions, 'timeout' | 'prefetched'>;
}

/** What every handler of a connection gets unless it says otherwise. */
export interface HandlerDefaults {
  /** Unacknowledged deliveries the broker sends each consumer. Default: `concurrency` (at least 1). */
  readonly prefetch?: number;
  /** Deliveries handled at once by each handler. Default 1. */
  readonly concurrency?: number;
  /** See {@link HandlerFailurePolicy}. Default `'retry'`. */
  readonly onError?: HandlerFailurePolicy;
  /** With `'retry'`, the most deliveries of one message. Default 20. */
  readonly maxDeliveries?: number;
}

/**
 * Where a handler's messages come from: a queue, optionally bound to an exchange with routing keys
 * (binding keys: `*` and `#` on a topic exchange). The queue and the bindings are declared at bootstrap
 * and after each reconnect.
 */
export interface HandlerSource {
  /**
   * The queue: a name (declared durable unless it is a server-named `''`), or a spec. A server-named
   * queue (`''` or a spec with name `''`) is exclusive to the handler's connection: good for
   * broadcasts to every instance.
   */
  readonly queue: QueueRef;
  /** An exchange to bind the queue to (by name: it must exist, e.g. from the module's topology). */
  readonly exchange?: ExchangeRef;
  /** The binding keys; default `['#']` with an exchange (everything), none without. */
  readonly routingKeys?: readonly string[];
  /** Queue arguments of a queue given by name (`x-queue-type`, `x-dead-letter-exchange`, ...). */
  readonly queueArguments?: FieldTable;
  /** The name of the module's connection (`forRoot({ ... }, name)`); default `'default'`. */
  readonly connection?: string;
}

/**
 * Options of a `@Consume` handler: where from, and how its deliveries are handled and settled.
 *
 * @example
 * ```ts
 * @Consume({ queue: 'orders.created', exchange: 'orders', routingKeys: ['created.*'], concurrency: 8 })
 * ```
 */
export interface ConsumeHandlerOptions extends HandlerSource, HandlerDefaults {}

/**
 * Options of an `@Rpc` handler: requests from a queue; the handler's result is the reply, sent to the
 * request's `replyTo` with its `correlationId` (direct reply-to works).
 *
 * @example
 * ```ts
 * @Rpc({ queue: 'rpc.prices' })
 * price(@AmqpPayload() q: { sku: string }) { return this.prices.of(q.sku); }
 * ```
 */
export interface RpcHandlerOptions extends HandlerSource {
  /** Unacknowledged requests the broker sends. Default: `concurrency`. */
  readonly prefetch?: number;
  /** Requests handled at once. Default 1. */
  readonly concurrency?: number;
}

/** The module's options with the connection's name, checked. */
export interface ResolvedModuleOptions extends RxAmqpModuleOptions {
  readonly name: string;
}

/** Checks the module options at bootstrap: a clear `ConfigurationError`, the URL's password masked. */
export function checkModuleOptions(options: RxAmqpModuleOptions, name: string): void {
  const where = `RxAmqpModule (connection '${name}')`;
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`${where}: the options must be an object`);
  }
  if (options.url !== undefined && typeof options.url !== 'string') {
    throw new ConfigurationError(`${where}: url must be a string`);
  }
  if (options.url !== undefined && !/^amqps?:\/\//i.test(options.url)) {
    throw new ConfigurationError(`${where}: '${redactUrl(options.url)}' is not an amqp:// or amqps:// URL`);
  }
  const timeout = options.shutdown?.timeout;
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0 && timeout <= 2_147_483_647)) {
    throw new ConfigurationError(`${where}: shutdown.timeout must be a number of milliseconds`);
  }
  if (options.handlers !== undefined) checkHandlerDefaults(options.handlers, `${where}: handlers`);
}

/** Checks what a handler's options may set (its own or the module's defaults). */
export function checkHandlerDefaults(options: HandlerDefaults, where: string): void {
  const { prefetch, concurrency, onError, maxDeliveries } = options;
  if (prefetch !== undefined && !(Number.isInteger(prefetch) && prefetch >= 1 && prefetch <= 65535)) {
    throw new ConfigurationError(
      `${where}: prefetch must be an integer from 1 to 65535, got ${String(prefetch)}`,
    );
  }
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new ConfigurationError(
      `${where}: concurrency must be a positive integer, got ${String(concurrency)}`,
    );
  }
  if (maxDeliveries !== undefined && !(Number.isInteger(maxDeliveries) && maxDeliveries >= 1)) {
    throw new ConfigurationError(
      `${where}: maxDeliveries must be a positive integer, got ${String(maxDeliveries)}`,
    );
  }
  if (
    onError !== undefined &&
    typeof onError !== 'function' &&
    !['retry', 'requeue', 'reject', 'dead-letter'].includes(onError)
  ) {
    throw new ConfigurationError(
      `${where}: onError must be 'retry', 'requeue', 'reject', 'dead-letter' or a function, got ${String(onError)}`,
    );
  }
}
