/**
 * RabbitMQ tutorial 4, routing: a direct exchange routes log messages by severity. One receiver binds
 * its queue to `error` only (it would write errors to disk), the other to `info`, `warning` and `error`
 * (it prints everything); a `debug` message matches no binding and is dropped. The exchange, the two
 * server-named queues and their bindings are declared from specs with `applyTopology`.
 *
 * Run: npx tsx examples/04-routing.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import {
  type AppliedTopology,
  applyTopology,
  binding,
  type Channel,
  type ConsumerSpec,
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

// The topology: one direct exchange, two exclusive server-named queues, one binding per severity.
const directLogs = exchange({ name: 'rxamqp-example-direct-logs', type: 'direct', autoDelete: true });
const errorsOnly = queue({ name: '', exclusive: true });
const everything = queue({ name: '', exclusive: true });
const diskWriter = consumer({ queue: errorsOnly, noAck: true });
const printer = consumer({ queue: everything, noAck: true });

const topology = defineTopology({
  exchanges: [directLogs],
  queues: [errorsOnly, everything],
  bindings: [
    binding({ exchange: directLogs, queue: errorsOnly, routingKey: 'error' }),
    ...['info', 'warning', 'error'].map((severity) =>
      binding({ exchange: directLogs, queue: everything, routingKey: severity }),
    ),
  ],
  consumers: [diskWriter, printer],
});

const logs: [severity: string, text: string][] = [
  ['info', 'service started'],
  ['warning', 'disk 80% full'],
  ['debug', 'cache miss for key 42'],
  ['error', 'payment failed'],
];
const expected = {
  'disk writer': ['error: payment failed'],
  printer: ['info: service started', 'warning: disk 80% full', 'error: payment failed'],
};

/** A receiver: the consumer its spec describes, on the queue name the broker generated. */
function receive(ch: Channel, spec: ConsumerSpec, applied: AppliedTopology, name: keyof typeof expected) {
  return consumeSpec(ch, spec, applied).pipe(
    map((d) => ({ name, line: `${d.fields.routingKey}: ${d.text()}` })),
  );
}

const received: Record<keyof typeof expected, string[]> = { 'disk writer': [], printer: [] };

const run$ = connect(url, { name: 'routing example' }).pipe(
  switchMap((conn) =>
    applyTopology(conn, topology).pipe(
      switchMap((applied) =>
        conn.channel().pipe(
          switchMap((ch) =>
            concat(
              // The queues are bound already: what is published now waits in them for the receivers.
              from(logs).pipe(
                concatMap(([severity, text]) => ch.publish(directLogs.name, severity, text)),
                ignoreElements(),
              ),
              merge(
                receive(ch, diskWriter, applied, 'disk writer'),
                receive(ch, printer, applied, 'printer'),
              ).pipe(
                tap(({ name, line }) => {
                  console.log(`${name} got "${line}"`);
                  received[name].push(line);
                }),
                take(expected['disk writer'].length + expected.printer.length),
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
    console.log('each receiver got exactly the severities it is bound to');
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
