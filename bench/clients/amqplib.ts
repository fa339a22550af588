/**
 * The amqplib benchmark client, at its defaults: `amqplib.connect(url)` (no socket options),
 * `conn.createChannel()` / `conn.createConfirmChannel()`, the promise API of its README.
 *
 * - `publish` (no confirms): `ch.sendToQueue(queue, body)` in a loop on a plain channel; when it
 *   returns false (the channel's write buffer, 1,024 frames by default, is full) the loop waits for the
 *   channel's `'drain'` event. amqplib has no "written" signal on a plain channel: `publish` resolves
 *   once the last `sendToQueue` has been accepted (returned true, or its buffer drained).
 * - `publishConfirmed`: `sendToQueue(queue, body, {}, callback)` on a confirm channel, at most `window`
 *   callbacks outstanding (the `windowed` loop of bench/confirm.ts); an error callback (a nack) rejects.
 * - `consume`: a channel of its own per call, `ch.prefetch(prefetch)`, `ch.consume(queue, handler)`
 *   with `noAck: false` (its default), `ch.ack(msg)` per message (amqplib sends each ack as its own
 *   `basic.ack`; it never merges them); after `n` acks, `ch.cancel(tag)`, then `ch.close()`.
 *   Deliveries beyond `n` (a queue holding more) are left unacked and go back to the queue with the
 *   close.
 * - `publishNatural` (issue 14: the code users write):
 *   - `stream` without confirms: exactly `publish` above (`sendToQueue` in a loop, awaiting `'drain'`
 *     when it returns false);
 *   - `stream` with confirms: exactly `publishConfirmed` above with a window of 1,000;
 *   - `await` with confirms: on the confirm channel, `await new Promise((resolve, reject) =>
 *     ch.sendToQueue(queue, body, {}, (err) => err ? reject(err) : resolve()))` for each message, one
 *     at a time.
 *   - No `await` without confirms: `sendToQueue` returns a boolean, not a promise, so the only thing a
 *     user can await is `'drain'` when it returns false, which is the `stream` loop again. The
 *     natural-publish scenario has no `amqplib await` row.
 * - `consumeNatural`: a channel of its own, `ch.prefetch(prefetch)`, `ch.consume(queue, async (msg) =>
 *   { await naturalWork(msg); ch.ack(msg); })` (amqplib does not wait for the handler's promise: every
 *   delivery the prefetch lets in is handled at once), until `n` are acked; then `ch.cancel(tag)` and
 *   `ch.close()`.
 * - `roundTrips`: a consumer (prefetch 1) on a channel of its own; each round trip is a
 *   `sendToQueue` on the plain channel, the delivery, `ch.ack(msg)`.
 * - Queue operations: `assertQueue(queue, { durable: false, autoDelete: false })` (its `durable`
 *   default is true, so the contract's transient queue is asked for explicitly), `checkQueue` (passive
 *   declare) for the depth, `purgeQueue`, `deleteQueue`.
 *
 * Errors: `'error'` and `'close'` listeners on the connection and the channels (amqplib throws an
 * unhandled `'error'` event otherwise) fail the client, or the one operation whose channel failed.
 *
 * @module
 */
import { once } from 'node:events';
import amqplib from 'amqplib';
import { type BenchClient, type BenchClientFactory, naturalWork } from '../lib/clients.js';
import {
  CLOSE_GUARD_MS,
  Failure,
  type Guarded,
  Mailbox,
  orAbort,
  strayDelivery,
  windowed,
  withTimeout,
} from './shared.js';

const NAME = 'amqplib' as const;

/** Opens a channel for one operation: its error or unexpected close fails that operation. */
async function operationChannel(
  conn: amqplib.ChannelModel,
  g: Guarded,
): Promise<{ ch: amqplib.Channel; close(): Promise<void> }> {
  const ch = await conn.createChannel();
  let closing = false;
  ch.on('error', (e: Error) => g.fail(e));
  ch.on('close', () => {
    if (!closing) g.fail(new Error(`${NAME}: the channel closed unexpectedly`));
  });
  return {
    ch,
    async close() {
      closing = true;
      await ch.close();
    },
  };
}

export const connectClient: BenchClientFactory = async (url) => {
  const conn = await amqplib.connect(url);
  const failure = new Failure(NAME, () => void conn.close().catch(() => undefined));
  let closing = false;
  conn.on('error', (e: Error) => failure.fail(e));
  conn.on('close', (e?: Error) => {
    if (!closing) failure.fail(e ?? new Error(`${NAME}: the connection closed`));
  });

  const ch = await conn.createChannel();
  ch.on('error', (e: Error) => failure.fail(e));
  ch.on('close', () => {
    if (!closing) failure.fail(new Error(`${NAME}: the main channel closed`));
  });

  let confirmChannel: Promise<amqplib.ConfirmChannel> | undefined;
  const confirmCh = (): Promise<amqplib.ConfirmChannel> => {
    confirmChannel ??= conn.createConfirmChannel().then((c) => {
      c.on('error', (e: Error) => failure.fail(e));
      c.on('close', () => {
        if (!closing) failure.fail(new Error(`${NAME}: the confirm channel closed`));
      });
      return c;
    });
    return confirmChannel;
  };

  /** `publish`: sendToQueue in a loop, honouring its backpressure signal. */
  const stream = async (queue: string, body: Buffer, n: number, signal: AbortSignal): Promise<void> => {
    for (let i = 0; i < n; i++) {
      if (!ch.sendToQueue(queue, body)) {
        // Rejects on an 'error' event of the channel, and when the guard aborts.
        await once(ch, 'drain', { signal });
      }
    }
  };

  /** One confirmed publish as a promise: its callback's error (a nack) rejects. */
  const confirmedOne = (cch: amqplib.ConfirmChannel, queue: string, body: Buffer): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      cch.sendToQueue(queue, body, {}, (err: unknown) =>
        err ? reject(err instanceof Error ? err : new Error(`${NAME}: publish nacked`)) : resolve(),
      );
    });

  /** `publishConfirmed`: at most `window` confirm callbacks outstanding. */
  const streamConfirmed = async (
    queue: string,
    body: Buffer,
    n: number,
    window: number,
    signal: AbortSignal,
  ): Promise<void> => {
    const cch = await confirmCh();
    await windowed(n, window, () => confirmedOne(cch, queue, body), signal);
  };

  const client: BenchClient = {
    name: NAME,
    declareQueue: (queue) =>
      failure.guard('declareQueue', async () => {
        await ch.assertQueue(queue, { durable: false, autoDelete: false });
      }),
    purgeQueue: (queue) =>
      failure.guard('purgeQueue', async () => {
        await ch.purgeQueue(queue);
      }),
    deleteQueue: (queue) =>
      failure.guard('deleteQueue', async () => {
        await ch.deleteQueue(queue);
      }),
    queueDepth: (queue) => failure.guard('queueDepth', async () => (await ch.checkQueue(queue)).messageCount),

    publish: (queue, body, n) => failure.guard('publish', ({ signal }) => stream(queue, body, n, signal)),

    publishConfirmed: (queue, body, n, window) =>
      failure.guard('publishConfirmed', ({ signal }) => streamConfirmed(queue, body, n, window, signal)),

    publishNatural: (queue, body, n, variant, confirm) =>
      failure.guard(`publishNatural ${variant}`, async ({ signal }) => {
        if (variant === 'stream') {
          await (confirm ? streamConfirmed(queue, body, n, 1000, signal) : stream(queue, body, n, signal));
          return;
        }
        if (variant !== 'await' || !confirm) throw new Error(`${NAME}: no publish variant ${variant}`);
        const cch = await confirmCh();
        for (let i = 0; i < n && !signal.aborted; i++) await confirmedOne(cch, queue, body);
      }),

    consumeNatural: (queue, n, prefetch) =>
      failure.guard('consumeNatural', async (g) => {
        if (n <= 0) return;
        const { ch: cch, close } = await operationChannel(conn, g);
        try {
          await cch.prefetch(prefetch);
          let acked = 0;
          let consumerTag: string | undefined;
          const all = new Promise<void>((resolve, reject) => {
            cch
              .consume(queue, async (msg) => {
                if (msg === null) {
                  reject(new Error(`${NAME}: the broker cancelled the consumer of ${queue}`));
                  return;
                }
                await naturalWork(msg);
                if (acked >= n) return; // beyond n: requeued by the close
                cch.ack(msg);
                if (++acked === n) resolve();
              })
              .then((ok) => {
                consumerTag = ok.consumerTag;
              }, reject);
          });
          await orAbort(all, g.signal);
          await cch.cancel(consumerTag!);
        } finally {
          await close();
        }
      }),

    consume: (queue, n, prefetch) =>
      failure.guard('consume', async (g) => {
        if (n <= 0) return;
        const { ch: cch, close } = await operationChannel(conn, g);
        try {
          await cch.prefetch(prefetch);
          let acked = 0;
          let consumerTag: string | undefined;
          const all = new Promise<void>((resolve, reject) => {
            cch
              .consume(
                queue,
                (msg) => {
                  if (msg === null) {
                    reject(new Error(`${NAME}: the broker cancelled the consumer of ${queue}`));
                    return;
                  }
                  if (acked >= n) return; // beyond n: requeued by the close
                  cch.ack(msg);
                  if (++acked === n) resolve();
                },
                { noAck: false },
              )
              .then((ok) => {
                consumerTag = ok.consumerTag;
              }, reject);
          });
          await orAbort(all, g.signal);
          await cch.cancel(consumerTag!);
        } finally {
          await close();
        }
      }),

    roundTrips: (queue, body, n) =>
      failure.guard('roundTrips', async (g) => {
        const { ch: cch, close } = await operationChannel(conn, g);
        try {
          await cch.prefetch(1);
          const mailbox = new Mailbox<amqplib.ConsumeMessage>();
          const { consumerTag } = await cch.consume(queue, (msg) => {
            if (msg === null) g.fail(new Error(`${NAME}: the broker cancelled the consumer of ${queue}`));
            else if (!mailbox.put(msg)) g.fail(strayDelivery(NAME, queue));
          });
          const latencies: number[] = [];
          for (let i = 0; i < n && !g.signal.aborted; i++) {
            const delivered = mailbox.next(g.signal);
            const t0 = performance.now();
            ch.sendToQueue(queue, body);
            const msg = await delivered;
            cch.ack(msg);
            latencies.push(performance.now() - t0);
          }
          await cch.cancel(consumerTag);
          return latencies;
        } finally {
          await close();
        }
      }),

    async close() {
      closing = true;
      failure.fail(new Error(`${NAME}: the client is closed`));
      try {
        await withTimeout(
          conn.close(),
          CLOSE_GUARD_MS,
          `${NAME}: close did not finish within ${CLOSE_GUARD_MS / 1000} s`,
        );
      } catch (e) {
        // A stuck close (a broker that stopped reading): drop the socket.
        (conn as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        throw e;
      }
    },
  };
  return client;
};
