/**
 * Poison messages against the real broker: a quorum queue with a delivery limit and a dead-letter
 * exchange, consumed through `ackOnSuccess` with its default failure policy (`'retry'`: basic.reject
 * with requeue, which every RabbitMQ version counts toward the limit). A handler that always fails
 * ends with the message in the dead-letter queue, its `x-death` readable as `delivery.deaths`.
 */
import { filter, firstValueFrom, lastValueFrom, take, timeout } from 'rxjs';
import { type AckOnSuccessOptions, ackOnSuccess } from '../../operators/index.js';
import type { Delivery } from '../../src/node.js';
import { openSession, type Session, uniqueName } from '../support/session.js';

let session: Session;
const queues: string[] = [];

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp poison tests' });
});

afterAll(async () => {
  try {
    for (const q of queues) await lastValueFrom(session.channel.queueDelete(q));
  } finally {
    session?.close();
  }
});

async function declarePair(deliveryLimit: number | undefined): Promise<{ queue: string; dlq: string }> {
  const queue = uniqueName('poison');
  const dlq = `${queue}.dlq`;
  queues.push(queue, dlq);
  await lastValueFrom(session.channel.queueDeclare(dlq, { durable: true }));
  await lastValueFrom(
    session.channel.queueDeclare(queue, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq,
        ...(deliveryLimit === undefined ? {} : { 'x-delivery-limit': deliveryLimit }),
      },
    }),
  );
  return { queue, dlq };
}

interface Attempt {
  readonly redelivered: boolean;
  readonly deliveryCount: number | undefined;
}

/** Consumes `queue` with a handler that always fails, until the message shows up in `dlq`. */
async function failUntilDeadLettered(
  queue: string,
  dlq: string,
  options: AckOnSuccessOptions = {},
): Promise<{ attempts: Attempt[]; dead: Delivery }> {
  const attempts: Attempt[] = [];
  const { channel, close } = await session.openChannel();
  const consuming = channel
    .consume(queue, { prefetch: 1 })
    .pipe(
      ackOnSuccess((d) => {
        attempts.push({ redelivered: d.fields.redelivered, deliveryCount: d.deliveryCount });
        throw new Error('poison');
      }, options),
    )
    .subscribe();
  try {
    const dead = await firstValueFrom(
      channel.consume(dlq).pipe(
        filter((d) => d.ack()),
        take(1),
        timeout(15_000),
      ),
    );
    return { attempts, dead };
  } finally {
    consuming.unsubscribe();
    close();
  }
}

describe('poison messages (real broker)', () => {
  it('a quorum queue with deliveryLimit 3 and a DLX: an always-failing message ends in the DLQ (default policy)', async () => {
    const { queue, dlq } = await declarePair(3);
    await lastValueFrom(session.channel.publish('', queue, 'poison', { deliveryMode: 2 }));
    const { attempts, dead } = await failUntilDeadLettered(queue, dlq);
    // `x-delivery-limit: 3` allows three returns: the first delivery and three redeliveries, each
    // rejected with requeue and counted; the broker dead-letters at the third return.
    expect(attempts).toEqual([
      { redelivered: false, deliveryCount: undefined },
      { redelivered: true, deliveryCount: 1 },
      { redelivered: true, deliveryCount: 2 },
      { redelivered: true, deliveryCount: 3 },
    ]);
    expect(dead.text()).toBe('poison');
    expect(dead.deaths).toEqual([
      {
        queue,
        reason: 'delivery_limit',
        count: 1,
        exchange: '',
        routingKeys: [queue],
        time: expect.any(Date),
        originalExpiration: undefined,
      },
    ]);
    expect(dead.deliveryCount).toBeUndefined(); // the DLQ is a classic queue
  });

  it('without a broker limit, the client bounds the retries at maxDeliveries', async () => {
    const { queue, dlq } = await declarePair(undefined);
    await lastValueFrom(session.channel.publish('', queue, 'poison', { deliveryMode: 2 }));
    const { attempts, dead } = await failUntilDeadLettered(queue, dlq, { maxDeliveries: 4 });
    // Three rejects with requeue, then one without: the client's own limit, reason `rejected`.
    expect(attempts.map((a) => a.deliveryCount)).toEqual([undefined, 1, 2, 3]);
    expect(dead.deaths.map((d) => [d.queue, d.reason, d.count])).toEqual([[queue, 'rejected', 1]]);
  });

  it('on a classic queue (no delivery count) the default policy tries a message twice', async () => {
    const queue = uniqueName('poison-classic');
    const dlq = `${queue}.dlq`;
    queues.push(queue, dlq);
    await lastValueFrom(session.channel.queueDeclare(dlq));
    await lastValueFrom(
      session.channel.queueDeclare(queue, {
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
      }),
    );
    await lastValueFrom(session.channel.publish('', queue, 'poison'));
    const { attempts, dead } = await failUntilDeadLettered(queue, dlq);
    expect(attempts).toEqual([
      { redelivered: false, deliveryCount: undefined },
      { redelivered: true, deliveryCount: undefined },
    ]);
    expect(dead.deaths.map((d) => d.reason)).toEqual(['rejected']);
  });

  it("onError: 'reject' dead-letters at the first failure", async () => {
    const { queue, dlq } = await declarePair(3);
    await lastValueFrom(session.channel.publish('', queue, 'poison', { deliveryMode: 2 }));
    const { attempts, dead } = await failUntilDeadLettered(queue, dlq, { onError: 'reject' });
    expect(attempts).toHaveLength(1);
    expect(dead.deaths.map((d) => d.reason)).toEqual(['rejected']);
  });
});
