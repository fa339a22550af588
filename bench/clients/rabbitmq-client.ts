/**
 * The rabbitmq-client benchmark client, at its defaults: `new Connection(url)`, the `Publisher` and
 * `Consumer` its README recommends (`createPublisher`, `createConsumer`), and the connection's own
 * queue methods.
 *
 * - `publish` (no confirms): `pub.send(queue, body)` on a `createPublisher()` (no confirm mode);
 *   `send()` resolves once its frames are written to the socket (its encoder stream waits for the
 *   socket's drain), and at most 1,000 are unresolved at once.
 * - `publishConfirmed`: `pub.send(queue, body)` on a `createPublisher({ confirm: true })` (one attempt,
 *   its default), at most `window` unresolved (the `windowed` loop of bench/confirm.ts). A nack rejects.
 * - `consume`: `createConsumer({ queue, qos: { prefetchCount }, queueOptions: { passive: true } },
 *   handler)`: the handler returns normally and rabbitmq-client acks it (one `basic.ack` per message,
 *   sent when the handler's returned value settles): that automatic ack after the handler IS its
 *   manual-ack mode (`noAck` stays false), and the idiomatic way to ack with it. Its default
 *   concurrency (unlimited) is kept. After `n` handled messages, `consumer.close()` cancels the
 *   consumer, waits for the handlers, and closes its channel. A message beyond `n` (a queue holding
 *   more) is nacked with requeue. The consumer's setup (a dedicated channel, a passive declare, qos,
 *   basic.consume) happens on every call, as it does whenever a user creates a consumer.
 * - `publishNatural` (issue 14: the code users write):
 *   - `stream`: exactly `publish` above (no confirms) or `publishConfirmed` above with a window of 1,000
 *     (with confirms): `pub.send` calls with at most 1,000 unresolved;
 *   - `await`: `await pub.send(queue, body)` for each message, one at a time, on the plain publisher
 *     (resolves once written) or the `confirm: true` one (resolves with the broker's ack).
 * - `consumeNatural`: `conn.createConsumer({ queue, qos: { prefetchCount }, concurrency: 10 }, async
 *   (msg) => { await naturalWork(msg); })`, as its README writes a consumer: rabbitmq-client acks when
 *   the handler's promise resolves, and runs at most 10 handlers at once. Without `queueOptions` the
 *   consumer declares the queue (with the same transient, non-auto-delete parameters, so the declare
 *   is a no-op), as users' code does. After `n` handled, `consumer.close()` (which waits for the
 *   handlers, so for the last acks); a message beyond `n` is nacked with requeue.
 * - `roundTrips`: a consumer as above with `prefetchCount: 1`; each round trip is a `pub.send` on the
 *   plain publisher, the delivery in the handler, whose return acks it (the latency is taken as the
 *   handler returns: the ack goes out in the same turn).
 * - Queue operations: `conn.queueDeclare({ queue, durable: false, autoDelete: false })`, a passive
 *   `queueDeclare` for the depth, `queuePurge`, `queueDelete`.
 *
 * Defaults a reader should know: Nagle's algorithm stays on (`noDelay` is off by default, the library
 * corks the socket around each write instead), frame_max is 8,192 (a 1 MiB body goes as 128 body
 * frames), every publish carries a `timestamp` property, and the connection reconnects by itself
 * (here any connection `'error'` fails the client instead: a benchmark does not hide a reconnect).
 *
 * @module
 */
import { Connection, ConsumerStatus } from 'rabbitmq-client';
import { type BenchClient, type BenchClientFactory, naturalWork } from '../lib/clients.js';
import {
  CLOSE_GUARD_MS,
  Failure,
  GUARD_MS,
  Mailbox,
  orAbort,
  strayDelivery,
  windowed,
  withTimeout,
} from './shared.js';

const NAME = 'rabbitmq-client' as const;
/** Publishes (no confirms) whose `send()` has not resolved yet, at most. */
const PUBLISH_WINDOW = 1000;

type Publisher = ReturnType<Connection['createPublisher']>;
type Consumer = ReturnType<Connection['createConsumer']>;

export const connectClient: BenchClientFactory = async (url) => {
  const conn = new Connection(url);
  const failure = new Failure(NAME, () => conn.unsafeDestroy());
  // Connected, or the first error (it would retry for ever otherwise).
  await new Promise<void>((resolve, reject) => {
    const onError = (e: unknown): void => {
      conn.unsafeDestroy();
      reject(e instanceof Error ? e : new Error(`${NAME}: ${String(e)}`));
    };
    conn.once('error', onError);
    conn.onConnect(GUARD_MS).then(
      () => {
        conn.off('error', onError);
        resolve();
      },
      (e: unknown) => onError(e),
    );
  });
  conn.on('error', (e: unknown) => failure.fail(e));

  let publisher: Publisher | undefined;
  let confirmPublisher: Publisher | undefined;
  const plain = (): Publisher => {
    publisher ??= conn.createPublisher();
    return publisher;
  };
  const confirming = (): Publisher => {
    confirmPublisher ??= conn.createPublisher({ confirm: true });
    return confirmPublisher;
  };

  /** Closes a consumer; its errors after this point are not failures. */
  const closeConsumer = async (consumer: Consumer | undefined): Promise<void> => {
    if (consumer === undefined) return;
    consumer.removeAllListeners('error');
    consumer.on('error', () => undefined);
    await consumer.close();
  };

  const client: BenchClient = {
    name: NAME,
    declareQueue: (queue) =>
      failure.guard('declareQueue', async () => {
        await conn.queueDeclare({ queue, durable: false, autoDelete: false });
      }),
    purgeQueue: (queue) =>
      failure.guard('purgeQueue', async () => {
        await conn.queuePurge({ queue });
      }),
    deleteQueue: (queue) =>
      failure.guard('deleteQueue', async () => {
        await conn.queueDelete({ queue });
      }),
    queueDepth: (queue) =>
      failure.guard(
        'queueDepth',
        async () => (await conn.queueDeclare({ queue, passive: true })).messageCount,
      ),

    publish: (queue, body, n) =>
      failure.guard('publish', async ({ signal }) => {
        const pub = plain();
        await windowed(n, PUBLISH_WINDOW, () => pub.send(queue, body), signal);
      }),

    publishConfirmed: (queue, body, n, window) =>
      failure.guard('publishConfirmed', async ({ signal }) => {
        const pub = confirming();
        await windowed(n, window, () => pub.send(queue, body), signal);
      }),

    publishNatural: (queue, body, n, variant, confirm) =>
      failure.guard(`publishNatural ${variant}`, async ({ signal }) => {
        const pub = confirm ? confirming() : plain();
        if (variant === 'stream')
          await windowed(n, confirm ? 1000 : PUBLISH_WINDOW, () => pub.send(queue, body), signal);
        else if (variant === 'await')
          for (let i = 0; i < n && !signal.aborted; i++) await pub.send(queue, body);
        else throw new Error(`${NAME}: no publish variant ${variant}`);
      }),

    consumeNatural: (queue, n, prefetch) =>
      failure.guard('consumeNatural', async (g) => {
        if (n <= 0) return;
        let consumer: Consumer | undefined;
        try {
          let started = 0;
          let handled = 0;
          const all = new Promise<void>((resolve) => {
            consumer = conn.createConsumer(
              { queue, qos: { prefetchCount: prefetch }, concurrency: 10 },
              async (msg) => {
                // Counted as it starts, so that handlers running at once never ack more than n.
                if (started >= n) return ConsumerStatus.REQUEUE; // beyond n: back to the queue
                started++;
                await naturalWork(msg);
                if (++handled === n) resolve();
                return undefined; // acked by rabbitmq-client when this promise resolves
              },
            );
            consumer.on('error', (e: unknown) => g.fail(e));
          });
          await orAbort(all, g.signal);
        } finally {
          await closeConsumer(consumer);
        }
      }),

    consume: (queue, n, prefetch) =>
      failure.guard('consume', async (g) => {
        if (n <= 0) return;
        let consumer: Consumer | undefined;
        try {
          let handled = 0;
          const all = new Promise<void>((resolve) => {
            consumer = conn.createConsumer(
              { queue, qos: { prefetchCount: prefetch }, queueOptions: { passive: true } },
              () => {
                if (handled >= n) return ConsumerStatus.REQUEUE; // beyond n: back to the queue
                if (++handled === n) resolve();
                return undefined; // acked by rabbitmq-client when the handler settles
              },
            );
            consumer.on('error', (e: unknown) => g.fail(e));
          });
          await orAbort(all, g.signal);
        } finally {
          await closeConsumer(consumer);
        }
      }),

    roundTrips: (queue, body, n) =>
      failure.guard('roundTrips', async (g) => {
        const pub = plain();
        let consumer: Consumer | undefined;
        try {
          const mailbox = new Mailbox<unknown>();
          const ready = new Promise<void>((resolve) => {
            consumer = conn.createConsumer(
              { queue, qos: { prefetchCount: 1 }, queueOptions: { passive: true } },
              (msg) => {
                if (!mailbox.put(msg)) g.fail(strayDelivery(NAME, queue));
                return undefined; // acked by rabbitmq-client when the handler settles
              },
            );
            consumer.on('error', (e: unknown) => g.fail(e));
            consumer.once('ready', () => resolve());
          });
          await orAbort(ready, g.signal);
          const latencies: number[] = [];
          for (let i = 0; i < n && !g.signal.aborted; i++) {
            const delivered = mailbox.next(g.signal);
            const t0 = performance.now();
            await Promise.all([pub.send(queue, body), delivered]);
            latencies.push(performance.now() - t0);
          }
          return latencies;
        } finally {
          await closeConsumer(consumer);
        }
      }),

    async close() {
      failure.fail(new Error(`${NAME}: the client is closed`));
      try {
        await withTimeout(
          (async () => {
            await publisher?.close();
            await confirmPublisher?.close();
            await conn.close();
          })(),
          CLOSE_GUARD_MS,
          `${NAME}: close did not finish within ${CLOSE_GUARD_MS / 1000} s`,
        );
      } catch (e) {
        conn.unsafeDestroy();
        throw e;
      }
    },
  };
  return client;
};
