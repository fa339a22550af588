/**
 * The consumers of one channel: `consume()` as a hot, reference-counted delivery stream, the
 * basic.qos / basic.consume / basic.cancel exchanges behind it, and the routing of deliveries and
 * broker cancels to the right stream. Deliveries for a consumer tag the channel does not know are
 * given back to the queue and reported, so that none holds a prefetch slot for good.
 *
 * @module
 */
import { Observable, type Observer, Subject, type Subscriber } from 'rxjs';
import type { ChannelCore, RpcHandle } from '../core/channel-core.js';
import { ChannelClosedError, ConsumerCancelledError, type HeadersDecodeError } from '../errors.js';
import type { BasicProperties, MethodOf } from '../protocol/generated.js';
import { Delivery } from './delivery.js';
import type { DeliveryFields } from './interfaces.js';
import type { ConsumeOptions } from './types.js';

/**
 * A delivery for a consumer tag the channel does not know (see `Channel.unclaimed$`): the client
 * did not start that consumer, or forgot it. It was given back to the queue with basic.reject
 * (`requeued: true`), or, coming to a `noAck` consumer being cancelled, needed nothing.
 *
 * @example
 * ```ts
 * ch.unclaimed$.subscribe((u) => log.warn('delivery for unknown consumer', u.fields.consumerTag));
 * ```
 */
export interface UnclaimedDelivery {
  readonly fields: DeliveryFields;
  readonly properties: BasicProperties;
  readonly requeued: boolean;
}

/** A consumer of this channel: where its deliveries go. */
interface ConsumerSink {
  readonly noAck: boolean;
  deliver(delivery: Delivery): void;
  /** The broker cancelled it. */
  cancelled(): void;
  /** The channel ended (error undefined: the client closed it). */
  ended(error: Error | undefined): void;
}

/** @internal */
export class Consumers {
  private readonly sinks = new Map<string, ConsumerSink>();
  /** Consumers whose basic.cancel awaits its cancel-ok, with their noAck setting. */
  private readonly cancelling = new Map<string, boolean>();
  private readonly unclaimedSubject = new Subject<UnclaimedDelivery>();
  readonly unclaimed$: Observable<UnclaimedDelivery> = this.unclaimedSubject.asObservable();

  constructor(
    private readonly core: ChannelCore,
    /** Ends a one-shot operation that failed (completing it when recovery replaces the connection). */
    private readonly failOperation: (subscriber: Observer<never>, error: Error) => void,
  ) {}

  /** See `Channel.consume`. */
  consume(queue: string, options: ConsumeOptions): Observable<Delivery> {
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
        const teardown = this.start(queue, options, downstream);
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
  private start(queue: string, options: ConsumeOptions, subscriber: Observer<Delivery>): () => void {
    let consumerTag: string | undefined;
    let stopped = false;
    const noAck = options.noAck ?? false;
    const sink: ConsumerSink = {
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
    // Both go out with the flush that ends this turn: a consumer unsubscribed in the turn it was
    // subscribed withdraws them and sends nothing.
    let qos: RpcHandle | undefined;
    if (options.prefetch !== undefined) {
      qos = this.core.call(
        { name: 'basic.qos', prefetchCount: options.prefetch, prefetchSize: 0, global: false },
        ['basic.qos-ok'],
        () => undefined,
        fail,
        { deferred: true },
      );
    }
    const consume = this.core.call(
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
          this.cancel(consumerTag, noAck);
          return;
        }
        this.sinks.set(consumerTag, sink);
      },
      fail,
      { deferred: true },
    );
    return () => {
      if (stopped) return;
      stopped = true;
      if (consume.withdraw()) {
        qos?.withdraw();
        return;
      }
      if (consumerTag !== undefined) {
        this.sinks.delete(consumerTag);
        this.cancel(consumerTag, noAck);
      }
    };
  }

  /** A basic.deliver from the broker. */
  delivered(
    method: MethodOf<'basic.deliver'>,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void {
    const sink = this.sinks.get(method.consumerTag);
    const fields: DeliveryFields = {
      deliveryTag: method.deliveryTag,
      redelivered: method.redelivered,
      exchange: method.exchange,
      routingKey: method.routingKey,
      consumerTag: method.consumerTag,
    };
    if (sink !== undefined) {
      this.core.delivered(method.deliveryTag, !sink.noAck);
      sink.deliver(new Delivery(body, properties, fields, sink.noAck ? undefined : this.core, headersError));
      return;
    }
    // Nobody claims it. For a consumer being cancelled this is the race with our basic.cancel;
    // otherwise the consumer is unknown. Either way give it back to the queue rather than hold it (a
    // noAck delivery is already settled, and rejecting it would be a protocol error). It is kept as
    // needing a settlement until then, so that no `multiple` ack covers it.
    const cancellingNoAck = this.cancelling.get(method.consumerTag);
    const requeue = cancellingNoAck !== true;
    this.core.delivered(method.deliveryTag, requeue);
    if (requeue)
      this.core.settle(cancellingNoAck === undefined ? 'reject' : 'nack', method.deliveryTag, false, true);
    if (cancellingNoAck === undefined && this.unclaimedSubject.observed) {
      this.unclaimedSubject.next({ fields, properties, requeued: requeue });
    }
  }

  /** A basic.cancel from the broker. */
  cancelledByBroker(consumerTag: string): void {
    const sink = this.sinks.get(consumerTag);
    if (sink === undefined) return;
    this.sinks.delete(consumerTag);
    sink.cancelled();
  }

  /** The channel ended: every consumer stream ends with it. */
  end(error: Error | undefined): void {
    this.unclaimedSubject.complete();
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    for (const sink of sinks) sink.ended(error);
  }

  /** basic.cancel, waiting for cancel-ok so that no delivery is lost in between (they are requeued). */
  private cancel(consumerTag: string, noAck: boolean): void {
    if (!this.core.isOpen) return;
    this.cancelling.set(consumerTag, noAck);
    const done = (): void => {
      this.cancelling.delete(consumerTag);
    };
    this.core.call({ name: 'basic.cancel', consumerTag, nowait: false }, ['basic.cancel-ok'], done, done);
  }
}
