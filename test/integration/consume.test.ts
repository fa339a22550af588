import { count, firstValueFrom, lastValueFrom, merge, take, tap, toArray } from 'rxjs';
import { ackOnSuccess, batchAck } from '../../operators/index.js';
import { type Channel, ConsumerCancelledError, type Delivery } from '../../src/node.js';
import { openSession, type Session } from '../support/session.js';

let session: Session;

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp consume tests' });
});

afterAll(() => {
  session?.close();
});

async function publishMany(ch: Channel, queue: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 500); j++) batch.push(ch.publish('', queue, `m${j}`));
    await lastValueFrom(merge(...batch), { defaultValue: undefined });
  }
}

async function consumerCount(queue: string): Promise<number> {
  return (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).consumerCount;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('consume (real broker)', () => {
  it('consumes 10,000 messages with prefetch 100, acking each, and leaves the queue empty', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await publishMany(ch, queue, 10_000);
    const seen = new Set<string>();
    await new Promise<void>((resolve, reject) => {
      const subscription = ch.consume(queue, { prefetch: 100 }).subscribe({
        next: (d) => {
          seen.add(d.text());
          expect(d.ack()).toBe(true);
          if (seen.size === 10_000) {
            subscription.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    expect(seen.size).toBe(10_000);
    await waitFor(
      async () => (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).messageCount === 0,
      'an empty queue',
    );
    await waitFor(async () => (await consumerCount(queue)) === 0, 'the consumer to be cancelled');
  }, 60_000);

  it('processes 10,000 messages through ackOnSuccess at concurrency 10 with prefetch 100, all acked', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await publishMany(ch, queue, 10_000);
    let inFlight = 0;
    let maxInFlight = 0;
    const results = await lastValueFrom(
      ch.consume(queue, { prefetch: 100 }).pipe(
        ackOnSuccess(
          async (d) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            await new Promise((r) => setImmediate(r));
            inFlight--;
            return d.text();
          },
          { concurrency: 10 },
        ),
        take(10_000),
        toArray(),
      ),
    );
    expect(new Set(results).size).toBe(10_000);
    expect(maxInFlight).toBe(10);
    await waitFor(
      async () => (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).messageCount === 0,
      'an empty queue',
    );
    // Nothing left unacknowledged: closing the channel requeues nothing.
    await lastValueFrom(ch.close());
    expect((await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount).toBe(
      0,
    );
  }, 60_000);

  it('acks 5,000 messages in multiple-acks with batchAck and leaves nothing unacknowledged', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await publishMany(ch, queue, 5_000);
    const acked = await lastValueFrom(
      ch.consume(queue, { prefetch: 200 }).pipe(batchAck({ count: 50, timeMs: 20 }), take(5_000), toArray()),
    );
    expect(acked.every((d) => d.settled)).toBe(true);
    await lastValueFrom(ch.close());
    await waitFor(
      async () =>
        (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount === 0,
      'no message requeued by the close',
    );
  }, 60_000);

  it('redelivers a nacked message with redelivered set, and sends one ack for two settles', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.publish('', queue, 'again'));
    const received: Delivery[] = [];
    await new Promise<void>((resolve, reject) => {
      const subscription = ch.consume(queue).subscribe({
        next: (d) => {
          received.push(d);
          if (received.length === 1) {
            expect(d.nack({ requeue: true })).toBe(true);
            expect(d.ack()).toBe(false);
          } else {
            expect(d.ack()).toBe(true);
            expect(d.ack()).toBe(false);
            subscription.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    expect(received.map((d) => [d.text(), d.fields.redelivered])).toEqual([
      ['again', false],
      ['again', true],
    ]);
    expect(received[0]!.fields.consumerTag).toMatch(/^amq\.ctag-/);
    // A second ack would have been an unknown delivery tag: 406 and a closed channel.
    await lastValueFrom(ch.queueDeclare(queue, { passive: true }));
    expect(ch.isOpen).toBe(true);
  });

  it('sends basic.cancel when the last subscriber leaves, and shares one consumer among subscribers', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const deliveries$ = ch.consume(queue, { consumerTag: 'shared-tag', noAck: true });
    const a: string[] = [];
    const b: string[] = [];
    const subA = deliveries$.subscribe((d) => a.push(d.text()));
    const subB = deliveries$.subscribe((d) => b.push(d.text()));
    await waitFor(async () => (await consumerCount(queue)) === 1, 'the consumer');
    await publishMany(ch, queue, 3);
    await waitFor(async () => a.length === 3 && b.length === 3, 'both subscribers to see 3 messages');
    expect(a).toEqual(b);
    expect(await consumerCount(queue)).toBe(1);
    subA.unsubscribe();
    await new Promise((r) => setTimeout(r, 50));
    expect(await consumerCount(queue)).toBe(1);
    subB.unsubscribe();
    await waitFor(async () => (await consumerCount(queue)) === 0, 'basic.cancel');
  });

  it('ends the stream with ConsumerCancelledError when the queue is deleted, leaving the channel open', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const ended = new Promise<unknown>((resolve) =>
      ch.consume(queue).subscribe({ error: resolve, complete: () => resolve('complete') }),
    );
    await waitFor(async () => (await consumerCount(queue)) === 1, 'the consumer');
    await lastValueFrom(session.channel.queueDelete(queue));
    const e = await ended;
    expect(e).toBeInstanceOf(ConsumerCancelledError);
    expect(e).toMatchObject({ queue, code: 'CONSUMER_CANCELLED' });
    expect((await lastValueFrom(ch.queueDeclare('', { exclusive: true }))).queue).toMatch(/^amq\.gen-/);
  });

  it('delivers already-settled messages to a noAck consumer', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.publish('', queue, 'fire and forget'));
    const d = await firstValueFrom(ch.consume(queue, { noAck: true }));
    expect(d.settled).toBe(true);
    expect(d.ack()).toBe(false);
    expect(d.text()).toBe('fire and forget');
  });

  it('completes the stream when the client closes the channel', async () => {
    const opened = await session.openChannel();
    const { queue } = await lastValueFrom(opened.channel.queueDeclare('', { exclusive: true }));
    const ended = new Promise<unknown>((resolve) =>
      opened.channel.consume(queue).subscribe({ error: resolve, complete: () => resolve('complete') }),
    );
    await waitFor(async () => (await consumerCount(queue).catch(() => 1)) === 1, 'the consumer');
    await lastValueFrom(opened.channel.close());
    expect(await ended).toBe('complete');
  });
});

describe('ack merging against the real broker', () => {
  async function readyCount(queue: string): Promise<number> {
    return (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount;
  }

  it('sends 5,000 one-by-one acks in far fewer frames, and leaves nothing unacknowledged', async () => {
    const opened = await session.openChannel();
    const ch = opened.channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await publishMany(ch, queue, 5_000);
    const before = session.connection.counters.framesSent;
    const consumed = await lastValueFrom(
      ch.consume(queue, { prefetch: 100 }).pipe(
        tap((d) => expect(d.ack()).toBe(true)),
        take(5_000),
        count(),
      ),
    );
    const framesForAcks = session.connection.counters.framesSent - before;
    expect(consumed).toBe(5_000);
    await lastValueFrom(ch.close());
    const events: ('complete' | Error)[] = [];
    opened.events.subscribe((e) => events.push(e));
    expect(events).toEqual(['complete']);
    expect(await readyCount(queue)).toBe(0);
    expect(framesForAcks).toBeLessThan(1_000);
  }, 60_000);

  it('acks around a delivery held back, then acks it: no message requeued, none acked twice', async () => {
    const opened = await session.openChannel();
    const ch = opened.channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await publishMany(ch, queue, 2_000);
    let held: Delivery | undefined;
    await new Promise<void>((resolve, reject) => {
      let n = 0;
      const subscription = ch.consume(queue, { prefetch: 500 }).subscribe({
        next: (d) => {
          n++;
          if (n === 10) held = d;
          else d.ack();
          if (n === 2_000) {
            subscription.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(held!.ack()).toBe(true);
    await lastValueFrom(ch.close());
    const events: ('complete' | Error)[] = [];
    opened.events.subscribe((e) => events.push(e));
    expect(events).toEqual(['complete']); // no 406 for an unknown or twice-acked tag
    expect(await readyCount(queue)).toBe(0);
  }, 60_000);

  it('settles a random mix of acks, rejects and requeueing nacks exactly as chosen', async () => {
    const opened = await session.openChannel();
    const ch = opened.channel;
    const dlq = (await lastValueFrom(ch.queueDeclare('', { exclusive: true }))).queue;
    const { queue } = await lastValueFrom(
      ch.queueDeclare('', {
        exclusive: true,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
      }),
    );
    const total = 3_000;
    await publishMany(ch, queue, total);
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const acked = new Set<string>();
    const rejected = new Set<string>();
    const requeued = new Set<string>();
    const slow: Delivery[] = [];
    await new Promise<void>((resolve, reject) => {
      const subscription = ch.consume(queue, { prefetch: 200 }).subscribe({
        next: (d) => {
          const id = d.text();
          const r = random();
          if (d.fields.redelivered || r < 0.5) {
            d.ack();
            acked.add(id);
          } else if (r < 0.65) {
            d.reject({ requeue: false });
            rejected.add(id);
          } else if (r < 0.8) {
            d.nack({ requeue: true });
            requeued.add(id);
          } else {
            slow.push(d); // settled later, out of order
            acked.add(id);
          }
          if (slow.length > 0 && random() < 0.3) slow.splice(Math.floor(random() * slow.length), 1)[0]!.ack();
          if (acked.size + rejected.size === total) {
            for (const late of slow.splice(0)) late.ack();
            subscription.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    expect(requeued.size).toBeGreaterThan(100);
    await lastValueFrom(ch.close());
    const events: ('complete' | Error)[] = [];
    opened.events.subscribe((e) => events.push(e));
    expect(events).toEqual(['complete']); // no 406 for an unknown or twice-acked tag
    expect(await readyCount(queue)).toBe(0);
    await waitFor(async () => (await readyCount(dlq)) === rejected.size, 'the rejected messages in the DLQ');
    const dead = new Set<string>();
    for (;;) {
      const d = await lastValueFrom(session.channel.get(dlq, { noAck: true }), { defaultValue: undefined });
      if (d === undefined) break;
      dead.add(d.text());
    }
    expect([...dead].sort()).toEqual([...rejected].sort());
    for (const id of dead) expect(acked.has(id)).toBe(false);
  }, 60_000);
});
