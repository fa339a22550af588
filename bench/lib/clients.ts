/**
 * The contract every client of the peer benchmark suite implements: rxamqp, the peers (amqplib,
 * rabbitmq-client, @cloudamqp/amqp-client) and the raw client (pre-encoded frames, the ceiling). The
 * suite (`bench/suite.ts`) runs each scenario through this interface against the real broker and the
 * null broker, so every client does the same work, each at its own defaults (no tuning a user would
 * not do), in its own child process.
 *
 * Every method resolves once the work is complete (written, confirmed, consumed), and rejects on any
 * error: a benchmark never hides a failure.
 *
 * @module
 */

/** The clients of the suite. `raw` is the ceiling, not a client users would run. */
export type ClientName = 'rxamqp' | 'amqplib' | 'rabbitmq-client' | '@cloudamqp/amqp-client' | 'raw';

export const CLIENT_NAMES: readonly ClientName[] = [
  'rxamqp',
  'amqplib',
  'rabbitmq-client',
  '@cloudamqp/amqp-client',
  'raw',
];

/**
 * The ways users write a publishing loop, as the `natural-publish` and `natural-confirm` scenarios
 * measure them (issue 14): rxamqp's Observable idioms (`mergeMap` with a concurrency of 1,000,
 * `concatMap`, and `await lastValueFrom(...)` one message at a time), and a peer's own idioms
 * (`stream`: its streaming loop, the one its `publish` / `publishConfirmed` use; `await`: awaiting
 * each publish before the next).
 */
export type PublishVariant = 'mergeMap' | 'concatMap' | 'await' | 'stream';

/**
 * The publish variants each client implements in {@link BenchClient.publishNatural}, without confirms
 * and with them, known without connecting (the suite builds its workloads from it). amqplib has an
 * `await` only with confirms: without, `sendToQueue` returns a boolean and the only thing to await is
 * `'drain'` when it returns false, which is its `stream` loop again (see bench/clients/amqplib.ts). The
 * raw client takes no part.
 */
export function naturalPublishVariants(client: ClientName, confirm: boolean): readonly PublishVariant[] {
  switch (client) {
    case 'rxamqp':
      return ['mergeMap', 'concatMap', 'await'];
    case 'amqplib':
      return confirm ? ['stream', 'await'] : ['stream'];
    case 'rabbitmq-client':
    case '@cloudamqp/amqp-client':
      return ['stream', 'await'];
    case 'raw':
      return [];
  }
}

/** One client, connected to one broker. */
export interface BenchClient {
  readonly name: ClientName;
  /** Declares `queue` (transient, not auto-delete, no arguments), idempotently. */
  declareQueue(queue: string): Promise<void>;
  /** Purges `queue`. */
  purgeQueue(queue: string): Promise<void>;
  /** Deletes `queue`. */
  deleteQueue(queue: string): Promise<void>;
  /** Messages `queue` holds now (a passive declare's message count). */
  queueDepth(queue: string): Promise<number>;
  /**
   * Publishes `n` messages with `body` to `queue` through the default exchange, WITHOUT confirms, as
   * fast as the client lets a well-behaved user go: honouring its backpressure signal (a `false` from
   * write/publish and its drain event, a promise to await, an Observable that completes when written),
   * never buffering without bound. Resolves when every message has been handed to the client and the
   * client says it is written (the caller then waits for the broker to hold them all).
   */
  publish(queue: string, body: Buffer, n: number): Promise<void>;
  /**
   * Publishes `n` messages on a channel in confirm mode with at most `window` unconfirmed at once,
   * resolving when all are acked (rejects on a nack).
   */
  publishConfirmed(queue: string, body: Buffer, n: number, window: number): Promise<void>;
  /**
   * Consumes `n` messages from `queue` (already holding at least `n`) with manual acks, one ack call
   * per message (the client may merge acks on the wire if that is its default), prefetch `prefetch`;
   * resolves once `n` have been acked and the consumer is cancelled.
   */
  consume(queue: string, n: number, prefetch: number): Promise<void>;
  /**
   * Round trips, one at a time: publish one message to `queue`, receive it on a consumer of `queue`
   * (started once, kept for all `n`), ack it, and only then publish the next. Returns each round trip's
   * latency in milliseconds (from just before the publish to the delivery, ack included in the loop).
   */
  roundTrips(queue: string, body: Buffer, n: number): Promise<number[]>;
  /**
   * Publishes `n` messages with `body` to `queue` the way a user of this client writes it (`variant`,
   * one of its {@link naturalPublishVariants}): without confirms on a plain channel, or with
   * `confirm` on a channel in confirm mode (a streaming variant keeps at most 1,000 unconfirmed).
   * Resolves when the loop is done: every publish written (no confirms) or confirmed. Optional: the
   * natural-* scenarios skip clients without it.
   */
  publishNatural?(
    queue: string,
    body: Buffer,
    n: number,
    variant: PublishVariant,
    confirm: boolean,
  ): Promise<void>;
  /**
   * Consumes `n` messages from `queue` (holding at least `n`) the way a user of this client writes a
   * consumer with asynchronous work: prefetch `prefetch`, a handler that awaits {@link naturalWork}
   * (one microtask, a stand-in for real async work) then acks, up to 10 handlers at once where the
   * client has a knob for it. Resolves once `n` are acked and the consumer is cancelled. Optional.
   */
  consumeNatural?(queue: string, n: number, prefetch: number): Promise<void>;
  /** Closes the connection. */
  close(): Promise<void>;
}

/**
 * The "work" of a natural consumer's handler: one microtask (`await Promise.resolve()`), a stand-in
 * for the asynchronous work a real handler does, so that each client's handling of a promise-returning
 * handler is measured and not the work.
 */
export async function naturalWork(_message: unknown): Promise<void> {
  await Promise.resolve();
}

/** Connects a client to `url` (`amqp://user:pass@host:port/vhost`). */
export type BenchClientFactory = (url: string) => Promise<BenchClient>;
