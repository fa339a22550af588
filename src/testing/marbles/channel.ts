/**
 * A fake channel for marble tests: it makes deliveries whose settlements it records (as basic.ack,
 * basic.nack and basic.reject would reach the broker), and it is a `PublishTarget` whose publishes
 * and confirm outcomes are recorded and scripted. It stands for a `Channel` or a `Publisher`.
 *
 * @module
 */
import { type Observable, Observable as RxObservable, share } from 'rxjs';
import { Delivery, type Settler } from '../../client/delivery.js';
import type {
  PublishCallback,
  PublishHandle,
  PublishTarget,
  SettlementWatcher,
} from '../../client/interfaces.js';
import type {
  Confirmation,
  ConsumeOptions,
  PublishOptions,
  PublishOutcome,
  ReturnedMessage,
} from '../../client/types.js';
import { ChannelClosedError } from '../../errors.js';
import { utf8Decode, utf8Encode } from '../../protocol/bytes.js';
import type { BasicProperties } from '../../protocol/generated.js';
import type { Clock, SubscriptionLogs } from './context.js';
import { type FakeMessage, type PublishedMessage, plainBytes, toBytes, toInit } from './message.js';
import { Publishes } from './publishing.js';
import type { FakeQueue, QueueConsumer, QueuedMessage } from './queue.js';
import type { Settlement } from './settlement.js';
import { Timeline } from './timeline.js';
import type { ChannelEvent, FakeChannelOptions } from './types.js';

/**
 * A test Observable of deliveries, with the deliveries it emits by values-map key (to use in
 * expectations) and its subscriptions (for `expectSubscriptions`).
 *
 * @example
 * ```ts
 * const source = channel.cold('-a-b|', { a: 'one', b: 'two' });
 * expectObservable(source.pipe(ackAll())).toBe('-a-b|', source.deliveries);
 * ```
 */
export type DeliveryStream<K extends string> = Observable<Delivery> & {
  readonly deliveries: { readonly [P in K]: Delivery };
  readonly subscriptions: SubscriptionLogs;
};

/** @internal What a fake channel needs from its kit. */
export interface ChannelHost {
  readonly clock: Clock;
  nextChannelId(): number;
  /** The queue of that name, made if need be. */
  queue(name: string): FakeQueue;
  /** The queue of that name if the test made one. */
  existingQueue(name: string): FakeQueue | undefined;
}

interface Origin {
  readonly queue: FakeQueue;
  readonly message: QueuedMessage;
  readonly consumer: QueueConsumer;
}

interface Consumer extends QueueConsumer {
  readonly end: (error: Error | undefined) => void;
}

/**
 * A fake channel. Deliveries made with it (`delivery`, `cold`, `hot`, `consume`) are real `Delivery`
 * objects whose settlements reach this channel: `settlements$` and `settlements` show them as the
 * broker would receive them. It checks them as RabbitMQ does: settling a tag that is not outstanding
 * (settled already, by a `multiple` settlement say) closes the channel with 406 PRECONDITION_FAILED.
 *
 * As a `PublishTarget` (both `publish` and `publishWith`), every publish is written at once (or when
 * `unblock()` is called, while blocked), appears on `published$`, and is answered by the `reply`
 * script; `confirms$` shows the answers. Closing it (`close()`, `fail()`, or its fake connection dropping)
 * fails the publishes still waiting, requeues its unacknowledged queue deliveries and completes its
 * consumers.
 *
 * @example
 * ```ts
 * const channel = kit.channel({ reply: (m) => (m.text === 'bad' ? '-n' : '-a') });
 * const source = channel.cold('-a-b|', { a: 'good', b: 'bad' });
 * expectObservable(source.pipe(ackAll())).toBe('-a-b|', source.deliveries);
 * expectObservable(channel.settlements$).toBe('-a-b', { a: settlement.ack(1), b: settlement.ack(2) });
 * ```
 */
export class FakeChannel implements PublishTarget {
  /** The channel number. */
  readonly id: number;
  private readonly clock: Clock;
  private readonly settled: Timeline<Settlement>;
  private readonly publishes: Publishes;
  private readonly log: ChannelEvent[] = [];
  private readonly outstanding = new Set<number>();
  private readonly origins = new Map<number, Origin>();
  private readonly consumers = new Set<Consumer>();
  private readonly endListeners: ((error: Error | undefined) => void)[] = [];
  private tag = 0;
  private consumerCount = 0;
  private closedWith:
    | { error: Error | undefined; failure: ChannelClosedError; reported: Error | undefined }
    | undefined;

  private readonly settler: Settler = {
    settle: (kind, deliveryTag, multiple, requeue) => this.settle(kind, deliveryTag, multiple, requeue),
    watch: (watcher) => {
      if (this.closedWith !== undefined) return false;
      this.watchers.add(watcher);
      return true;
    },
    unwatch: (watcher) => {
      this.watchers.delete(watcher);
    },
  };
  /** Who holds deliveries of this channel and hears when they can no longer be settled (it closed). */
  private readonly watchers = new Set<SettlementWatcher>();

  /**
   * @internal Set by a recovering fake connection's `channel()`: true for an error that replaces the
   * channel (a consumer timeout), whose consumers and record streams then complete.
   */
  replaces: ((error: Error) => boolean) | undefined = undefined;

  /**
   * The consumer timeout that closed the channel this one replaces, as `Channel.reopenedAfter`: a
   * recovering fake connection's `channel()` emits a fresh channel after `timeOut()`.
   */
  readonly reopenedAfter: Error | undefined;

  /** @internal Made by `kit.channel()` or a fake connection's `channel()`. */
  constructor(
    private readonly host: ChannelHost,
    private readonly options: FakeChannelOptions = {},
    reopenedAfter?: Error,
  ) {
    this.reopenedAfter = reopenedAfter;
    this.clock = host.clock;
    this.id = options.id ?? host.nextChannelId();
    this.settled = new Timeline(this.clock);
    this.publishes = new Publishes(
      this.clock,
      options,
      (event) => this.log.push(event),
      (message) => {
        // The default exchange routes to the queue named by the routing key, when the test made one.
        if (message.exchange !== '') return;
        this.host.existingQueue(message.routingKey)?.send({
          body: message.body,
          ...(message.properties === undefined ? {} : { properties: message.properties }),
          routingKey: message.routingKey,
        });
      },
    );
  }

  // ---- deliveries --------------------------------------------------------------------------------

  /**
   * A delivery on this channel: a real `Delivery` whose settlements this channel records. Its tag is
   * the channel's next unless `deliveryTag` says otherwise.
   *
   * @example
   * ```ts
   * const d = channel.delivery({ body: { id: 1 }, redelivered: true });
   * d.json(); // { id: 1 }
   * ```
   */
  delivery(message: FakeMessage = {}): Delivery {
    const init = toInit(message);
    const deliveryTag = init.deliveryTag ?? this.tag + 1;
    this.tag = Math.max(this.tag, deliveryTag);
    const consumerTag = init.consumerTag ?? this.options.consumerTag;
    const noAck = init.noAck ?? false;
    if (!noAck) this.outstanding.add(deliveryTag);
    return new Delivery(
      toBytes(init.body),
      init.properties ?? {},
      {
        deliveryTag,
        redelivered: init.redelivered ?? false,
        exchange: init.exchange ?? '',
        routingKey: init.routingKey ?? 'test',
        ...(consumerTag === undefined ? {} : { consumerTag }),
        ...(init.messageCount === undefined ? {} : { messageCount: init.messageCount }),
      },
      noAck ? undefined : this.settler,
    );
  }

  /**
   * Deliveries for each entry of a values map, made now with tags in the map's order: to build
   * marbles by hand (`cold(marbles, { a, b })`) or to leave a tag out of a stream.
   *
   * @example
   * ```ts
   * const { a, c } = channel.deliveriesOf({ a: 'one', b: 'two', c: 'three' }); // tags 1, 2, 3
   * expectObservable(cold('-ca|', { a, c }).pipe(batchAck())).toBe('--a|', { a }); // c waits for tag 2
   * ```
   */
  deliveriesOf<K extends string>(values: Record<K, FakeMessage>): { [P in K]: Delivery } {
    const deliveries = {} as Record<K, Delivery>;
    for (const key of Object.keys(values) as K[]) deliveries[key] = this.delivery(values[key]);
    return deliveries;
  }

  /**
   * A cold Observable of deliveries on a marble (as `cold(marbles, values)`), the values map naming
   * messages. The deliveries are made at once, with tags in the values map's order: `deliveries` holds
   * them, for expectations. A second subscription emits the same deliveries again.
   *
   * @example
   * ```ts
   * const source = channel.cold('-a-b---|', { a: 'one', b: { body: { n: 2 }, redelivered: true } });
   * expectObservable(source.pipe(batchAck({ count: 2 }))).toBe('---(ab)|', source.deliveries);
   * ```
   */
  cold<K extends string>(
    marbles: string,
    values: Record<K, FakeMessage>,
    error?: unknown,
  ): DeliveryStream<K> {
    return this.stream(this.clock.cold, marbles, values, error);
  }

  /**
   * A hot Observable of deliveries on a marble (as `hot(marbles, values)`); see {@link cold}.
   *
   * @example
   * ```ts
   * const source = channel.hot('--a-^-b', { a: 'missed', b: 'seen' });
   * ```
   */
  hot<K extends string>(marbles: string, values: Record<K, FakeMessage>, error?: unknown): DeliveryStream<K> {
    return this.stream(this.clock.hot, marbles, values, error);
  }

  private stream<K extends string>(
    make: Clock['cold'],
    marbles: string,
    values: Record<K, FakeMessage>,
    error: unknown,
  ): DeliveryStream<K> {
    const deliveries = this.deliveriesOf(values);
    const source = make(marbles, deliveries, error) as Observable<Delivery> & {
      subscriptions: SubscriptionLogs;
    };
    // Not `messages`: a ColdObservable keeps its marble there.
    return Object.assign(source, { deliveries });
  }

  /**
   * Consumes a fake queue (made by `kit.queue(name)`, or an empty one made now): hot and shared, as
   * `Channel.consume` (the subscribers of one returned Observable share one consumer), until the last
   * subscriber leaves (basic.cancel; the deliveries not yet settled stay unacknowledged on the
   * channel) or the channel closes (then it completes, or errors with the channel's error; subscribed
   * on a closed channel, likewise). Of the options, `prefetch`, `consumerTag` (default
   * `ctag-<channel>.<n>`) and `noAck` are honoured; the others are ignored.
   *
   * @example
   * ```ts
   * kit.queue('jobs', '-a-b', { a: 'one', b: 'two' });
   * channel.consume('jobs', { prefetch: 1 }).pipe(ackOnSuccess(handle)).subscribe();
   * ```
   */
  consume(queue: string, options: ConsumeOptions = {}): Observable<Delivery> {
    // Hot and reference-counted, as `Channel.consume`: the subscribers of one consume() share one
    // consumer (one prefetch, the same Delivery objects); the last one leaving cancels it, and a later
    // subscriber starts a new one.
    return new RxObservable<Delivery>((subscriber) => {
      if (this.closedWith !== undefined) {
        // As on a Channel: closed by the client, or lost with a recovering connection, a consumer
        // completes (the pipeline waits for the next channel); on a failed channel it errors.
        if (this.closedWith.error === undefined) subscriber.complete();
        else subscriber.error(this.closedWith.failure.forLaterUse('basic.consume'));
        return;
      }
      const q = this.host.queue(queue);
      const consumerTag = options.consumerTag ?? `ctag-${this.id}.${++this.consumerCount}`;
      const noAck = options.noAck ?? false;
      const consumer: Consumer = {
        prefetch: noAck ? 0 : (options.prefetch ?? 0),
        unacked: 0,
        deliver: (message) => subscriber.next(this.deliverFrom(q, message, consumer, consumerTag, noAck)),
        end: (error) => (error === undefined ? subscriber.complete() : subscriber.error(error)),
      };
      this.consumers.add(consumer);
      const remove = q.addConsumer(consumer);
      return () => {
        remove();
        this.consumers.delete(consumer);
      };
    }).pipe(share());
  }

  private deliverFrom(
    queue: FakeQueue,
    message: QueuedMessage,
    consumer: QueueConsumer,
    consumerTag: string,
    noAck: boolean,
  ): Delivery {
    const delivery = this.delivery({
      body: message.body,
      properties: message.properties,
      exchange: message.exchange,
      routingKey: message.routingKey,
      redelivered: message.redelivered,
      consumerTag,
      noAck,
    });
    if (noAck) queue.settled(message, 'acked');
    else {
      consumer.unacked++;
      this.origins.set(delivery.fields.deliveryTag, { queue, message, consumer });
    }
    return delivery;
  }

  /**
   * The settlements this channel received, as they happen (hot: a subscriber also gets those of the
   * frame it subscribed in, so `expectObservable` sees settlements made while the test set up).
   * Completes when the channel closes, or errors with its error.
   *
   * @example
   * ```ts
   * expectObservable(channel.settlements$).toBe('-a', { a: settlement.reject(1, { requeue: false }) });
   * ```
   */
  get settlements$(): Observable<Settlement> {
    return this.settled.events$;
  }

  /**
   * The settlements received so far, in order.
   *
   * @example
   * ```ts
   * expect(channel.settlements).toEqual([settlement.ack(1), settlement.nack(2)]);
   * ```
   */
  get settlements(): Settlement[] {
    return this.settled.values;
  }

  /** The delivery tags delivered and not yet settled, as the broker counts them (ascending). */
  get unsettledTags(): number[] {
    return [...this.outstanding].sort((a, b) => a - b);
  }

  /**
   * Acknowledges a delivery by tag, as `Channel.ack`: false when the channel is closed. (The
   * `Delivery` objects are not told: settle them through their own methods where you can.)
   *
   * @example
   * ```ts
   * channel.ack(3, { multiple: true }); // tags 1 to 3
   * ```
   */
  ack(deliveryTag: number, options: { multiple?: boolean } = {}): boolean {
    return this.settle('ack', deliveryTag, options.multiple ?? false, false);
  }

  /**
   * Negatively acknowledges a delivery by tag (requeued unless `requeue: false`), as `Channel.nack`.
   *
   * @example
   * ```ts
   * channel.nack(3, { multiple: true, requeue: false });
   * ```
   */
  nack(deliveryTag: number, options: { multiple?: boolean; requeue?: boolean } = {}): boolean {
    return this.settle('nack', deliveryTag, options.multiple ?? false, options.requeue ?? true);
  }

  /**
   * Rejects a delivery by tag (requeued unless `requeue: false`), as `Channel.reject`.
   *
   * @example
   * ```ts
   * channel.reject(2, { requeue: false });
   * ```
   */
  reject(deliveryTag: number, options: { requeue?: boolean } = {}): boolean {
    return this.settle('reject', deliveryTag, false, options.requeue ?? true);
  }

  private settle(
    kind: Settlement['kind'],
    deliveryTag: number,
    multiple: boolean,
    requeue: boolean,
  ): boolean {
    if (this.closedWith !== undefined) return false;
    const settlement: Settlement = { kind, deliveryTag, multiple, requeue };
    this.settled.push(settlement);
    this.log.push({ time: this.clock.now(), type: 'settled', settlement });
    if (!this.outstanding.has(deliveryTag) && !(multiple && deliveryTag === 0)) {
      // As RabbitMQ: an unknown (or already settled) tag closes the channel.
      this.end(
        ChannelClosedError.fromServer(this.id, {
          replyCode: 406,
          replyText: `PRECONDITION_FAILED - unknown delivery tag ${deliveryTag}`,
          classId: 60,
          methodId: kind === 'ack' ? 80 : kind === 'nack' ? 120 : 90,
        }),
      );
      return true;
    }
    const tags = multiple
      ? [...this.outstanding].filter((t) => deliveryTag === 0 || t <= deliveryTag)
      : [deliveryTag];
    for (const t of tags) {
      this.outstanding.delete(t);
      const origin = this.origins.get(t);
      if (origin === undefined) continue;
      this.origins.delete(t);
      origin.consumer.unacked--;
      origin.queue.settled(origin.message, kind === 'ack' ? 'acked' : requeue ? 'requeue' : 'dead-letter');
    }
    return true;
  }

  // ---- publishing --------------------------------------------------------------------------------

  /** True unless made with `confirm: false` (and `confirmSelect()` not called since). */
  get confirmMode(): boolean {
    return this.publishes.confirming;
  }

  /**
   * Publishes as `Channel.publish`: the Observable emits the outcome and completes, or errors (a
   * scripted `#`, the channel closing first). Unsubscribing drops a message still waiting to be
   * written (while blocked, or until its `w`); after that it only stops listening.
   *
   * @example
   * ```ts
   * channel.publish('', 'jobs', 'hello').subscribe((outcome) => console.log(outcome.status));
   * ```
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties?: BasicProperties,
    options: PublishOptions = {},
  ): Observable<PublishOutcome> {
    return new RxObservable<PublishOutcome>((subscriber) => {
      const handle = this.publishWith(
        exchange,
        routingKey,
        typeof body === 'string' ? utf8Encode(body) : body,
        properties,
        options.mandatory ?? false,
        undefined,
        (_, outcome, error) => {
          if (outcome === undefined) subscriber.error(error);
          else {
            subscriber.next(outcome);
            subscriber.complete();
          }
        },
      );
      return handle === undefined ? undefined : () => void handle.cancel();
    });
  }

  /**
   * Publishes as `Channel.publishWith`: written at once (returns undefined) unless the channel is
   * blocked or the publish's reply marble holds a `w`; then a handle whose `cancel()` drops the message
   * until it is written (by `unblock()`, or at its `w`).
   *
   * @example
   * ```ts
   * channel.publishWith('', 'jobs', bytes, undefined, false, 'job-1', (id, outcome) => log(id, outcome?.status));
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
    if (this.closedWith !== undefined) {
      done(context, undefined, this.closedWith.failure.forLaterUse('basic.publish'));
      return undefined;
    }
    return this.publishes.submit(
      { exchange, routingKey, body: plainBytes(body), text: utf8Decode(body), properties, mandatory },
      context,
      done as PublishCallback<unknown>,
    );
  }

  /**
   * Holds the publishes from now on: they wait unwritten (as behind a blocked connection or a full
   * socket), and `cancel()` or unsubscribing drops them.
   *
   * @example
   * ```ts
   * channel.block();
   * kit.at(5, () => channel.unblock());
   * ```
   */
  block(): void {
    this.publishes.blocked = true;
  }

  /**
   * Writes the publishes that wait, in order, and the next ones at once.
   *
   * @example
   * ```ts
   * channel.unblock();
   * ```
   */
  unblock(): void {
    this.publishes.unblock();
  }

  /**
   * The messages written, as they are (hot, like `settlements$`).
   *
   * @example
   * ```ts
   * expectObservable(channel.published$).toBe('--p', { p: published('', 'q', 'hi') });
   * ```
   */
  get published$(): Observable<PublishedMessage> {
    return this.publishes.published.events$;
  }

  /** The messages written so far, in order. */
  get published(): PublishedMessage[] {
    return this.publishes.published.values;
  }

  /**
   * The broker's answers, as `Channel.confirms$` reports them (`failed` when a publish errored or the
   * channel closed first), as they come (hot, like `settlements$`).
   *
   * @example
   * ```ts
   * expectObservable(channel.confirms$).toBe('-a', { a: { status: 'acked', seq: 1 } });
   * ```
   */
  get confirms$(): Observable<Confirmation> {
    return this.publishes.confirms.events$;
  }

  /** The answers so far, in order. */
  get confirms(): Confirmation[] {
    return this.publishes.confirms.values;
  }

  /**
   * The messages returned (`r` replies), as `Channel.returns$` reports them.
   *
   * @example
   * ```ts
   * channel.returns$.subscribe((r) => console.log(r.replyText, r.routingKey));
   * ```
   */
  get returns$(): Observable<ReturnedMessage> {
    return this.publishes.returns.events$;
  }

  /** Publishes written and not answered yet. */
  get unconfirmed(): number {
    return this.publishes.unconfirmed;
  }

  /** The most publishes that awaited their answer at once. */
  get maxUnconfirmed(): number {
    return this.publishes.maxUnconfirmed;
  }

  /** Publishes waiting to be written (while blocked, or until their `w`). */
  get unwritten(): number {
    return this.publishes.unwritten;
  }

  /** Publishes dropped unwritten by their handle's `cancel()` (or by unsubscribing `publish`). */
  get cancelled(): number {
    return this.publishes.cancelled;
  }

  // ---- life --------------------------------------------------------------------------------------

  /**
   * Everything that happened, in order, with its frame.
   *
   * @example
   * ```ts
   * expect(channel.events.filter((e) => e.type === 'settled').map((e) => e.time)).toEqual([4]);
   * ```
   */
  get events(): readonly ChannelEvent[] {
    return this.log;
  }

  /** True until closed. */
  get isOpen(): boolean {
    return this.closedWith === undefined;
  }

  /**
   * Why it closed, unless the client closed it: a 406 from a bad settlement, `fail()`, its connection
   * failing or lost (also when its streams completed because recovery follows, as on a `Channel`).
   */
  get error(): Error | undefined {
    return this.closedWith?.reported;
  }

  /**
   * Closes the channel when subscribed, as `Channel.close()` (the client closing it): emits and
   * completes. Publishes waiting or awaiting their answer fail with a `ChannelClosedError`,
   * unacknowledged deliveries from fake queues go back to them (redelivered), settling later sends
   * nothing (returns false), operators holding deliveries of it are told they can no longer be settled
   * (`ackOnSuccess` lets go of their handlers), and the consumers and the record streams complete.
   *
   * @example
   * ```ts
   * kit.at(3, () => channel.close().subscribe());
   * ```
   */
  close(): Observable<void> {
    return new RxObservable<void>((subscriber) => {
      this.end(undefined);
      subscriber.next();
      subscriber.complete();
    });
  }

  /**
   * Closes the channel now, as the broker does on a channel error: like {@link close}, but the
   * consumers and the record streams error with `error` (a `ChannelClosedError` is used as it is; any
   * other error becomes the cause of one).
   *
   * @example
   * ```ts
   * kit.at(3, () =>
   *   channel.fail(ChannelClosedError.fromServer(1, { replyCode: 404, replyText: 'NOT_FOUND', classId: 50, methodId: 10 })),
   * );
   * ```
   */
  fail(error: Error): void {
    this.end(error);
  }

  /**
   * RabbitMQ's consumer timeout (RabbitMQ 3.x's form): the broker closes the channel with 406
   * `PRECONDITION_FAILED - delivery acknowledgement on channel N timed out...`, which
   * `isConsumerTimeout` recognises. On a recovering fake connection (`onLoss: 'complete'`, the
   * default) its consumers complete and `channel()` emits a fresh channel, as `Connection.channel()`
   * does; otherwise it fails like {@link fail}.
   *
   * @example
   * ```ts
   * kit.at(5, () => connection.channels[0]!.timeOut()); // the pipeline goes on on channel 2
   * ```
   */
  timeOut(): void {
    this.end(
      ChannelClosedError.fromServer(this.id, {
        replyCode: 406,
        replyText: `PRECONDITION_FAILED - delivery acknowledgement on channel ${this.id} timed out. Timeout value used: 1800000 ms. This timeout value can be configured, see consumers doc guide to learn more`,
        classId: 0,
        methodId: 0,
      }),
    );
  }

  /**
   * Turns confirm mode on, as `Channel.confirmSelect()`: emits when subscribed and completes.
   *
   * @example
   * ```ts
   * channel.confirmSelect().pipe(switchMap(() => messages$), publishConfirmed(channel)).subscribe();
   * ```
   */
  confirmSelect(): Observable<void> {
    return new RxObservable<void>((subscriber) => {
      this.publishes.confirming = true;
      subscriber.next();
      subscriber.complete();
    });
  }

  /**
   * @internal `error` ends the streams with it; `failure` is what the publishes fail with; `reported`
   * is what `error` shows (default `error`).
   */
  end(error: Error | undefined, failure?: ChannelClosedError, reported: Error | undefined = error): void {
    if (this.closedWith !== undefined) return;
    // Replaced by a fresh channel: the streams complete, the listeners (channel()) hear why.
    const replaced = error !== undefined && this.replaces?.(error) === true;
    const streamsError = replaced ? undefined : error;
    const closed =
      failure ??
      (error instanceof ChannelClosedError
        ? error
        : new ChannelClosedError('CHANNEL_CLOSED', `fake channel ${this.id} closed`, {
            channel: this.id,
            initiator: error === undefined ? 'client' : 'server',
            ...(error === undefined ? {} : { cause: error }),
          }));
    this.closedWith = { error: streamsError, failure: closed, reported };
    this.log.push({ time: this.clock.now(), type: 'closed', error });
    this.publishes.fail(closed);
    for (const [tag, origin] of this.origins) {
      this.origins.delete(tag);
      origin.consumer.unacked--;
      origin.queue.settled(origin.message, 'requeue');
    }
    this.outstanding.clear();
    const watchers = [...this.watchers];
    this.watchers.clear();
    for (const watcher of watchers) {
      try {
        watcher.settlementLost();
      } catch {
        // a watcher's own bug must not stop the others
      }
    }
    for (const consumer of [...this.consumers]) consumer.end(streamsError);
    this.consumers.clear();
    if (streamsError === undefined) this.settled.complete();
    else this.settled.error(streamsError);
    this.publishes.end(streamsError);
    for (const listener of this.endListeners.splice(0)) listener(error);
  }

  /** @internal Called once when the channel closes. */
  onEnd(listener: (error: Error | undefined) => void): void {
    if (this.closedWith !== undefined) listener(this.closedWith.error);
    else this.endListeners.push(listener);
  }
}
