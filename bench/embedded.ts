/**
 * `embedded`: the embedded broker of `rxamqp/testing` under the real client, in the runner's process
 * (broker and client share one thread, as in a user's test run). One workload:
 *
 * - `publish -> consume -> ack`: a consumer (prefetch 1,000, one `ack()` per delivery) is started on a
 *   queue, then N 256-byte messages are published on a confirm channel through `publishConfirmed`
 *   (window 1,000); the round ends when the consumer has acked all N. 100,000 per round: the target
 *   is those 100,000 in under 2 s (≥ 50,000 messages per second).
 *
 * @module
 */
import { filter, ignoreElements, lastValueFrom, map, range, type Subscription, take } from 'rxjs';
import { publishConfirmed } from '../operators/index.js';
import { type Channel, type Connection, openConnection } from '../src/node.js';
import { EmbeddedBroker } from '../src/testing/index.js';
import type { Scenario } from './lib/types.js';

const QUEUE = 'bench-embedded';
const BODY = new Uint8Array(256).fill(120);
const PER_ROUND = 100_000;

let broker: EmbeddedBroker | undefined;
let conn: Connection | undefined;
let publishCh: Channel | undefined;
let consumeCh: Channel | undefined;
let consumer: Subscription | undefined;
/** Deliveries acked since the start, and who waits for a count. */
let acked = 0;
let waiter: { count: number; resolve(): void } | undefined;

const embedded: Scenario = {
  name: 'embedded',
  description: 'the embedded broker (rxamqp/testing) under the real client: publish -> consume -> ack',
  workloads: () => [
    {
      name: 'publish -> consume -> ack',
      unit: 'message',
      params: { bodyBytes: BODY.length, prefetch: 1000, window: 1000 },
      opsPerRound: PER_ROUND,
      target: { opsPerSec: PER_ROUND / 2, label: '100,000 in < 2 s' },
      async setup() {
        broker = new EmbeddedBroker();
        conn = await openConnection('amqp://guest:guest@embedded', { transport: broker.connector });
        publishCh = await conn.openChannel();
        await lastValueFrom(publishCh.confirmSelect());
        await lastValueFrom(publishCh.queueDeclare(QUEUE));
        consumeCh = await conn.openChannel();
        consumer = consumeCh.consume(QUEUE, { prefetch: 1000 }).subscribe((delivery) => {
          delivery.ack();
          acked++;
          if (waiter !== undefined && acked >= waiter.count) {
            const w = waiter;
            waiter = undefined;
            w.resolve();
          }
        });
      },
      async run(n) {
        const ch = publishCh;
        if (ch === undefined) throw new Error('embedded: setup did not run');
        const done = new Promise<void>((resolve) => {
          waiter = { count: acked + n, resolve };
        });
        await lastValueFrom(
          range(0, n).pipe(
            map(() => ({ exchange: '', routingKey: QUEUE, body: BODY })),
            publishConfirmed(ch, { window: 1000 }),
            filter(({ outcome }) => outcome.status !== 'acked'),
            take(1),
            map(({ outcome }) => {
              throw new Error(`embedded: a publish was ${outcome.status}`);
            }),
            ignoreElements(),
          ),
          { defaultValue: undefined },
        );
        await done;
        return undefined;
      },
      async teardown() {
        consumer?.unsubscribe();
        if (conn !== undefined) await lastValueFrom(conn.close(), { defaultValue: undefined });
        broker?.close();
      },
    },
  ],
};

export default embedded;
