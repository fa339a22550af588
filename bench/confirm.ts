/**
 * `confirm`: confirmed publishing to the real broker with at most 1,000 publishes awaiting their
 * confirm (256-byte bodies), for rxamqp and the peer clients, each in its own process and at its
 * defaults. Issue 5's targets: ≤ 4 ms of client CPU per 1,000 confirmed publishes, and at least 1.3×
 * the best peer's confirmed publishes per second in the same run.
 *
 * Each client publishes to its own queue, purged before every round (outside the measurement).
 */
import { AMQPClient } from '@cloudamqp/amqp-client';
import amqplib from 'amqplib';
import { Connection as RabbitConnection } from 'rabbitmq-client';
import { count, lastValueFrom, range, map as rxMap } from 'rxjs';
import { publishConfirmed } from '../operators/index.js';
import { type Channel, type Connection, openConnection } from '../src/index.js';
import { openRawConfirmClient, type RawConfirmClient } from './lib/raw-client.js';
import type { Scenario, Workload } from './lib/types.js';

const BODY = Buffer.alloc(256, 0x61);
const WINDOW = 1000;
const PARAMS = {
  bodySize: BODY.length,
  window: WINDOW,
  target: '≤ 4 ms client CPU per 1,000; ≥ 1.3× best peer',
};

/** Runs `publish` n times with at most WINDOW unresolved at once; resolves when all have resolved. */
async function windowed(n: number, publish: () => Promise<unknown>): Promise<void> {
  let inFlight = 0;
  let started = 0;
  let failure: unknown;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      if (failure !== undefined) return;
      while (inFlight < WINDOW && started < n) {
        started++;
        inFlight++;
        publish().then(
          () => {
            inFlight--;
            if (started === n && inFlight === 0) resolve();
            else pump();
          },
          (e: unknown) => {
            failure = e;
            reject(e);
          },
        );
      }
    };
    pump();
  });
}

const scenario: Scenario = {
  name: 'confirm',
  description: 'confirmed publishing to the real broker, window 1000, 256-byte bodies, per client',
  workloads(ctx): Workload[] {
    const url = ctx.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    const queue = (client: string) => `rxamqp-bench-confirm-${client}`;
    // Fixed rounds of 50,000 after 4 warm-up batches (200,000 publishes): the publish and confirm
    // paths take that long to reach their steady state in V8, for every client alike.
    const base = {
      unit: 'message',
      params: PARAMS,
      opsPerRound: ctx.quick ? 10_000 : 50_000,
      warmupBatches: ctx.quick ? 1 : 4,
    } as const;

    let rx: { conn: Connection; ch: Channel } | undefined;
    const rxamqp: Workload = {
      ...base,
      name: 'confirmed publish rxamqp',
      client: 'rxamqp',
      async setup() {
        const conn = await openConnection(url, { name: 'rxamqp bench confirm' });
        const ch = await conn.openChannel();
        await lastValueFrom(ch.queueDeclare(queue('rxamqp'), { durable: false, autoDelete: false }));
        await lastValueFrom(ch.confirmSelect());
        rx = { conn, ch };
      },
      async run(n) {
        const { ch } = rx!;
        await lastValueFrom(ch.queuePurge(queue('rxamqp')));
        const q = queue('rxamqp');
        await lastValueFrom(
          range(0, n).pipe(
            rxMap(() => ({ exchange: '', routingKey: q, body: BODY })),
            publishConfirmed(ch, { window: WINDOW }),
            count(),
          ),
        );
        return { ops: n };
      },
      async teardown() {
        if (rx === undefined) return;
        await lastValueFrom(rx.ch.queueDelete(queue('rxamqp'))).catch(() => undefined);
        await lastValueFrom(rx.conn.close());
      },
    };

    let al: { conn: amqplib.ChannelModel; ch: amqplib.ConfirmChannel } | undefined;
    const amqplibWorkload: Workload = {
      ...base,
      name: 'confirmed publish amqplib',
      client: 'amqplib',
      async setup() {
        const conn = await amqplib.connect(url);
        const ch = await conn.createConfirmChannel();
        await ch.assertQueue(queue('amqplib'), { durable: false, autoDelete: false });
        al = { conn, ch };
      },
      async run(n) {
        const { ch } = al!;
        await ch.purgeQueue(queue('amqplib'));
        const q = queue('amqplib');
        await windowed(
          n,
          () =>
            new Promise<void>((resolve, reject) => {
              ch.sendToQueue(q, BODY, {}, (err) => (err ? reject(err) : resolve()));
            }),
        );
        return { ops: n };
      },
      async teardown() {
        if (al === undefined) return;
        await al.ch.deleteQueue(queue('amqplib')).catch(() => undefined);
        await al.conn.close();
      },
    };

    let rc: { conn: RabbitConnection; pub: ReturnType<RabbitConnection['createPublisher']> } | undefined;
    const rabbitmqClient: Workload = {
      ...base,
      name: 'confirmed publish rabbitmq-client',
      client: 'rabbitmq-client',
      async setup() {
        const conn = new RabbitConnection(url);
        await conn.queueDeclare({ queue: queue('rabbitmq-client'), durable: false, autoDelete: false });
        const pub = conn.createPublisher({ confirm: true, maxAttempts: 1 });
        rc = { conn, pub };
      },
      async run(n) {
        const { conn, pub } = rc!;
        await conn.queuePurge({ queue: queue('rabbitmq-client') });
        const q = queue('rabbitmq-client');
        await windowed(n, () => pub.send(q, BODY));
        return { ops: n };
      },
      async teardown() {
        if (rc === undefined) return;
        await rc.conn.queueDelete({ queue: queue('rabbitmq-client') }).catch(() => undefined);
        await rc.pub.close();
        await rc.conn.close();
      },
    };

    let ca:
      | { client: AMQPClient; ch: Awaited<ReturnType<Awaited<ReturnType<AMQPClient['connect']>>['channel']>> }
      | undefined;
    const cloudamqp: Workload = {
      ...base,
      name: 'confirmed publish @cloudamqp/amqp-client',
      client: '@cloudamqp/amqp-client',
      async setup() {
        const client = new AMQPClient(url);
        const conn = await client.connect();
        const ch = await conn.channel();
        await ch.queueDeclare(queue('cloudamqp'), { durable: false, autoDelete: false });
        await ch.confirmSelect();
        ca = { client, ch };
      },
      async run(n) {
        const { ch } = ca!;
        await ch.queuePurge(queue('cloudamqp'));
        const q = queue('cloudamqp');
        await windowed(n, () => ch.basicPublish('', q, BODY));
        return { ops: n };
      },
      async teardown() {
        if (ca === undefined) return;
        await ca.ch.queueDelete(queue('cloudamqp')).catch(() => undefined);
        await ca.client.close();
      },
    };

    // The ceiling: pre-encoded publish frames written straight to a socket, acks counted, nothing else.
    let raw: RawConfirmClient | undefined;
    const rawWorkload: Workload = {
      ...base,
      name: 'confirmed publish raw (broker ceiling)',
      client: 'raw',
      async setup() {
        raw = await openRawConfirmClient(new URL(url), BODY);
        await raw.declare(queue('raw'));
      },
      async run(n) {
        await raw!.purge(queue('raw'));
        await raw!.publishConfirmed(queue('raw'), n, WINDOW);
        return { ops: n };
      },
      async teardown() {
        if (raw === undefined) return;
        await raw.delete(queue('raw')).catch(() => undefined);
        await raw.close();
      },
    };

    return [rxamqp, amqplibWorkload, rabbitmqClient, cloudamqp, rawWorkload];
  },
};

export default scenario;
