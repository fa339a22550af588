/**
 * The public channel: every AMQP channel method as an Observable that sends the method when subscribed
 * and emits the reply. Operations on one channel run in the order they were subscribed, one
 * synchronous method at a time.
 *
 * @module
 */
import { inspect } from 'node:util';
import { Observable, type Observer, Subject, type Subscriber, type Subscription, timeout } from 'rxjs';
import type { ChannelCore, Reply } from '../core/channel-core.js';
import { ConfirmSmoother, type ConfirmStatus } from '../core/confirm-smoother.js';
import {
  ChannelClosedError,
  ConfirmTagError,
  ConsumerCancelledError,
  PublishBlockedError,
} from '../errors.js';
import type { FieldTable } from '../protocol/field-table.js';
import type { BasicProperties, MethodInit, MethodName, MethodOf } from '../protocol/generated.js';
import { Delivery } from './delivery.js';

/** Options of `exchangeDeclare`. */
export interface ExchangeDeclareOptions {
  /** Survive a broker restart. Default false. */
  durable?: boolean;
  /** Deleted when its last binding is removed. Default false. */
  autoDelete?: boolean;
  /** Only other exchanges may publish to it. Default false. */
  internal?: boolean;
  /** Only check that it exists (404 closes the channel if not). Default false. */
  passive?: boolean;
  /** Extra arguments, such as `alternate-exchange`. */
  arguments?: FieldTable;
}

/** Options of `queueDeclare`. */
export interface QueueDeclareOptions {
  /** Survive a broker restart. Default false. */
  durable?: boolean;
  /** Used only by this connection and deleted when it closes. Default false. */
  exclusive?: boolean;
  /** Deleted when its last consumer goes. Default false. */
  autoDelete?: boolean;
  /** Only check that it exists (404 closes the channel if not). Default false. */
  passive?: boolean;
  /** Extra arguments: `x-queue-type`, `x-message-ttl`, `x-dead-letter-exchange`, ... */
  arguments?: FieldTable;
}

/** What queue.declare-ok reports. */
export interface QueueDeclareOk {
  /** The queue's name (the generated one for a server-named queue). */
  readonly queue: string;
  readonly messageCount: number;
  readonly consumerCount: number;
}

/** Options of `publish`. */
export interface PublishOptions {
  /** Return the message (see `returns$`) when no queue is bound to receive it. Default false. */
  mandatory?: boolean;
}

/**
 * How a publish ended. Without confirm mode, `sent`: its frames were handed to the socket. On a channel
 * in confirm mode (`confirmSelect()`), the broker's answer for its sequence number `seq`: `acked`
 * (the broker took responsibility for it), `nacked` (it could not), or `returned` (a `mandatory`
 * message no queue was bound to receive: the broker returned it, then acked it).
 */
export type PublishOutcome =
  | { readonly status: 'sent' }
  | { readonly status: 'acked' | 'nacked'; readonly seq: number }
  | { readonly status: 'returned'; readonly seq: number; readonly returned: ReturnedMessage };

/**
 * One publish of a confirm-mode channel, as `confirms$` reports it: the outcome from the broker, or
 * `failed` when the channel or connection went away before the broker answered.
 */
export type Confirmation =
  | Exclude<PublishOutcome, { readonly status: 'sent' }>
  | { readonly status: 'failed'; readonly seq: number; readonly error: Error };

/**
 * @internal How a publish made with {@link Channel.publishWith} reports back: once, with the outcome or
 * the error, and the `context` it was given.
 */
export type PublishCallback<C> = (context: C, outcome: PublishOutcome | undefined, error?: Error) => void;

/** A publish waiting for its confirm. */
interface AwaitingConfirm {
  done: PublishCallback<unknown> | undefined;
  readonly context: unknown;
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
  returned: ReturnedMessage | undefined;
}

/** A `mandatory` message the broker could not route, sent back by basic.return. */
export interface ReturnedMessage {
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Buffer;
}

/** Options of `consume`. */
export interface ConsumeOptions {
  /**
   * How many unacknowledged messages the broker may send to this consumer (basic.qos per consumer,
   * set just before basic.consume). Default: the channel's current setting (unlimited unless `qos` set it).
   */
  prefetch?: number;
  /** A consumer tag of your choice; default: one the broker generates. */
  consumerTag?: string;
  /** Deliveries count as acknowledged on sending (no `ack()` needed, at-most-once). Default false. */
  noAck?: boolean;
  /** Be the queue's only consumer (403 ACCESS_REFUSED closes the channel if another exists). Default false. */
  exclusive?: boolean;
  /** Do not receive messages published on this connection. RabbitMQ ignores it. Default false. */
  noLocal?: boolean;
  /** Consumer arguments: `x-priority`, `x-stream-offset`, `x-cancel-on-ha-failover`, ... */
  arguments?: FieldTable;
}

/** A consumer of this channel: where its deliveries go. */
interface ConsumerSink {
  readonly queue: string;
  readonly noAck: boolean;
  deliver(delivery: Delivery): void;
  /** The broker cancelled it. */
  cancelled(): void;
  /** The channel ended (error undefined: the client closed it). */
  ended(error: Error | undefined): void;
}

/** With `nowait: true` the broker sends no reply: the Observable emits once the method is on the socket. */
export interface NoWait {
  nowait?: boolean;
}

type Void = Observable<void>;

const SENT: PublishOutcome = Object.freeze({ status: 'sent' });

/**
 * @internal `publish()` over any `publishWith` (a channel's, a publisher's): an Observable of the
 * outcome, whose unsubscribe drops the message if it has not been written yet.
 */
export function publishObservable(
  target: { publishWith: Channel['publishWith'] },
  exchange: string,
  routingKey: string,
  body: Uint8Array | string,
  properties: BasicProperties | undefined,
  options: PublishOptions,
): Observable<PublishOutcome> {
  return new Observable<PublishOutcome>((subscriber) => {
    const handle = target.publishWith(
      exchange,
      routingKey,
      typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
      properties,
      options.mandatory ?? false,
      subscriber,
      settlePublish,
    );
    return () => handle?.cancel();
  });
}

/** How `publish()` hands a publish's end to its subscriber. */
function settlePublish(
  subscriber: Subscriber<PublishOutcome>,
  outcome: PublishOutcome | undefined,
  error?: Error,
): void {
  if (outcome === undefined) subscriber.error(error);
  else {
    subscriber.next(outcome);
    subscriber.complete();
  }
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
export class Channel {
  private readonly returnsSubject = new Subject<ReturnedMessage>();
  private readonly confirmsSubject = new Subject<Confirmation>();
  /** Set once confirm.select has been sent: numbers the publishes and orders the broker's answers. */
  private smoother: ConfirmSmoother | undefined;
  /** Publishes waiting for their confirm, in sequence order (settled in that order), from `awaitingHead`. */
  private awaiting: (AwaitingConfirm | undefined)[] = [];
  private awaitingHead = 0;
  /** Why the outstanding publishes failed (set when the channel ends). */
  private failure: Error | undefined;
  /** Returns received in confirm mode, waiting for the confirm of their publish. */
  private pendingReturns: ReturnedMessage[] = [];

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
  readonly confirms$: Observable<Confirmation> = this.confirmsSubject.asObservable();

  /**
   * Unroutable `mandatory` messages returned by the broker, as they arrive. Completes when the channel
   * closes.
   */
  readonly returns$: Observable<ReturnedMessage> = this.returnsSubject.asObservable();

  /** @internal */
  constructor(private readonly core: ChannelCore) {}

  /** @internal Called by the connection layer for basic.return. */
  emitReturn(message: ReturnedMessage): void {
    // In confirm mode RabbitMQ sends the return just before the confirm of the same publish: it is
    // matched when that confirm arrives (see dispatchConfirm).
    if (this.smoother !== undefined) this.pendingReturns.push(message);
    this.returnsSubject.next(message);
  }

  /**
   * Attaches the returns received since the last confirm to the publishes this confirm answers: for
   * each, the oldest publish the confirm covers that was mandatory, went to the return's exchange and
   * routing key, and has no return yet. A routed publish still waiting for its confirm is never taken.
   */
  private matchReturns(smoother: ConfirmSmoother, deliveryTag: number, multiple: boolean): void {
    const returns = this.pendingReturns;
    this.pendingReturns = [];
    const first = smoother.firstOutstanding;
    const from = multiple ? first : deliveryTag;
    for (const message of returns) {
      for (let seq = from; seq <= deliveryTag; seq++) {
        const entry = this.awaiting[this.awaitingHead + seq - first];
        if (
          entry?.mandatory === true &&
          entry.returned === undefined &&
          entry.exchange === message.exchange &&
          entry.routingKey === message.routingKey &&
          smoother.isUnconfirmed(seq)
        ) {
          entry.returned = message;
          break;
        }
      }
    }
  }

  /** @internal confirm.select is on its way: the publishes written from now on are numbered. */
  startConfirms(): void {
    this.smoother ??= new ConfirmSmoother(this.confirmSettled);
  }

  /** @internal A basic.ack or basic.nack from the broker (a publisher confirm). */
  dispatchConfirm(method: MethodOf<'basic.ack'> | MethodOf<'basic.nack'>): void {
    const smoother = this.smoother;
    try {
      if (smoother === undefined) {
        this.core.connection.channelProtocolError(
          this.core.id,
          `${method.name} for delivery tag ${method.deliveryTag} on channel ${this.core.id}, which is not in confirm mode`,
        );
        return;
      }
      if (this.pendingReturns.length > 0 && method.deliveryTag <= smoother.lastPublished) {
        this.matchReturns(smoother, method.deliveryTag, method.multiple);
      }
      if (method.name === 'basic.ack') smoother.ack(method.deliveryTag, method.multiple);
      else smoother.nack(method.deliveryTag, method.multiple);
    } catch (e) {
      if (!(e instanceof ConfirmTagError)) throw e;
      this.core.connection.channelProtocolError(this.core.id, e.message);
    }
  }

  /** The smoother settles publishes in sequence order: the oldest awaiting one is this one. */
  private readonly confirmSettled = (seq: number, status: ConfirmStatus): void => {
    const entry = this.awaiting[this.awaitingHead];
    this.awaiting[this.awaitingHead] = undefined;
    this.awaitingHead++;
    if (this.awaitingHead >= 1024 && this.awaitingHead * 2 >= this.awaiting.length) {
      this.awaiting = this.awaiting.slice(this.awaitingHead);
      this.awaitingHead = 0;
    }
    if (status === 'fail') {
      const error = this.failure ?? this.core.laterUseError('publish');
      entry?.done?.(entry.context, undefined, error);
      this.confirmsSubject.next({ status: 'failed', seq, error });
      if (this.smoother?.outstanding === 0) this.confirmsSubject.complete();
      return;
    }
    const returned = entry?.returned;
    const outcome: Exclude<PublishOutcome, { readonly status: 'sent' }> =
      returned !== undefined
        ? { status: 'returned', seq, returned }
        : { status: status === 'ack' ? 'acked' : 'nacked', seq };
    entry?.done?.(entry.context, outcome);
    if (this.confirmsSubject.observed) this.confirmsSubject.next(outcome);
  };

  /** @internal Called when the channel ends: completes `returns$` and ends every consumer. */
  complete(error?: Error): void {
    if (this.smoother !== undefined) {
      // Every publish still waiting for its confirm fails now, in order. When this runs from inside a
      // confirm being reported (a subscriber closing the connection), the smoother reports the
      // failures once that one returns: confirms$ completes after the last of them.
      this.failure = error ?? this.core.error ?? this.core.laterUseError('publish');
      this.smoother.fail();
    }
    if (this.smoother === undefined || this.smoother.outstanding === 0) this.confirmsSubject.complete();
    this.returnsSubject.complete();
    const sinks = [...this.consumers.values()];
    this.consumers.clear();
    for (const sink of sinks) sink.ended(error);
  }

  /** @internal A basic.deliver from the broker. */
  dispatchDelivery(method: MethodOf<'basic.deliver'>, properties: BasicProperties, body: Buffer): void {
    const sink = this.consumers.get(method.consumerTag);
    // A delivery nobody claims is kept as needing a settlement: no `multiple` ack may cover it.
    const noAck = sink === undefined ? this.cancelling.get(method.consumerTag) === true : sink.noAck;
    this.core.delivered(method.deliveryTag, !noAck);
    const fields = {
      deliveryTag: method.deliveryTag,
      redelivered: method.redelivered,
      exchange: method.exchange,
      routingKey: method.routingKey,
      consumerTag: method.consumerTag,
    };
    if (sink === undefined) {
      // A delivery that raced our basic.cancel: give it back to the queue rather than hold it (a
      // noAck delivery is already settled, and nacking it would be a protocol error).
      if (this.cancelling.get(method.consumerTag) === false) {
        this.core.settle('nack', method.deliveryTag, false, true);
      }
      return;
    }
    sink.deliver(new Delivery(body, properties, fields, noAck ? undefined : this.core));
  }

  /** @internal A basic.cancel from the broker. */
  dispatchCancel(consumerTag: string): void {
    const sink = this.consumers.get(consumerTag);
    if (sink === undefined) return;
    this.consumers.delete(consumerTag);
    sink.cancelled();
  }

  private readonly consumers = new Map<string, ConsumerSink>();
  /** Consumers whose basic.cancel awaits its cancel-ok, with their noAck setting. */
  private readonly cancelling = new Map<string, boolean>();

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
    // A hand-made share(): the subscribers in an array copied on change, so that delivering to them
    // is a plain loop (this is the path of every message).
    let group: Subscriber<Delivery>[] = [];
    let stop: (() => void) | undefined;
    /** The consumer ended: tell every subscriber; a later subscriber starts a new one. */
    const end = (tell: (s: Subscriber<Delivery>) => void): void => {
      const subscribers = group;
      group = [];
      stop = undefined;
      for (const s of subscribers) tell(s);
    };
    const downstream: Observer<Delivery> = {
      next: (delivery) => {
        const subscribers = group;
        for (let i = 0; i < subscribers.length; i++) subscribers[i]!.next(delivery);
      },
      error: (error: unknown) => end((s) => s.error(error)),
      complete: () => end((s) => s.complete()),
    };
    return new Observable<Delivery>((subscriber) => {
      group = [...group, subscriber];
      if (group.length === 1) {
        const teardown = this.startConsumer(queue, options, downstream);
        // It may have failed at once (a closed channel): then it is over already.
        if (group.includes(subscriber)) stop = teardown;
      }
      return () => {
        if (!group.includes(subscriber)) return;
        group = group.filter((s) => s !== subscriber);
        if (group.length > 0) return;
        const end = stop;
        stop = undefined;
        end?.();
      };
    });
  }

  /** Starts a consumer that reports to `subscriber`; returns what cancels it. */
  private startConsumer(queue: string, options: ConsumeOptions, subscriber: Observer<Delivery>): () => void {
    let consumerTag: string | undefined;
    let stopped = false;
    const noAck = options.noAck ?? false;
    const sink: ConsumerSink = {
      queue,
      noAck,
      deliver: (delivery) => subscriber.next(delivery),
      cancelled: () => {
        stopped = true;
        subscriber.error(new ConsumerCancelledError(consumerTag ?? '', queue));
      },
      ended: (error) => {
        stopped = true;
        if (error === undefined) subscriber.complete();
        else subscriber.error(error);
      },
    };
    // basic.qos or basic.consume failed: the client closing the channel under it ends the consumer
    // as it ends a running one (it completes); other failures are errors.
    const fail = (error: Error): void => {
      stopped = true;
      if (error instanceof ChannelClosedError && error.initiator === 'client') subscriber.complete();
      else this.failOperation(subscriber, error);
    };
    const start = (): void => {
      this.core.call(
        {
          name: 'basic.consume',
          queue,
          consumerTag: options.consumerTag ?? '',
          noLocal: options.noLocal ?? false,
          noAck,
          exclusive: options.exclusive ?? false,
          nowait: false,
          arguments: options.arguments ?? {},
        },
        ['basic.consume-ok'],
        (reply) => {
          consumerTag = (reply as MethodOf<'basic.consume-ok'>).consumerTag;
          if (stopped) {
            // Unsubscribed while basic.consume was in flight: cancel at once.
            this.cancelConsumer(consumerTag, noAck);
            return;
          }
          this.consumers.set(consumerTag, sink);
        },
        fail,
      );
    };
    if (options.prefetch !== undefined) {
      this.core.call(
        { name: 'basic.qos', prefetchCount: options.prefetch, prefetchSize: 0, global: false },
        ['basic.qos-ok'],
        () => undefined,
        fail,
      );
    }
    start();
    return () => {
      if (stopped) return;
      stopped = true;
      if (consumerTag !== undefined) {
        this.consumers.delete(consumerTag);
        this.cancelConsumer(consumerTag, noAck);
      }
    };
  }

  /** Pending requests by correlation id, answered through the direct reply-to consumer. */
  private readonly requests = new Map<string, { answer(reply: Delivery): void; fail(error: Error): void }>();
  private replyConsumer: Subscription | undefined;
  private requestCounter = 0;

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
    options: { timeoutMs?: number; mandatory?: boolean } = {},
  ): Observable<Delivery> {
    const reply$ = new Observable<Delivery>((subscriber) => {
      const correlationId = `${process.pid}.${Date.now().toString(36)}.${(++this.requestCounter).toString(36)}`;
      this.requests.set(correlationId, {
        answer: (reply) => {
          subscriber.next(reply);
          subscriber.complete();
        },
        fail: (error) => subscriber.error(error),
      });
      this.ensureReplyConsumer();
      const publication = this.publish(
        exchange,
        routingKey,
        body,
        {
          ...properties,
          replyTo: 'amq.rabbitmq.reply-to',
          correlationId,
          ...(options.timeoutMs === undefined
            ? {}
            : { expiration: String(Math.max(0, Math.ceil(options.timeoutMs))) }),
        },
        options.mandatory === undefined ? {} : { mandatory: options.mandatory },
      ).subscribe({ error: (error: unknown) => subscriber.error(error) });
      return () => {
        publication.unsubscribe();
        this.requests.delete(correlationId);
      };
    });
    return options.timeoutMs === undefined ? reply$ : reply$.pipe(timeout(options.timeoutMs));
  }

  /** Starts the direct reply-to consumer once: noAck, on this channel, kept for the channel's life. */
  private ensureReplyConsumer(): void {
    if (this.replyConsumer !== undefined && !this.replyConsumer.closed) return;
    // When the reply consumer ends (channel closed or failed), every pending request fails with it.
    const failAll = (error: Error): void => {
      const pending = [...this.requests.values()];
      this.requests.clear();
      for (const request of pending) request.fail(error);
    };
    this.replyConsumer = this.consume('amq.rabbitmq.reply-to', { noAck: true }).subscribe({
      next: (reply) => {
        const id = reply.properties.correlationId;
        const request = id === undefined ? undefined : this.requests.get(id);
        if (request === undefined) return; // abandoned or unknown: dropped
        this.requests.delete(id!);
        request.answer(reply);
      },
      error: (error: Error) => failAll(error),
      complete: () => failAll(this.core.laterUseError('request')),
    });
  }

  /** basic.cancel, waiting for cancel-ok so that no delivery is lost in between (they are requeued). */
  private cancelConsumer(consumerTag: string, noAck: boolean): void {
    if (!this.core.isOpen) return;
    this.cancelling.set(consumerTag, noAck);
    const done = (): void => {
      this.cancelling.delete(consumerTag);
    };
    this.core.call({ name: 'basic.cancel', consumerTag, nowait: false }, ['basic.cancel-ok'], done, done);
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
  exchangeDeclare(exchange: string, type = 'direct', options: ExchangeDeclareOptions & NoWait = {}): Void {
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
  exchangeDelete(exchange: string, options: { ifUnused?: boolean } & NoWait = {}): Void {
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
  ): Void {
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
  ): Void {
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
  queueDeclareNoWait(queue: string, options: QueueDeclareOptions = {}): Void {
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
  ): Void {
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
  ): Void {
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
   * (per consumer; `global: true` for the whole channel).
   *
   * @example
   * ```ts
   * ch.qos(50).subscribe();
   * ```
   */
  qos(prefetchCount: number, options: { prefetchSize?: number; global?: boolean } = {}): Void {
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
  recover(options: { requeue?: boolean } = {}): Void {
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
      const handle = this.core.call(
        { name: 'basic.get', queue, noAck },
        ['basic.get-ok', 'basic.get-empty'],
        (reply) => {
          if (reply !== undefined && 'method' in reply) {
            const m = reply.method as MethodOf<'basic.get-ok'>;
            this.core.delivered(m.deliveryTag, !noAck);
            subscriber.next(
              new Delivery(
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
              ),
            );
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
   * - without confirm mode, `{ status: 'sent' }` once its frames are handed to the socket (waiting
   *   while the socket is backed up);
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
   * @internal The publish under `publish()` and `publishConfirmed`, without an Observable: writes the
   * message as soon as the socket takes more and the synchronous methods queued before it have gone,
   * then calls `done(context, outcome)` once (`sent` after the flush; in confirm mode, the broker's
   * answer), or `done(context, undefined, error)`. When the message has to wait, returns a handle that
   * drops it if it has not been written yet: `cancel()` returns true then, and `done` is never called
   * for it; otherwise `done` is called in any case, and a caller that stopped listening ignores it.
   */
  publishWith<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): { cancel(): boolean } | undefined {
    const core = this.core;
    const connection = core.connection;
    if (core.idle && connection.publishable) {
      // The fast path: nothing to wait for.
      this.writePublish(exchange, routingKey, body, properties, mandatory, context, done);
      return undefined;
    }
    let cancelled = false;
    /** Written, or `done` called: past the point where cancelling drops the message. */
    let gone = false;
    let handle: { cancel(): void } | undefined;
    const dropWait = connection.whenPublishable((error) => {
      if (cancelled) return;
      if (error instanceof PublishBlockedError) {
        gone = true;
        done(context, undefined, error);
        return;
      }
      if (error !== undefined || core.isClosed) {
        gone = true;
        done(context, undefined, core.laterUseError('publish'));
        return;
      }
      // Kept behind synchronous methods subscribed earlier on this channel, so that a publish never
      // overtakes the declaration it depends on.
      handle = core.ordered(
        () => {
          gone = true;
          this.writePublish(exchange, routingKey, body, properties, mandatory, context, done);
        },
        (e) => {
          gone = true;
          done(context, undefined, e);
        },
      );
    });
    return {
      // True when the message was dropped unwritten (then `done` is never called).
      cancel: () => {
        if (cancelled) return false;
        cancelled = true;
        dropWait?.();
        handle?.cancel();
        return !gone;
      },
    };
  }

  /** Writes a publish now; the outcome goes to `done`. */
  private writePublish<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): void {
    const connection = this.core.connection;
    try {
      connection.sendPublish(this.core.id, exchange, routingKey, body, properties, mandatory);
    } catch (e) {
      done(context, undefined, e as Error);
      return;
    }
    const smoother = this.smoother;
    if (smoother !== undefined) {
      // Confirm mode: the outcome comes with the broker's answer for this sequence number.
      this.awaiting.push({
        done: done as PublishCallback<unknown>,
        context,
        exchange,
        routingKey,
        mandatory,
        returned: undefined,
      });
      smoother.publish();
      return;
    }
    connection.afterFlush((flushError) => {
      if (flushError !== undefined) done(context, undefined, this.core.laterUseError('publish'));
      else done(context, SENT);
    });
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
  txSelect(): Void {
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
  txCommit(): Void {
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
  txRollback(): Void {
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
  confirmSelect(options: NoWait = {}): Void {
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
  close(): Void {
    return new Observable<void>((subscriber) => {
      this.core.close(() => {
        subscriber.next();
        subscriber.complete();
      });
    });
  }

  /** A method whose reply carries nothing: emits once answered, or once sent when `nowait`. */
  private voidCall(method: MethodInit, reply: MethodName, nowait: boolean | undefined): Void {
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
    if (this.core.connection.lostToRecovery(error)) subscriber.complete();
    else subscriber.error(error);
  }

  [inspect.custom](): string {
    return `Channel { id: ${this.core.id}, open: ${this.core.isOpen} }`;
  }
}

function toVoid(): void {}

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
