/**
 * A publisher that outlives its connections: `createPublisher` over a recovering connection, fed by the
 * `publishConfirmed` operator.
 *
 * The example connects with `recovery` and a connection name, logs every `state$` transition, and
 * declares a durable queue on the connection's cached channel, again after every reconnect (the
 * `switchMap` runs once per `Connection`). A publisher with `republish: true` shares that connection
 * (recovering connections are shared: one socket for every subscriber) and publishes 1,000
 * persistent messages through `publishConfirmed(publisher, { window: 100 })`. The example prints how
 * the broker answered them and how many were republished, checks that the queue holds at least 1,000
 * messages (more only if some were republished: at-least-once), then deletes the queue and closes
 * everything.
 *
 * Nothing here forces a disconnect, so `republishedCount` is 0 on a quiet broker. To see the publisher
 * carry on across reconnects, close the connection while it runs, as an operator or a broker restart
 * would: test/integration/zero-loss.test.ts finds the connection by its name
 * (`rabbitmqctl list_connections pid client_properties`) and force-closes it with
 * `rabbitmqctl close_connection <pid> <reason>`, ten times during 20,000 messages, and every message is
 * still confirmed and consumed at least once. (1,000 messages take well under a second here: raise
 * MESSAGE_COUNT to have time for that.) The messages awaiting their confirms at each close, up to the
 * window, are republished on the next connection, and the queue may then hold them twice; messages
 * published while no connection is open wait in the publisher's buffer.
 *
 * Run: npx tsx examples/resilient-publisher.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */
import { randomUUID } from 'node:crypto';
import { type Connection, type ConnectionState, connect, createPublisher } from 'rxamqp';
import { publishConfirmed } from 'rxamqp/operators';
import {
  catchError,
  EMPTY,
  lastValueFrom,
  map,
  range,
  reduce,
  type Subscription,
  switchMap,
  tap,
  throwError,
} from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const runId = randomUUID().slice(0, 8);
/** The name the broker shows for the connection: how `rabbitmqctl` would find it. */
const connectionName = `rxamqp-example-resilient-publisher-${runId}`;
const queue = `rxamqp-example-resilient-publisher-${runId}`;
const MESSAGE_COUNT = 1_000;
const WINDOW = 100;
const GUARD_MS = 30_000;

function describe(state: ConnectionState): string {
  const parts: string[] = [state.status];
  if (state.host !== undefined) parts.push(`host=${state.host}`);
  if (state.attempt !== undefined) parts.push(`attempt=${state.attempt}`);
  if (state.delay !== undefined) parts.push(`next attempt in ${Math.round(state.delay)} ms`);
  if (state.cause !== undefined) parts.push(`cause: ${state.cause.message}`);
  return parts.join(' ');
}

async function main(): Promise<void> {
  // A few quick retries of the first connection, then an exponential backoff (100 ms doubling up to
  // 5 s) after a loss, with no limit on the attempts.
  const connection$ = connect(url, {
    name: connectionName,
    recovery: {
      initial: { delays: [200, 500, 1000] },
      reconnect: { backoff: { initialDelay: 100, maxDelay: 5_000 } },
    },
  });

  const states: ConnectionState[] = [];
  const stateSub = connection$.state$.subscribe((state) => {
    states.push(state);
    console.log(`[state] ${describe(state)}`);
  });

  // Declares the queue on every new connection, on its cached channel (one-shot operations), and keeps
  // the shared connection open until it is unsubscribed. x-expires: a queue left behind by an
  // interrupted run disappears after a minute unused.
  let current: Connection | undefined;
  let keeper: Subscription | undefined;
  let keeperError: unknown;
  const declared = new Promise<void>((resolve, reject) => {
    keeper = connection$
      .pipe(
        tap((conn) => {
          current = conn;
          console.log(`[example] connected to ${conn.host}`);
        }),
        switchMap((conn) =>
          conn.cachedChannel().pipe(
            switchMap((ch) => ch.queueDeclare(queue, { durable: true, arguments: { 'x-expires': 60_000 } })),
            // The connection lost meanwhile (a declare caught by the loss completes by itself, but
            // cachedChannel() on a lost connection errors): end quietly, the next Connection declares
            // again. An error on an open connection (a 406 for other arguments, say) goes through.
            catchError((e: unknown) => (conn.isOpen ? throwError(() => e) : EMPTY)),
          ),
        ),
      )
      .subscribe({
        next: ({ messageCount }) => {
          console.log(`[example] declared ${queue} (${messageCount} messages)`);
          resolve();
        },
        error: (e: unknown) => {
          keeperError = e;
          reject(e);
        },
      });
  });

  const publisher = createPublisher(connection$, { republish: true });
  try {
    await declared;

    const start = performance.now();
    const counts = await lastValueFrom(
      range(1, MESSAGE_COUNT).pipe(
        map((i) => ({
          exchange: '',
          routingKey: queue,
          body: JSON.stringify({ n: i }),
          // Persistent, with an id: a consumer can spot the duplicates republishing may cause.
          properties: { deliveryMode: 2, contentType: 'application/json', messageId: `${runId}-${i}` },
        })),
        publishConfirmed(publisher, { window: WINDOW }),
        reduce(
          (acc, { outcome }) => acc.set(outcome.status, (acc.get(outcome.status) ?? 0) + 1),
          new Map<string, number>(),
        ),
      ),
    );
    if (keeperError !== undefined) throw keeperError;
    const ms = (performance.now() - start).toFixed(0);
    const answers = [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
    console.log(`[example] ${MESSAGE_COUNT} persistent messages in ${ms} ms, window ${WINDOW}: ${answers}`);
    console.log(`[example] republished after a lost connection: ${publisher.republishedCount}`);
    if (counts.get('acked') !== MESSAGE_COUNT) {
      throw new Error(`expected ${MESSAGE_COUNT} acked, got ${answers}`);
    }

    const conn = current;
    if (conn === undefined || !conn.isOpen) throw new Error('no connection is open to check the queue');
    const { messageCount } = await lastValueFrom(
      conn.cachedChannel().pipe(switchMap((ch) => ch.queueDeclare(queue, { passive: true }))),
    );
    console.log(`[example] ${queue} holds ${messageCount} messages`);
    if (messageCount < MESSAGE_COUNT) {
      throw new Error(`expected at least ${MESSAGE_COUNT} messages in ${queue}, found ${messageCount}`);
    }
  } finally {
    // Delete the queue on whatever connection is open, then let go: close() waits for publishes still
    // awaiting their confirms; unsubscribing the last subscriber closes the shared connection.
    if (current?.isOpen) {
      await lastValueFrom(current.cachedChannel().pipe(switchMap((ch) => ch.queueDelete(queue)))).then(
        ({ messageCount }) => console.log(`[example] deleted ${queue} with ${messageCount} messages`),
        (e: unknown) =>
          console.error(`could not delete ${queue}: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
    await lastValueFrom(publisher.close());
    keeper?.unsubscribe();
    const deadline = Date.now() + 10_000;
    while (states.at(-1)?.status !== 'CLOSED' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    stateSub.unsubscribe();
  }
}

const guard = setTimeout(() => {
  console.error(`FAILED: the example did not finish within ${GUARD_MS / 1000} s`);
  process.exit(1);
}, GUARD_MS);

main().then(
  () => {
    clearTimeout(guard);
    console.log('done');
    process.exit(0);
  },
  (e: unknown) => {
    console.error(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
