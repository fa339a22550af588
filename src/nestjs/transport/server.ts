/**
 * `RxAmqpServer`: a NestJS microservices transport strategy on rxamqp, for `@MessagePattern` and
 * `@EventPattern` handlers over RabbitMQ.
 *
 * One recovering connection; after each (re)connect the exchange, queues and bindings are declared
 * again and every queue gets its own channel and consumer, so the server comes back by itself after a
 * connection loss. Each delivery is settled once, after its handler: acked on success, settled by the
 * failure policy when an event handler fails, acked once the replies of a request are written.
 * `close()` drains: consumers stop, running handlers finish and their acks go out before the close.
 *
 * @module
 */

import { Logger } from '@nestjs/common';
import {
  BaseRpcContext,
  type CustomTransportStrategy,
  type MessageHandler,
  Server,
} from '@nestjs/microservices';
import {
  defer,
  EMPTY,
  isObservable,
  lastValueFrom,
  merge,
  type Observable,
  retry,
  type Subscription,
  switchMap,
  tap,
  timer,
} from 'rxjs';
import { ackOnSuccess } from '../../../operators/index.js';
import type { Channel } from '../../client/channel.js';
import type { ConnectionObservable } from '../../client/connect.js';
import type { Connection } from '../../client/connection.js';
import type { Delivery } from '../../client/delivery.js';
import { redactUrl } from '../../config/url.js';
import { connect } from '../../node.js';
import { applyTopology } from '../../topology/apply.js';
import { type BindSpec, defineTopology, type QueueSpec, type Topology } from '../../topology/specs.js';
import { INSPECT } from '../../util/runtime.js';
import {
  errorForWire,
  type IncomingPacket,
  isTopicPattern,
  type ReplyPacket,
  topicMatches,
} from './envelope.js';
import {
  type ResolvedQueue,
  type ResolvedServerOptions,
  type RxAmqpEvents,
  type RxAmqpServerOptions,
  type RxAmqpStatus,
  resolveServerOptions,
  statusOf,
  tell,
} from './options.js';

/** What a request without a handler is answered with (the text Nest's transports send). */
const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

/** Wait before a consumer that failed on a live connection is started again, in ms. */
const RESTART_DELAY = 1000;

/** How long `close()` waits, after the drain, for the consumers' pipeline to end, in ms. */
const PIPELINE_GRACE = 5000;

/**
 * The context of a handler served by {@link RxAmqpServer} (`@Ctx() ctx: RxAmqpContext`): the delivery,
 * the channel it came on, the pattern and the queue. The server settles the delivery after the
 * handler: do not ack it yourself.
 *
 * @example
 * ```ts
 * @EventPattern('orders.*')
 * onOrder(@Payload() order: Order, @Ctx() ctx: RxAmqpContext) {
 *   log.info(`${ctx.getRoutingKey()} from ${ctx.getQueue()}, redelivered: ${ctx.getMessage().fields.redelivered}`);
 * }
 * ```
 */
export class RxAmqpContext extends BaseRpcContext<
  [Delivery, Channel, string, string, Readonly<Record<string, string>> | undefined]
> {
  /** The rxamqp delivery (body, properties, fields). */
  getMessage(): Delivery {
    return this.args[0];
  }

  /** The channel the delivery came on. */
  getChannelRef(): Channel {
    return this.args[1];
  }

  /** The pattern the handler was chosen by. */
  getPattern(): string {
    return this.args[2];
  }

  /** The queue the delivery came from. */
  getQueue(): string {
    return this.args[3];
  }

  /** The routing key the message was published with. */
  getRoutingKey(): string {
    return this.args[0].fields.routingKey;
  }

  /**
   * The out-of-band values the client attached to the packet (a trace id, say: Nest 12's
   * `ClientProxy.setOnDispatchHook`), if any.
   */
  getMetadata(): Readonly<Record<string, string>> | undefined {
    return this.args[4];
  }
}

/**
 * A NestJS transport strategy over RabbitMQ with rxamqp: give it to `createMicroservice` (or
 * `connectMicroservice`) as `strategy`. See {@link RxAmqpServerOptions} for the options: a topic
 * `exchange` whose routing keys are the patterns (wildcards `*` and `#` work in handler patterns),
 * one or several `queues`, the failure policy `onError`, the `envelope`.
 *
 * - `@MessagePattern` handlers reply to the request's `replyTo` (direct reply-to works) with its
 *   `correlationId`; a handler error travels back as `{ err }`, as Nest clients expect.
 * - `@EventPattern` handlers are awaited (a returned Observable to its end): the event is acked on
 *   success, and settled by `onError` on failure (bounded retries by default, never a loop).
 * - A message without a handler, or that the envelope cannot decode, is rejected without requeue.
 * - Recovery: after a connection loss, it reconnects, declares everything again and consumes again.
 * - `close()` drains the connection: consumers stop, running handlers finish, their acks and replies
 *   are sent, the rest stays in the queues.
 *
 * @example
 * ```ts
 * const app = await NestFactory.createMicroservice(AppModule, {
 *   strategy: new RxAmqpServer({
 *     url: 'amqp://guest:guest@localhost:5672',
 *     exchange: 'shop',
 *     queues: [
 *       { name: 'orders', patterns: ['orders.#'], prefetch: 20 },
 *       { name: 'billing', patterns: ['invoice.*'], onError: 'dead-letter' },
 *     ],
 *   }),
 * });
 * await app.listen();
 * // @EventPattern('orders.*') onOrder(@Payload() order: Order) { ... }
 * // @MessagePattern('invoice.get') getInvoice(@Payload() id: string) { ... }
 * ```
 */
export class RxAmqpServer extends Server<RxAmqpEvents, RxAmqpStatus> implements CustomTransportStrategy {
  /** Event handlers' failures are the server's to settle (by `onError`), so Nest hands them over. */
  override readonly propagatesEventHandlerErrors = true;
  protected override readonly logger = new Logger('RxAmqpServer');
  private readonly config: ResolvedServerOptions;
  private connection$: ConnectionObservable | undefined;
  private pipeline: Subscription | undefined;
  private stateSubscription: Subscription | undefined;
  private pipelineDone: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private readonly listeners: { [K in keyof RxAmqpEvents]: RxAmqpEvents[K][] } = { state: [], error: [] };
  /** The reply streams of requests still answering (an Observable result), ended by `close()`. */
  private readonly answering = new Set<Subscription>();
  /** Handler patterns with wildcards, in registration order, tried after an exact match. */
  private wildcards: (readonly [string, MessageHandler])[] = [];

  /**
   * Checks the options: a missing URL, a bad exchange or queue, a bad policy or prefetch is a
   * `ConfigurationError` here (its message never shows a password). Nothing connects until `listen`.
   *
   * @example
   * ```ts
   * new RxAmqpServer({ url: process.env.AMQP_URL!, queue: 'orders', onError: 'dead-letter' });
   * ```
   */
  constructor(options: RxAmqpServerOptions) {
    super();
    this.config = resolveServerOptions(options);
  }

  /** What `JSON.stringify` shows: the URL without its password, never the options (secrets). */
  toJSON(): { url: string } {
    const url = this.config.url;
    return { url: typeof url === 'string' ? redactUrl(url) : '(connection options)' };
  }

  /** What `util.inspect` and `console.log` show: as `toJSON`, never a secret. */
  [INSPECT](): string {
    return `RxAmqpServer { url: '${this.toJSON().url}' }`;
  }

  /**
   * Called by Nest: connects, declares the topology and starts consuming; `callback()` once the
   * topology of the first connection is declared, `callback(error)` when that fails.
   */
  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    if (this.connection$ !== undefined) {
      callback(new Error('RxAmqpServer: listen() was already called'));
      return;
    }
    let topology: Topology;
    try {
      topology = this.topology();
    } catch (error) {
      callback(error);
      return;
    }
    this.wildcards = [...this.getHandlers()].filter(([pattern]) => isTopicPattern(pattern));
    const connection$ = connect(this.config.url, this.config.connectOptions);
    this.connection$ = connection$;
    this.stateSubscription = connection$.state$.subscribe((state) => {
      this._status$.next(statusOf(state));
      tell(this.listeners.state, state);
    });
    let listening = false;
    const started = (error?: unknown): void => {
      if (listening) return;
      listening = true;
      if (error === undefined) callback();
      else callback(error);
    };
    this.pipelineDone = new Promise<void>((resolve) => {
      this.pipeline = connection$
        .pipe(
          switchMap((conn) =>
            defer(() =>
              applyTopology(conn, topology).pipe(
                tap(() => started()),
                switchMap((applied) =>
                  merge(...this.config.queues.map((q) => this.consume(conn, q, applied.queueName(q.spec)))),
                ),
              ),
            ).pipe(
              // A declaration that fails on a live connection is tried again; before the first
              // listen it is the listen's error (a configuration the broker refuses).
              retry({
                delay: (error: unknown) => {
                  if (!conn.isOpen || conn.isDraining) return EMPTY;
                  if (!listening) throw error;
                  this.report('declaring the topology failed; trying again', error);
                  return timer(RESTART_DELAY);
                },
              }),
            ),
          ),
        )
        .subscribe({
          error: (error: unknown) => {
            if (listening) this.report('the connection ended', error);
            started(error);
            resolve();
          },
          complete: () => resolve(),
        });
    });
  }

  /**
   * Called by Nest on shutdown: drains the connection (consumers cancelled, running handlers finish
   * and their acks and replies go out, prefetched messages go back to the queue by default), then
   * closes it. Bounded by the `drain.timeout` option; what is still unsettled then is requeued by the
   * broker. Safe to call more than once.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => app.close()); // Nest calls server.close()
   * ```
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Listens to the transport's events: `'state'` (each connection state, with host and cause) and
   * `'error'` (what the server logged: failed handlers, consumers restarted).
   *
   * @example
   * ```ts
   * server.on('state', (s) => metrics.gauge('amqp.connected', s.status === 'CONNECTED' ? 1 : 0));
   * ```
   */
  on<K extends keyof RxAmqpEvents = keyof RxAmqpEvents, C extends RxAmqpEvents[K] = RxAmqpEvents[K]>(
    event: K,
    callback: C,
  ): void {
    const list = this.listeners[event] as RxAmqpEvents[K][] | undefined;
    if (list === undefined)
      throw new Error(`RxAmqpServer: unknown event '${String(event)}' (use 'state' or 'error')`);
    list.push(callback);
  }

  /**
   * The rxamqp `ConnectionObservable` the server runs on (its `state$`, `drain()`); throws before
   * `listen`.
   *
   * @example
   * ```ts
   * server.unwrap<ConnectionObservable>().state$.subscribe((s) => console.log(s.status));
   * ```
   */
  unwrap<T = ConnectionObservable>(): T {
    if (this.connection$ === undefined) {
      throw new Error('RxAmqpServer: not initialized; call listen() (app.listen()) before unwrap()');
    }
    return this.connection$ as T;
  }

  /** The exchange, the queues, their bindings and the extra declarations, as one topology. */
  private topology(): Topology {
    const { exchange, queues, extraExchanges, extraQueues, extraBindings } = this.config;
    const handlerPatterns = [...this.getHandlers().keys()];
    const listed = new Set(queues.flatMap((q) => q.patterns ?? []));
    const bindings: BindSpec[] = [...extraBindings];
    if (exchange !== undefined) {
      for (const q of queues) {
        const keys = q.patterns ?? handlerPatterns.filter((p) => !listed.has(p));
        for (const routingKey of new Set(keys)) bindings.push({ exchange, queue: q.spec, routingKey });
      }
    }
    const own = new Set(queues.map((q) => q.spec.name));
    const others: QueueSpec[] = extraQueues.filter((q) => !own.has(q.name));
    return defineTopology({
      exchanges: exchange === undefined ? [...extraExchanges] : [...extraExchanges, exchange],
      queues: [...others, ...queues.map((q) => q.spec)],
      bindings,
    });
  }

  /** One queue's consumer on one connection; started again after a failure while the connection lives. */
  private consume(conn: Connection, q: ResolvedQueue, name: string): Observable<unknown> {
    return conn.channel().pipe(
      switchMap((channel) =>
        channel.consume(name, { prefetch: q.prefetch }).pipe(
          ackOnSuccess((delivery) => this.process(delivery, channel, name), {
            concurrency: q.concurrency,
            onError: q.onError,
            // 'requeue' gives a message one more chance, not an endless loop.
            requeueRedelivered: false,
            maxDeliveries: q.maxDeliveries,
            onFailure: (error, delivery) =>
              this.report(
                `the handler of '${delivery.fields.routingKey}' from ${name} failed (settled by '${q.onError}')`,
                error,
              ),
          }),
        ),
      ),
      retry({
        delay: (error: unknown) => {
          if (!conn.isOpen || conn.isDraining) return EMPTY;
          this.report(`the consumer of ${name} failed; starting it again`, error);
          return timer(RESTART_DELAY);
        },
      }),
    );
  }

  /**
   * Handles one delivery; resolves once it may be acked, rejects when its (event) handler failed. A
   * message it settles itself (undecodable, no handler) makes the later ack a no-op.
   */
  private async process(delivery: Delivery, channel: Channel, queue: string): Promise<void> {
    const { routingKey, exchange } = delivery.fields;
    let packet: IncomingPacket;
    try {
      packet = await this.config.envelope.decode({
        body: delivery.body,
        properties: delivery.properties,
        routingKey,
        exchange,
      });
      if (packet === null || typeof packet !== 'object') throw new Error('the envelope returned no packet');
    } catch (error) {
      this.report(
        `a message from ${queue} (routing key '${routingKey}') could not be decoded; rejected`,
        error,
      );
      delivery.reject({ requeue: false });
      return;
    }
    const pattern = patternString(packet.pattern);
    const context = new RxAmqpContext([delivery, channel, pattern, queue, packet.metadata]);
    const handler = this.findHandler(pattern);
    if (packet.id === undefined) {
      if (handler === null) {
        this.logger.warn(
          `No event handler for pattern '${pattern}' (from ${queue}); the message was rejected`,
        );
        delivery.reject({ requeue: false });
        return;
      }
      await this.withHooks(context, () => this.runEvent(handler, packet, context));
      return;
    }
    const id = packet.id;
    const { replyTo } = delivery.properties;
    const correlationId = delivery.properties.correlationId ?? id;
    const reply = (p: ReplyPacket): Promise<void> =>
      replyTo === undefined || replyTo === ''
        ? Promise.resolve()
        : this.reply(channel, replyTo, correlationId, p);
    if (handler === null) {
      this.logger.warn(
        `No message handler for pattern '${pattern}' (from ${queue}); the message was rejected`,
      );
      await reply({ id, err: NO_MESSAGE_HANDLER, status: 'error', isDisposed: true }).catch((e: unknown) =>
        this.report('a reply could not be sent', e),
      );
      delivery.reject({ requeue: false });
      return;
    }
    await this.withHooks(context, () => this.answer(handler, packet, context, id, reply));
  }

  /** Runs an event handler to its end: resolves on success, rejects with what it failed with. */
  private async runEvent(
    handler: MessageHandler,
    packet: IncomingPacket,
    context: RxAmqpContext,
  ): Promise<void> {
    const result: unknown = await handler(packet.data, context);
    if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
  }

  /**
   * Runs a request handler and sends its replies as Nest's clients read them: each value a
   * `{ response }`, the last one with `isDisposed` (a lone `{ isDisposed }` when there is none), an
   * error as `{ err, isDisposed }`. Resolves once every reply is written: the request is then acked,
   * whatever the handler's outcome (its error was the answer).
   */
  private async answer(
    handler: MessageHandler,
    packet: IncomingPacket,
    context: RxAmqpContext,
    id: string,
    reply: (p: ReplyPacket) => Promise<void>,
  ): Promise<void> {
    let sending = Promise.resolve();
    const send = (p: ReplyPacket): void => {
      sending = sending
        .then(() => reply(p))
        .catch((error: unknown) => this.report('a reply could not be sent', error));
    };
    let result$: Observable<unknown>;
    try {
      result$ = this.transformToObservable(await handler(packet.data, context)) as Observable<unknown>;
    } catch (error) {
      send({ id, err: errorForWire(error), isDisposed: true });
      return sending;
    }
    await new Promise<void>((resolve) => {
      // One value is held back so that the last goes out with isDisposed: one message for the
      // usual single response, as Nest's own transports send it.
      let held: { value: unknown } | undefined;
      const subscription = result$.subscribe({
        next: (value) => {
          if (held !== undefined) send({ id, response: held.value });
          held = { value };
        },
        error: (error: unknown) => {
          if (held !== undefined) send({ id, response: held.value });
          send({ id, err: errorForWire(error), isDisposed: true });
          resolve();
        },
        complete: () => {
          send(
            held === undefined ? { id, isDisposed: true } : { id, response: held.value, isDisposed: true },
          );
          resolve();
        },
      });
      // An endless stream of replies ends with the server (close() unsubscribes what is left).
      if (!subscription.closed) {
        this.answering.add(subscription);
        subscription.add(() => this.answering.delete(subscription));
      }
    });
    return sending;
  }

  /** Publishes one reply packet to `replyTo` (through the default exchange) on the request's channel. */
  private async reply(
    channel: Channel,
    replyTo: string,
    correlationId: string,
    packet: ReplyPacket,
  ): Promise<void> {
    const encoded = await this.config.envelope.encodeReply(packet);
    if (encoded === undefined) return;
    await lastValueFrom(
      channel.publish('', replyTo, encoded.body, { ...encoded.properties, correlationId }),
      { defaultValue: undefined },
    );
  }

  /** The handler of a pattern: an exact match first, then the first wildcard pattern that matches. */
  private findHandler(pattern: string): MessageHandler | null {
    const exact = this.getHandlerByPattern(pattern);
    if (exact !== null) return exact;
    for (const [wildcard, handler] of this.wildcards) {
      if (topicMatches(wildcard, pattern)) return handler;
    }
    return null;
  }

  /**
   * Runs `work` between Nest's processing hooks (tracing) when this Nest has them; the Promise is the
   * work's own, whatever the hooks return.
   */
  private withHooks(context: RxAmqpContext, work: () => Promise<void>): Promise<void> {
    // Older Nest versions have no processing hooks.
    const hooks: unknown = (this as unknown as { runWithProcessingHooks?: unknown }).runWithProcessingHooks;
    if (typeof hooks !== 'function') return work();
    return new Promise<void>((resolve, reject) => {
      try {
        const ran: unknown = this.runWithProcessingHooks(context, async (end) => {
          try {
            resolve(await work());
          } catch (error) {
            reject(error);
          } finally {
            end();
          }
        });
        // A hook that fails before the work ran fails the delivery (settled by the policy) rather than
        // holding it; once the work has settled, this changes nothing.
        if (ran instanceof Promise) ran.catch(reject);
      } catch (error) {
        reject(error);
      }
    });
  }

  /** Logs an error (never a password: rxamqp's errors carry none) and tells the `'error'` listeners. */
  private report(what: string, error: unknown): void {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : safeJson(error);
    this.logger.error(`${what}: ${detail}`);
    tell(this.listeners.error, error);
  }

  private async shutdown(): Promise<void> {
    const connection$ = this.connection$;
    if (connection$ === undefined) return;
    try {
      await lastValueFrom(connection$.drain(this.config.drain), { defaultValue: undefined });
    } catch (error) {
      // Lost during the drain: the broker requeues what was unsettled.
      this.report('the connection was lost during the drain', error);
    }
    // The drain completes the connection Observable, which ends the pipeline; bounded all the same.
    await within(this.pipelineDone, PIPELINE_GRACE);
    this.pipeline?.unsubscribe();
    this.stateSubscription?.unsubscribe();
    for (const answering of [...this.answering]) answering.unsubscribe();
    this.answering.clear();
    this._status$.next('closed');
  }
}

/**
 * An incoming pattern as the string handlers are looked up by. A pattern comes from the message: one
 * too deep for JSON (a RangeError) must not fail the processing (Nest 12 has this as
 * `getPatternAsString`; Nest 11 does not).
 */
function patternString(pattern: unknown): string {
  if (typeof pattern === 'string') return pattern;
  try {
    return JSON.stringify(pattern) ?? String(pattern);
  } catch {
    return '<unserializable pattern>';
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Resolves when `promise` does, or after `ms` at the latest. */
function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
