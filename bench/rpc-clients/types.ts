/**
 * What every client of the `rpc` scenario (`bench/rpc.ts`) implements: request/reply over RabbitMQ's
 * direct reply-to, each client in the code its documentation shows (or, where it has no request/reply
 * helper, the code its users write by hand: a no-ack consumer on `amq.rabbitmq.reply-to` and a map
 * from correlation id to the waiting request, on the channel that publishes).
 *
 * @module
 */

/** The clients compared (raw has no request/reply of its own: it is left out). */
export type RpcClientName = 'rxamqp' | 'amqplib' | 'rabbitmq-client' | '@cloudamqp/amqp-client';

export const RPC_CLIENT_NAMES: readonly RpcClientName[] = [
  'rxamqp',
  'amqplib',
  'rabbitmq-client',
  '@cloudamqp/amqp-client',
];

/** One client, connected, ready to send requests. */
export interface RpcClient {
  /**
   * `n` requests one at a time: each awaited before the next is sent. Returns each request's latency
   * in milliseconds (from just before the request to its reply).
   */
  sequential(queue: string, body: Buffer, n: number): Promise<number[]>;
  /** `n` requests with at most `inFlight` awaiting their replies; resolves when all are answered. */
  concurrent(queue: string, body: Buffer, n: number, inFlight: number): Promise<void>;
  close(): Promise<void>;
}

export type RpcClientFactory = (url: string) => Promise<RpcClient>;

/** RabbitMQ's direct reply-to pseudo-queue. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/**
 * Runs `request` `n` times with at most `inFlight` unsettled, starting the next as one settles (the
 * loop a promise-based client's user writes); rejects with the first failure.
 */
export function windowed(n: number, inFlight: number, request: () => Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let started = 0;
    let done = 0;
    let failed = false;
    const settled = (): void => {
      if (failed) return;
      if (++done === n) resolve();
      else if (started < n) start();
    };
    const fail = (e: unknown): void => {
      if (failed) return;
      failed = true;
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const start = (): void => {
      started++;
      request().then(settled, fail);
    };
    if (n <= 0) resolve();
    else while (started < Math.min(n, inFlight)) start();
  });
}

/**
 * The requests a hand-written direct reply-to client keeps: a promise per correlation id, settled by
 * the reply with that id; a failure of the channel fails them all (a client must not hang on them).
 */
export class PendingReplies<T> {
  private readonly waiting = new Map<string, { resolve(reply: T): void; reject(error: Error): void }>();
  private failure: Error | undefined;
  private counter = 0;

  /** A fresh correlation id (a counter: unique on this channel, which is all direct reply-to needs). */
  nextId(): string {
    return String(++this.counter);
  }

  /** The reply to `id`, once `answer(id, ...)` is called. */
  wait(id: string): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  /** A reply arrived: settles its request (an unknown or missing id is dropped). */
  answer(id: string | undefined, reply: T): void {
    if (id === undefined) return;
    const request = this.waiting.get(id);
    if (request === undefined) return;
    this.waiting.delete(id);
    request.resolve(reply);
  }

  /** The channel failed: every pending and later request rejects with `error`. */
  fail(error: Error): void {
    this.failure ??= error;
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const request of all) request.reject(error);
  }
}

/** Times `n` awaited requests one after the other. */
export async function timedSequence(n: number, request: () => Promise<unknown>): Promise<number[]> {
  const latencies = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await request();
    latencies[i] = performance.now() - t0;
  }
  return latencies;
}
