/**
 * The @cloudamqp/amqp-client benchmark client, at its defaults, through its low-level API (the one
 * bench/confirm.ts uses): `new AMQPClient(url).connect()`, `conn.channel()`, `ch.basicPublish`,
 * `ch.basicConsume`, `msg.ack()`. (Its README also offers a higher-level `AMQPSession` with
 * reconnection; it publishes and consumes through the same channel methods.)
 *
 * - `publish` (no confirms): `ch.basicPublish('', queue, body)` on a plain channel: its promise
 *   resolves once the frames are written to the socket (the socket's write callback), and at most
 *   1,000 are unresolved at once. While the broker blocks the connection, `basicPublish` rejects at
 *   once (its behaviour, not a choice of this client), so `publish` rejects.
 * - `publishConfirmed`: `basicPublish` on a channel after `confirmSelect()`, whose promise resolves
 *   with the broker's ack (rejects on a nack); at most `window` unresolved (the `windowed` loop of
 *   bench/confirm.ts).
 * - `consume`: a channel of its own per call, `basicQos(prefetch)`, `basicConsume(queue, { noAck:
 *   false }, callback)` and `msg.ack()` per message (one `basic.ack` each, written at once). Its
 *   `noAck` default is TRUE (automatic acknowledgement on delivery): the contract wants manual acks, so
 *   it is set to false, as its README's example does. After `n` acks, `consumer.cancel()`, then
 *   `ch.close()`; deliveries beyond `n` are left unacked and go back to the queue with the close.
 * - `publishNatural` (issue 14: the code users write):
 *   - `stream`: exactly `publish` above (no confirms) or `publishConfirmed` above with a window of
 *     1,000 (with confirms): `basicPublish` calls with at most 1,000 unresolved;
 *   - `await`: `await ch.basicPublish('', queue, body)` for each message, one at a time, on the plain
 *     channel (resolves once written) or the channel after `confirmSelect()` (resolves with the ack).
 * - `consumeNatural`: a channel of its own, `ch.prefetch(prefetch)`, `ch.basicConsume(queue, { noAck:
 *   false }, async (msg) => { await naturalWork(msg); await msg.ack(); })` (the callback's promise is
 *   not awaited by the client: every delivery the prefetch lets in is handled at once), until `n` are
 *   acked; then `consumer.cancel()` and `ch.close()`.
 * - `roundTrips`: a consumer (prefetch 1, `noAck: false`) on a channel of its own; each round trip is a
 *   `basicPublish` on the plain channel, the delivery, `msg.ack()`.
 * - Queue operations: `queueDeclare(queue, { durable: false, autoDelete: false })` (its `durable`
 *   default is true), a passive `queueDeclare` for the depth, `queuePurge`, `queueDelete`.
 *
 * Errors: `onerror` of the connection and of each channel (a channel's default forwards to the
 * connection's) fail the client, or the one operation whose channel failed.
 *
 * @module
 */
import { type AMQPChannel, AMQPClient, type AMQPMessage } from '@cloudamqp/amqp-client';
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

const NAME = '@cloudamqp/amqp-client' as const;
/** Publishes (no confirms) whose promise has not resolved yet, at most. */
const PUBLISH_WINDOW = 1000;

export const connectClient: BenchClientFactory = async (url) => {
  const amqp = new AMQPClient(url);
  const conn = await amqp.connect();
  const failure = new Failure(NAME, () => amqp.socket?.destroy());
  let closing = false;
  conn.onerror = (e) => {
    if (!closing) failure.fail(e);
  };
  conn.ondisconnect = (e) => {
    if (!closing) failure.fail(e ?? new Error(`${NAME}: disconnected`));
  };

  const ch = await conn.channel();
  ch.onerror = (reason) => failure.fail(new Error(`${NAME}: the main channel closed: ${reason}`));

  let confirmChannel: Promise<AMQPChannel> | undefined;
  const confirmCh = (): Promise<AMQPChannel> => {
    confirmChannel ??= (async () => {
      const c = await conn.channel();
      c.onerror = (reason) => failure.fail(new Error(`${NAME}: the confirm channel closed: ${reason}`));
      await c.confirmSelect();
      return c;
    })();
    return confirmChannel;
  };

  /** A channel for one operation: its error fails that operation only. */
  const operationChannel = async (g: Guarded): Promise<AMQPChannel> => {
    const c = await conn.channel();
    c.onerror = (reason) => g.fail(new Error(`${NAME}: the channel closed: ${reason}`));
    return c;
  };

  /** Rejects when the consumer ends other than by our cancel (the broker cancelled it, say). */
  const watch = (
    consumer: { wait(): Promise<void> },
    g: Guarded,
    queue: string,
    done: () => boolean,
  ): void => {
    consumer.wait().then(
      () => {
        if (!done()) g.fail(new Error(`${NAME}: the consumer of ${queue} ended`));
      },
      (e: unknown) => g.fail(e),
    );
  };

  const client: BenchClient = {
    name: NAME,
    declareQueue: (queue) =>
      failure.guard('declareQueue', async () => {
        await ch.queueDeclare(queue, { durable: false, autoDelete: false });
      }),
    purgeQueue: (queue) =>
      failure.guard('purgeQueue', async () => {
        await ch.queuePurge(queue);
      }),
    deleteQueue: (queue) =>
      failure.guard('deleteQueue', async () => {
        await ch.queueDelete(queue);
      }),
    queueDepth: (queue) =>
      failure.guard('queueDepth', async () => (await ch.queueDeclare(queue, { passive: true })).messageCount),

    publish: (queue, body, n) =>
      failure.guard('publish', async ({ signal }) => {
        await windowed(n, PUBLISH_WINDOW, () => ch.basicPublish('', queue, body), signal);
      }),

    publishConfirmed: (queue, body, n, window) =>
      failure.guard('publishConfirmed', async ({ signal }) => {
        const cch = await confirmCh();
        await windowed(n, window, () => cch.basicPublish('', queue, body), signal);
      }),

    publishNatural: (queue, body, n, variant, confirm) =>
      failure.guard(`publishNatural ${variant}`, async ({ signal }) => {
        const c = confirm ? await confirmCh() : ch;
        if (variant === 'stream')
          await windowed(n, confirm ? 1000 : PUBLISH_WINDOW, () => c.basicPublish('', queue, body), signal);
        else if (variant === 'await')
          for (let i = 0; i < n && !signal.aborted; i++) await c.basicPublish('', queue, body);
        else throw new Error(`${NAME}: no publish variant ${variant}`);
      }),

    consumeNatural: (queue, n, prefetch) =>
      failure.guard('consumeNatural', async (g) => {
        if (n <= 0) return;
        const cch = await operationChannel(g);
        try {
          await cch.prefetch(prefetch);
          let started = 0;
          let acked = 0;
          let finished = false;
          let resolveAll!: () => void;
          const all = new Promise<void>((resolve) => {
            resolveAll = resolve;
          });
          const consumer = await cch.basicConsume(queue, { noAck: false }, async (msg) => {
            // Counted as it starts, so that handlers running at once never ack more than n.
            if (started >= n) return; // beyond n: requeued by the close
            started++;
            try {
              await naturalWork(msg);
              await msg.ack();
            } catch (e) {
              g.fail(e);
              return;
            }
            if (++acked === n) resolveAll();
          });
          watch(consumer, g, queue, () => finished);
          await orAbort(all, g.signal);
          finished = true;
          await consumer.cancel();
        } finally {
          await cch.close();
        }
      }),

    consume: (queue, n, prefetch) =>
      failure.guard('consume', async (g) => {
        if (n <= 0) return;
        const cch = await operationChannel(g);
        try {
          await cch.basicQos(prefetch);
          let acked = 0;
          let finished = false;
          let resolveAll!: () => void;
          const all = new Promise<void>((resolve) => {
            resolveAll = resolve;
          });
          const consumer = await cch.basicConsume(queue, { noAck: false }, (msg) => {
            if (acked >= n) return; // beyond n: requeued by the close
            const ack = msg.ack();
            if (++acked === n) ack.then(resolveAll, (e: unknown) => g.fail(e));
            else ack.catch((e: unknown) => g.fail(e));
          });
          watch(consumer, g, queue, () => finished);
          await orAbort(all, g.signal);
          finished = true;
          await consumer.cancel();
        } finally {
          await cch.close();
        }
      }),

    roundTrips: (queue, body, n) =>
      failure.guard('roundTrips', async (g) => {
        const cch = await operationChannel(g);
        try {
          await cch.basicQos(1);
          const mailbox = new Mailbox<AMQPMessage>();
          let finished = false;
          const consumer = await cch.basicConsume(queue, { noAck: false }, (msg) => {
            if (!mailbox.put(msg)) g.fail(strayDelivery(NAME, queue));
          });
          watch(consumer, g, queue, () => finished);
          const latencies: number[] = [];
          for (let i = 0; i < n && !g.signal.aborted; i++) {
            const delivered = mailbox.next(g.signal);
            const t0 = performance.now();
            const [, msg] = await Promise.all([ch.basicPublish('', queue, body), delivered]);
            msg.ack().catch((e: unknown) => g.fail(e));
            latencies.push(performance.now() - t0);
          }
          finished = true;
          await consumer.cancel();
          return latencies;
        } finally {
          await cch.close();
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
        amqp.socket?.destroy();
        throw e;
      }
    },
  };
  return client;
};
