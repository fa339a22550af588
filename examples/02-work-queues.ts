/**
 * RabbitMQ tutorial 2, work queues: a durable queue, persistent messages, and two workers with
 * prefetch 1 sharing the tasks fairly, each acknowledging a task only once it is done.
 *
 * Run: npx tsx examples/02-work-queues.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import { type Connection, connect } from 'rxamqp';
import {
  concat,
  concatMap,
  from,
  ignoreElements,
  lastValueFrom,
  map,
  merge,
  switchMap,
  take,
  tap,
  timer,
} from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'rxamqp-example-task-queue';
const tasks = ['one.', 'two..', 'three...', 'four.', 'five..', 'six.'];

/** A worker: its own channel, one unacknowledged task at a time, 100 ms of "work" per dot. */
function worker(conn: Connection, name: string) {
  return conn.channel().pipe(
    switchMap((ch) => ch.consume(queue, { prefetch: 1 })),
    concatMap((delivery) =>
      timer(100 * (delivery.text().split('.').length - 1)).pipe(
        map(() => {
          delivery.ack();
          return `${name} did "${delivery.text()}"`;
        }),
      ),
    ),
  );
}

const run$ = connect(url, { name: 'work-queues example' }).pipe(
  switchMap((conn) =>
    conn.channel().pipe(
      switchMap((ch) =>
        concat(
          ch.queueDeclare(queue, { durable: true }).pipe(ignoreElements()),
          // The sender: persistent messages (deliveryMode 2) to the durable queue.
          from(tasks).pipe(
            concatMap((task) => ch.publish('', queue, task, { deliveryMode: 2, contentType: 'text/plain' })),
            ignoreElements(),
          ),
          merge(worker(conn, 'worker A'), worker(conn, 'worker B')).pipe(
            tap((line) => console.log(line)),
            take(tasks.length),
            ignoreElements(),
          ),
          ch.queueDelete(queue).pipe(ignoreElements()),
          conn.close(),
        ),
      ),
    ),
  ),
);

lastValueFrom(run$, { defaultValue: undefined }).then(
  () => console.log('all tasks done'),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
