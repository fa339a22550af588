/**
 * The cluster suite: a 3-node RabbitMQ cluster started on this machine for the file
 * (`test/support/cluster.ts`: ports 5681-5683, data under /tmp, the default broker untouched), then:
 *
 * - failover with zero loss: a quorum queue on all 3 nodes; a republishing `createPublisher` and a
 *   manual-ack consumer, each on a recovering connection whose `hosts` name all three nodes; 20,000
 *   persistent messages; the node the clients are on is stopped (`rabbitmqctl stop_app`) twice during
 *   the run and started again. Every message must be consumed at least once; duplicates and the time
 *   from each stop to the first delivery on the new node are reported (the goal: under 5 s with the
 *   default recovery policy);
 * - cluster-aware hosts: `state$` reports the node (from the `hosts` entries), and `preferNode` puts a
 *   consumer on the node of its queue's leader, as `rabbitmqctl list_queues leader` reports it.
 *
 * If the cluster cannot start, the suite fails (never skips) with what it needs. The nodes are stopped
 * and their directory removed in `afterAll`, whatever happened.
 */
import { randomUUID } from 'node:crypto';
import { lastValueFrom, map, Subject, switchMap } from 'rxjs';
import { publishConfirmed } from '../../operators/index.js';
import { type ConnectionState, connect, createPublisher, openConnection } from '../../src/node.js';
import { type Cluster, type ClusterNode, startCluster } from '../support/cluster.js';
import { eventually } from '../support/rabbitmqctl.js';

const TOTAL = 20_000;
const STOPS = 2;
const EPOCHS = STOPS + 1;

let cluster: Cluster | undefined;

beforeAll(async () => {
  cluster = await startCluster();
}, 200_000);

afterAll(async () => {
  await cluster?.stop();
}, 120_000);

/** The cluster, or a loud failure when beforeAll could not start it (its error is reported too). */
function theCluster(): Cluster {
  if (cluster === undefined) throw new Error('the cluster did not start: see the beforeAll error above');
  return cluster;
}

/** `hosts` naming every node: `{ hostname, port, node }`. */
function hostsOf(c: Cluster) {
  return c.nodes.map((n) => ({ hostname: '127.0.0.1', port: n.port, node: n.name }));
}

/** Declares a quorum queue replicated on every node of the cluster, through the first node. */
async function declareQuorumQueue(c: Cluster, queue: string): Promise<void> {
  const conn = await openConnection(c.url);
  try {
    const ch = await conn.openChannel();
    await lastValueFrom(
      ch.queueDeclare(queue, {
        durable: true,
        arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': c.nodes.length },
      }),
    );
  } finally {
    await lastValueFrom(conn.close()).catch(() => undefined);
  }
}

async function deleteQueue(c: Cluster, queue: string): Promise<void> {
  for (const node of c.nodes) {
    try {
      const conn = await openConnection(`amqp://guest:guest@127.0.0.1:${node.port}`);
      const ch = await conn.openChannel();
      await lastValueFrom(ch.queueDelete(queue)).catch(() => undefined);
      await lastValueFrom(conn.close()).catch(() => undefined);
      return;
    } catch {
      // that node is down: try the next one
    }
  }
}

/** The node name of a queue's leader, as `rabbitmqctl list_queues name leader` reports it. */
async function leaderOf(c: Cluster, queue: string): Promise<string | undefined> {
  const out = await c.ctl(c.nodes[0]!, 'list_queues', '-q', '--no-table-headers', 'name', 'leader');
  for (const line of out.split('\n')) {
    const [name, leader] = line.trim().split(/\s+/);
    if (name === queue && leader !== undefined && leader.includes('@')) return leader;
  }
  return undefined;
}

/** The last CONNECTED state's host. */
function connectedHost(states: readonly ConnectionState[]): string | undefined {
  return states.filter((s) => s.status === 'CONNECTED').at(-1)?.host;
}

describe('a 3-node RabbitMQ cluster (test/support/cluster.ts)', () => {
  it('is formed: every node runs, and reports the others', async () => {
    const c = theCluster();
    for (const node of c.nodes) {
      expect((await c.runningNodes(node)).sort()).toEqual(c.nodes.map((n) => n.name).sort());
    }
  });

  it(`failover, zero loss: ${TOTAL} persistent messages on a quorum queue, the clients' node stopped ${STOPS} times`, async () => {
    const c = theCluster();
    const name = `rxamqp-failover-${randomUUID().slice(0, 8)}`;
    const queue = `${name}-q`;
    await declareQuorumQueue(c, queue);
    const hosts = hostsOf(c);
    // The default recovery policy: the 5 s goal is for it.
    const consumer$ = connect(c.url, { name: `${name}-consumer`, hosts, recovery: true });
    const publisher$ = connect(c.url, { name: `${name}-publisher`, hosts, recovery: true });
    const consumerStates: (ConnectionState & { at: number })[] = [];
    const publisherStates: (ConnectionState & { at: number })[] = [];
    const stateSubs = [
      consumer$.state$.subscribe((s) => consumerStates.push({ ...s, at: Date.now() })),
      publisher$.state$.subscribe((s) => publisherStates.push({ ...s, at: Date.now() })),
    ];

    // The consumer: manual acks, each delivery tagged with the host of its connection.
    const seen = new Uint16Array(TOTAL);
    let deliveries = 0;
    let unique = 0;
    const firstDeliveryOn = new Map<string, number>(); // `${epoch}:${host}` -> time
    let epoch = 0;
    const consumerErrors: unknown[] = [];
    const consuming = consumer$
      .pipe(
        switchMap((conn) =>
          conn.channel().pipe(
            switchMap((ch) => ch.consume(queue, { prefetch: 500 })),
            map((d) => ({ d, host: conn.host })),
          ),
        ),
      )
      .subscribe({
        next: ({ d, host }) => {
          const id = Number(d.body.toString());
          deliveries++;
          if (seen[id] === 0) unique++;
          seen[id] = (seen[id] ?? 0) + 1;
          const key = `${epoch}:${host}`;
          if (!firstDeliveryOn.has(key)) firstDeliveryOn.set(key, Date.now());
          d.ack();
        },
        error: (e) => consumerErrors.push(e),
      });

    const publisher = createPublisher(publisher$, { republish: true, bufferTimeout: 60_000 });
    const messages = new Subject<{
      exchange: string;
      routingKey: string;
      body: string;
      properties: { deliveryMode: 2 };
    }>();
    const outcomes: string[] = [];
    let publishError: unknown;
    let published = false;
    messages.pipe(publishConfirmed(publisher, { window: 200 })).subscribe({
      next: (r) => outcomes.push(r.outcome.status),
      error: (e) => (publishError = e),
      complete: () => (published = true),
    });

    const failovers: { node: string; resumeMs: number; lossMs: number; publisherMs: number; to: string }[] =
      [];
    try {
      expect(await eventually(() => connectedHost(consumerStates) !== undefined, 20_000)).toBe(true);
      let next = 0;
      for (epoch = 0; epoch < EPOCHS; epoch++) {
        const end = epoch === EPOCHS - 1 ? TOTAL : Math.round(((epoch + 1) * TOTAL) / EPOCHS);
        // This epoch's share, paced at 2,000 messages a second, while the node is stopped under it.
        const pacing = (async () => {
          while (next < end) {
            for (let i = 0; i < 40 && next < end; i++, next++) {
              messages.next({
                exchange: '',
                routingKey: queue,
                body: String(next),
                properties: { deliveryMode: 2 },
              });
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        if (epoch < STOPS) {
          await new Promise((r) => setTimeout(r, 500));
          // The publisher connects at its first message.
          expect(await eventually(() => connectedHost(publisherStates) !== undefined, 20_000)).toBe(true);
          const host = connectedHost(consumerStates);
          const node = c.nodeAt(host);
          if (node === undefined) throw new Error(`the consumer is on no known node (${host})`);
          // Both clients start from the first host that answers (in-order): they share the node.
          expect(connectedHost(publisherStates)).toBe(host);
          expect(consumerStates.at(-1)?.node).toBe(node.name);
          const stoppedAt = Date.now();
          const connectedBefore = publisherStates.filter((s) => s.status === 'CONNECTED').length;
          await c.stopApp(node);
          const resumed = () =>
            [...firstDeliveryOn].find(
              ([key, at]) => key.startsWith(`${epoch}:`) && !key.endsWith(node.host) && at >= stoppedAt,
            );
          expect(await eventually(() => resumed() !== undefined, 60_000)).toBe(true);
          expect(
            await eventually(
              () => publisherStates.filter((s) => s.status === 'CONNECTED').length > connectedBefore,
              60_000,
            ),
          ).toBe(true);
          const [key, at] = resumed()!;
          const publisherAt = publisherStates.filter((s) => s.status === 'CONNECTED').at(-1)!.at;
          // When the consumer saw its connection go (rabbitmqctl itself takes a while to start).
          const lostAt =
            consumerStates.find((s) => s.status === 'RECONNECTING' && s.at >= stoppedAt)?.at ?? stoppedAt;
          failovers.push({
            node: node.name,
            resumeMs: at - stoppedAt,
            lossMs: lostAt - stoppedAt,
            publisherMs: publisherAt - stoppedAt,
            to: c.nodeAt(key.slice(key.indexOf(':') + 1))?.name ?? key,
          });
          await pacing;
          await restart(c, node);
        } else {
          await pacing;
        }
      }
      messages.complete();
      expect(await eventually(() => published || publishError !== undefined, 120_000)).toBe(true);
      expect(publishError).toBeUndefined();
      expect(outcomes).toHaveLength(TOTAL);
      expect(outcomes.filter((s) => s !== 'acked')).toEqual([]);
      expect(await eventually(() => unique === TOTAL, 120_000)).toBe(true);
      expect(consumerErrors).toEqual([]);
      const lost = TOTAL - unique;
      console.log(
        `cluster failover: ${TOTAL} published, ${STOPS} node stops, lost ${lost}, ` +
          `${deliveries - unique} duplicates (${deliveries} deliveries), ${publisher.republishedCount} republished; ` +
          failovers
            .map(
              (f, i) =>
                `stop ${i + 1} (${f.node} -> ${f.to}): first delivery on the new node ${f.resumeMs} ms after the stop ` +
                `(the consumer saw the loss at ${f.lossMs} ms), publisher reconnected at ${f.publisherMs} ms`,
            )
            .join('; '),
      );
      // Reported above; bounded here only loosely (the goal, 5 s, is what docs/cluster.md reports).
      for (const f of failovers) expect(f.resumeMs).toBeLessThan(30_000);
      expect(failovers).toHaveLength(STOPS);
    } finally {
      await lastValueFrom(publisher.close()).catch(() => undefined);
      consuming.unsubscribe();
      for (const s of stateSubs) s.unsubscribe();
      await deleteQueue(c, queue);
    }
  }, 300_000);

  it('cluster-aware hosts: state$ names the node, and preferNode puts a consumer on its queue leader', async () => {
    const c = theCluster();
    const queue = `rxamqp-leader-${randomUUID().slice(0, 8)}`;
    await declareQuorumQueue(c, queue);
    try {
      const leader = await leaderOf(c, queue);
      expect(c.nodes.map((n) => n.name)).toContain(leader);
      // Hosts listed with the leader last, so that the usual order would not reach it first.
      const hosts = hostsOf(c).sort((a, b) => Number(a.node === leader) - Number(b.node === leader));
      const connection$ = connect(c.url, {
        name: 'rxamqp-leader-consumer',
        hosts,
        recovery: true,
        preferNode: () => leaderOf(c, queue),
      });
      const states: ConnectionState[] = [];
      const sub = connection$.state$.subscribe((s) => states.push(s));
      const consuming = connection$
        .pipe(
          switchMap((conn) => conn.channel()),
          switchMap((ch) => ch.consume(queue, { noAck: true })),
        )
        .subscribe();
      try {
        expect(await eventually(() => states.some((s) => s.status === 'CONNECTED'), 20_000)).toBe(true);
        const connected = states.find((s) => s.status === 'CONNECTED')!;
        expect(connected.node).toBe(leader);
        expect(connected.host).toBe(c.nodes.find((n) => n.name === leader)!.host);
        expect(JSON.parse(JSON.stringify(connection$))).toMatchObject({ status: 'CONNECTED', node: leader });
      } finally {
        consuming.unsubscribe();
        sub.unsubscribe();
      }
    } finally {
      await deleteQueue(c, queue);
    }
  }, 60_000);
});

/** Starts a stopped node again and waits until the cluster reports it running. */
async function restart(c: Cluster, node: ClusterNode): Promise<void> {
  await c.startApp(node);
  const others = c.nodes.find((n) => n !== node)!;
  expect(await eventuallyAsync(async () => (await c.runningNodes(others)).includes(node.name), 60_000)).toBe(
    true,
  );
}

async function eventuallyAsync(predicate: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}
