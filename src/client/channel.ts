/**
 * The public channel: every AMQP channel method as an Observable that sends the method when subscribed
 * and emits the reply. Operations on one channel run in the order they were subscribed, one
 * synchronous method at a time. The channel owns its state machine (`ChannelCore`) and listens to it;
 * its jobs live in files of their own: the publish path (`publish.ts`), confirms and returns
 * (`confirms.ts`), consumers (`consumers.ts`) and request/reply (`request-reply.ts`).
 *
 * @module
 */
import { Observable, type Observer } from 'rxjs';
import { ChannelCore, type ChannelListener, type Reply } from '../core/channel-core.js';
import type { ConnectionCore } from '../core/connection-core.js';
import type { ChannelClosedError, HeadersDecodeError } from '../errors.js';
import type { FieldTable } from '../protocol/field-table.js';
import type { BasicProperties, MethodInit, MethodName, MethodOf } from '../protocol/generated.js';
import { ambientContext, type Peer } from '../telemetry/instrumentation.js';
import type { Reporter } from '../telemetry/reporter.js';
import { INSPECT } from '../util/runtime.js';
import { type ConfirmHost, type ConfirmSource, ConfirmTracker } from './confirms.js';
import { Consumers, type OperationFailer, type UnclaimedDelivery } from './consumers.js';
import { Delivery } from './delivery.js';
import type { PublishCallback, PublishHandle, PublishTarget } from './interfaces.js';
import { PublishPath, publishObservable } from './publish.js';
import { type RequestOptions, RequestReply } from './request-reply.js';
import { DeliveryTraces } from './traces.js';
import type {
  Confirmation,
  ConsumeOptions,
  ExchangeDeclareOptions,
  NoWait,
  PublishOptions,
  PublishOutcome,
  QueueDeclareOk,
  QueueDeclareOptions,
  ReturnedMessage,
} from './types.js';

export type { UnclaimedDelivery } from './consumers.js';
export type { RequestOptions } from './request-reply.js';

/** @internal What the connection hears from one of its channels. */
export interface ChannelEvents {
  /** channel.open-ok: the channel is ready. */
  opened(channel: Channel): void;
  /** The channel ended: undefined when the client closed it. Called once. */
  closed(error: ChannelClosedError | undefined, channel: Channel): void;
  /**
   * Asked first when the broker closes the channel: true when a fresh channel will replace it (a
   * consumer timeout on a recovering connection), so that its consumers and pending operations
   * complete rather than error.
   */
  replaces?(error: ChannelClosedError): boolean;
}

/**
 * An open AMQP channel. Get one from `connection.channel()`; it closes when that subscription ends.
 * Each method returns a cold Observable: subscribing sends the method, the reply is emitted, then it
 * completes. A broker error closes the channel: the operation and every later one on this channel fail
 * with a `ChannelClosedError` (sibling channels are not affected).
 *
 * @example
 * ```ts
 * connection.channel().pipe(
 *   switchMap((ch) =>
 *     ch.queueDeclare('jobs', { durable: true }).pipe(
 *       switchMap(() => ch.publish('', 'jobs', 'hello', { deliveryMode: 2 })),
 *     ),
 *   ),
 * ).subscribe();
 * ```
 */
export class Channel implements PublishTarget {
  private readonly core: ChannelCore;
  private readonly wiring: ChannelWiring;
  private readonly publishes: PublishPath;
  /** Made with the first request. */
  private requests: RequestReply | undefined;

  /**
   * After `confirmSelect()`: every publish of this channel, in publish order, once the broker has
   * answered it (or `failed` when the channel ended first). Each sequence number is emitted exactly
   * once, smoothed from what the broker sends (out-of-order confirms, `multiple` acks and nacks over
   * ranges). Hot; completes when the channel closes.
   *
   * @example
   * ```ts
   * ch.confirms$.subscribe((c) => { if (c.status !== 'acked') console.warn('publish', c.seq, c.status); });
   * ```
   */
  get confirms$(): Observable<Confirmation> {
    return this.wiring.confirms.confirms$;
  }

  /**
   * Unroutable `mandatory` messages returned by the broker, as they arrive. Completes when the channel
   * closes.
   */
  get returns$(): Observable<ReturnedMessage> {
    return this.wiring.confirms.returns$;
  }

  /**
   * Deliveries for a consumer tag this channel does not know (a consumer it never started, or one
   * it already forgot). Each was given back to its queue with basic.reject and requeue, so that it
   * does not hold a prefetch slot for good. Completes when the channel closes.
   *
   * @example
   * ```ts
   * ch.unclaimed$.subscribe((u) => console.warn('unclaimed delivery', u.fields.consumerTag, u.requeued));
   * ```
   */
  get unclaimed$(): Observable<UnclaimedDelivery> {
    return this.wiring.consumers.unclaimed$;
  }

  /**
   * The consumer timeout that closed the channel this one replaces: `connection.channel()` on a
   * recovering connection opens a fresh channel (and emits it) when the broker closes one for
   * RabbitMQ's delivery acknowledgement timeout. Undefined for a channel that replaces none.
   *
   * @example
   * ```ts
   * conn.channel().pipe(
   *   tap((ch) => ch.reopenedAfter && log.warn({ err: ch.reopenedAfter }, 'consumer timed out; channel reopened')),
   *   switchMap((ch) => ch.consume('jobs', { prefetch: 10 })),
   * );
   * ```
   */
  readonly reopenedAfter: ChannelClosedError | undefined;

  /** @internal Channels come from `connection.channel()`. */
  constructor(connection: ConnectionCore, events: ChannelEvents, reopenedAfter?: ChannelClosedError) {
    this.reopenedAfter = reopenedAfter;
    // One object wires the parts together (the core's listener, the hosts of the confirm tracker
    // and of the consumers): an open channel keeps no closure per event.
    const options = connection.options;
    const reporter = options.reporter;
    const peer: Peer = Object.freeze({ address: options.hostname, port: options.port });
    const wiring = new ChannelWiring(this, events, reporter, peer);
    const core = new ChannelCore(connection, wiring);
    wiring.core = core;
    if (wiring.traces !== undefined) {
      const traces = wiring.traces;
      core.settlements = (kind, deliveryTag, multiple, requeue) =>
        traces.settled(kind, deliveryTag, multiple, requeue);
      core.forgotten = (fromTag, why) =>
        traces.forget(
          fromTag,
          new Error(
            why === 'recover'
              ? 'redelivered after basic.recover'
              : 'taken back by the broker when its consumer timed out',
          ),
        );
    }
    this.core = core;
    this.wiring = wiring;
    this.publishes = new PublishPath(core, wiring, reporter.publishes ? reporter : undefined, peer);
  }

  /** @internal Sends channel.open (throws when the connection cannot take another channel). */
  open(id?: number): void {
    this.core.open(id);
  }

  /** @internal A drain: cancels the consumers of this channel (their streams complete); returns how many. */
  drainConsumers(): number {
    return this.wiring.drainConsumers();
  }

  /** @internal Deliveries handed out on this channel and not yet settled (a drain waits for them). */
  get unsettled(): number {
    return this.core.unsettled;
  }

  /** @internal Publishes (and methods) queued on this channel, and publishes awaiting confirms. */
  get unconfirmed(): number {
    return this.core.queued + (this.wiring.tracker?.unconfirmed ?? 0);
  }

  /** @internal Sends the acks held for the next flush now. */
  flushHeldAcks(): void {
    this.core.flushHeldAcks();
  }

  /** @internal Closes the channel without waiting (unsubscribing from `connection.channel()`). */
  closeNow(): void {
    this.core.close();
  }

  /**
   * Consumes a queue: a hot, reference-counted stream of deliveries. The first subscriber starts the
   * consumer (basic.qos for `prefetch`, then basic.consume); later subscribers share it; when the last
   * one unsubscribes, basic.cancel is sent (and awaited). The stream errors with
   * `ConsumerCancelledError` when the broker cancels the consumer (its queue was deleted), with the
   * channel's error when the channel or connection fails, and completes when the client closes them.
   * Without `noAck`, settle each delivery with `ack()`, `nack()` or `reject()`.
   *
   * @example
   * ```ts
   * ch.consume('jobs', { prefetch: 50 }).subscribe((delivery) => {
   *   handle(delivery.json());
   *   delivery.ack();
   * });
   * ```
   */
  consume(queue: string, options: ConsumeOptions = {}): Observable<Delivery> {
    return this.wiring.consumers.consume(queue, options);
  }

  /**
   * Sends a request and emits the reply (RPC over RabbitMQ's direct reply-to): the message goes out
   * with `replyTo: 'amq.rabbitmq.reply-to'` and a fresh `correlationId`, and the reply with that
   * correlation id is emitted, then the Observable completes. Unsubscribing before the reply abandons
   * the request (a late reply is dropped). With `timeoutMs`, the request carries that expiration, so
   * that a request nobody picked up in time is discarded by the broker, and the Observable errors with
   * a `TimeoutError` from RxJS if no reply comes in time. The channel keeps one reply consumer while
   * requests are pending.
   *
   * @example
   * ```ts
   * ch.request('', 'rpc_queue', JSON.stringify({ n: 30 }), { contentType: 'application/json' }, { timeoutMs: 5000 })
   *   .subscribe((reply) => console.log(reply.json()));
   * ```
   */
  request(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties: BasicProperties = {},
    options: RequestOptions = {},
  ): Observable<Delivery> {
    this.requests ??= new RequestReply({
      publishWith: (exchange, routingKey, body, properties, mandatory, context, done) =>
        this.publishWith(exchange, routingKey, body, properties, mandatory, context, done),
      consume: (queue, options) => this.consume(queue, options),
      endedError: () => this.core.laterUseError('request'),
    });
    return this.requests.request(exchange, routingKey, body, properties, options);
  }

  /**
   * True once `confirmSelect()` has been sent on this channel: from then on every publish is
   * confirmed by the broker.
   *
   * @example
   * ```ts
   * if (!ch.confirmMode) await lastValueFrom(ch.confirmSelect());
   * ```
   */
  get confirmMode(): boolean {
    return this.wiring.tracker?.confirmMode === true;
  }

  /** The channel number. */
  get id(): number {
    return this.core.id;
  }

  /** Why the channel closed, when it was not the client closing it; undefined while open. */
  get error(): Error | undefined {
    return this.core.error;
  }

  /** True until the channel is closed (by either side or with its connection). */
  get isOpen(): boolean {
    return this.core.isOpen;
  }

  // ---- exchanges --------------------------------------------------------------------------------

  /**
   * Declares an exchange (`type`: direct, fanout, topic, headers, or a plugin type).
   *
   * @example
   * ```ts
   * ch.exchangeDeclare('logs', 'fanout', { durable: true }).subscribe();
   * ```
   */
  exchangeDeclare(
    exchange: string,
    type = 'direct',
    options: ExchangeDeclareOptions & NoWait = {},
  ): Observable<void> {
    return this.voidCall(
      {
        name: 'exchange.declare',
        exchange,
        type,
        passive: options.passive ?? false,
        durable: options.durable ?? false,
        autoDelete: options.autoDelete ?? false,
        internal: options.internal ?? false,
        nowait: options.nowait ?? false,
        arguments: options.arguments ?? {},
      },
      'exchange.declare-ok',
      options.nowait,
    );
  }

  /**
   * Deletes an exchange (`ifUnused`: only when it has no bindings).
   *
   * @example
   * ```ts
   * ch.exchangeDelete('logs').subscribe();
   * ```
   */
  exchangeDelete(exchange: string, options: { ifUnused?: boolean } & NoWait = {}): Observable<void> {
    return this.voidCall(
      {
        name: 'exchange.delete',
        exchange,
        ifUnused: options.ifUnused ?? false,
        nowait: options.nowait ?? false,
      },
      'exchange.delete-ok',
      options.nowait,
    );
  }

  /**
   * Binds exchange `destination` to exchange `source` (a RabbitMQ extension).
   *
   * @example
   * ```ts
   * ch.exchangeBind('audit', 'orders', 'order.*').subscribe();
   * ```
   */
  exchangeBind(
    destination: string,
    source: string,
    routingKey = '',
    options: { arguments?: FieldTable } & NoWait = {},
  ): Observable<void> {
    return this.voidCall(
      {
        name: 'exchange.bind',
        destination,
        source,
        routingKey,
        nowait: options.nowait ?? false,
        arguments: options.arguments ?? {},
      },
      'exchange.bind-ok',
      options.nowait,
    );
  }

  /**
   * Removes an exchange-to-exchange binding.
   *
   * @example
   * ```ts
   * ch.exchangeUnbind('audit', 'orders', 'order.*').subscribe();
   * ```
   */
  exchangeUnbind(
    destination: string,
    source: string,
    routingKey = '',
    options: { arguments?: FieldTable } & NoWait = {},
  ): Observable<void> {
    return this.voidCall(
      {
        name: 'exchange.unbind',
        destination,
        source,
        routingKey,
        nowait: options.nowait ?? false,
        arguments: options.arguments ?? {},
      },
      'exchange.unbind-ok',
      options.nowait,
    );
  }

  // ---- queues -----------------------------------------------------------------------------------

  /**
   * Declares a queue; `''` asks the broker to name it. Emits the name and the counts.
   *
   * @example
   * ```ts
   * ch.queueDeclare('', { exclusive: true }).subscribe(({ queue }) => console.log(queue)); // amq.gen-...
   * ```
   */
  queueDeclare(queue = '', options: QueueDeclareOptions = {}): Observable<QueueDeclareOk> {
    return this.call(queueDeclareMethod(queue, options, false), ['queue.declare-ok'], (reply) => {
      const ok = reply as MethodOf<'queue.declare-ok'>;
      return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
    });
  }

  /**
   * Declares a queue without waiting for the broker's answer (queue.declare with nowait). Emits once the
   * method is on the socket; a problem closes the channel later. The queue must be named.
   *
   * @example
   * ```ts
   * ch.queueDeclareNoWait('jobs', { durable: true }).subscribe();
   * ```
   */
  queueDeclareNoWait(queue: string, options: QueueDeclareOptions = {}): Observable<void> {
    return this.call(queueDeclareMethod(queue, options, true), [], toVoid);
  }

  /**
   * Binds a queue to an exchange.
   *
   * @example
   * ```ts
   * ch.queueBind('audit-log', 'logs').subscribe();
   * ```
   */
  queueBind(
    queue: string,
    exchange: string,
    routingKey = '',
    options: { arguments?: FieldTable } & NoWait = {},
  ): Observable<void> {
    return this.voidCall(
      {
        name: 'queue.bind',
        queue,
        exchange,
        routingKey,
        nowait: options.nowait ?? false,
        arguments: options.arguments ?? {},
      },
      'queue.bind-ok',
      options.nowait,
    );
  }

  /**
   * Removes a binding of a queue to an exchange.
   *
   * @example
   * ```ts
   * ch.queueUnbind('audit-log', 'logs').subscribe();
   * ```
   */
  queueUnbind(
    queue: string,
    exchange: string,
    routingKey = '',
    options: { arguments?: FieldTable } = {},
  ): Observable<void> {
    return this.call(
      { name: 'queue.unbind', queue, exchange, routingKey, arguments: options.arguments ?? {} },
      ['queue.unbind-ok'],
      toVoid,
    );
  }

  /**
   * Removes every ready message from a queue; emits how many were removed.
   *
   * @example
   * ```ts
   * ch.queuePurge('jobs').subscribe(({ messageCount }) => console.log(messageCount));
   * ```
   */
  queuePurge(queue: string): Observable<{ readonly messageCount: number }> {
    return this.call({ name: 'queue.purge', queue, nowait: false }, ['queue.purge-ok'], (reply) => ({
      messageCount: (reply as MethodOf<'queue.purge-ok'>).messageCount,
    }));
  }

  /**
   * Deletes a queue (`ifUnused`: only without consumers; `ifEmpty`: only when empty); emits how many
   * messages it held.
   *
   * @example
   * ```ts
   * ch.queueDelete('jobs').subscribe();
   * ```
   */
  queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } = {},
  ): Observable<{ readonly messageCount: number }> {
    return this.call(
      {
        name: 'queue.delete',
        queue,
        ifUnused: options.ifUnused ?? false,
        ifEmpty: options.ifEmpty ?? false,
        nowait: false,
      },
      ['queue.delete-ok'],
      (reply) => ({ messageCount: (reply as MethodOf<'queue.delete-ok'>).messageCount }),
    );
  }

  // ---- basic ------------------------------------------------------------------------------------

  /**
   * Sets the prefetch: how many unacknowledged messages the broker sends to this channel's consumers
   * (per consumer; `global: true` for the whole channel). A later per-consumer basic.qos (`qos(n)`, or
   * `consume()` with `prefetch`) lifts RabbitMQ's channel-wide limit: set the global one last, or use
   * only one kind per channel.
   *
   * @example
   * ```ts
   * ch.qos(50).subscribe();
   * ```
   */
  qos(prefetchCount: number, options: { prefetchSize?: number; global?: boolean } = {}): Observable<void> {
    return this.call(
      {
        name: 'basic.qos',
        prefetchCount,
        prefetchSize: options.prefetchSize ?? 0,
        global: options.global ?? false,
      },
      ['basic.qos-ok'],
      toVoid,
    );
  }

  /**
   * Asks the broker to redeliver this channel's unacknowledged messages. RabbitMQ answers
   * `requeue: false` with 540 NOT_IMPLEMENTED, a connection error.
   *
   * @example
   * ```ts
   * ch.recover().subscribe();
   * ```
   */
  recover(options: { requeue?: boolean } = {}): Observable<void> {
    return this.call(
      { name: 'basic.recover', requeue: options.requeue ?? true },
      ['basic.recover-ok'],
      toVoid,
    );
  }

  /**
   * Pauses (`false`) or resumes (`true`) deliveries to this channel; emits the state the broker reports.
   * RabbitMQ does not implement `flow(false)`: it closes the whole connection with 540 NOT_IMPLEMENTED.
   * Use `qos` or unsubscribe consumers to pause instead.
   *
   * @example
   * ```ts
   * ch.flow(true).subscribe((active) => console.log(active));
   * ```
   */
  flow(active: boolean): Observable<boolean> {
    return this.call(
      { name: 'channel.flow', active },
      ['channel.flow-ok'],
      (reply) => (reply as MethodOf<'channel.flow-ok'>).active,
    );
  }

  /**
   * Fetches one message: emits it, or completes without emitting when the queue is empty. Without
   * `noAck`, settle it with `ack()` / `nack()` / `reject()`.
   *
   * @example
   * ```ts
   * ch.get('jobs').subscribe({ next: (d) => d.ack(), complete: () => console.log('done') });
   * ```
   */
  get(queue: string, options: { noAck?: boolean } = {}): Observable<Delivery> {
    const noAck = options.noAck ?? false;
    return new Observable<Delivery>((subscriber) => {
      // A traced get is the caller's receive: its span starts in the caller's context.
      const traces = this.wiring.traces;
      const ambient = traces === undefined ? undefined : ambientContext();
      const caller = ambient?.capture();
      const handle = this.core.call(
        { name: 'basic.get', queue, noAck },
        ['basic.get-ok', 'basic.get-empty'],
        (reply) => {
          if (reply !== undefined && 'method' in reply) {
            const m = reply.method as MethodOf<'basic.get-ok'>;
            this.core.delivered(m.deliveryTag, !noAck);
            const delivery = new Delivery(
              reply.body,
              reply.properties,
              {
                deliveryTag: m.deliveryTag,
                redelivered: m.redelivered,
                exchange: m.exchange,
                routingKey: m.routingKey,
                messageCount: m.messageCount,
              },
              noAck ? undefined : this.core,
              reply.headersError,
            );
            if (traces === undefined) subscriber.next(delivery);
            else {
              const hand = (d: Delivery): void => subscriber.next(d);
              if (ambient === undefined) traces.deliver(delivery, queue, noAck, true, hand);
              else ambient.run(caller, () => traces.deliver(delivery, queue, noAck, true, hand));
            }
          }
          subscriber.complete();
        },
        (error) => this.failOperation(subscriber, error),
      );
      return () => handle.cancel();
    });
  }

  /**
   * Publishes a message (a string body is sent as UTF-8), then emits how it ended and completes:
   *
   * - without confirm mode, `{ status: 'sent' }` once the connection has taken its frames (at once,
   *   synchronously, when the socket is not backed up; otherwise once it drains): they go to the
   *   socket at the end of the turn, in order;
   * - after `confirmSelect()`, the broker's answer: `acked`, `nacked`, or `returned` (a `mandatory`
   *   message that no queue received, with the returned message), with the publish's sequence number.
   *   If the channel or connection goes away before the broker answers, it errors with the channel's
   *   `ChannelClosedError`: no publish is left waiting.
   *
   * Unsubscribing before the answer only stops listening: the message may already be on its way.
   *
   * @example
   * ```ts
   * ch.publish('', 'jobs', JSON.stringify({ id: 1 }), { contentType: 'application/json', deliveryMode: 2 }).subscribe();
   * ```
   * @example
   * ```ts
   * // After confirmSelect():
   * ch.publish('', 'jobs', 'payload', {}, { mandatory: true }).subscribe((outcome) => {
   *   if (outcome.status !== 'acked') console.warn('not delivered:', outcome.status);
   * });
   * ```
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties?: BasicProperties,
    options: PublishOptions = {},
  ): Observable<PublishOutcome> {
    return publishObservable(this, exchange, routingKey, body, properties, options);
  }

  /**
   * The publish under `publish()` and `publishConfirmed`, without an Observable (see
   * {@link PublishTarget.publishWith}): writes the message as soon as the socket takes more and the
   * synchronous methods queued before it have gone, then calls `done(context, outcome)` once (`sent`
   * as soon as it is written, possibly before `publishWith` returns; in confirm mode, the broker's
   * answer), or `done(context, undefined, error)`. When
   * the message has to wait, returns a handle whose `cancel()` drops it if it has not been written
   * yet (true then, and `done` is never called for it); otherwise `done` is called in any case.
   *
   * @example
   * ```ts
   * const done: PublishCallback<string> = (id, outcome, error) => console.log(id, outcome?.status ?? error?.message);
   * ch.publishWith('', 'jobs', new TextEncoder().encode('x'), undefined, false, 'job-1', done);
   * ```
   */
  publishWith<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined {
    return this.publishes.publishWith(exchange, routingKey, body, properties, mandatory, context, done);
  }

  /**
   * Acknowledges a delivery by tag. Returns false when nothing was sent (the channel is closed).
   *
   * @example
   * ```ts
   * ch.ack(delivery.fields.deliveryTag);
   * ```
   */
  ack(deliveryTag: number, options: { multiple?: boolean } = {}): boolean {
    return this.core.settle('ack', deliveryTag, options.multiple ?? false, false);
  }

  /**
   * Negatively acknowledges a delivery by tag (requeued unless `requeue: false`).
   *
   * @example
   * ```ts
   * ch.nack(delivery.fields.deliveryTag, { requeue: false });
   * ```
   */
  nack(deliveryTag: number, options: { multiple?: boolean; requeue?: boolean } = {}): boolean {
    return this.core.settle('nack', deliveryTag, options.multiple ?? false, options.requeue ?? true);
  }

  /**
   * Rejects a delivery by tag (requeued unless `requeue: false`).
   *
   * @example
   * ```ts
   * ch.reject(delivery.fields.deliveryTag, { requeue: false });
   * ```
   */
  reject(deliveryTag: number, options: { requeue?: boolean } = {}): boolean {
    return this.core.settle('reject', deliveryTag, false, options.requeue ?? true);
  }

  // ---- tx and confirm ---------------------------------------------------------------------------

  /**
   * Puts the channel in transaction mode.
   *
   * @example
   * ```ts
   * ch.txSelect().pipe(switchMap(() => ch.publish('', 'q', 'x')), switchMap(() => ch.txCommit())).subscribe();
   * ```
   */
  txSelect(): Observable<void> {
    return this.call({ name: 'tx.select' }, ['tx.select-ok'], toVoid);
  }

  /**
   * Commits the current transaction.
   *
   * @example
   * ```ts
   * ch.txCommit().subscribe();
   * ```
   */
  txCommit(): Observable<void> {
    return this.call({ name: 'tx.commit' }, ['tx.commit-ok'], toVoid);
  }

  /**
   * Rolls back the current transaction.
   *
   * @example
   * ```ts
   * ch.txRollback().subscribe();
   * ```
   */
  txRollback(): Observable<void> {
    return this.call({ name: 'tx.rollback' }, ['tx.rollback-ok'], toVoid);
  }

  /**
   * Puts the channel in publisher-confirm mode.
   *
   * @example
   * ```ts
   * ch.confirmSelect().subscribe();
   * ```
   */
  confirmSelect(options: NoWait = {}): Observable<void> {
    return this.voidCall(
      { name: 'confirm.select', nowait: options.nowait ?? false },
      'confirm.select-ok',
      options.nowait,
    );
  }

  /**
   * Closes the channel (the channel.close handshake) when subscribed, like every operation; emits once
   * closed. Unsubscribing from `connection.channel()` closes it too.
   *
   * @example
   * ```ts
   * await lastValueFrom(ch.close());
   * ```
   */
  close(): Observable<void> {
    return new Observable<void>((subscriber) => {
      this.core.close(() => {
        subscriber.next();
        subscriber.complete();
      });
    });
  }

  /** A method whose reply carries nothing: emits once answered, or once sent when `nowait`. */
  private voidCall(method: MethodInit, reply: MethodName, nowait: boolean | undefined): Observable<void> {
    return this.call(method, nowait === true ? [] : [reply], toVoid);
  }

  /** Sends a method and maps its reply; the shape of every one-shot operation. */
  private call<T>(
    method: MethodInit,
    replies: readonly MethodName[],
    map: (reply: Reply | undefined) => T,
  ): Observable<T> {
    return new Observable<T>((subscriber) => {
      const handle = this.core.call(
        method,
        replies,
        (reply) => {
          let value: T;
          try {
            value = map(reply);
          } catch (e) {
            subscriber.error(e);
            return;
          }
          subscriber.next(value);
          subscriber.complete();
        },
        (error) => this.failOperation(subscriber, error),
      );
      return () => handle.cancel();
    });
  }

  /**
   * Ends a one-shot operation that failed: with the error, except when a recovering connection was
   * lost under it. Then it completes without a value, like the channel and its consumers, so that a
   * `switchMap` pipeline waits for the next connection instead of ending.
   */
  private failOperation(subscriber: Observer<never>, error: Error): void {
    failOperationOn(this.core, subscriber, error);
  }

  [INSPECT](): string {
    return `Channel { id: ${this.core.id}, open: ${this.core.isOpen} }`;
  }

  /**
   * What `JSON.stringify` shows (a logger, say): the channel number and state, never the connection.
   *
   * @example
   * ```ts
   * JSON.stringify(ch); // {"id":1,"open":true,"confirmMode":false}
   * ```
   */
  toJSON(): { id: number; open: boolean; confirmMode: boolean } {
    return { id: this.core.id, open: this.core.isOpen, confirmMode: this.confirmMode };
  }
}

function toVoid(): void {}

/** Ends a one-shot operation that failed: it completes when recovery replaces the connection. */
function failOperationOn(core: ChannelCore, subscriber: Observer<never>, error: Error): void {
  if (core.lostToRecovery(error)) subscriber.complete();
  else subscriber.error(error);
}

/**
 * What the parts of a channel hear from one another: the core's events go to the consumers and the
 * confirm tracker, which in turn reach the core through it.
 */
class ChannelWiring implements ChannelListener, ConfirmHost, OperationFailer, ConfirmSource {
  core!: ChannelCore;
  /** The consumers once made (see `consumers`). */
  private consumerSet: Consumers | undefined;
  /** The confirm tracker once made (see `confirms`). */
  tracker: ConfirmTracker | undefined;

  /**
   * The consumers, made with the first consume, delivery or `unclaimed$` (a channel that only
   * publishes keeps none); made after the channel ended, `unclaimed$` is already complete.
   */
  get consumers(): Consumers {
    if (this.consumerSet === undefined) {
      this.consumerSet = new Consumers(this.core, this, this.reporter, this.traces);
      if (this.core.isClosed) this.consumerSet.end(this.core.error);
    }
    return this.consumerSet;
  }

  /**
   * The confirm tracker, made when first needed (confirm.select, or someone asking for `confirms$` or
   * `returns$`): a channel that never uses them keeps none. Made after the channel ended, its streams
   * are already complete.
   */
  get confirms(): ConfirmTracker {
    if (this.tracker === undefined) {
      this.tracker = new ConfirmTracker(this);
      if (this.core.isClosed) this.tracker.end(this.core.error);
    }
    return this.tracker;
  }

  /** The deliveries the connection's telemetry follows (undefined when it follows none). */
  readonly traces: DeliveryTraces | undefined;

  constructor(
    private readonly channel: Channel,
    private readonly events: ChannelEvents,
    private readonly reporter: Reporter,
    peer: Peer,
  ) {
    this.traces = reporter.deliveries ? new DeliveryTraces(reporter, peer) : undefined;
  }

  /** A drain: the consumers, if any, are cancelled. */
  drainConsumers(): number {
    return this.consumerSet?.drain() ?? 0;
  }

  // ---- ChannelListener ----
  opened(): void {
    this.reporter.emit({ type: 'channel.open', channel: this.core.id });
    this.events.opened(this.channel);
  }

  closed(error: ChannelClosedError | undefined): void {
    if (error !== undefined && this.events.replaces?.(error) === true) this.core.replaced = true;
    this.tracker?.end(error);
    this.consumerSet?.end(error);
    this.traces?.lost(error ?? this.core.laterUseError('settle'));
    this.reporter.emit({ type: 'channel.close', channel: this.core.id, error });
    this.events.closed(error, this.channel);
  }

  delivered(
    method: MethodOf<'basic.deliver'>,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void {
    this.consumers.delivered(method, properties, body, headersError);
  }

  consumerCancelled(consumerTag: string): void {
    this.consumers.cancelledByBroker(consumerTag);
  }

  confirmSelected(): void {
    this.confirms.start();
  }

  confirmed(method: MethodOf<'basic.ack'> | MethodOf<'basic.nack'>): void {
    this.confirms.confirmed(method);
  }

  returned(
    method: MethodOf<'basic.return'>,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void {
    // Without a tracker nobody watches returns$ and there are no confirms to match them to.
    this.tracker?.returned({
      replyCode: method.replyCode,
      replyText: method.replyText,
      exchange: method.exchange,
      routingKey: method.routingKey,
      properties,
      body,
      ...(headersError === undefined ? {} : { headersError }),
    });
  }

  // ---- ConfirmHost ----
  get id(): number {
    return this.core.id;
  }

  failure(): Error {
    return this.core.error ?? this.core.laterUseError('publish');
  }

  protocolError(message: string): void {
    this.core.protocolError(message);
  }

  // ---- OperationFailer (the consumers) ----
  failOperation(subscriber: Observer<never>, error: Error): void {
    failOperationOn(this.core, subscriber, error);
  }
}

function queueDeclareMethod(queue: string, options: QueueDeclareOptions, nowait: boolean): MethodInit {
  return {
    name: 'queue.declare',
    queue,
    passive: options.passive ?? false,
    durable: options.durable ?? false,
    exclusive: options.exclusive ?? false,
    autoDelete: options.autoDelete ?? false,
    nowait,
    arguments: options.arguments ?? {},
  };
}
