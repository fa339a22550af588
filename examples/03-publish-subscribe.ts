/**
 * RabbitMQ tutorial 3, publish/subscribe: a fanout exchange, and two subscribers that each bind an
 * exclusive, server-named queue to it, so that every subscriber gets every message.
 *
 * Run: npx tsx examples/03-publish-subscribe.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
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
} from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = 'rxamqp-example-logs';
const logs = ['info: service started', 'warning: disk 80% full', 'error: payment failed'];

/** A subscriber: a fresh exclusive queue bound to the fanout exchange, consumed without acks. */
function subscriber(conn: Connection, name: string, ready: () => void) {
  return conn.channel().pipe(
    switchMap((ch) =>
      ch
        .queueDeclare('', { exclusive: true })
        .pipe(
          switchMap(({ queue }) =>
            concat(
              ch.queueBind(queue, exchange).pipe(tap(ready), ignoreElements()),
              ch.consume(queue, { noAck: true }),
            ),
          ),
        ),
    ),
    map((delivery) => `${name} got "${delivery.text()}"`),
  );
}

const run$ = connect(url, { name: 'publish-subscribe example' }).pipe(
  switchMap((conn) =>
    conn.channel().pipe(
      switchMap((ch) => {
        let bound = 0;
        const publishWhenBothBound = (): void => {
          if (++bound < 2) return;
          from(logs)
            .pipe(concatMap((line) => ch.publish(exchange, '', line)))
            .subscribe({ error: (e: unknown) => console.error(e) });
        };
        return concat(
          ch.exchangeDeclare(exchange, 'fanout', { autoDelete: true }).pipe(ignoreElements()),
          merge(
            subscriber(conn, 'subscriber 1', publishWhenBothBound),
            subscriber(conn, 'subscriber 2', publishWhenBothBound),
          ).pipe(
            tap((line) => console.log(line)),
            take(2 * logs.length),
            ignoreElements(),
          ),
          conn.close(),
        );
      }),
    ),
  ),
);

lastValueFrom(run$, { defaultValue: undefined }).then(
  () => console.log('every subscriber got every message'),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
