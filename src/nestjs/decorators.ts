/**
 * The decorators of `rxamqp/nestjs`: handlers (`@Consume`, `@Rpc`), their parameters (`@AmqpPayload`,
 * `@AmqpHeaders`, `@AmqpDelivery`) and injection by connection name (`@InjectConnection`,
 * `@InjectPublisher`, `@InjectRxAmqp`).
 *
 * @module
 */
import { Inject, type PipeTransform, SetMetadata, type Type } from '@nestjs/common';
import { type ConsumeHandlerOptions, DEFAULT_CONNECTION, type RpcHandlerOptions } from './options.js';

/** Metadata key of a handler method: its kind and options. */
export const HANDLER_METADATA = 'rxamqp:handler';
/**
 * Metadata key of a handler's parameters: Nest's own (`ROUTE_ARGS_METADATA`, as @nestjs/microservices
 * uses it too), whose pipe classes Nest's scanner instantiates with their dependencies; the entries
 * have the format its `ExternalContextCreator` reads.
 */
export const PARAMS_METADATA = '__routeArguments__';
/** The type of the execution context of a handler (`context.getType()`): guards and filters can tell. */
export const CONTEXT_TYPE = 'rxamqp';

/** What a decorated handler method declares. */
export type HandlerMetadata =
  | { readonly kind: 'consume'; readonly options: ConsumeHandlerOptions }
  | { readonly kind: 'rpc'; readonly options: RpcHandlerOptions };

/** The token of a connection's `RxAmqpConnection` (its connection, publisher and topology). */
export function getConnectionToken(name: string = DEFAULT_CONNECTION): string {
  return `rxamqp:connection:${name}`;
}

/** The token of a connection's `Publisher`. */
export function getPublisherToken(name: string = DEFAULT_CONNECTION): string {
  return `rxamqp:publisher:${name}`;
}

/** The token of a connection's applied topology: an `Observable<AppliedTopology>`, the latest replayed. */
export function getTopologyToken(name: string = DEFAULT_CONNECTION): string {
  return `rxamqp:topology:${name}`;
}

/** The token of a connection's `ConnectionObservable`. */
export function getConnectionObservableToken(name: string = DEFAULT_CONNECTION): string {
  return `rxamqp:connection$:${name}`;
}

/**
 * Handles each delivery of a queue: the method's result (a value, a Promise or an Observable) decides
 * the settlement (ack on success, the failure policy on error). Guards, interceptors, pipes and
 * exception filters of the class and method apply.
 *
 * @example
 * ```ts
 * @Injectable()
 * class Billing {
 *   @Consume({ queue: 'invoices', exchange: 'orders', routingKeys: ['order.paid'], concurrency: 4 })
 *   async invoice(@AmqpPayload() order: Order) { await this.invoices.create(order); }
 * }
 * ```
 */
export function Consume(options: ConsumeHandlerOptions): MethodDecorator {
  return SetMetadata(HANDLER_METADATA, { kind: 'consume', options } satisfies HandlerMetadata);
}

/**
 * Answers each request of a queue: the method's result is the reply (JSON unless a string or bytes),
 * sent to the request's `replyTo` with its `correlationId`; a failure is answered with an error reply
 * (header `x-rxamqp-error`, body `{ error: { name, message } }`) so that the caller does not wait
 * for its timeout.
 *
 * @example
 * ```ts
 * @Rpc({ queue: 'rpc.add' })
 * add(@AmqpPayload() { a, b }: { a: number; b: number }) { return a + b; }
 * ```
 */
export function Rpc(options: RpcHandlerOptions): MethodDecorator {
  return SetMetadata(HANDLER_METADATA, { kind: 'rpc', options } satisfies HandlerMetadata);
}

/** Which part of the delivery a parameter receives. */
export const ParamKind = { Payload: 0, Headers: 1, Delivery: 2 } as const;
export type ParamKind = (typeof ParamKind)[keyof typeof ParamKind];

/** A pipe for a parameter decorator: a class (instantiated by Nest, with its dependencies) or an instance. */
export type AmqpParamPipe = Type<PipeTransform> | PipeTransform;

function paramDecorator(
  kind: ParamKind,
  data: string | undefined,
  pipes: AmqpParamPipe[],
): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) return;
    const existing: Record<string, unknown> =
      (Reflect.getMetadata(PARAMS_METADATA, target.constructor, key) as
        | Record<string, unknown>
        | undefined) ?? {};
    Reflect.defineMetadata(
      PARAMS_METADATA,
      { ...existing, [`${kind}:${index}`]: { index, data, pipes } },
      target.constructor,
      key,
    );
  };
}

/**
 * The delivery's payload: JSON parsed when the content type says JSON (or there is none and the body
 * parses), text for `text/*`, the bytes otherwise; `property` picks one field of it. Pipes apply.
 *
 * @example
 * ```ts
 * @Consume({ queue: 'orders' })
 * handle(@AmqpPayload(new ValidationPipe()) order: OrderDto, @AmqpPayload('id') id: string) {}
 * ```
 */
export function AmqpPayload(
  property?: string | AmqpParamPipe,
  ...pipes: AmqpParamPipe[]
): ParameterDecorator {
  return typeof property === 'string' || property === undefined
    ? paramDecorator(ParamKind.Payload, property, pipes)
    : paramDecorator(ParamKind.Payload, undefined, [property, ...pipes]);
}

/**
 * The delivery's headers (or one of them by name).
 *
 * @example
 * ```ts
 * handle(@AmqpHeaders('x-tenant') tenant: string) {}
 * ```
 */
export function AmqpHeaders(name?: string): ParameterDecorator {
  return paramDecorator(ParamKind.Headers, name, []);
}

/**
 * The rxamqp `Delivery` itself: fields, properties, body. Settling it by hand is allowed (then the
 * handler's outcome settles nothing more).
 *
 * @example
 * ```ts
 * handle(@AmqpDelivery() delivery: Delivery) { console.log(delivery.fields.routingKey); }
 * ```
 */
export function AmqpDelivery(): ParameterDecorator {
  return paramDecorator(ParamKind.Delivery, undefined, []);
}

/**
 * Injects a connection's `RxAmqpConnection` (the connection Observable, the publisher, the applied
 * topology).
 *
 * @example
 * ```ts
 * constructor(@InjectRxAmqp() private readonly amqp: RxAmqpConnection) {}
 * ```
 */
export function InjectRxAmqp(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getConnectionToken(name));
}

/**
 * Injects a connection's `ConnectionObservable` (`connect()`'s: it emits a fresh `Connection` after
 * each reconnect).
 *
 * @example
 * ```ts
 * constructor(@InjectConnection() private readonly connection$: ConnectionObservable) {}
 * ```
 */
export function InjectConnection(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getConnectionObservableToken(name));
}

/**
 * Injects a connection's `Publisher` (confirms on, buffered across reconnects).
 *
 * @example
 * ```ts
 * constructor(@InjectPublisher() private readonly publisher: Publisher) {}
 * ```
 */
export function InjectPublisher(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getPublisherToken(name));
}

/**
 * Injects a connection's topology as declared on the current connection: an
 * `Observable<AppliedTopology>` that replays the latest and emits again after each reconnect (the
 * names the broker gave server-named queues are there).
 *
 * @example
 * ```ts
 * constructor(@InjectTopology() private readonly topology$: Observable<AppliedTopology>) {}
 * inbox() { return this.topology$.pipe(take(1), map((t) => t.queueName(inboxSpec))); }
 * ```
 */
export function InjectTopology(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getTopologyToken(name));
}
