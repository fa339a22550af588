/**
 * Quick demo: a round trip through RabbitMQ, written as one RxJS pipeline.
 *
 * Connects, prints the broker and the negotiated tune values, declares an exclusive server-named
 * queue, publishes three JSON messages with properties, reads them back with `get`, and closes.
 *
 *   npm run demo                       # same as: npx tsx examples/quick-demo.ts
 *   AMQP_URL=amqp://user:password@host:5672/vhost npm run demo
 *
 * Without AMQP_URL it uses amqp://guest:guest@127.0.0.1:5672, and when nothing answers there it runs
 * on the embedded broker of `rxamqp/testing` instead (saying so). On failure it prints one line (the
 * typed error's message, which never holds a password) and exits with status 1.
 */

import { AmqpError, type Channel, type Connection, type Delivery } from 'rxamqp';
import { brokerForTests } from 'rxamqp/testing';
import {
  concat,
  concatMap,
  concatWith,
  from,
  ignoreElements,
  type Observable,
  repeat,
  switchMap,
  TimeoutError,
  take,
  tap,
  timeout,
} from 'rxjs';

const TIMEOUT_MS = 10_000;

// AMQP_URL if set, else the local RabbitMQ if it answers, else the embedded broker (no Docker here:
// a demo should not start containers).
const broker = await brokerForTests({ embedded: 'fallback', docker: false, probeTimeoutMs: 1000 });
if (broker.source === 'embedded') {
  console.log(
    'No broker at 127.0.0.1:5672 and no AMQP_URL: running on the embedded broker (rxamqp/testing).',
  );
}

const orders = [
  { id: 1, item: 'coffee', quantity: 2 },
  { id: 2, item: 'tea', quantity: 1 },
  { id: 3, item: 'cake', quantity: 3 },
];

function printBroker(conn: Connection): void {
  const { product, version } = conn.serverProperties;
  const { channelMax, frameMax, heartbeat } = conn.tune;
  console.log(`Connected to ${conn.url}: ${product} ${version}`);
  console.log(`  tune: channel_max ${channelMax}, frame_max ${frameMax}, heartbeat ${heartbeat} s`);
}

/** Publishes every order to `queue` through the default exchange, one after the other. */
function publishAll(ch: Channel, queue: string): Observable<never> {
  return from(orders).pipe(
    concatMap((order) =>
      ch.publish('', queue, JSON.stringify(order), {
        contentType: 'application/json',
        messageId: `order-${order.id}`,
        timestamp: new Date(),
        appId: 'rxamqp-quick-demo',
        headers: { item: order.item },
      }),
    ),
    ignoreElements(),
  );
}

/** basic.get until `count` messages came back, acknowledging each; an empty queue is asked again. */
function readBack(ch: Channel, queue: string, count: number): Observable<Delivery> {
  return ch.get(queue).pipe(
    repeat({ delay: 50 }), // get completes without a value when the queue is empty
    take(count),
    tap((delivery) => delivery.ack()),
  );
}

function printDelivery(d: Delivery): void {
  const { messageId, contentType, timestamp } = d.properties;
  console.log(
    `  got ${messageId} (${contentType}, ${timestamp?.toISOString()}): ${JSON.stringify(d.json())}`,
  );
}

const demo$ = broker.connect({ name: 'rxamqp quick demo', connectionTimeout: TIMEOUT_MS }).pipe(
  tap(printBroker),
  switchMap((conn) =>
    conn.channel().pipe(
      switchMap((ch) =>
        ch.queueDeclare('', { exclusive: true }).pipe(
          tap(({ queue }) => console.log(`Declared ${queue}; publishing ${orders.length} messages`)),
          switchMap(({ queue }) => concat(publishAll(ch, queue), readBack(ch, queue, orders.length))),
        ),
      ),
      // The channel never completes by itself: take() ends the work once every message is back.
      take(orders.length),
      // Then close the connection, which completes its channel too. Like every operation, close()
      // runs when concat subscribes to it, and emits once the broker has answered the close.
      concatWith(conn.close().pipe(ignoreElements())),
    ),
  ),
  timeout(TIMEOUT_MS),
);

demo$.subscribe({
  next: printDelivery,
  complete: () => {
    console.log('Closed.');
    void broker.stop();
  },
  error: (e: unknown) => {
    console.error(`Demo failed: ${explain(e)}`);
    process.exitCode = 1;
    void broker.stop();
  },
});

function explain(e: unknown): string {
  if (e instanceof TimeoutError) return `no progress for ${TIMEOUT_MS / 1000} s with ${broker}`;
  if (e instanceof AmqpError) return `${e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}
