/**
 * A fake queue: messages arrive on a marble, wait until a fake channel consumes them, go round-robin to
 * its consumers (honouring `prefetch`), come back (redelivered) when nacked or rejected with requeue
 * or when the channel they were delivered on closes unacknowledged, and leave when acknowledged or
 * rejected without requeue (dead-lettered).
 *
 * @module
 */

import { utf8Decode } from '../../protocol/bytes.js';
import type { BasicProperties } from '../../protocol/generated.js';
import type { Clock } from './context.js';
import { type FakeMessage, toBytes, toInit } from './message.js';

/**
 * A message in a fake queue (ready, or dead-lettered: see {@link FakeQueue.deadLettered}).
 *
 * @example
 * ```ts
 * expect(queue.deadLettered.map((m: QueuedMessage) => [m.text, m.redelivered])).toEqual([['bad', true]]);
 * ```
 */
export interface QueuedMessage {
  readonly body: Uint8Array;
  /** The body decoded as UTF-8. */
  readonly text: string;
  readonly properties: BasicProperties;
  readonly exchange: string;
  readonly routingKey: string;
  /** True once it was delivered and came back (requeued). */
  readonly redelivered: boolean;
}

/** @internal A consumer of a fake queue, as the queue sees it. */
export interface QueueConsumer {
  readonly prefetch: number;
  unacked: number;
  deliver(message: QueuedMessage): void;
}

/**
 * A queue that fake channels consume from (`channel.consume(name)`) and publish to (through the
 * default exchange, with the queue's name as routing key). Make one with `kit.queue(...)`.
 *
 * @example
 * ```ts
 * const jobs = kit.queue('jobs', '-a--b', { a: 'one', b: { body: { n: 2 } } });
 * // ... consume it through kit.connection() ...
 * expect(jobs.deadLettered.map((m) => m.text)).toEqual(['one']);
 * ```
 */
export class FakeQueue {
  private readonly ready: QueuedMessage[] = [];
  private readonly consumers: QueueConsumer[] = [];
  private turn = 0;
  private readonly dead: QueuedMessage[] = [];
  private ackedCount = 0;
  /** Each message's place in arrival order: a requeued message goes back to it, ahead of later ones. */
  private readonly arrival = new WeakMap<QueuedMessage, number>();
  private arrivals = 0;
  private dispatching = false;
  /** The ready messages are `ready` from `head` on. */
  private head = 0;

  /** @internal Made by `kit.queue()`. */
  constructor(
    /** The queue's name. */
    readonly name: string,
    private readonly clock: Clock,
    /** Frames between a requeue and the message being ready again. */
    private readonly requeueDelay: number,
  ) {}

  /** Messages waiting for a consumer. */
  get depth(): number {
    return this.ready.length - this.head;
  }

  /** How many of its messages were acknowledged. */
  get acked(): number {
    return this.ackedCount;
  }

  /** The messages rejected or nacked without requeue, in order: what a dead-letter exchange would get. */
  get deadLettered(): readonly QueuedMessage[] {
    return this.dead;
  }

  /**
   * Puts a message in the queue now (it goes to a consumer at once if one has room).
   *
   * @example
   * ```ts
   * jobs.send({ body: { id: 7 }, properties: { messageId: 'm7' } });
   * ```
   */
  send(message: FakeMessage): void {
    const init = toInit(message);
    const body = toBytes(init.body);
    const queued: QueuedMessage = {
      body,
      text: utf8Decode(body),
      properties: init.properties ?? {},
      exchange: init.exchange ?? '',
      routingKey: init.routingKey ?? this.name,
      redelivered: init.redelivered ?? false,
    };
    this.arrival.set(queued, ++this.arrivals);
    this.ready.push(queued);
    this.dispatch();
  }

  /** @internal */
  addConsumer(consumer: QueueConsumer): () => void {
    this.consumers.push(consumer);
    this.dispatch();
    return () => {
      const i = this.consumers.indexOf(consumer);
      if (i >= 0) this.consumers.splice(i, 1);
    };
  }

  /** @internal A delivery of this queue was settled (or its channel closed: `requeue`). */
  settled(message: QueuedMessage, outcome: 'acked' | 'requeue' | 'dead-letter'): void {
    if (outcome === 'acked') this.ackedCount++;
    else if (outcome === 'dead-letter') this.dead.push(message);
    else {
      // Later, not in the same frame: a consumer that always requeues would otherwise loop forever.
      this.clock.later(() => {
        // As RabbitMQ: back in its original place, so that messages requeued together keep their order.
        const place = this.arrival.get(message) ?? 0;
        const requeued: QueuedMessage = { ...message, redelivered: true };
        this.arrival.set(requeued, place);
        let i = this.head;
        while (i < this.ready.length && (this.arrival.get(this.ready[i]!) ?? 0) < place) i++;
        this.ready.splice(i, 0, requeued);
        this.dispatch();
      }, this.requeueDelay);
    }
    this.dispatch();
  }

  /**
   * @internal Hands ready messages to consumers with room, round-robin. A consumer that settles
   * synchronously calls back in here: that call leaves the work to the loop already running, so
   * that the stack does not grow by one delivery per message (a deep queue overflowed it).
   */
  dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.head < this.ready.length) {
        const consumer = this.nextConsumer();
        if (consumer === undefined) return;
        const message = this.ready[this.head]!;
        this.ready[this.head++] = undefined as unknown as QueuedMessage;
        // shift() would copy the whole array each time once it is large: a deep queue took quadratic time.
        if (this.head >= 1024 && this.head * 2 >= this.ready.length) {
          this.ready.splice(0, this.head);
          this.head = 0;
        }
        consumer.deliver(message);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private nextConsumer(): QueueConsumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const consumer = this.consumers[(this.turn + i) % this.consumers.length]!;
      if (consumer.prefetch === 0 || consumer.unacked < consumer.prefetch) {
        this.turn = (this.turn + i + 1) % this.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }
}
