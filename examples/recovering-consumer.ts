/**
 * Automatic recovery, end to end: a consumer connects with `recovery` and a connection name, logs
 * every `state$` transition, and consumes a durable queue with manual acks through a `switchMap`
 * pipeline that declares the queue again on every new connection. A second, plain connection
 * publishes a few messages; then the example force-closes its own recovering connection with
 * `rabbitmqctl close_connection` (as an operator or a broker restart would), publishes more, and checks
 * that every message arrived after the automatic reconnect. One message is left unacked when the
 * connection drops: it comes back redelivered on the new connection, and acking the stale copy
 * returns false (nothing is sent: its delivery tag belonged to the lost channel).
 *
 * Run: npx tsx examples/recovering-consumer.ts
 * Needs RabbitMQ on 127.0.0.1:5672 (or AMQP_URL) and that broker's `rabbitmqctl` on this machine,
 * runnable by this user (root, or a user with the broker's Erlang cookie).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { type Connection, type ConnectionState, connect, type Delivery, openConnection } from 'rxamqp';
import { lastValueFrom, type Subscription, switchMap, tap } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const runId = randomUUID().slice(0, 8);
/** The name the broker shows for the consumer's connection: how `rabbitmqctl` finds it. */
const connectionName = `rxamqp-example-recovering-consumer-${runId}`;
const queue = 'rxamqp-example-recovering-consumer';
const before = ['before-1', 'before-2', 'before-3'];
const after = ['after-1', 'after-2', 'after-3'];
/** Left unacked when the connection drops, to show the redelivery and the stale ack. */
const heldBack = 'before-3';
const GUARD_MS = 30_000;

const run = promisify(execFile);

/** `rabbitmqctl args...`, its standard output; a clear error when it is missing or refuses. */
async function rabbitmqctl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('rabbitmqctl', args, { encoding: 'utf8', timeout: 20_000 });
    return stdout;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? 'this demo needs the local rabbitmqctl (to force-close its connection), and none is on the PATH'
        : `rabbitmqctl ${args.join(' ')} failed: ${(e as Error).message.trim()}. This demo needs the local ` +
            "broker's rabbitmqctl, run by a user allowed to use it (root).",
    );
  }
}

/** Broker-side pids of the connections whose client properties carry exactly `name`. */
async function connectionPids(name: string): Promise<string[]> {
  const list = await rabbitmqctl('list_connections', '-q', 'pid', 'client_properties');
  return list
    .split('\n')
    .filter((line) => line.includes(`"${name}"`))
    .map((line) => line.split('\t')[0]!)
    .filter((pid) => pid.startsWith('<'));
}

/** Polls `predicate` every 20 ms; throws, naming `what`, if it is still false after `ms`. */
async function waitFor(what: string, predicate: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function describe(state: ConnectionState): string {
  const parts: string[] = [state.status];
  if (state.host !== undefined) parts.push(`host=${state.host}`);
  if (state.attempt !== undefined) parts.push(`attempt=${state.attempt}`);
  if (state.delay !== undefined) parts.push(`next attempt in ${state.delay} ms`);
  if (state.cause !== undefined) parts.push(`cause: ${state.cause.message}`);
  return parts.join(' ');
}

async function main(): Promise<void> {
  // Fail early, with a clear message, when the one tool the demo depends on is not there.
  await rabbitmqctl('-q', 'list_connections', 'pid');

  // Recovery with short, fixed delays (the default is an exponential backoff from 100 ms to 30 s).
  const connection$ = connect(url, {
    name: connectionName,
    recovery: {
      initial: { delays: [200, 500, 1000] },
      reconnect: { delays: [100, 250, 500, 1000] },
    },
  });

  // The publisher: a plain connection (no recovery) in confirm mode. It declares the queue too, and
  // empties what an earlier, interrupted run may have left in it.
  const publisher = await openConnection(url, { name: `rxamqp-example-publisher-${runId}` });
  const pub = await publisher.openChannel();
  await lastValueFrom(pub.confirmSelect());
  await lastValueFrom(pub.queueDeclare(queue, { durable: true }));
  const purged = await lastValueFrom(pub.queuePurge(queue));
  if (purged.messageCount > 0) console.log(`[publisher] purged ${purged.messageCount} old message(s)`);

  const states: ConnectionState[] = [];
  const stateSub = connection$.state$.subscribe((state) => {
    states.push(state);
    console.log(`[state] ${describe(state)}`);
  });

  const connections: Connection[] = [];
  const received = new Set<string>();
  let stale: Delivery | undefined;
  let redelivered: Delivery | undefined;
  let failure: unknown;

  const consumer: Subscription = connection$
    .pipe(
      tap((conn) => {
        connections.push(conn);
        console.log(`[consumer] connection #${connections.length} to ${conn.host}`);
      }),
      switchMap((conn) =>
        conn.channel().pipe(
          // Everything below runs again on every new connection: declare, then consume.
          switchMap((ch) =>
            ch.queueDeclare(queue, { durable: true }).pipe(
              tap(({ messageCount }) =>
                console.log(`[consumer] declared ${queue} (${messageCount} message(s) waiting)`),
              ),
              switchMap(() => ch.consume(queue, { prefetch: 10 })),
            ),
          ),
          // On a loss every step here completes (the channel, a declare in flight, the consumer), and
          // the next Connection starts this part again: nothing to catch.
        ),
      ),
    )
    .subscribe({
      next: (delivery) => {
        const body = delivery.text();
        const flag = delivery.fields.redelivered ? ' (redelivered)' : '';
        if (body === heldBack && stale === undefined) {
          stale = delivery; // "still being processed" when the connection drops
          console.log(`[consumer] got ${body}${flag}: holding it unacked`);
          return;
        }
        if (body === heldBack) redelivered = delivery;
        received.add(body);
        console.log(`[consumer] got ${body}${flag}, ack sent: ${delivery.ack()}`);
      },
      error: (e: unknown) => {
        failure = e;
      },
    });

  try {
    const publish = async (bodies: string[]) => {
      for (const body of bodies) {
        const outcome = await lastValueFrom(pub.publish('', queue, body, { deliveryMode: 2 }));
        console.log(`[publisher] ${body}: ${outcome.status}`);
      }
    };
    const check = () => {
      if (failure !== undefined) throw failure;
    };

    await waitFor('the first connection', () => connections.length === 1);
    await publish(before);
    await waitFor('the first messages', () => {
      check();
      return before.every((b) => b === heldBack || received.has(b)) && stale !== undefined;
    });

    const pids = await connectionPids(connectionName);
    if (pids.length !== 1)
      throw new Error(`expected 1 connection named ${connectionName}, found ${pids.length}`);
    console.log(`[example] rabbitmqctl close_connection ${pids[0]}`);
    await rabbitmqctl('close_connection', pids[0]!, 'rxamqp example: simulated failure');

    await waitFor('the reconnect', () => {
      check();
      return connections.length === 2;
    });
    await publish(after);
    await waitFor('every message after the reconnect', () => {
      check();
      return [...before, ...after].every((b) => received.has(b));
    });

    if (connections[0]!.isOpen) throw new Error('the lost connection still says it is open');
    console.log(`[example] the lost connection ended with: ${connections[0]!.error?.message}`);
    if (redelivered?.fields.redelivered !== true) throw new Error(`${heldBack} was not redelivered`);
    const staleAck = stale!.ack();
    console.log(
      `[example] ${heldBack} came back redelivered; acking the copy from the lost connection: ${staleAck}`,
    );
    if (staleAck) throw new Error('a stale delivery was acked');
    const lost = states.find((s) => s.status === 'RECONNECTING');
    if (lost === undefined) throw new Error('state$ never said RECONNECTING');
    console.log(
      `[example] all ${before.length + after.length} messages arrived; recovered from: ${lost.cause?.message}`,
    );
  } finally {
    // Unsubscribing closes the consumer's channel and connection (and ends its recovery); then the
    // queue goes, and the publisher.
    consumer.unsubscribe();
    await lastValueFrom(pub.queueDelete(queue)).catch((e: unknown) =>
      console.error(`could not delete ${queue}: ${e instanceof Error ? e.message : String(e)}`),
    );
    await lastValueFrom(publisher.close());
    await waitFor('the consumer connection to close', () => states.at(-1)?.status === 'CLOSED', 10_000).catch(
      () => undefined,
    );
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
