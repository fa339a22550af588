/**
 * The handlers of a connection: found on providers and controllers by their decorators, wrapped by
 * Nest's `ExternalContextCreator` (guards, interceptors, pipes, exception filters, in an execution
 * context of type `'rxamqp'`), and run as rxamqp pipelines that come back after each reconnect.
 *
 * @module
 */
import { Logger } from '@nestjs/common';
import {
  type ContextId,
  ContextIdFactory,
  type DiscoveryService,
  type ExternalContextCreator,
  type MetadataScanner,
  type ModuleRef,
} from '@nestjs/core';
import type { ParamsFactory } from '@nestjs/core/helpers/external-context-creator.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import {
  catchError,
  defer,
  EMPTY,
  EmptyError,
  lastValueFrom,
  type Observable,
  retry,
  type Subscription,
  switchMap,
  tap,
  timer,
} from 'rxjs';
import { ackOnSuccess } from '../../operators/ackOnSuccess.js';
import type { Channel } from '../client/channel.js';
import type { Delivery } from '../client/delivery.js';
import { ConfigurationError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated.js';
import { type AppliedTopology, applyTopology, consumeSpec } from '../topology/apply.js';
import type { BindSpec, ExchangeSpec, QueueSpec, Topology } from '../topology/specs.js';
import { describe, type RxAmqpConnection } from './connection.js';
import {
  CONTEXT_TYPE,
  HANDLER_METADATA,
  type HandlerMetadata,
  PARAMS_METADATA,
  ParamKind,
} from './decorators.js';
import {
  checkHandlerDefaults,
  DEFAULT_CONNECTION,
  type HandlerDefaults,
  type HandlerFailurePolicy,
  type HandlerSource,
} from './options.js';

/** The header an error reply of an `@Rpc` handler carries. */
export const RPC_ERROR_HEADER = 'x-rxamqp-error';

/** A payload that could not be decoded: rejected without requeue whatever the policy (it never will be). */
export class PayloadDecodeError extends Error {
  override readonly name = 'PayloadDecodeError';
}

/** One handler method found on a provider or controller. */
interface FoundHandler {
  /** The instance to call; for a request-scoped (or transient) host, its static stand-in. */
  readonly instance: object;
  /** A request-scoped or transient host: an instance is resolved for each delivery. */
  readonly scoped: InstanceWrapper | undefined;
  readonly methodName: string;
  readonly metadata: HandlerMetadata;
  /** `Class.method`, for messages. */
  readonly label: string;
}

/** Decodes a delivery's payload: JSON when it says so (or says nothing and parses), text, or bytes. */
export function decodePayload(delivery: Delivery): unknown {
  const contentType = delivery.properties.contentType?.toLowerCase();
  const body = delivery.body;
  if (contentType === undefined || contentType.includes('json')) {
    const text = delivery.text();
    if (contentType === undefined) {
      if (text.length === 0) return undefined;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new PayloadDecodeError(`the ${contentType} payload does not parse: ${describe(error)}`, {
        cause: error,
      });
    }
  }
  if (contentType.startsWith('text/')) return delivery.text();
  return body;
}

/** Each delivery's decoded payload, for the handlers with several `@AmqpPayload` parameters. */
const decoded = new WeakMap<Delivery, unknown>();

/** The values of the parameter decorators, from the handler's arguments (`[delivery]`). */
const PARAMS_FACTORY: ParamsFactory = {
  exchangeKeyForValue(type: number, data: unknown, args: unknown[]): unknown {
    const delivery = args[0] as Delivery;
    if (type === ParamKind.Delivery) return delivery;
    if (type === ParamKind.Headers) {
      const headers = delivery.properties.headers ?? {};
      return typeof data === 'string' ? headers[data] : headers;
    }
    if (type === ParamKind.Payload) {
      // Decoded once per delivery, however many parameters ask for it.
      let payload = decoded.get(delivery);
      if (payload === undefined && !decoded.has(delivery)) {
        payload = decodePayload(delivery);
        decoded.set(delivery, payload);
      }
      return typeof data === 'string' && typeof payload === 'object' && payload !== null
        ? (payload as Record<string, unknown>)[data]
        : payload;
    }
    return undefined;
  },
};

/**
 * Finds the handlers of one connection and runs them. Made by the module for each connection; its
 * `start()` runs at application bootstrap, after the connection's topology is declared.
 */
export class HandlerRunner {
  private readonly logger: Logger;
  private readonly running: Subscription[] = [];

  constructor(
    private readonly connection: RxAmqpConnection,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly contextCreator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
    /** Whether the bootstrap waits (a first failure fails it) or the handlers start in the background. */
    private readonly wait = true,
  ) {
    this.logger = new Logger(`RxAmqp:${connection.name}`);
  }

  /** The handlers of this connection, checked. */
  find(): FoundHandler[] {
    const found: FoundHandler[] = [];
    const wrappers = [...this.discovery.getProviders(), ...this.discovery.getControllers()];
    const seen = new Set<object>();
    for (const wrapper of wrappers) {
      const instance: unknown = wrapper.instance;
      if (typeof instance !== 'object' || instance === null || seen.has(instance)) continue;
      seen.add(instance);
      // A request-scoped (or transient) host gets an instance of its own for each delivery, with the
      // delivery as its REQUEST; its static instance only shows where the handlers are.
      const scoped = wrapper.isDependencyTreeStatic() ? undefined : wrapper;
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (prototype === null) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = (prototype as Record<string, unknown>)[methodName];
        if (typeof method !== 'function') continue;
        const metadata = Reflect.getMetadata(HANDLER_METADATA, method) as HandlerMetadata | undefined;
        if (metadata === undefined) continue;
        if ((metadata.options.connection ?? DEFAULT_CONNECTION) !== this.connection.name) continue;
        const label = `${instance.constructor.name}.${methodName}`;
        checkSource(metadata.options, label);
        if (metadata.kind === 'consume') checkHandlerDefaults(metadata.options, `@Consume on ${label}`);
        else checkHandlerDefaults({ ...metadata.options }, `@Rpc on ${label}`);
        found.push({ instance, scoped, methodName, metadata, label });
      }
    }
    return found;
  }

  /**
   * Starts every handler; resolves once each has its queue and bindings declared on the first
   * connection (rejects, failing the bootstrap, when one cannot).
   */
  async start(): Promise<void> {
    const handlers = this.find();
    await Promise.all(handlers.map((h) => this.run(h)));
    if (handlers.length > 0) this.logger.log(`${handlers.length} handler(s) consuming`);
  }

  /** Unsubscribes every handler (after the drain, or when the application stops without one). */
  stop(): void {
    for (const s of this.running.splice(0)) s.unsubscribe();
  }

  /** How a handler is called for one delivery: through Nest's enhancers, on the right instance. */
  private caller(handler: FoundHandler): (delivery: Delivery) => Promise<unknown> {
    const { instance, scoped, methodName } = handler;
    const wrap = (host: object, contextId?: ContextId, inquirerId?: string) =>
      this.contextCreator.create(
        host,
        (host as Record<string, (...args: unknown[]) => unknown>)[methodName] as (
          ...args: unknown[]
        ) => unknown,
        methodName,
        PARAMS_METADATA,
        PARAMS_FACTORY,
        contextId,
        inquirerId,
        undefined,
        CONTEXT_TYPE,
      ) as (delivery: Delivery) => Promise<unknown>;
    if (scoped === undefined) return noValueIsUndefined(wrap(instance));
    return noValueIsUndefined(async (delivery) => {
      const contextId = ContextIdFactory.create();
      this.moduleRef.registerRequestByContextId(delivery, contextId);
      const host = (await this.moduleRef.resolve(scoped.token, contextId, { strict: false })) as object;
      return wrap(host, contextId, scoped.id)(delivery);
    });
  }

  private run(handler: FoundHandler): Promise<void> {
    const { metadata, label } = handler;
    const call = this.caller(handler);
    const topology = handlerTopology(metadata.options);
    const defaults = this.connection.options.handlers ?? {};
    const options = metadata.options as HandlerSource & HandlerDefaults;
    const concurrency = options.concurrency ?? defaults.concurrency ?? 1;
    const prefetch = options.prefetch ?? defaults.prefetch ?? concurrency;
    const queue = topology.queues?.[0] as QueueSpec;
    let declared!: () => void;
    let failed!: (error: unknown) => void;
    const firstDeclared = new Promise<void>((resolve, reject) => {
      declared = resolve;
      failed = reject;
    });
    let first = true;

    const consume = (channel: Channel, applied: AppliedTopology): Observable<unknown> => {
      const deliveries = consumeSpec(channel, { queue, prefetch }, applied);
      if (metadata.kind === 'rpc') return deliveries.pipe(this.answer(channel, call, concurrency, label));
      const policy = options.onError ?? defaults.onError ?? 'retry';
      const maxDeliveries = options.maxDeliveries ?? defaults.maxDeliveries;
      return deliveries.pipe(
        ackOnSuccess((delivery) => this.handle(call, delivery, policy, label), {
          concurrency,
          onError: typeof policy === 'function' ? 'reject' : policy,
          // 'requeue' gives a message one more chance, not an endless loop.
          requeueRedelivered: false,
          ...(maxDeliveries === undefined ? {} : { maxDeliveries }),
          onFailure: (error) => this.logger.warn(`${label} failed: ${describe(error)}`),
        }),
      );
    };

    const subscription = this.connection.ready$
      .pipe(
        switchMap(({ connection }) =>
          defer(() =>
            applyTopology(connection, topology).pipe(
              tap(() => {
                if (first) {
                  first = false;
                  declared();
                }
              }),
              switchMap((applied) =>
                connection.channel().pipe(switchMap((channel) => consume(channel, applied))),
              ),
            ),
          ).pipe(
            // On this connection: a refused declare or consume is tried again after a pause (the
            // next connection starts afresh anyway).
            retry({
              delay: (error: unknown, attempt: number) => {
                // Lost or draining: the next connection (if any) starts the handler afresh.
                if (!connection.isOpen || connection.isDraining) return EMPTY;
                if (first && this.wait) {
                  failed(error);
                  throw error;
                }
                this.logger.warn(`${label}: ${describe(error)}; trying again`);
                return timer(Math.min(500 * 2 ** (attempt - 1), 30_000));
              },
            }),
            catchError(() => EMPTY),
          ),
        ),
      )
      .subscribe({
        error: (error: unknown) => {
          if (first) failed(error);
          else this.logger.error(`${label} stopped: ${describe(error)}`);
        },
      });
    this.running.push(subscription);
    return firstDeclared.catch((error: unknown) => {
      subscription.unsubscribe();
      throw new ConfigurationError(
        `${label}: its queue or bindings could not be declared: ${describe(error)}`,
        {
          cause: error,
        },
      );
    });
  }

  /** Runs a `@Consume` handler; a function policy or an undecodable payload settles it here. */
  private async handle(
    call: (delivery: Delivery) => Promise<unknown>,
    delivery: Delivery,
    policy: HandlerFailurePolicy,
    label: string,
  ): Promise<unknown> {
    try {
      return await call(delivery);
    } catch (error) {
      if (error instanceof PayloadDecodeError) {
        this.logger.warn(`${label}: ${error.message}; rejected`);
        delivery.reject({ requeue: false });
        return undefined;
      }
      if (typeof policy !== 'function') throw error;
      try {
        policy(error, delivery);
      } catch (policyError) {
        this.logger.error(`${label}: the failure policy threw: ${describe(policyError)}`);
      }
      // A policy that settled nothing must not leave the delivery held until the channel closes.
      if (!delivery.settled) delivery.reject({ requeue: false });
      return undefined;
    }
  }

  /** `@Rpc`: each request answered (a result or an error reply), then acknowledged. */
  private answer(
    channel: Channel,
    call: (delivery: Delivery) => Promise<unknown>,
    concurrency: number,
    label: string,
  ): (source: Observable<Delivery>) => Observable<unknown> {
    return ackOnSuccess(
      async (request: Delivery) => {
        const { replyTo, correlationId } = request.properties;
        if (replyTo === undefined || replyTo === '') {
          this.logger.warn(`${label}: a request without replyTo; rejected`);
          request.reject({ requeue: false });
          return undefined;
        }
        let body: string | Uint8Array;
        let properties: BasicProperties;
        try {
          const result = await call(request);
          ({ body, properties } = encodeReply(result));
        } catch (error) {
          const reply = errorReply(error);
          // A client's mistake (a 4xx from a pipe or a NotFoundException) is an answer, not a fault.
          if (reply.status !== undefined && reply.status < 500)
            this.logger.debug(`${label}: ${reply.message}`);
          else this.logger.warn(`${label} failed: ${describe(error)}`);
          body = JSON.stringify({ error: reply });
          properties = { contentType: 'application/json', headers: { [RPC_ERROR_HEADER]: true } };
        }
        const reply = { ...properties, ...(correlationId === undefined ? {} : { correlationId }) };
        await lastValueFrom(channel.publish('', replyTo, body, reply));
        return undefined;
      },
      {
        concurrency,
        onError: 'reject',
        onFailure: (error) => this.logger.warn(`${label}: ${describe(error)}`),
      },
    );
  }
}

/**
 * Nest turns a handler's Observable into its last value with `lastValueFrom`, which fails on one that
 * completes without a value: that is a success with no result here, as the docs promise.
 */
function noValueIsUndefined(
  call: (delivery: Delivery) => Promise<unknown>,
): (delivery: Delivery) => Promise<unknown> {
  return (delivery) =>
    call(delivery).catch((error: unknown) => {
      if (error instanceof EmptyError) return undefined;
      throw error;
    });
}

/** A reply body and its content type: JSON unless a string or bytes. */
function encodeReply(result: unknown): { body: string | Uint8Array; properties: BasicProperties } {
  if (typeof result === 'string') return { body: result, properties: { contentType: 'text/plain' } };
  if (result instanceof Uint8Array) return { body: result, properties: {} };
  return {
    body: result === undefined ? '' : JSON.stringify(result),
    properties: { contentType: 'application/json' },
  };
}

/**
 * What an error reply says: the name and message of a client's mistake (an HTTP exception below 500,
 * whose status goes along) or of an error meant for the caller (an `RpcException`); for anything else
 * only that it failed, as Nest's own RPC replies do: an internal message may name a host or a user.
 */
function errorReply(error: unknown): { name: string; message: string; status?: number } {
  const status: unknown = (error as { getStatus?: () => unknown } | null)?.getStatus?.();
  const forTheCaller =
    error instanceof Error &&
    ((typeof status === 'number' && status < 500) ||
      typeof (error as { getError?: unknown }).getError === 'function');
  if (!forTheCaller) return { name: 'Error', message: 'Internal server error' };
  return {
    name: error.name,
    message: error.message,
    ...(typeof status === 'number' ? { status } : {}),
  };
}

/** A handler's queue (and bindings) as a topology. */
export function handlerTopology(source: HandlerSource): Topology {
  const queue: QueueSpec =
    typeof source.queue === 'string'
      ? source.queue === ''
        ? { name: '', exclusive: true, autoDelete: true }
        : {
            name: source.queue,
            durable: true,
            ...(source.queueArguments === undefined ? {} : { arguments: source.queueArguments }),
          }
      : source.queue;
  const exchanges: ExchangeSpec[] = typeof source.exchange === 'object' ? [source.exchange] : [];
  const bindings: BindSpec[] =
    source.exchange === undefined
      ? []
      : (source.routingKeys ?? ['#']).map((routingKey) => ({
          exchange: source.exchange as NonNullable<HandlerSource['exchange']>,
          queue,
          routingKey,
        }));
  return { exchanges, queues: [queue], bindings };
}

function checkSource(source: HandlerSource, label: string): void {
  if (typeof source !== 'object' || source === null) {
    throw new ConfigurationError(`${label}: the handler's options must be an object`);
  }
  if (typeof source.queue !== 'string' && (typeof source.queue !== 'object' || source.queue === null)) {
    throw new ConfigurationError(`${label}: queue must be a name or a QueueSpec`);
  }
  if (source.routingKeys !== undefined && source.exchange === undefined) {
    throw new ConfigurationError(`${label}: routingKeys need an exchange to bind to`);
  }
  if (source.routingKeys !== undefined && !source.routingKeys.every((k) => typeof k === 'string')) {
    throw new ConfigurationError(`${label}: routingKeys must be strings`);
  }
}
