/**
 * A queue of the model: its ready messages in order, its consumers served round robin, the count of
 * messages delivered and not yet settled, and what its arguments ask for (TTL, length limits and
 * overflow, dead-lettering, the quorum delivery limit). It knows nothing of channels or frames:
 * consumers are {@link QueueConsumer}s and dead letters go to a {@link DeadLetterSink}.
 *
 * Expiry follows RabbitMQ: a message expires only when it reaches the head of the queue (or is
 * about to be delivered), so an expired message behind one with a longer TTL waits.
 *
 * @module
 * @internal
 */
import type { FieldTable } from '../../protocol/field-table.js';
import type { QueueSettings } from './arguments.js';
import { type Content, type DeathReason, Entry, messageTtl } from './message.js';
import { ReadyList } from './ready-list.js';

/** @internal What a queue delivers to: a consumer on some channel. */
export interface QueueConsumer {
  readonly tag: string;
  readonly exclusive: boolean;
  readonly noAck: boolean;
  /** `x-priority`: higher-priority consumers are fed first while they have room. */
  readonly priority: number;
  /** True when it can take one more message now (prefetch, channel state). */
  canTake(): boolean;
  /** Takes a message that has just left the ready list. */
  deliver(queue: Queue, entry: Entry): void;
  /** The queue was deleted under the consumer (its channel may tell the client). */
  cancelled?(): void;
}

/** @internal Where a queue sends the messages it dead-letters (the virtual host routes them). */
export interface DeadLetterSink {
  deadLetter(queue: Queue, entry: Entry, reason: DeathReason): void;
}

/** @internal The outcome of offering a message to a queue. */
export type EnqueueResult = 'accepted' | 'rejected';

/** @internal */
export class Queue {
  /**
   * Ready messages: one list, or in a priority queue one per priority level (index = priority), each
   * in order; the queue's order is the highest non-empty level first. Publishing to a priority queue
   * is then O(1) too (a sorted array needed a splice per message).
   */
  private readonly levels: ReadyList[];
  private readyCount = 0;
  /** Body bytes of the ready messages. */
  readyBytes = 0;
  /** Delivered with acknowledgement and not yet settled. */
  unacked = 0;
  readonly consumers: QueueConsumer[] = [];
  private next = 0;
  private seq = 0;
  /** True once it had a consumer (auto-delete applies only then). */
  hadConsumers = false;
  deleted = false;
  /** Last use, for `x-expires`. */
  lastUsed: number;
  /** Routing bookkeeping: the publish that last routed here (deduplicates a fan-out). */
  routeMark = 0;

  constructor(
    readonly name: string,
    readonly vhost: string,
    readonly durable: boolean,
    /** The owning connection of an exclusive queue. */
    readonly owner: object | undefined,
    readonly autoDelete: boolean,
    readonly args: FieldTable,
    readonly settings: QueueSettings,
    private readonly sink: DeadLetterSink,
    now: number,
  ) {
    this.lastUsed = now;
    const n = (settings.maxPriority ?? 0) + 1;
    this.levels = [];
    for (let i = 0; i < n; i++) this.levels.push(new ReadyList());
  }

  /** The list holding the queue's head: the highest priority level with messages. */
  private top(): ReadyList | undefined {
    const levels = this.levels;
    for (let i = levels.length - 1; i >= 0; i--) if (levels[i]!.length > 0) return levels[i];
    return undefined;
  }

  get exclusive(): boolean {
    return this.owner !== undefined;
  }

  /** Ready messages. */
  get messageCount(): number {
    return this.readyCount;
  }

  /** The ready messages, in delivery order (a copy). */
  readyEntries(): Entry[] {
    const out: Entry[] = [];
    for (let i = this.levels.length - 1; i >= 0; i--) this.levels[i]!.copyTo(out);
    return out;
  }

  /**
   * Offers a published message: delivered at once when a consumer can take it, else kept, subject
   * to the length limits. `rejected` when `x-overflow` refused it (reject-publish, reject-publish-dlx).
   */
  enqueue(content: Content, now: number): EnqueueResult {
    const s = this.settings;
    const perMessage = messageTtl(content.properties);
    let ttl = s.messageTtl;
    if (perMessage !== undefined && (ttl === undefined || perMessage < ttl)) ttl = perMessage;
    const max = s.maxPriority;
    const priority = max === undefined ? 0 : Math.min(content.properties.priority ?? 0, max);
    const entry = new Entry(
      content,
      ++this.seq,
      ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl,
      priority,
    );
    // What expired at the head goes first: it does not count against the limits.
    this.expire(now);
    if (s.overflow !== 'drop-head' && this.full(content.body.length)) {
      if (s.overflow === 'reject-publish-dlx') this.sink.deadLetter(this, entry, 'maxlen');
      return 'rejected';
    }
    if (this.messageCount === 0 && this.consumers.length > 0) {
      const consumer = this.nextConsumer();
      if (consumer !== undefined) {
        this.handOut(consumer, entry);
        return 'accepted';
      }
    }
    if (entry.expiresAt <= now) {
      // TTL 0 with no consumer ready: it expires at once.
      this.sink.deadLetter(this, entry, 'expired');
      return 'accepted';
    }
    this.push(entry);
    if (s.maxLength !== undefined || s.maxLengthBytes !== undefined) {
      while (this.messageCount > 0 && this.overLimit()) this.dropHead('maxlen');
    }
    this.dispatch(now);
    return 'accepted';
  }

  /** reject-publish: true when one more message of `size` bytes does not fit. */
  private full(size: number): boolean {
    const s = this.settings;
    if (s.maxLength !== undefined && this.messageCount >= s.maxLength) return true;
    return s.maxLengthBytes !== undefined && this.readyBytes + size > s.maxLengthBytes;
  }

  /** drop-head: true while the ready messages exceed a limit. */
  private overLimit(): boolean {
    const s = this.settings;
    if (s.maxLength !== undefined && this.messageCount > s.maxLength) return true;
    return s.maxLengthBytes !== undefined && this.readyBytes > s.maxLengthBytes;
  }

  /** At the back of its priority level (after every message of the same or a higher priority). */
  private push(entry: Entry): void {
    this.readyBytes += entry.content.body.length;
    this.readyCount++;
    this.levels[entry.priority]!.push(entry);
  }

  private shift(): Entry | undefined {
    const entry = this.top()?.shift();
    if (entry === undefined) return undefined;
    this.readyCount--;
    this.readyBytes -= entry.content.body.length;
    return entry;
  }

  private dropHead(reason: DeathReason): void {
    const entry = this.shift();
    if (entry !== undefined) this.sink.deadLetter(this, entry, reason);
  }

  /** Drops (or dead-letters) the expired messages at the head. */
  expire(now: number): void {
    while (this.readyCount > 0 && this.top()!.peek()!.expiresAt <= now) this.dropHead('expired');
  }

  /** When the head message expires, or Infinity. */
  get nextExpiry(): number {
    return this.readyCount > 0 ? this.top()!.peek()!.expiresAt : Number.POSITIVE_INFINITY;
  }

  /** True when some consumer has an `x-priority`. */
  private prioritized = false;

  /**
   * The next consumer that can take a message, round robin among those of the highest priority
   * that can (with single active consumer, only the first); undefined when none can.
   */
  private nextConsumer(): QueueConsumer | undefined {
    const consumers = this.consumers;
    const n = consumers.length;
    if (this.settings.singleActiveConsumer) {
      const active = consumers[0];
      return active?.canTake() === true ? active : undefined;
    }
    if (this.prioritized) {
      let best: QueueConsumer | undefined;
      let bestIndex = 0;
      for (let i = 0; i < n; i++) {
        const index = (this.next + i) % n;
        const c = consumers[index]!;
        if ((best === undefined || c.priority > best.priority) && c.canTake()) {
          best = c;
          bestIndex = index;
        }
      }
      if (best !== undefined) this.next = (bestIndex + 1) % n;
      return best;
    }
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      const consumer = consumers[index]!;
      if (consumer.canTake()) {
        this.next = (index + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  private handOut(consumer: QueueConsumer, entry: Entry): void {
    if (!consumer.noAck) this.unacked++;
    consumer.deliver(this, entry);
  }

  /** Delivers ready messages to the consumers that can take them, round robin. */
  dispatch(now: number): void {
    if (this.consumers.length === 0 || this.deleted) return;
    while (this.readyCount > 0) {
      if (this.top()!.peek()!.expiresAt <= now) {
        this.dropHead('expired');
        continue;
      }
      const consumer = this.nextConsumer();
      if (consumer === undefined) return;
      this.handOut(consumer, this.shift()!);
    }
  }

  /** basic.get: the head message (the caller records it as unacked unless `noAck`). */
  take(now: number, noAck: boolean): Entry | undefined {
    this.lastUsed = now;
    this.expire(now);
    const entry = this.shift();
    if (entry !== undefined && !noAck) this.unacked++;
    // What the get uncovers at the head is expired at once: its get-ok counts without it.
    this.expire(now);
    return entry;
  }

  /** A delivered message was acknowledged. */
  ack(): void {
    if (!this.deleted) this.unacked--;
  }

  /**
   * Delivered messages come back (nack/reject with requeue, a channel closing): they go back to
   * their place, marked redelivered. A quorum queue counts the return and dead-letters a message past
   * its delivery limit.
   */
  requeue(entries: readonly Entry[], now: number): void {
    if (this.deleted) return;
    this.unacked -= entries.length;
    const back: Entry[] = [];
    const limit = this.settings.deliveryLimit;
    for (const entry of entries) {
      if (this.settings.type === 'quorum') {
        entry.deliveryCount++;
        if (limit !== undefined && entry.deliveryCount > limit) {
          this.sink.deadLetter(this, entry, 'delivery_limit');
          continue;
        }
      }
      entry.redelivered = true;
      back.push(entry);
    }
    if (back.length > 0) this.putBack(back);
    this.dispatch(now);
  }

  /** nack/reject without requeue: dead-lettered (or dropped). */
  discard(entry: Entry): void {
    if (this.deleted) return;
    this.unacked--;
    this.sink.deadLetter(this, entry, 'rejected');
  }

  /**
   * Inserts entries back at their place (sequence order, by priority first in a priority queue);
   * a quorum queue puts them at the back instead, in the order they came back.
   */
  private putBack(entries: Entry[]): void {
    if (this.settings.type === 'quorum') {
      for (const e of entries) this.push(e);
      return;
    }
    if (entries.length > 1) entries.sort((a, b) => a.seq - b.seq);
    for (const e of entries) this.readyBytes += e.content.body.length;
    this.readyCount += entries.length;
    const levels = this.levels;
    if (levels.length === 1 || entries.length === 1) {
      levels[entries[0]!.priority]!.putBack(entries);
      return;
    }
    // A priority queue: each level takes back its own, in sequence order.
    const byLevel = new Map<number, Entry[]>();
    for (const e of entries) {
      const list = byLevel.get(e.priority);
      if (list === undefined) byLevel.set(e.priority, [e]);
      else list.push(e);
    }
    for (const [p, list] of byLevel) levels[p]!.putBack(list);
  }

  /** Removes every ready message; returns how many. */
  purge(): number {
    const n = this.messageCount;
    for (const level of this.levels) level.clear();
    this.readyCount = 0;
    this.readyBytes = 0;
    return n;
  }

  addConsumer(consumer: QueueConsumer, now: number): void {
    this.consumers.push(consumer);
    if (consumer.priority !== 0) this.prioritized = true;
    this.hadConsumers = true;
    this.lastUsed = now;
    this.dispatch(now);
  }

  /** Removes a consumer; true when it was there. */
  removeConsumer(consumer: QueueConsumer, now: number): boolean {
    const i = this.consumers.indexOf(consumer);
    if (i < 0) return false;
    this.consumers.splice(i, 1);
    this.prioritized = this.consumers.some((c) => c.priority !== 0);
    if (this.next > i) this.next--;
    if (this.next >= this.consumers.length) this.next = 0;
    this.lastUsed = now;
    return true;
  }

  /** True when some consumer is exclusive. */
  get exclusivelyConsumed(): boolean {
    return this.consumers.some((c) => c.exclusive);
  }
}
