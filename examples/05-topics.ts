/**
 * RabbitMQ tutorial 5, topics: a topic exchange routes on patterns of dot-separated words (`*` matches
 * one word, `#` zero or more). Receiver Q1 binds `*.orange.*`; receiver Q2 binds `*.*.rabbit` and
 * `lazy.#`. Animals described as `<speed>.<colour>.<species>` are published, and each receiver must get
 * exactly the ones its patterns match. The topology is declared from specs with `applyTopology`.
 *
 * Run: npx tsx examples/05-topics.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import {
  applyTopology,
  binding,
  connect,
  consumer,
  consumeSpec,
  defineTopology,
  exchange,
  queue,
} from 'rxamqp';
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
  timeout,
} from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const topicLogs = exchange({ name: 'rxamqp-example-topic-logs', type: 'topic', autoDelete: true });
const q1 = queue({ name: '', exclusive: true });
const q2 = queue({ name: '', exclusive: true });
const patterns = { Q1: ['*.orange.*'], Q2: ['*.*.rabbit', 'lazy.#'] };

const topology = defineTopology({
  exchanges: [topicLogs],
  queues: [q1, q2],
  bindings: [
    ...patterns.Q1.map((routingKey) => binding({ exchange: topicLogs, queue: q1, routingKey })),
    ...patterns.Q2.map((routingKey) => binding({ exchange: topicLogs, queue: q2, routingKey })),
  ],
});

const keys = [
  'quick.orange.rabbit', // Q1 and Q2
  'lazy.orange.elephant', // Q1 and Q2
  'quick.orange.fox', // Q1
  'lazy.brown.fox', // Q2
  'lazy.pink.rabbit', // Q2, once although it matches both of its patterns
  'quick.brown.fox', // nobody
  'orange', // nobody: one word, not three
  'quick.orange.new.rabbit', // nobody: four words
  'lazy.orange.new.rabbit', // Q2 (lazy.#)
];
const expected = {
  Q1: ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox'],
  Q2: [
    'quick.orange.rabbit',
    'lazy.orange.elephant',
    'lazy.brown.fox',
    'lazy.pink.rabbit',
    'lazy.orange.new.rabbit',
  ],
};
const received: Record<keyof typeof expected, string[]> = { Q1: [], Q2: [] };

const run$ = connect(url, { name: 'topics example' }).pipe(
  switchMap((conn) =>
    applyTopology(conn, topology).pipe(
      switchMap((applied) =>
        conn.channel().pipe(
          switchMap((ch) =>
            concat(
              from(keys).pipe(
                concatMap((key) => ch.publish(topicLogs.name, key, `a ${key.split('.').join(' ')}`)),
                ignoreElements(),
              ),
              merge(
                consumeSpec(ch, consumer({ queue: q1, noAck: true }), applied).pipe(
                  map((d) => ['Q1', d] as const),
                ),
                consumeSpec(ch, consumer({ queue: q2, noAck: true }), applied).pipe(
                  map((d) => ['Q2', d] as const),
                ),
              ).pipe(
                tap(([name, d]) => {
                  console.log(
                    `${name} (${patterns[name].join(', ')}) got ${d.fields.routingKey}: "${d.text()}"`,
                  );
                  received[name].push(d.fields.routingKey);
                }),
                take(expected.Q1.length + expected.Q2.length),
                timeout({
                  each: 5000,
                  with: () => Promise.reject(new Error('timed out waiting for messages')),
                }),
                ignoreElements(),
              ),
              conn.close(),
            ),
          ),
        ),
      ),
    ),
  ),
);

lastValueFrom(run$, { defaultValue: undefined }).then(
  () => {
    if (JSON.stringify(received) !== JSON.stringify(expected)) {
      console.error(`unexpected routing: ${JSON.stringify(received)}`);
      process.exit(1);
    }
    console.log('each receiver got exactly the keys its patterns match');
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
