/**
 * Poison messages end to end on the embedded broker (`rxamqp/testing`), beside the real-broker suite
 * (test/integration/poison.test.ts): a quorum queue with `x-delivery-limit: 3` and a dead-letter
 * exchange, consumed through `ackOnSuccess` with its default failure policy.
 */
import { filter, firstValueFrom, lastValueFrom, take, timeout } from 'rxjs';
import { type AckOnSuccessOptions, ackOnSuccess } from '../../operators/index.js';
import { type Channel, type Connection, openConnection } from '../../src/node.js';
import { EmbeddedBroker } from '../../src/testing/index.js';

let broker: EmbeddedBroker;
let conn: Connection;
let ch: Channel;

beforeEach(async () => {
  broker = new EmbeddedBroker();
  conn = await openConnection('amqp://guest:guest@embedded', { transport: broker.connector });
  ch = await conn.openChannel();
  await lastValueFrom(ch.queueDeclare('dlq', { durable: true }));
});
afterEach(() => broker.close());

async function alwaysFail(queue: string, options: AckOnSuccessOptions = {}) {
  const counts: (number | undefined)[] = [];
  const consumer = await conn.openChannel();
  const sub = consumer
    .consume(queue, { prefetch: 1 })
    .pipe(
      ackOnSuccess((d) => {
        counts.push(d.deliveryCount);
        throw new Error('poison');
      }, options),
    )
    .subscribe();
  const dead = await firstValueFrom(
    ch.consume('dlq').pipe(
      filter((d) => d.ack()),
      take(1),
      timeout(5_000),
    ),
  );
  sub.unsubscribe();
  return { counts, dead };
}

describe('poison messages (embedded broker)', () => {
  it('quorum queue, deliveryLimit 3, DLX: the default policy ends an always-failing message in the DLQ', async () => {
    await lastValueFrom(
      ch.queueDeclare('work', {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-delivery-limit': 3,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'dlq',
        },
      }),
    );
    broker.publish('', 'work', 'poison');
    const { counts, dead } = await alwaysFail('work');
    // The first delivery and 3 returns, as on RabbitMQ 3.10. (RabbitMQ 3.10 leaves x-delivery-count out
    // of a first delivery; the embedded broker writes 0: either reads as no previous delivery.)
    expect(counts.slice(1)).toEqual([1, 2, 3]);
    expect([undefined, 0]).toContain(counts[0]);
    expect(dead.text()).toBe('poison');
    expect(dead.deaths.map((d) => [d.queue, d.reason, d.count])).toEqual([['work', 'delivery_limit', 1]]);
    expect(dead.deaths[0]?.time).toBeInstanceOf(Date);
    expect(broker.queue('work')!.messageCount).toBe(0);
  });

  it("a classic queue: 'retry' tries twice, then dead-letters (reason rejected)", async () => {
    await lastValueFrom(
      ch.queueDeclare('classic', {
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' },
      }),
    );
    broker.publish('', 'classic', 'poison');
    const { counts, dead } = await alwaysFail('classic');
    expect(counts).toEqual([undefined, undefined]);
    expect(dead.deaths.map((d) => d.reason)).toEqual(['rejected']);
  });
});
