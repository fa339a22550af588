/**
 * The consuming side of a server channel: its consumers and their prefetch (per consumer with
 * basic.qos global=false, shared by the channel with global=true, the global limit lifted by every
 * global=false as RabbitMQ 3.10 does), deliveries and basic.get, and the settling of what was
 * delivered (ack, nack, reject, recover, and the requeue when the channel ends).
 *
 * @module
 * @internal
 */
import type { MethodOf } from '../../protocol/generated.js';
import type { ChannelHost } from './channel-host.js';
import { Consumer, type ConsumerHost, Pending } from './consumer.js';
import { BrokerFault, precondition, resource } from './faults.js';
import { type Content, deliveryProperties, type Entry } from './message.js';
import type { Queue } from './queue.js';

/** @internal How a delivery is settled. */
export type Settle = 'ack' | 'nack' | 'reject';

/** @internal */
export class Deliveries implements ConsumerHost {
  /** False once the channel stops taking deliveries (released, or its connection is releasing). */
  open = true;
  /** True once {@link release} ran. */
  released = false;
  readonly consumers = new Map<string, Consumer>();
  /** Deliveries awaiting a settlement, in delivery-tag order. */
  private unacked = new Map<number, Pending>();
  private deliveryTag = 0;
  /** Consumer deliveries not yet settled (what global prefetch limits). */
  private consumerUnacked = 0;
  private consumerPrefetch = 0;
  private globalPrefetch = 0;
  /** Consumers the broker cancelled (their queue was deleted), to tell the client at the flush. */
  private cancels: string[] = [];
  /**
   * Tags of deliveries taken back from consumers cancelled for a consumer timeout: their late
   * settlements are ignored, as RabbitMQ 4.3 does, instead of closing the channel.
   */
  private reclaimed: Set<number> | undefined;
  /** Reused for every delivery. */
  private readonly deliverMethod = {
    name: 'basic.deliver' as const,
    consumerTag: '',
    deliveryTag: 0,
    redelivered: false,
    exchange: '',
    routingKey: '',
  };

  constructor(
    private readonly channel: number,
    private readonly host: ChannelHost,
  ) {}

  /** basic.qos (after the channel checked prefetch_size). */
  qos(prefetchCount: number, global: boolean): void {
    if (global) this.globalPrefetch = prefetchCount;
    else {
      // RabbitMQ 3.10 lifts the channel's global limit with every basic.qos global=false.
      this.consumerPrefetch = prefetchCount;
      this.globalPrefetch = 0;
    }
  }

  /** Starts a consumer on `queue` (checked by the channel); consume-ok goes before any delivery. */
  consume(queue: Queue, tag: string, m: MethodOf<'basic.consume'>): void {
    // Stream consumer arguments on a queue that is not a stream (the embedded broker has none), as
    // RabbitMQ refuses them.
    for (const arg of ['x-stream-offset', 'x-stream-filter']) {
      if (m.arguments[arg] !== undefined) {
        throw precondition(
          `invalid arg '${arg}' for ${resource('queue', queue.name, queue.vhost)} of queue type rabbit_${queue.settings.type}_queue`,
        );
      }
    }
    if (queue.exclusivelyConsumed || (m.exclusive && queue.consumers.length > 0)) {
      throw new BrokerFault(403, `queue '${queue.name}' in vhost '${queue.vhost}' in exclusive use`);
    }
    const priority = m.arguments['x-priority'];
    const consumer = new Consumer(
      this,
      tag,
      queue,
      m.noAck,
      m.exclusive,
      this.consumerPrefetch,
      typeof priority === 'number' ? priority : 0,
    );
    this.consumers.set(tag, consumer);
    if (!m.nowait) this.host.writeMethod(this.channel, { name: 'basic.consume-ok', consumerTag: tag });
    queue.addConsumer(consumer, this.host.now());
  }

  /** basic.cancel: false when no consumer has that tag. */
  cancel(tag: string): boolean {
    const consumer = this.consumers.get(tag);
    if (consumer === undefined) return false;
    this.consumers.delete(tag);
    this.host.vhost.consumerGone(consumer.queue, consumer);
    return true;
  }

  canDeliver(consumer: Consumer): boolean {
    if (!this.open) return false;
    if (consumer.noAck) return true;
    if (consumer.prefetch !== 0 && consumer.unacked >= consumer.prefetch) return false;
    return this.globalPrefetch === 0 || this.consumerUnacked < this.globalPrefetch;
  }

  deliver(consumer: Consumer, queue: Queue, entry: Entry): void {
    const tag = ++this.deliveryTag;
    if (!consumer.noAck) {
      this.unacked.set(tag, new Pending(tag, entry, queue, consumer, this.host.now()));
      consumer.unacked++;
      this.consumerUnacked++;
    }
    this.write(
      consumer.tag,
      tag,
      entry.redelivered,
      entry.content,
      deliveryProperties(entry, isQuorum(queue), false),
    );
  }

  /** A direct reply-to reply for this channel's reply consumer: delivered at once, no ack. */
  deliverReply(consumerTag: string, content: Content): void {
    if (this.open) this.write(consumerTag, ++this.deliveryTag, false, content, content.properties);
  }

  private write(
    consumerTag: string,
    tag: number,
    redelivered: boolean,
    content: Content,
    properties: Content['properties'],
  ): void {
    const m = this.deliverMethod;
    m.consumerTag = consumerTag;
    m.deliveryTag = tag;
    m.redelivered = redelivered;
    m.exchange = content.exchange;
    m.routingKey = content.routingKey;
    this.host.writeContent(this.channel, m, properties, content.body);
  }

  /** The queue of `consumer` was deleted: the client hears of it if it said it understands. */
  consumerCancelled(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    // Written at the flush: after the reply to the method that deleted the queue, as RabbitMQ does.
    if (this.open && this.host.cancelNotify) {
      this.cancels.push(consumer.tag);
      this.host.scheduleFlush();
    }
  }

  /** Writes the basic.cancel notifications collected since the last flush. */
  flushCancels(): void {
    if (this.cancels.length === 0) return;
    const tags = this.cancels;
    this.cancels = [];
    if (!this.open) return;
    for (const tag of tags)
      this.host.writeMethod(this.channel, { name: 'basic.cancel', consumerTag: tag, nowait: true });
  }

  /** basic.get on `queue` (checked by the channel). */
  get(queue: Queue, noAck: boolean): void {
    const entry = queue.take(this.host.now(), noAck);
    if (entry === undefined) {
      this.host.writeMethod(this.channel, { name: 'basic.get-empty' });
      return;
    }
    const tag = ++this.deliveryTag;
    if (!noAck) this.unacked.set(tag, new Pending(tag, entry, queue, undefined, this.host.now()));
    const content = entry.content;
    this.host.writeContent(
      this.channel,
      {
        name: 'basic.get-ok',
        deliveryTag: tag,
        redelivered: entry.redelivered,
        exchange: content.exchange,
        routingKey: content.routingKey,
        messageCount: queue.messageCount,
      },
      deliveryProperties(entry, isQuorum(queue), true),
      content.body,
    );
  }

  /**
   * Takes the deliveries an ack, nack or reject names out of the unacked ones (406 `unknown delivery
   * tag` when the tag is not outstanding, as RabbitMQ checks it, even with `multiple`).
   */
  take(tag: number, multiple: boolean): Pending[] {
    if (multiple && tag === 0) {
      const all = [...this.unacked.values()];
      this.unacked.clear();
      return all;
    }
    const one = this.unacked.get(tag);
    if (one === undefined && this.reclaimed?.has(tag) !== true) {
      throw precondition(`unknown delivery tag ${tag}`);
    }
    if (!multiple) {
      if (one === undefined) return [];
      this.unacked.delete(tag);
      return [one];
    }
    const pending: Pending[] = [];
    for (const p of this.unacked.values()) {
      if (p.tag > tag) break;
      pending.push(p);
    }
    for (const p of pending) this.unacked.delete(p.tag);
    return pending;
  }

  /** Deliveries a rolled-back transaction had settled are unacked again. */
  restore(pending: readonly Pending[]): void {
    if (pending.length === 0) return;
    for (const p of pending) this.unacked.set(p.tag, p);
    this.unacked = new Map([...this.unacked.entries()].sort((a, b) => a[0] - b[0]));
  }

  /** Settles deliveries with their queues, then lets the queues deliver into the freed prefetch. */
  apply(kind: Settle, pending: readonly Pending[], requeue: boolean): void {
    const now = this.host.now();
    if (pending.length === 1 && kind === 'ack') {
      // The common case, one ack: no list of queues, no map of requeues.
      const p = pending[0]!;
      if (p.consumer !== undefined) {
        p.consumer.unacked--;
        this.consumerUnacked--;
      }
      p.queue.ack();
      if (this.globalPrefetch !== 0) this.dispatchAll();
      else p.queue.dispatch(now);
      return;
    }
    const queues: Queue[] = [];
    const back = new Map<Queue, Entry[]>();
    for (const p of pending) {
      const c = p.consumer;
      if (c !== undefined) {
        c.unacked--;
        this.consumerUnacked--;
      }
      if (!queues.includes(p.queue)) queues.push(p.queue);
      if (kind === 'ack') p.queue.ack();
      else if (requeue) {
        const list = back.get(p.queue);
        if (list === undefined) back.set(p.queue, [p.entry]);
        else list.push(p.entry);
      } else p.queue.discard(p.entry);
    }
    for (const [q, entries] of back) q.requeue(entries, now);
    if (this.globalPrefetch !== 0) this.dispatchAll();
    else for (const q of queues) q.dispatch(now);
  }

  /**
   * RabbitMQ 4.3's consumer timeout (`consumer_timeout_response = notify_consumer`): each consumer
   * holding a delivery unsettled for `timeoutMs` is cancelled (basic.cancel to the client) and its
   * unsettled deliveries go back to their queue; their late settlements are then ignored. Returns
   * false, changing nothing, when such a delivery came from basic.get or from a consumer already
   * cancelled (no consumer to cancel: the channel is closed instead).
   */
  timeOutConsumers(now: number, timeoutMs: number): boolean {
    const expired = new Set<Consumer>();
    // In tag order, so in delivery order: the old ones come first.
    for (const p of this.unacked.values()) {
      if (now - p.at < timeoutMs) break;
      // A basic.get, or a consumer already cancelled: the channel is closed (RabbitMQ 4.4 does so for
      // a cancelled consumer's delivery).
      if (p.consumer === undefined || this.consumers.get(p.consumer.tag) !== p.consumer) return false;
      expired.add(p.consumer);
    }
    for (const consumer of expired) {
      const pending = [...this.unacked.values()].filter((p) => p.consumer === consumer);
      this.reclaimed ??= new Set();
      for (const p of pending) {
        this.unacked.delete(p.tag);
        this.reclaimed.add(p.tag);
      }
      this.consumers.delete(consumer.tag);
      this.host.vhost.consumerGone(consumer.queue, consumer);
      this.host.writeMethod(this.channel, { name: 'basic.cancel', consumerTag: consumer.tag, nowait: true });
      this.apply('nack', pending, true);
    }
    return true;
  }

  /** basic.recover: every unsettled delivery goes back to its queue. */
  requeueAll(): void {
    const pending = [...this.unacked.values()];
    this.unacked.clear();
    if (pending.length > 0) this.apply('nack', pending, true);
  }

  /** Lets the queues of this channel's consumers deliver (a prefetch limit was raised). */
  dispatchAll(): void {
    const now = this.host.now();
    const seen = new Set<Queue>();
    for (const c of this.consumers.values()) {
      if (seen.has(c.queue)) continue;
      seen.add(c.queue);
      c.queue.dispatch(now);
    }
  }

  /**
   * The channel ends: its consumers go (an auto-delete queue may go with them), then its unsettled
   * deliveries are requeued, in order.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.open = false;
    this.cancels = [];
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    for (const c of consumers) this.host.vhost.consumerGone(c.queue, c);
    const pending = [...this.unacked.values()];
    this.unacked.clear();
    if (pending.length > 0) this.apply('nack', pending, true);
  }

  /**
   * Takes no more deliveries, before the release: a connection stops all its channels first, so
   * that what one of them gives back does not go to another one on its way out.
   */
  stop(): void {
    this.open = false;
  }

  /** When the oldest unsettled delivery was made, or undefined. */
  get oldestDelivery(): number | undefined {
    let oldest: number | undefined;
    // In tag order, so in delivery order: the first is the oldest.
    for (const p of this.unacked.values()) {
      oldest = p.at;
      break;
    }
    return oldest;
  }

  get unackedCount(): number {
    return this.unacked.size;
  }
}

function isQuorum(queue: Queue): boolean {
  return queue.settings.type === 'quorum';
}
