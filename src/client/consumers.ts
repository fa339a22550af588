/**
 * The consumers of one channel: `consume()` as a hot, reference-counted delivery stream, the
 * basic.qos / basic.consume / basic.cancel exchanges behind it, and the routing of deliveries and
 * broker cancels to the right stream. Deliveries for a consumer tag the channel does not know are
 * given back to the queue and reported, so that none holds a prefetch slot for good.
 *
 * @module
 */
import { Observable, type Observer, type Subscriber } from 'rxjs';
import type { ChannelCore, RpcHandle } from '../core/channel-core.js';
import {
  ChannelClosedError,
  ConsumerCancelledError,
  DrainingError,
  type HeadersDecodeError,
} from '../errors.js';
import type { BasicProperties, MethodOf } from '../protocol/generated.js';
import type { Reporter } from '../telemetry/reporter.js';
import { Delivery, type Settler } from './delivery.js';
import type { DeliveryFields, SettlementWatcher } from './interfaces.js';
import { LazySubject } from './lazy-subject.js';
import type { DeliveryTraces } from './traces.js';
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

/**
 * @internal RabbitMQ's direct reply-to pseudo-queue: what requests name as `replyTo` and consume their
 * replies from, and what a drain leaves consuming (see `Consumers.drain`).
 */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** @internal Ends a one-shot operation that failed (completing it when recovery replaces the connection). */
export interface OperationFailer {
  failOperation(subscriber: Observer<never>, error: Error): void;
}

/** A consumer of this channel: where its deliveries go, and how they are settled. */
interface ConsumerSink extends Settler {
  readonly noAck: boolean;
  readonly queue: string;
  /**
   * How a delivery crossing its basic.cancel is settled; `'ack'` for a stream consumer, whose nacks
   * and rejects are sent as acks too (see `Consumers.credit`).
   */
  readonly crossing: CrossingSettlement;
  deliver(delivery: Delivery): void;
  /** The broker cancelled it. */
  cancelled(): void;
  /** The channel ended (error undefined: the client closed it). */
  ended(error: Error | undefined): void;
}

/** @internal */
export class Consumers {
  /** The running consumers by tag (made with the first: a channel that never consumes has none). */
  private sinks: Map<string, ConsumerSink> | undefined;
  /**
   * Consumers whose basic.cancel awaits its cancel-ok, with how a delivery crossing the cancel is
   * given back: not at all (noAck), requeued (nack), or acked (a stream consumer: RabbitMQ answers a
   * nack or reject on a stream with 540 NOT_IMPLEMENTED, closing the connection).
   */
  private cancelling: Map<string, CrossingSettlement> | undefined;
  /** Made when first asked for; `unclaimedDone` makes it completed if the channel ended before. */
  private unclaimedSubject: LazySubject<UnclaimedDelivery> | undefined;
  private unclaimedDone = false;
  /**
   * The consumers whose deliveries are watched by operators holding them (see
   * `Delivery.watchSettlement`), stopped ones included: the channel's end tells them all.
   */
  private watched: Set<ConsumerRun> | undefined;

  get unclaimed$(): Observable<UnclaimedDelivery> {
    if (this.unclaimedSubject === undefined) {
      this.unclaimedSubject = new LazySubject();
      if (this.unclaimedDone) this.unclaimedSubject.complete();
    }
    return this.unclaimedSubject.asObservable();
  }

  constructor(
    private readonly core: ChannelCore,
    /** Ends a one-shot operation that failed (completing it when recovery replaces the connection). */
    private readonly failer: OperationFailer,
    /** Hears of consumers starting and ending. */
    private readonly reporter: Reporter,
    /** The deliveries followed by the connection's telemetry, when it follows them. */
    private readonly traces: DeliveryTraces | undefined,
  ) {}

  /** See `Channel.consume`. */
  consume(queue: string, options: ConsumeOptions): Observable<Delivery> {
    return new ConsumeObservable(new SharedConsumer(this, queue, options));
  }

  /**
   * Starts a consumer that reports to `host`; returns what cancels it. `resumed`: it replaces one the
   * broker cancelled for a consumer timeout, whose explicit tag is reused only where the broker has
   * let go of it (see `ChannelCore.releasesCancelledTags`).
   */
  start(queue: string, options: ConsumeOptions, host: ConsumerHost, resumed = false): ConsumerRun {
    const noAck = options.noAck ?? false;
    const crossing: CrossingSettlement = noAck ? 'none' : isStreamConsume(options) ? 'ack' : 'nack';
    const run = new ConsumerRun(this, this.core, queue, crossing, host);
    if (this.refuses(queue)) {
      run.stopped = true;
      host.error(new DrainingError(`consume('${queue}') while the connection drains`));
      return run;
    }
    // Both go out with the flush that ends this turn: a consumer unsubscribed in the turn it was
    // subscribed withdraws them and sends nothing. The handles (and the stacks the operations
    // captured) are let go once answered: an idle consumer keeps only what routes its deliveries.
    const fail = (error: Error): void => run.failed(error);
    if (options.prefetch !== undefined) {
      run.qos = this.core.call(
        { name: 'basic.qos', prefetchCount: options.prefetch, prefetchSize: 0, global: false },
        ['basic.qos-ok'],
        () => {
          run.qos = undefined;
        },
        fail,
        { deferred: true },
      );
    }
    run.consume = this.core.call(
      {
        name: 'basic.consume',
        queue,
        consumerTag: resumed && !this.core.releasesCancelledTags ? '' : (options.consumerTag ?? ''),
        noLocal: options.noLocal ?? false,
        noAck: run.noAck,
        exclusive: options.exclusive ?? false,
        nowait: false,
        arguments: options.arguments ?? {},
      },
      ['basic.consume-ok'],
      (reply) => run.started((reply as MethodOf<'basic.consume-ok'>).consumerTag),
      fail,
      { deferred: true },
    );
    return run;
  }

  /** @internal For ConsumerRun: the consumer is registered under its tag. */
  register(consumerTag: string, sink: ConsumerSink): void {
    this.sinks ??= new Map();
    this.sinks.set(consumerTag, sink);
    this.reporter.emit({ type: 'consumer.start', channel: this.core.id, queue: sink.queue, consumerTag });
  }

  /** @internal For ConsumerRun: forgets the consumer and sends basic.cancel. */
  stop(consumerTag: string, crossing: CrossingSettlement): void {
    const sink = this.sinks?.get(consumerTag);
    this.sinks?.delete(consumerTag);
    if (sink !== undefined) this.consumerEnded(consumerTag, sink, false);
    this.cancel(consumerTag, crossing);
  }

  /** Tells the reporter a consumer is over. */
  private consumerEnded(consumerTag: string, sink: ConsumerSink, byBroker: boolean): void {
    this.reporter.emit({
      type: 'consumer.end',
      channel: this.core.id,
      queue: sink.queue,
      consumerTag,
      byBroker,
    });
  }

  /** @internal For ConsumerRun: whether a delivery from `fromTag` on is still unsettled on the channel. */
  holdsUnsettled(fromTag: number): boolean {
    return this.core.holdsUnsettled(fromTag);
  }

  /** @internal For ConsumerRun: ends a one-shot operation that failed. */
  failOperationOf(subscriber: Observer<never>, error: Error): void {
    this.failer.failOperation(subscriber, error);
  }

  /** @internal For ConsumerRun: how many consumers that settle (not `noAck`) run on the channel. */
  get settlingConsumers(): number {
    let n = 0;
    if (this.sinks !== undefined) for (const sink of this.sinks.values()) if (!sink.noAck) n++;
    return n;
  }

  /** @internal For ConsumerRun: whether its deliveries are watched (told at the channel's end). */
  setWatched(run: ConsumerRun, watched: boolean): void {
    if (!watched) this.watched?.delete(run);
    else {
      this.watched ??= new Set();
      this.watched.add(run);
    }
  }

  /** A basic.deliver from the broker. */
  delivered(
    method: MethodOf<'basic.deliver'>,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void {
    const sink = this.sinks?.get(method.consumerTag);
    const fields: DeliveryFields = {
      deliveryTag: method.deliveryTag,
      redelivered: method.redelivered,
      exchange: method.exchange,
      routingKey: method.routingKey,
      consumerTag: method.consumerTag,
    };
    if (sink !== undefined) {
      this.core.delivered(method.deliveryTag, !sink.noAck);
      const delivery = new Delivery(body, properties, fields, sink.noAck ? undefined : sink, headersError);
      if (this.traces === undefined) sink.deliver(delivery);
      else deliverTraced(this.traces, sink, delivery);
      return;
    }
    // Nobody claims it. For a consumer being cancelled this is the race with our basic.cancel;
    // otherwise the consumer is unknown. Either way give it back to the queue rather than hold it (a
    // noAck delivery is already settled, and rejecting it would be a protocol error). It is kept as
    // needing a settlement until then, so that no `multiple` ack covers it.
    const crossing = this.cancelling?.get(method.consumerTag);
    const requeue = crossing !== 'none';
    this.core.delivered(method.deliveryTag, requeue);
    if (crossing === undefined) this.core.settle('reject', method.deliveryTag, false, true);
    else if (crossing !== 'none') {
      // A stream consumer's crossing delivery is acked (credit), but only one that is from a stream.
      const stream = crossing === 'ack' && properties.headers?.['x-stream-offset'] !== undefined;
      this.core.settle(stream ? 'ack' : 'nack', method.deliveryTag, false, true);
    }
    if (crossing === undefined && this.unclaimedSubject?.observed === true) {
      this.unclaimedSubject.next({ fields, properties, requeued: requeue });
    }
  }

  /** A basic.cancel from the broker. */
  cancelledByBroker(consumerTag: string): void {
    const sink = this.sinks?.get(consumerTag);
    if (sink === undefined) return;
    this.sinks?.delete(consumerTag);
    this.consumerEnded(consumerTag, sink, true);
    sink.cancelled();
  }

  /**
   * A drain: every running consumer is cancelled (basic.cancel, awaited, so that deliveries crossing
   * it go back to the queue) and its stream completes. Returns how many there were.
   */
  drain(): number {
    // Not the direct reply-to consumer: it brings no work, only the replies to requests that
    // handlers finishing may still make (it is noAck: nothing of it is left to settle).
    const sinks =
      this.sinks === undefined ? [] : [...this.sinks].filter(([, s]) => s.queue !== DIRECT_REPLY_TO);
    for (const [consumerTag, sink] of sinks) {
      this.stop(consumerTag, sink.crossing);
      sink.ended(undefined);
    }
    return sinks.length;
  }

  /** True while the connection drains: a consumer of `queue` that starts now is cancelled at once. */
  refuses(queue: string): boolean {
    return this.core.consumersRefused && queue !== DIRECT_REPLY_TO;
  }

  /**
   * The channel ended: no delivery of it can be settled any more (the operators holding some are
   * told first), and every consumer stream ends with it.
   */
  end(error: Error | undefined): void {
    this.unclaimedDone = true;
    this.unclaimedSubject?.complete();
    const watched = this.watched === undefined ? [] : [...this.watched];
    this.watched = undefined;
    for (const run of watched) run.lose();
    // (A consumer nobody watches needs no telling: `watch` refuses once the channel is not open.)
    const sinks = this.sinks === undefined ? [] : [...this.sinks];
    this.sinks?.clear();
    for (const [consumerTag, sink] of sinks) {
      this.consumerEnded(consumerTag, sink, false);
      sink.ended(error);
    }
  }

  /** basic.cancel, waiting for cancel-ok so that no delivery is lost in between (they are requeued). */
  cancel(consumerTag: string, crossing: CrossingSettlement): void {
    if (!this.core.isOpen) return;
    this.cancelling ??= new Map();
    const cancelling = this.cancelling;
    cancelling.set(consumerTag, crossing);
    const done = (): void => {
      cancelling.delete(consumerTag);
    };
    this.core.call({ name: 'basic.cancel', consumerTag, nowait: false }, ['basic.cancel-ok'], done, done);
  }
}

/** How a delivery that crosses a consumer's basic.cancel is settled (see `Consumers.cancelling`). */
type CrossingSettlement = 'none' | 'nack' | 'ack';

/** What a consumer reports to: its deliveries and end, and its resumption after a consumer timeout. */
interface ConsumerHost extends Observer<Delivery> {
  /**
   * The broker cancelled the consumer for a consumer timeout (RabbitMQ 4.3) on a recovering
   * connection: a fresh consumer of the same queue takes over the stream.
   */
  resume(error: ConsumerCancelledError): void;
}

/** A consumer of a stream queue: its arguments name a stream offset or filter. */
function isStreamConsume(options: ConsumeOptions): boolean {
  const args = options.arguments;
  return (
    args !== undefined && (args['x-stream-offset'] !== undefined || args['x-stream-filter'] !== undefined)
  );
}

/**
 * The Observable `consume()` returns. Its subscribe function is one function for all of them, which
 * finds the consumer's state through `this` (RxJS calls it as a method of the Observable): no closure
 * per consumer.
 */
class ConsumeObservable extends Observable<Delivery> {
  constructor(readonly shared: SharedConsumer) {
    super(subscribeShared);
  }
}

function subscribeShared(this: Observable<Delivery>, subscriber: Subscriber<Delivery>): () => void {
  return (this as ConsumeObservable).shared.add(subscriber);
}

/**
 * The state of one `consume()`: a hand-made share(), the subscribers in an array copied on
 * change so that delivering to them is a plain loop (this is the path of every message). One object
 * with methods rather than closures: an idle consumer costs what it keeps.
 */
class SharedConsumer implements ConsumerHost {
  private group: Subscriber<Delivery>[] = [];
  private run: ConsumerRun | undefined;

  constructor(
    private readonly owner: Consumers,
    private readonly queue: string,
    private readonly options: ConsumeOptions,
  ) {}

  add(subscriber: Subscriber<Delivery>): () => void {
    // `[subscriber]` rather than a spread: an array of exactly one element, not one grown to 17.
    this.group = this.group.length === 0 ? [subscriber] : [...this.group, subscriber];
    if (this.group.length === 1) {
      const run = this.owner.start(this.queue, this.options, this);
      // It may have failed at once (a closed channel): then it is over already.
      if (this.group.includes(subscriber)) this.run = run;
    }
    return () => this.remove(subscriber);
  }

  private remove(subscriber: Subscriber<Delivery>): void {
    if (!this.group.includes(subscriber)) return;
    this.group = this.group.filter((s) => s !== subscriber);
    if (this.group.length > 0) return;
    const run = this.run;
    this.run = undefined;
    run?.stop();
  }

  next(delivery: Delivery): void {
    const subscribers = this.group;
    for (let i = 0; i < subscribers.length; i++) subscribers[i]!.next(delivery);
  }

  error(error: unknown): void {
    for (const s of this.end()) s.error(error);
  }

  complete(): void {
    for (const s of this.end()) s.complete();
  }

  resume(): void {
    if (this.group.length === 0) return;
    if (this.owner.refuses(this.queue)) {
      // A drain began meanwhile: the stream ends as the drain ends the others.
      this.complete();
      return;
    }
    const run = this.owner.start(this.queue, this.options, this, true);
    if (this.group.length > 0) this.run = run;
  }

  /** The consumer ended: a later subscriber starts a new one. */
  private end(): Subscriber<Delivery>[] {
    const subscribers = this.group;
    this.group = [];
    this.run = undefined;
    return subscribers;
  }
}

/**
 * One consumer on the broker, from basic.consume to its end: where its deliveries go, and the settler
 * of each (a stream consumer's nacks and rejects are sent as acks: credit).
 */
class ConsumerRun implements ConsumerSink {
  consumerTag: string | undefined = undefined;
  stopped = false;
  qos: RpcHandle | undefined = undefined;
  consume: RpcHandle | undefined = undefined;
  /** The tag of its first delivery (0 before one): where its unsettled deliveries can start. */
  private firstTag = 0;
  /** Who holds its deliveries and wants to hear when they can no longer be settled. */
  private watchers: Set<SettlementWatcher> | undefined;
  /** Its deliveries can no longer be settled (the channel ended, or the broker took them back). */
  private lost = false;

  readonly noAck: boolean;

  constructor(
    private readonly owner: Consumers,
    private readonly core: ChannelCore,
    readonly queue: string,
    readonly crossing: CrossingSettlement,
    private readonly observer: ConsumerHost,
  ) {
    this.noAck = crossing === 'none';
  }

  deliver(delivery: Delivery): void {
    if (this.firstTag === 0) this.firstTag = delivery.fields.deliveryTag;
    this.observer.next(delivery);
  }

  // ---- Settler (its deliveries) ----

  /**
   * Settles one of its deliveries on the channel. A stream never requeues, and RabbitMQ answers a
   * nack or reject on one with 540 NOT_IMPLEMENTED, closing the connection: a stream consumer's
   * settlements are all acks, which give the broker credit.
   */
  settle(kind: 'ack' | 'nack' | 'reject', deliveryTag: number, multiple: boolean, requeue: boolean): boolean {
    if (this.crossing === 'ack') return this.core.settle('ack', deliveryTag, multiple, false);
    return this.core.settle(kind, deliveryTag, multiple, requeue);
  }

  get returning(): boolean {
    return this.core.returning;
  }

  watch(watcher: SettlementWatcher): boolean {
    if (this.lost || !this.core.isOpen) return false;
    if (this.watchers === undefined) this.watchers = new Set();
    this.watchers.add(watcher);
    if (this.watchers.size === 1) this.owner.setWatched(this, true);
    return true;
  }

  unwatch(watcher: SettlementWatcher): void {
    const watchers = this.watchers;
    if (watchers === undefined || !watchers.delete(watcher) || watchers.size > 0) return;
    this.owner.setWatched(this, false);
  }

  /** Its deliveries can no longer be settled: the operators holding them are told. */
  lose(): void {
    if (this.lost) return;
    this.lost = true;
    const watchers = this.watchers;
    if (watchers === undefined) return;
    this.watchers = undefined;
    this.owner.setWatched(this, false);
    for (const watcher of watchers) {
      try {
        watcher.settlementLost();
      } catch (error) {
        // A watcher's own bug must not stop the others, nor break the frame being handled.
        this.core.debug(
          `a settlement watcher threw: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  }

  /**
   * The broker cancelled the consumer. basic.cancel says no why: a cancel while the consumer's
   * deliveries are still unsettled is the form of RabbitMQ 4.3's consumer timeout, and is marked so
   * (`heldUnsettled`, which `isConsumerTimeout` reads). The channel's deliveries from this consumer's
   * first on are looked at: one consumer per channel, as pipelines have it, makes that exact.
   *
   * After such a timeout the broker has taken its deliveries back (and ignores their settlements), so
   * the operators holding them are told; on a recovering connection a fresh consumer of the queue
   * takes over the stream (not for a stream queue, which would start again from its first offset).
   * (A drain cancels every consumer when it starts: a broker cancel crossing it finds none.)
   */
  cancelled(): void {
    this.stopped = true;
    const held = !this.noAck && this.firstTag > 0 && this.owner.holdsUnsettled(this.firstTag);
    const error = new ConsumerCancelledError(this.consumerTag ?? '', this.queue, held);
    if (held) {
      this.lose();
      // Its deliveries are from its first tag on when it was the channel's only consumer (as in a
      // pipeline); with others, which of the later tags were its own is not known: they stay counted.
      if (this.owner.settlingConsumers === 0) this.core.reclaimed(this.firstTag);
    }
    if (held && this.crossing === 'nack' && this.core.recovers && this.queue !== '') {
      // A queue deleted while deliveries were held looks the same: consuming it again would close the
      // channel with 404. Its existence is asked on a channel of its own first.
      this.core.queueExists(this.queue, (exists) => {
        if (this.core.isClosed) this.ended(this.core.error);
        else if (!exists) this.observer.error(error);
        else {
          this.core.debug(`${error.message}; consuming ${this.queue} again`);
          this.observer.resume(error);
        }
      });
      return;
    }
    this.observer.error(error);
  }

  /** The channel ended (error undefined: the client closed it; a replaced channel's timeout completes too). */
  ended(error: Error | undefined): void {
    this.stopped = true;
    if (error === undefined || this.core.lostToRecovery(error)) this.observer.complete();
    else this.observer.error(error);
  }

  /** basic.consume-ok. */
  started(consumerTag: string): void {
    this.consumerTag = consumerTag;
    this.consume = undefined;
    if (this.stopped) {
      // Unsubscribed while basic.consume was in flight: cancel at once.
      this.owner.cancel(consumerTag, this.crossing);
      return;
    }
    if (this.owner.refuses(this.queue)) {
      // A drain began while basic.consume was in flight: cancel at once, and end like the others.
      this.owner.cancel(consumerTag, this.crossing);
      this.ended(undefined);
      return;
    }
    this.owner.register(consumerTag, this);
  }

  /**
   * basic.qos or basic.consume failed: the client closing the channel under it ends the consumer as
   * it ends a running one (it completes); other failures are errors.
   */
  failed(error: Error): void {
    this.stopped = true;
    this.qos = undefined;
    this.consume = undefined;
    if (error instanceof ChannelClosedError && error.initiator === 'client') this.observer.complete();
    else this.owner.failOperationOf(this.observer, error);
  }

  /** The last subscriber left. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.consume?.withdraw() === true) {
      this.qos?.withdraw();
      return;
    }
    if (this.consumerTag !== undefined) this.owner.stop(this.consumerTag, this.crossing);
  }
}

/**
 * A delivery the connection's telemetry follows, handed to its consumer inside its probe. Apart from
 * `Consumers.delivered` so that the closure it makes costs nothing to untraced deliveries.
 */
function deliverTraced(traces: DeliveryTraces, sink: ConsumerSink, delivery: Delivery): void {
  traces.deliver(delivery, sink.queue, sink.noAck, false, (d) => sink.deliver(d));
}
