/**
 * The rxamqp benchmark client, at its defaults: `openConnection(url)`, `conn.openChannel()`, the public
 * channel methods and the `publishConfirmed` operator, as docs/publishing.md and docs/consuming.md
 * show them. (Its defaults include `ackDelay: 1` and `readBatching: { minMessages: 4, delayMs: 1 }`,
 * both described in docs/consuming.md.)
 *
 * - `publish` (no confirms): the documented way to publish a stream with a bounded number in flight,
 *   `publishConfirmed(ch, { window: 1000, allowUnconfirmed: true })` on a plain channel (every outcome is
 *   `sent`: the message is written to the socket, and the window bounds the publishes waiting for the
 *   socket, which itself holds publishes while its buffer is above `writeHighWaterMark`, 1 MiB). It is
 *   fed in pages of 10,000 messages, one page per `concatMap` step ("Feeding it" in
 *   docs/publishing.md), so memory holds one page whatever `n` (a `range(0, n)` would push all `n`
 *   messages into the operator at once). Resolves when every message is `sent`.
 * - `publishConfirmed`: messages through `publishConfirmed(ch, { window })` on a channel after
 *   `confirmSelect()`, fed in pages of 10,000 like `publish` (so memory holds one page whatever `n`);
 *   a nack errors the stream (`onNack: 'error'`, the default).
 * - `consume`: a channel of its own per call (`conn.openChannel()`), `ch.consume(queue, { prefetch })`,
 *   `delivery.ack()` on each (rxamqp merges acks made within `ackDelay` into `multiple` acks where that
 *   acks exactly the same messages: its default), `take(n)`, whose unsubscribe cancels the consumer;
 *   then `ch.close()` (which sends any held acks first). Deliveries beyond `n` are left unacked and go
 *   back to the queue with the close.
 * - `roundTrips`: a consumer (prefetch 1) on a channel of its own; each round trip is a `ch.publish` on
 *   the plain channel, the delivery, `delivery.ack()`. With prefetch 1 an ack is never held: it goes
 *   out at the end of the turn (a held ack reaching a quarter of the prefetch is sent at once).
 * - `publishNatural` (issue 14: the code users write, at its defaults, nothing tuned), on the plain
 *   channel or, with `confirm`, on the confirm channel above (`conn.openChannel()` then
 *   `await lastValueFrom(c.confirmSelect())`):
 *   - `mergeMap`: `lastValueFrom(range(0, n).pipe(mergeMap(() => ch.publish('', queue, body), 1000),
 *     ignoreElements()), { defaultValue: undefined })`: up to 1,000 publishes in flight (written, or
 *     unconfirmed), the rest of the `range` waiting in `mergeMap`'s buffer;
 *   - `concatMap`: the same with `concatMap(() => ch.publish('', queue, body))`: one at a time;
 *   - `await`: `for (...) await lastValueFrom(ch.publish('', queue, body))`.
 *   The outcomes are not inspected (as in the docs' one-liners): a nack would go unnoticed, but neither
 *   broker nacks a transient queue's messages.
 * - `consumeNatural`: a channel of its own, `lastValueFrom(c.consume(queue, { prefetch }).pipe(
 *   mergeMap(async (d) => { await naturalWork(d); d.ack(); }, 10), take(n), count()))` (at most 10
 *   handlers at once; `take(n)` cancels the consumer), then `c.close()`. As in users' code, the
 *   handlers still running when `take(n)` completes (at most 9) run to their end and ack: up to n + 9
 *   messages may be acked (the rounds refill the queue, so this changes nothing measured).
 * - Queue operations on the plain channel: `queueDeclare(queue, { durable: false, autoDelete: false })`,
 *   a passive `queueDeclare` for the depth, `queuePurge`, `queueDelete`.
 *
 * Errors: every rxamqp operation errors with the channel's or the connection's error by itself; the
 * main channel's end also fails the client.
 *
 * @module
 */
import { concatMap, count, ignoreElements, lastValueFrom, map, mergeMap, range, take, tap } from 'rxjs';
import { publishConfirmed } from '../../operators/index.js';
import {
  type Channel,
  type Connection,
  type ConnectOptions,
  type Delivery,
  openConnection,
} from '../../src/node.js';
import {
  type BenchClient,
  type BenchClientFactory,
  naturalWork,
  type PublishVariant,
} from '../lib/clients.js';
import {
  CLOSE_GUARD_MS,
  Failure,
  type Guarded,
  Mailbox,
  orAbort,
  strayDelivery,
  withTimeout,
} from './shared.js';

const NAME = 'rxamqp' as const;
/** Publishes (no confirms) not yet written, at most. */
const PUBLISH_WINDOW = 1000;
/** Messages handed to `publishConfirmed` at once by `publish` (docs: "much larger than the window"). */
const PUBLISH_PAGE = 10_000;

/**
 * `n` messages through `publishConfirmed(channel, { window })`, fed in pages of PUBLISH_PAGE, one
 * page per `concatMap` step, so that memory holds one page whatever `n`.
 */
function paged(channel: Channel, queue: string, body: Buffer, n: number, window: number): Promise<void> {
  const pages = Math.ceil(n / PUBLISH_PAGE);
  return lastValueFrom(
    range(0, pages).pipe(
      concatMap((page) =>
        range(0, Math.min(PUBLISH_PAGE, n - page * PUBLISH_PAGE)).pipe(
          map(() => ({ exchange: '', routingKey: queue, body })),
          publishConfirmed(channel, { window, allowUnconfirmed: true }),
        ),
      ),
      ignoreElements(),
    ),
    { defaultValue: undefined },
  );
}

/** `n` publishes written the way `variant` says (see the module's header); the user's code, verbatim. */
async function publishAs(
  ch: Channel,
  queue: string,
  body: Buffer,
  n: number,
  variant: PublishVariant,
): Promise<void> {
  switch (variant) {
    case 'mergeMap':
      await lastValueFrom(
        range(0, n).pipe(
          mergeMap(() => ch.publish('', queue, body), 1000),
          ignoreElements(),
        ),
        { defaultValue: undefined },
      );
      return;
    case 'concatMap':
      await lastValueFrom(
        range(0, n).pipe(
          concatMap(() => ch.publish('', queue, body)),
          ignoreElements(),
        ),
        { defaultValue: undefined },
      );
      return;
    case 'await':
      for (let i = 0; i < n; i++) await lastValueFrom(ch.publish('', queue, body));
      return;
    default:
      throw new Error(`${NAME}: no publish variant ${variant}`);
  }
}

/**
 * `RXAMQP_BENCH_TELEMETRY=otel` runs the client with `telemetry: openTelemetry()` over an SDK whose
 * spans go through a batch span processor (as in production) to an exporter that drops them, and whose metrics are aggregated by a reader nobody reads:
 * the cost of tracing and metrics on (issue 20). Unset: no telemetry (the client's default).
 */
async function telemetryOption(): Promise<ConnectOptions> {
  if (process.env.RXAMQP_BENCH_TELEMETRY !== 'otel') return {};
  const { openTelemetry } = await import('../../src/otel/index.js');
  const { context, propagation } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
  class IdleReader extends MetricReader {
    protected override onShutdown(): Promise<void> {
      return Promise.resolve();
    }
    protected override onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
  }
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const dropping = {
    export: (_spans: unknown, done: (r: { code: number }) => void) => done({ code: 0 }),
    shutdown: () => Promise.resolve(),
  };
  return {
    telemetry: openTelemetry({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }),
      meterProvider: new MeterProvider({ readers: [new IdleReader()] }),
    }),
  };
}

export const connectClient: BenchClientFactory = async (url) => {
  const conn: Connection = await openConnection(url, await telemetryOption());
  const failure = new Failure(NAME, () => conn.close().subscribe({ error: () => undefined }));
  let closing = false;
  const ch = await conn.openChannel();
  ch.returns$.subscribe({
    complete: () => {
      if (!closing) failure.fail(ch.error ?? conn.error ?? new Error(`${NAME}: the main channel closed`));
    },
  });

  let confirmChannel: Promise<Channel> | undefined;
  const confirmCh = (): Promise<Channel> => {
    confirmChannel ??= (async () => {
      const c = await conn.openChannel();
      await lastValueFrom(c.confirmSelect());
      return c;
    })();
    return confirmChannel;
  };

  /** A channel for one operation, closed after it. */
  const withChannel = async <T>(g: Guarded, work: (c: Channel) => Promise<T>): Promise<T> => {
    const c = await conn.openChannel();
    try {
      return await orAbort(work(c), g.signal);
    } finally {
      if (c.isOpen) await lastValueFrom(c.close());
    }
  };

  const client: BenchClient = {
    name: NAME,
    declareQueue: (queue) =>
      failure.guard('declareQueue', async () => {
        await lastValueFrom(ch.queueDeclare(queue, { durable: false, autoDelete: false }));
      }),
    purgeQueue: (queue) =>
      failure.guard('purgeQueue', async () => {
        await lastValueFrom(ch.queuePurge(queue));
      }),
    deleteQueue: (queue) =>
      failure.guard('deleteQueue', async () => {
        await lastValueFrom(ch.queueDelete(queue));
      }),
    queueDepth: (queue) =>
      failure.guard(
        'queueDepth',
        async () => (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).messageCount,
      ),

    publish: (queue, body, n) =>
      failure.guard('publish', ({ signal }) => orAbort(paged(ch, queue, body, n, PUBLISH_WINDOW), signal)),

    publishConfirmed: (queue, body, n, window) =>
      failure.guard('publishConfirmed', async ({ signal }) => {
        const cch = await confirmCh();
        await orAbort(paged(cch, queue, body, n, window), signal);
      }),

    consume: (queue, n, prefetch) =>
      failure.guard('consume', (g) =>
        withChannel(g, async (c) => {
          await lastValueFrom(
            c.consume(queue, { prefetch }).pipe(
              tap((d) => d.ack()),
              take(n),
              count(),
            ),
          );
        }),
      ),

    publishNatural: (queue, body, n, variant, confirm) =>
      failure.guard(`publishNatural ${variant}`, async ({ signal }) => {
        const target = confirm ? await confirmCh() : ch;
        await orAbort(publishAs(target, queue, body, n, variant), signal);
      }),

    consumeNatural: (queue, n, prefetch) =>
      failure.guard('consumeNatural', (g) =>
        withChannel(g, async (c) => {
          await lastValueFrom(
            c.consume(queue, { prefetch }).pipe(
              mergeMap(async (d) => {
                await naturalWork(d);
                d.ack();
              }, 10),
              take(n),
              count(),
            ),
          );
        }),
      ),

    roundTrips: (queue, body, n) =>
      failure.guard('roundTrips', (g) =>
        withChannel(g, async (c) => {
          const mailbox = new Mailbox<Delivery>();
          const consumer = c.consume(queue, { prefetch: 1 }).subscribe({
            next: (d) => {
              if (!mailbox.put(d)) g.fail(strayDelivery(NAME, queue));
            },
            error: (e: unknown) => g.fail(e),
            complete: () => g.fail(new Error(`${NAME}: the consumer of ${queue} completed`)),
          });
          try {
            const latencies: number[] = [];
            const onPublishError = { error: (e: unknown) => g.fail(e) };
            for (let i = 0; i < n && !g.signal.aborted; i++) {
              const delivered = mailbox.next(g.signal);
              const t0 = performance.now();
              ch.publish('', queue, body).subscribe(onPublishError);
              const d = await delivered;
              d.ack();
              latencies.push(performance.now() - t0);
            }
            return latencies;
          } finally {
            consumer.unsubscribe();
          }
        }),
      ),

    async close() {
      closing = true;
      failure.fail(new Error(`${NAME}: the client is closed`));
      await withTimeout(
        lastValueFrom(conn.close(), { defaultValue: undefined }),
        CLOSE_GUARD_MS,
        `${NAME}: close did not finish within ${CLOSE_GUARD_MS / 1000} s`,
      );
    },
  };
  return client;
};
