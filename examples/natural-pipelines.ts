/**
 * The code RxJS teaches is the fast code: publishing with `mergeMap` or `concatMap`, awaiting each
 * publish in async code, consuming with a `mergeMap` of async handlers and request/reply with
 * `channel.request` need no batching tricks. Each style is timed on the broker, one line per style with
 * its messages per second:
 *
 * 1. plain channel, `mergeMap(() => ch.publish(...), 1000)`;
 * 2. plain channel, `concatMap(() => ch.publish(...))`;
 * 3. plain channel, `for (...) await lastValueFrom(ch.publish(...))`;
 * 4. confirm-mode channel: one publish at a time (`concatMap`), `mergeMap(..., 1000)`, and the
 *    `publishConfirmed` operator with a window of 1000;
 * 5. consuming with `mergeMap(async (d) => { await handle(d); d.ack(); }, 10)`;
 * 6. request/reply against a responder built with `answerRequests`: one request at a time, then 100 at once.
 *
 * The numbers depend on the machine and the broker; the ratios between the lines are the point.
 *
 *   npx tsx examples/natural-pipelines.ts
 *
 * The broker is AMQP_URL, or amqp://guest:guest@127.0.0.1:5672.
 */

import { type Channel, type Delivery, openConnection, type PublishOutcome } from 'rxamqp';
import { answerRequests, publishConfirmed } from 'rxamqp/operators';
import { concatMap, count, lastValueFrom, map, mergeMap, type Observable, range, take } from 'rxjs';

const url = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'rxamqp-example-natural-pipelines';
const rpcQueue = 'rxamqp-example-natural-pipelines-rpc';
const N = 20_000; // messages per style
const ONE_AT_A_TIME = 5_000; // for the styles that wait for the broker before each message
const WARM_UP = 20_000; // untimed publishes first, see publishWithoutConfirms
const body = JSON.stringify({ order: 42, items: ['tea', 'milk'], total: 7.5 });

/** Runs one style, then prints how many messages it handled and how fast. */
async function timed(label: string, run: () => Promise<number>): Promise<void> {
  const start = performance.now();
  const messages = await run();
  const ms = performance.now() - start;
  const rate = Math.round((messages * 1000) / ms).toLocaleString('en-US');
  console.log(
    `${label.padEnd(58)} ${String(messages).padStart(6)} in ${ms.toFixed(0).padStart(5)} ms  ${rate.padStart(8)} msg/s`,
  );
}

/** Counts the values of an Observable: a pipeline's messages, as it completes. */
const counted = (source: Observable<unknown>): Promise<number> => lastValueFrom(source.pipe(count()));

/** Counts the acked outcomes: on a confirm-mode channel, every other outcome would be a surprise here. */
const acked = (outcomes: Observable<PublishOutcome>): Promise<number> =>
  counted(outcomes.pipe(mergeMap((o) => (o.status === 'acked' ? [o] : []))));

/** The work of a consumer: small, asynchronous (as a database call would be). */
let itemsSeen = 0;
async function handle(delivery: Delivery): Promise<void> {
  const order = delivery.json<{ items: string[] }>();
  itemsSeen += order.items.length;
  await Promise.resolve();
}

async function publishWithoutConfirms(ch: Channel): Promise<void> {
  // Untimed: the first burst pays for compiling the code paths and for growing the socket's buffers,
  // whichever style sends it.
  await lastValueFrom(range(0, WARM_UP).pipe(mergeMap(() => ch.publish('', queue, body), 1000)));
  let published = 0;
  /** Each style starts the same way: after a round trip, when the broker has read what came before. */
  const settled = async () => {
    published += (await lastValueFrom(ch.queuePurge(queue))).messageCount;
  };
  await settled();
  published = 0;

  // Without confirms a publish is `sent` once the connection has its frames: when the socket is not
  // backed up that is at once, before subscribe() returns, and the frames of the whole turn go out in
  // one socket write (64 KiB pieces for a burst). So mergeMap rarely has more than one publish in
  // flight, and there is no socket write or timer per message; what bounds it is the socket (a burst
  // above writeHighWaterMark waits for it to drain) and the encoding of each message.
  await timed('plain: mergeMap(publish, 1000)', () =>
    counted(range(0, N).pipe(mergeMap(() => ch.publish('', queue, body), 1000))),
  );

  // The same with concatMap: each publish completes synchronously, so waiting for it before the next
  // one costs nothing. It is also the form that respects backpressure: when the socket's buffer is
  // above writeHighWaterMark, the next publish waits for it to drain instead of piling up in memory.
  await settled();
  await timed('plain: concatMap(publish)', () =>
    counted(range(0, N).pipe(concatMap(() => ch.publish('', queue, body)))),
  );

  // In async code, awaiting each publish costs a promise resolution (a microtask), not a round trip:
  // the publishes of one turn still share a socket write. The event loop turns are what bound it.
  await settled();
  await timed('plain: for (...) await lastValueFrom(publish)', async () => {
    for (let i = 0; i < N; i++) await lastValueFrom(ch.publish('', queue, body));
    return N;
  });

  // The broker handles a channel's methods in order, so a purge sees every message published before it.
  await settled();
  console.log(`  (the purges found ${published} of the ${3 * N} plain publishes in the queue)`);
}

async function publishWithConfirms(confirmed: Channel): Promise<void> {
  await lastValueFrom(confirmed.confirmSelect());

  // Each publish now completes with the broker's ack: one at a time, every message waits a round trip.
  await timed('confirms: concatMap(publish), one at a time', () =>
    acked(range(0, ONE_AT_A_TIME).pipe(concatMap(() => confirmed.publish('', queue, body)))),
  );

  // Up to 1000 publishes awaiting their acks: the round trips overlap, and RabbitMQ answers a burst
  // with a few `multiple` acks. The broker's work per message (routing, enqueueing, confirming) is
  // what bounds it now; on the client, mergeMap keeps an inner subscription per message in flight.
  await timed('confirms: mergeMap(publish, 1000)', () =>
    acked(range(0, N).pipe(mergeMap(() => confirmed.publish('', queue, body), 1000))),
  );

  const { messageCount } = await lastValueFrom(confirmed.queuePurge(queue));
  console.log(`  (the queue held ${messageCount} of the ${ONE_AT_A_TIME + N} confirmed publishes; purged)`);

  // The operator the docs recommend for confirmed streams: the same window of 1000 without an RxJS
  // subscription per message, the outcomes in the order of the messages (with the message), and a
  // policy for nacks. Bound by the broker too, so about as fast as the mergeMap above.
  await timed('confirms: publishConfirmed(ch, { window: 1000 })', () =>
    counted(
      range(0, N).pipe(
        map(() => ({ exchange: '', routingKey: queue, body })),
        publishConfirmed(confirmed, { window: 1000 }),
        mergeMap((r) => (r.outcome.status === 'acked' ? [r] : [])),
      ),
    ),
  );
}

async function consume(ch: Channel): Promise<void> {
  // The queue now holds the N messages publishConfirmed published. prefetch 1000 keeps deliveries
  // coming while 10 handlers run; acks are merged into `multiple` acks on the wire, and a dense
  // stream is read in batches, so the handler is what costs. The count is of deliveries acked.
  let consumed = 0;
  await timed('consume: mergeMap(async handle + ack, 10), prefetch 1000', async () => {
    await lastValueFrom(
      ch.consume(queue, { prefetch: 1000 }).pipe(
        mergeMap(async (d) => {
          await handle(d);
          if (d.ack()) consumed++;
        }, 10),
        take(N),
      ),
    );
    return consumed;
  });
  console.log(`  (${consumed} deliveries acked, ${itemsSeen} items seen by the handler)`);
}

async function requestReply(client: Channel, server: Channel): Promise<void> {
  // The responder: answers each request on its replyTo (direct reply-to), then acks it.
  const responder = server
    .consume(rpcQueue, { prefetch: 200 })
    .pipe(
      answerRequests(server, (req) => ({ total: req.json<{ total: number }>().total }), { concurrency: 200 }),
    )
    .subscribe({ error: (e: unknown) => console.error('responder failed:', e) });

  try {
    // One at a time, every request is two trips through the broker (request in, reply out): latency
    // bound, like the confirmed publishes one at a time.
    await timed('rpc: for (...) await lastValueFrom(request)', async () => {
      for (let i = 0; i < ONE_AT_A_TIME; i++) {
        await lastValueFrom(client.request('', rpcQueue, body, {}, { timeoutMs: 10_000 }));
      }
      return ONE_AT_A_TIME;
    });

    // 100 requests in flight: the trips overlap; the replies are matched by correlationId.
    await timed('rpc: mergeMap(request, 100)', () =>
      counted(
        range(0, N).pipe(mergeMap(() => client.request('', rpcQueue, body, {}, { timeoutMs: 10_000 }), 100)),
      ),
    );
  } finally {
    responder.unsubscribe();
  }
}

async function main(): Promise<void> {
  const conn = await openConnection(url, {
    name: 'rxamqp natural pipelines example',
    connectionTimeout: 10_000,
  });
  try {
    const ch = await conn.openChannel();
    // Confirm mode is for the rest of a channel's life: the confirmed styles get a channel of their own,
    // and so does the RPC responder.
    const confirmed = await conn.openChannel();
    const server = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare(queue));
    await lastValueFrom(ch.queueDeclare(rpcQueue));
    await lastValueFrom(ch.queuePurge(queue)); // what an interrupted run may have left
    await lastValueFrom(ch.queuePurge(rpcQueue));

    await publishWithoutConfirms(ch);
    await publishWithConfirms(confirmed);
    await consume(ch);
    await requestReply(ch, server);

    const left = await lastValueFrom(ch.queueDelete(queue));
    const rpcLeft = await lastValueFrom(ch.queueDelete(rpcQueue));
    console.log(
      `deleted the queues (${left.messageCount} and ${rpcLeft.messageCount} messages left in them)`,
    );
  } finally {
    await lastValueFrom(conn.close());
  }
}

main().catch((e: unknown) => {
  console.error(`natural pipelines example failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
