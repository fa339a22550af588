/**
 * RabbitMQ tutorial 6, RPC: a server consumes `rpc_queue` and answers each request on its `replyTo`
 * with the same `correlationId`; the client sends requests with `channel.request`, which uses
 * RabbitMQ's direct reply-to and emits the matching reply.
 *
 * Run: npx tsx examples/06-rpc.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import { type Channel, connect } from 'rxamqp';
import { concat, from, ignoreElements, lastValueFrom, map, mergeMap, switchMap, tap } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'rxamqp-example-rpc-queue';

function fibonacci(n: number): number {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

/** The server: answers each request on its replyTo, then acks it. */
function serve(ch: Channel) {
  return ch.consume(queue, { prefetch: 10 }).pipe(
    mergeMap((request) => {
      const n = Number(request.text());
      const replyTo = request.properties.replyTo ?? '';
      return ch
        .publish('', replyTo, String(fibonacci(n)), { correlationId: request.properties.correlationId })
        .pipe(tap(() => request.ack()));
    }),
  );
}

const run$ = connect(url, { name: 'rpc example' }).pipe(
  switchMap((conn) =>
    conn.channel().pipe(
      switchMap((serverChannel) =>
        concat(
          serverChannel.queueDeclare(queue, { autoDelete: true }).pipe(ignoreElements()),
          conn.channel().pipe(
            switchMap((clientChannel) => {
              const server = serve(serverChannel).subscribe();
              return concat(
                from([10, 20, 30]).pipe(
                  mergeMap((n) =>
                    clientChannel
                      .request('', queue, String(n), {}, { timeoutMs: 5000 })
                      .pipe(map((reply) => `fib(${n}) = ${reply.text()}`)),
                  ),
                  tap((line) => console.log(line)),
                  ignoreElements(),
                ),
                conn.close().pipe(tap(() => server.unsubscribe())),
              );
            }),
          ),
        ),
      ),
    ),
  ),
);

lastValueFrom(run$, { defaultValue: undefined }).then(
  () => console.log('done'),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
