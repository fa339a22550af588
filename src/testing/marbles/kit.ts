/**
 * The marble kit: fake channels, queues and connections bound to one test's scheduler.
 *
 * @module
 */
import type { PublishOutcome } from '../../client/types.js';
import { type ChannelHost, FakeChannel } from './channel.js';
import { FakeConnectionObservable, type FakeConnectionOptions } from './connection.js';
import { type Clock, clockOf, type MarbleContext } from './context.js';
import { type FakeMessage, type PublishedMessage, returnedOutcome } from './message.js';
import { FakeQueue } from './queue.js';
import type { FakeChannelOptions } from './types.js';

/**
 * Options of {@link marbleKit}.
 *
 * @example
 * ```ts
 * const kit = marbleKit(m, { requeueDelay: 5 }); // a nacked message is back in its queue 5 frames later
 * ```
 */
export interface MarbleKitOptions {
  /** Frames between a requeue (nack, reject, a closed channel) and the message being ready again in its fake queue. Default 1. */
  readonly requeueDelay?: number;
}

/**
 * Fake channels, queues and connections for one marble test, on its virtual clock. Make one per test
 * with {@link marbleKit}.
 *
 * @example
 * ```ts
 * it('acks what it handled', marbles((m) => {
 *   const kit = marbleKit(m);
 *   const channel = kit.channel();
 *   const source = channel.cold('-a-b|', { a: '1', b: 'x' });
 *   m.expect(source.pipe(ackOnSuccess((d) => JSON.parse(d.text()) as number), toArray())).toBeObservable('----(r|)', { r: [1] });
 *   // ackOnSuccess's default policy, 'retry', gives a failed first delivery back: basic.reject with requeue
 *   m.expect(channel.settlements$).toBeObservable('-a-b', { a: settlement.ack(1), b: settlement.reject(2) });
 * }));
 * ```
 */
export class MarbleKit {
  private readonly clock: Clock;
  private readonly queues = new Map<string, FakeQueue>();
  private channelCount = 0;
  private readonly host: ChannelHost;
  private readonly requeueDelay: number;

  /** @internal Made by {@link marbleKit}. */
  constructor(context: MarbleContext | undefined, options: MarbleKitOptions = {}) {
    const clock = clockOf(context);
    this.clock = clock;
    this.requeueDelay = options.requeueDelay ?? 1;
    this.host = {
      clock,
      nextChannelId: () => ++this.channelCount,
      queue: (name: string) => this.queue(name),
      existingQueue: (name: string) => this.queues.get(name),
    };
  }

  /**
   * A fake channel, standing for a `Channel` or a `Publisher`: makes deliveries and records their
   * settlements, and publishes with scripted confirms.
   *
   * @example
   * ```ts
   * const channel = kit.channel({ reply: '--a' }); // every publish acked two frames later
   * ```
   */
  channel(options: FakeChannelOptions = {}): FakeChannel {
    return new FakeChannel(this.host, options);
  }

  /**
   * The fake queue of that name, made now if need be, with messages arriving on `marbles` (from now,
   * the values map naming them). Fake channels consume it with `consume(name)`; what they publish to
   * the default exchange with its name as routing key lands in it too.
   *
   * @example
   * ```ts
   * const jobs = kit.queue('jobs', '-a-b', { a: 'one', b: { body: { n: 2 } } });
   * ```
   */
  queue<K extends string>(name: string, marbles?: string, values?: Record<K, FakeMessage>): FakeQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new FakeQueue(name, this.clock, this.requeueDelay);
      this.queues.set(name, queue);
    }
    if (marbles !== undefined) {
      const target = queue;
      this.clock.cold<FakeMessage>(marbles, values ?? {}).subscribe((message) => target.send(message));
    }
    return queue;
  }

  /**
   * A fake connection Observable: emits a fresh fake connection at each `c` of its marble, loses it at
   * each `x` (its channels and consumers complete, or error with `onLoss: 'error'`), completes at `|`,
   * errors at `#`. A marble string alone is taken as `{ marbles }`.
   *
   * @example
   * ```ts
   * const connection$ = kit.connection('c---x-c');
   * connection$.pipe(switchMap((c) => c.channel()), switchMap((ch) => ch.consume('jobs'))).subscribe();
   * ```
   */
  connection(options: FakeConnectionOptions | string = {}): FakeConnectionObservable {
    return new FakeConnectionObservable(
      this.host,
      typeof options === 'string' ? { marbles: options } : options,
    );
  }

  /**
   * Runs `work` `frames` frames from now on the test's scheduler: a step in the middle of a test
   * (`channel.close()`, `channel.unblock()`, `queue.send()`).
   *
   * @example
   * ```ts
   * kit.at(3, () => channel.unblock());
   * ```
   */
  at(frames: number, work: () => void): void {
    this.clock.later(work, frames);
  }
}

/**
 * Makes a {@link MarbleKit} for one test, from its scheduler and marble helpers: an rxjs-marbles
 * context (`m`), RxJS's run helpers with the scheduler (`{ ...helpers, scheduler }`), or a
 * `TestScheduler`. Use it inside `TestScheduler.run` (rxjs-marbles runs every test in it). Without a
 * context it runs on `asyncScheduler`, for async tests (no marbles then).
 *
 * @example
 * ```ts
 * // rxjs-marbles
 * it('...', marbles((m) => { const kit = marbleKit(m); }));
 * // RxJS
 * const scheduler = new TestScheduler((a, e) => expect(a).toEqual(e));
 * scheduler.run((helpers) => { const kit = marbleKit({ ...helpers, scheduler }); });
 * // async/await, real time
 * const channel = marbleKit().channel();
 * ```
 */
export function marbleKit(context?: MarbleContext, options?: MarbleKitOptions): MarbleKit {
  return new MarbleKit(context, options);
}

type Settled = Extract<PublishOutcome, { readonly status: 'acked' | 'nacked' }>;
type Returned = Extract<PublishOutcome, { readonly status: 'returned' }>;
type Sent = Extract<PublishOutcome, { readonly status: 'sent' }>;

/**
 * The outcomes a fake channel reports, to write expectations with: the real `PublishOutcome` shapes.
 *
 * @example
 * ```ts
 * expectObservable(out).toBe('-x', { x: { message, outcome: outcome.acked(1), attempts: 1 } });
 * ```
 */
export const outcome = {
  /** `{ status: 'acked', seq }`. */
  acked: (seq: number): Settled => ({ status: 'acked', seq }),
  /** `{ status: 'nacked', seq }`. */
  nacked: (seq: number): Settled => ({ status: 'nacked', seq }),
  /** `{ status: 'sent' }`. */
  sent: (): Sent => ({ status: 'sent' }),
  /** What an `r` reply gives for `message`: 312 NO_ROUTE with the message. */
  returned: (seq: number, message: PublishedMessage): Returned => returnedOutcome(seq, message),
} as const;
