/**
 * RabbitMQ tutorial 7, publisher confirms: the same messages published three ways on a channel in
 * confirm mode, timed, with how the broker answered them:
 *
 * 1. one at a time, waiting for each confirm before the next publish (`concatMap`);
 * 2. in batches, waiting for every confirm of a batch before the next batch (`forkJoin`);
 * 3. as a stream through the `publishConfirmed` operator, with a window of unanswered publishes.
 *
 * Then a `mandatory` publish to a routing key no queue is bound to comes back as `returned`, and the
 * same publish without `mandatory` is acked: the broker took responsibility for it by dropping it.
 *
 * Run: npx tsx examples/07-publisher-confirms.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import { type Channel, connect, type PublishOutcome } from 'rxamqp';
import { publishConfirmed } from 'rxamqp/operators';
import {
  bufferCount,
  concat,
  concatMap,
  defer,
  forkJoin,
  ignoreElements,
  lastValueFrom,
  map,
  mergeMap,
  type Observable,
  range,
  reduce,
  switchMap,
  tap,
} from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MESSAGE_COUNT = 5_000;
const BATCH_SIZE = 100;
const WINDOW = 500;
const nobody = 'rxamqp-example-no-queue-has-this-name';

/** Strategy 1: publish, wait for the broker's answer, then publish the next. */
function individually(ch: Channel, queue: string): Observable<PublishOutcome> {
  return range(1, MESSAGE_COUNT).pipe(concatMap((i) => ch.publish('', queue, `message ${i}`)));
}

/** Strategy 2: publish a batch at once, wait until the broker has answered all of it, then the next. */
function inBatches(ch: Channel, queue: string): Observable<PublishOutcome> {
  return range(1, MESSAGE_COUNT).pipe(
    bufferCount(BATCH_SIZE),
    concatMap((batch) => forkJoin(batch.map((i) => ch.publish('', queue, `message ${i}`)))),
    mergeMap((outcomes) => outcomes),
  );
}

/**
 * Strategy 3: at most WINDOW publishes awaiting their confirm; each confirm lets the next message out.
 * The outcomes come back in the order of the messages. (`range` hands every message to the operator at
 * once, which is fine for 5,000 small ones; see docs/publishing.md for streams that would not fit.)
 */
function streaming(ch: Channel, queue: string): Observable<PublishOutcome> {
  return range(1, MESSAGE_COUNT).pipe(
    map((i) => ({ exchange: '', routingKey: queue, body: `message ${i}` })),
    publishConfirmed(ch, { window: WINDOW }),
    map(({ outcome }) => outcome),
  );
}

/** Counts the outcomes of a strategy and reports them with the time it took. */
function timed(label: string, outcomes: () => Observable<PublishOutcome>): Observable<string> {
  return defer(() => {
    const start = performance.now();
    return outcomes().pipe(
      reduce(
        (counts, { status }) => counts.set(status, (counts.get(status) ?? 0) + 1),
        new Map<string, number>(),
      ),
      map((counts) => {
        const ms = (performance.now() - start).toFixed(0);
        const answers = [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
        return `${label.padEnd(30)} ${MESSAGE_COUNT} messages in ${ms.padStart(5)} ms (${answers})`;
      }),
    );
  });
}

/** A publish to a routing key that reaches no queue, with and without `mandatory`. */
function unroutable(ch: Channel, mandatory: boolean): Observable<string> {
  return ch.publish('', nobody, 'is anyone there?', {}, { mandatory }).pipe(
    map((outcome) => {
      const what = `${mandatory ? 'mandatory' : 'plain'} publish to an unbound routing key:`;
      return outcome.status === 'returned'
        ? `${what} returned (${outcome.returned.replyCode} ${outcome.returned.replyText}), seq ${outcome.seq}`
        : `${what} ${outcome.status}${'seq' in outcome ? `, seq ${outcome.seq}` : ''}`;
    }),
  );
}

const run$ = connect(url, { name: 'publisher confirms example' }).pipe(
  switchMap((conn) =>
    conn.channel().pipe(
      switchMap((ch) =>
        concat(
          ch.confirmSelect().pipe(ignoreElements()),
          // A server-named exclusive queue: the broker deletes it when the connection closes.
          ch.queueDeclare('', { exclusive: true }),
        ).pipe(
          switchMap(({ queue }) =>
            concat(
              timed('published individually', () => individually(ch, queue)),
              timed(`in batches of ${BATCH_SIZE}`, () => inBatches(ch, queue)),
              timed(`publishConfirmed, window ${WINDOW}`, () => streaming(ch, queue)),
              unroutable(ch, true),
              unroutable(ch, false),
              ch
                .queueDelete(queue)
                .pipe(map(({ messageCount }) => `deleted the queue with ${messageCount} messages`)),
              conn.close().pipe(ignoreElements()),
            ),
          ),
        ),
      ),
    ),
  ),
  tap((line) => console.log(line)),
);

lastValueFrom(run$, { defaultValue: undefined }).then(
  () => console.log('done'),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
