/**
 * Failover across the nodes of a RabbitMQ cluster, with nothing lost: a quorum queue (replicated on
 * every node), a publisher (`createPublisher`, republishing what a lost connection left unconfirmed)
 * and a consumer (manual acks), each on a recovering connection whose `hosts` name every node.
 *
 * It starts nothing: the cluster's AMQP addresses come from `AMQP_HOSTS` (comma-separated
 * `host:port`), and optionally their node names from `AMQP_NODES` (same order), so that `state$`
 * reports the node each connection is on. It publishes MESSAGES persistent messages, paced over about
 * 30 s, prints the state changes of both connections and a progress line every second, and at the end
 * the count of lost messages (must be 0), duplicates, and for each reconnect of the consumer the time
 * from the loss to the first delivery on the new connection. Stop the node the clients are on while it
 * runs (`rabbitmqctl -n NODE stop_app`, then `start_app`) to see them move.
 *
 * Run, with the cluster the tests use (docs/cluster.md):
 *
 *   npx tsx scripts/cluster.ts start      # prints AMQP_HOSTS=... and AMQP_NODES=...
 *   AMQP_HOSTS=127.0.0.1:5681,127.0.0.1:5682,127.0.0.1:5683 \
 *   AMQP_NODES=rxamqp-c1-5681@localhost,rxamqp-c2-5681@localhost,rxamqp-c3-5681@localhost \
 *     npx tsx examples/cluster-failover.ts
 *   npx tsx scripts/cluster.ts stop
 *
 * AMQP_URL gives the credentials and vhost (default guest/guest on /); its host is replaced by the
 * hosts. MESSAGES sets the count (default 20000).
 */
import { randomUUID } from 'node:crypto';
import { type ConnectionState, connect, createPublisher, openConnection } from 'rxamqp';
import { publishConfirmed } from 'rxamqp/operators';
import { lastValueFrom, map, Subject, switchMap, tap } from 'rxjs';

const hostList = (process.env.AMQP_HOSTS ?? '')
  .split(',')
  .map((h) => h.trim())
  .filter((h) => h !== '');
const nodeList = (process.env.AMQP_NODES ?? '')
  .split(',')
  .map((n) => n.trim())
  .filter((n) => n !== '');
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost';
const TOTAL = Number(process.env.MESSAGES ?? 20_000);
const queue = `rxamqp-example-failover-${randomUUID().slice(0, 8)}`;

/** `'host:port'` entries, with their node names when AMQP_NODES gives them. */
function hosts() {
  return hostList.map((entry, i) => {
    const colon = entry.lastIndexOf(':');
    const hostname = colon > 0 ? entry.slice(0, colon) : entry;
    const port = colon > 0 ? Number(entry.slice(colon + 1)) : 5672;
    const node = nodeList[i];
    return node === undefined ? { hostname, port } : { hostname, port, node };
  });
}

function line(who: string, s: ConnectionState): string {
  const where = s.host === undefined ? '' : ` ${s.host}${s.node === undefined ? '' : ` (${s.node})`}`;
  return `${who}: ${s.status}${where}${s.cause === undefined ? '' : ` - ${s.cause.message}`}`;
}

async function main(): Promise<void> {
  if (hostList.length === 0) {
    console.error(
      'Set AMQP_HOSTS to the cluster nodes, e.g. AMQP_HOSTS=127.0.0.1:5681,127.0.0.1:5682,127.0.0.1:5683 ' +
        '(npx tsx scripts/cluster.ts start runs such a cluster on this machine; see docs/cluster.md).',
    );
    process.exitCode = 2;
    return;
  }
  const options = { hosts: hosts(), recovery: true } as const;

  // The queue: quorum, so that it survives the loss of any one node (of three).
  const setup = await openConnection(url, { hosts: options.hosts });
  const ch = await setup.openChannel();
  await lastValueFrom(ch.queueDeclare(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } }));
  await lastValueFrom(setup.close());

  const consumer$ = connect(url, { ...options, name: 'rxamqp-example-failover-consumer' });
  const publisher$ = connect(url, { ...options, name: 'rxamqp-example-failover-publisher' });
  const lostAt: number[] = [];
  const resumedAfter: number[] = [];
  consumer$.state$.subscribe((s) => {
    console.log(line('consumer', s));
    if (s.status === 'RECONNECTING' && lostAt.length === resumedAfter.length) lostAt.push(Date.now());
  });
  publisher$.state$.subscribe((s) => console.log(line('publisher', s)));

  const seen = new Uint16Array(TOTAL);
  let deliveries = 0;
  let unique = 0;
  let lastHost: string | undefined;
  const consuming = consumer$
    .pipe(
      switchMap((conn) =>
        conn.channel().pipe(
          switchMap((c) => c.consume(queue, { prefetch: 200 })),
          map((d) => ({ d, host: conn.host })),
        ),
      ),
    )
    .subscribe(({ d, host }) => {
      if (host !== lastHost) {
        // The first delivery on a new connection: how long since the loss?
        if (lostAt.length > resumedAfter.length) resumedAfter.push(Date.now() - lostAt.at(-1)!);
        lastHost = host;
      }
      const id = Number(d.body.toString());
      deliveries++;
      if (seen[id] === 0) unique++;
      seen[id] = (seen[id] ?? 0) + 1;
      d.ack();
    });

  const publisher = createPublisher(publisher$, { republish: true, bufferTimeout: 120_000 });
  const messages = new Subject<{
    exchange: string;
    routingKey: string;
    body: string;
    properties: { deliveryMode: 2 };
  }>();
  let confirmed = 0;
  const done = lastValueFrom(
    messages.pipe(
      publishConfirmed(publisher, { window: 200 }),
      tap(() => confirmed++),
    ),
    { defaultValue: undefined },
  );

  const progress = setInterval(
    () =>
      console.log(
        `published ${confirmed}/${TOTAL} confirmed, ${unique} consumed (${deliveries - unique} duplicates)`,
      ),
    1000,
  );
  // About 30 s of publishing: time to stop a node or two by hand.
  const perTick = Math.max(1, Math.ceil(TOTAL / 1500));
  for (let next = 0; next < TOTAL; ) {
    for (let i = 0; i < perTick && next < TOTAL; i++, next++) {
      messages.next({ exchange: '', routingKey: queue, body: String(next), properties: { deliveryMode: 2 } });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  messages.complete();
  await done;
  const deadline = Date.now() + 120_000;
  while (unique < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  clearInterval(progress);

  console.log(
    `lost ${TOTAL - unique}, duplicates ${deliveries - unique}, republished ${publisher.republishedCount}; ` +
      `consumer back after: ${resumedAfter.map((ms) => `${ms} ms`).join(', ') || 'no reconnect'}`,
  );
  await lastValueFrom(publisher.close()).catch(() => undefined);
  consuming.unsubscribe();
  const cleanup = await openConnection(url, { hosts: options.hosts });
  await lastValueFrom((await cleanup.openChannel()).queueDelete(queue));
  await lastValueFrom(cleanup.close());
  if (unique < TOTAL) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
