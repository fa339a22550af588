/**
 * A consumer and a delivery awaiting its acknowledgement, on the server side of a channel: the
 * consumer is what a queue delivers to (it asks its channel whether prefetch allows one more), the
 * pending delivery is what an ack, nack or reject settles.
 *
 * @module
 * @internal
 */
import type { Entry } from './message.js';
import type { Queue, QueueConsumer } from './queue.js';

/** @internal What a consumer needs from its channel. */
export interface ConsumerHost {
  canDeliver(consumer: Consumer): boolean;
  deliver(consumer: Consumer, queue: Queue, entry: Entry): void;
  consumerCancelled(consumer: Consumer): void;
}

/** @internal */
export class Consumer implements QueueConsumer {
  /** Deliveries not yet settled (ack mode only). */
  unacked = 0;

  constructor(
    private readonly host: ConsumerHost,
    readonly tag: string,
    readonly queue: Queue,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    /** basic.qos prefetch (global=false) in force when it was created; 0 means no limit. */
    readonly prefetch: number,
    /** `x-priority` of its basic.consume arguments. */
    readonly priority = 0,
  ) {}

  canTake(): boolean {
    return this.host.canDeliver(this);
  }

  deliver(queue: Queue, entry: Entry): void {
    this.host.deliver(this, queue, entry);
  }

  /** The queue was deleted under it. */
  cancelled(): void {
    this.host.consumerCancelled(this);
  }
}

/** @internal A message delivered with acknowledgement and not yet settled. */
export class Pending {
  constructor(
    readonly tag: number,
    readonly entry: Entry,
    readonly queue: Queue,
    /** Undefined for basic.get. */
    readonly consumer: Consumer | undefined,
    /** When it was delivered (clock milliseconds), for the consumer timeout. */
    readonly at: number,
  ) {}
}
