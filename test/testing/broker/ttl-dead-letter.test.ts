/** TTL, queue expiry, length limits, dead-lettering and the quorum delivery limit, with a fake clock. */
import { lastValueFrom } from 'rxjs';
import { type Channel, type Connection, fieldTypesOf } from '../../../src/index.js';
import { connectTo, EmbeddedBroker, settle, text } from './helpers.js';

const START = Date.UTC(2026, 0, 1, 12, 0, 0);
let now: number;
let broker: EmbeddedBroker;
let conn: Connection;
let ch: Channel;

beforeEach(async () => {
  now = START;
  broker = new EmbeddedBroker({ clock: () => now });
  conn = await connectTo(broker);
  ch = await conn.openChannel();
  await lastValueFrom(ch.exchangeDeclare('dlx', 'fanout'));
  await lastValueFrom(ch.queueDeclare('dlq'));
  await lastValueFrom(ch.queueBind('dlq', 'dlx', ''));
});
afterEach(async () => {
  if (conn.isOpen) await lastValueFrom(conn.close());
});

const bodies = (queue: string): string[] => broker.queue(queue)!.messages.map((m) => text(m.body));

/** Takes the one message in the dead-letter queue. */
async function deadLetter() {
  const d = await lastValueFrom(ch.get('dlq', { noAck: true }));
  return d;
}

describe('message TTL', () => {
  it('expires by x-message-ttl when the broker next handles anything, dead-lettering with reason expired', async () => {
    await lastValueFrom(
      ch.queueDeclare('q', { arguments: { 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'dlx' } }),
    );
    await lastValueFrom(ch.publish('', 'q', 'old'));
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    now += 999;
    expect(bodies('q')).toEqual(['old']);
    now += 1;
    // Any frame from any client (or an inspection) expires it.
    expect(broker.queue('q')!.messageCount).toBe(0);
    const d = await deadLetter();
    expect(text(d.body)).toBe('old');
    expect(d.fields).toMatchObject({ exchange: 'dlx', routingKey: 'q' });
    const headers = d.properties.headers!;
    expect(Object.keys(headers)).toEqual([
      'x-death',
      'x-first-death-exchange',
      'x-first-death-queue',
      'x-first-death-reason',
    ]);
    const [death] = headers['x-death'] as Record<string, unknown>[];
    expect(death).toEqual({
      count: 1,
      reason: 'expired',
      queue: 'q',
      time: new Date(START + 1000),
      exchange: '',
      'routing-keys': ['q'],
    });
    // count is a long, as RabbitMQ writes it.
    expect(fieldTypesOf(death as never)).toMatchObject({ count: 'l' });
    expect(headers).toMatchObject({
      'x-first-death-exchange': '',
      'x-first-death-queue': 'q',
      'x-first-death-reason': 'expired',
    });
  });

  it('per-message expiration expires at the head only, and is recorded as original-expiration', async () => {
    await lastValueFrom(ch.queueDeclare('q', { arguments: { 'x-dead-letter-exchange': 'dlx' } }));
    await lastValueFrom(ch.publish('', 'q', 'slow', { expiration: '5000' }));
    await lastValueFrom(ch.publish('', 'q', 'fast', { expiration: '10' }));
    await lastValueFrom(ch.queueDeclare('q', { passive: true })); // the broker has both
    now += 100;
    expect(bodies('q')).toEqual(['slow', 'fast']); // fast waits behind slow
    now += 5000;
    expect(bodies('q')).toEqual([]);
    const first = await deadLetter();
    expect(text(first.body)).toBe('slow');
    expect(first.properties.expiration).toBeUndefined();
    const [death] = first.properties.headers!['x-death'] as Record<string, unknown>[];
    expect(death).toMatchObject({ reason: 'expired', 'original-expiration': '5000' });
  });

  it('expires on schedule with timers: true', async () => {
    jest.useFakeTimers({ now: START });
    try {
      const timed = new EmbeddedBroker({ timers: true });
      const c = await connectTo(timed);
      const cch = await c.openChannel();
      await lastValueFrom(cch.queueDeclare('q', { arguments: { 'x-message-ttl': 1000 } }));
      await lastValueFrom(cch.publish('', 'q', 'x'));
      await lastValueFrom(cch.queueDeclare('q', { passive: true }));
      jest.advanceTimersByTime(1000);
      // No client traffic: the broker's own timer expired it (inspected without a clock move).
      expect(timed.queue('q')!.messageCount).toBe(0);
      await lastValueFrom(c.close());
      timed.close();
    } finally {
      jest.useRealTimers();
    }
  });

  it('deletes a queue unused for x-expires', async () => {
    await lastValueFrom(ch.queueDeclare('short-lived', { arguments: { 'x-expires': 60_000 } }));
    now += 59_999;
    expect(broker.queue('short-lived')).toBeDefined();
    now += 1;
    broker.expire();
    expect(broker.queue('short-lived')).toBeUndefined();
  });
});

describe('dead-lettering', () => {
  it('on reject and nack without requeue, with x-dead-letter-routing-key', async () => {
    await lastValueFrom(
      ch.queueDeclare('q', {
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' },
      }),
    );
    await lastValueFrom(ch.publish('amq.direct', 'k', 'ignored'));
    await lastValueFrom(ch.publish('', 'q', 'm1', { headers: { tenant: 'acme' } }));
    const d = await lastValueFrom(ch.get('q'));
    d.reject({ requeue: false });
    const dead = await deadLetter();
    expect(dead.fields).toMatchObject({ exchange: '', routingKey: 'dlq' });
    expect(dead.properties.headers).toMatchObject({ tenant: 'acme', 'x-first-death-reason': 'rejected' });
    expect((dead.properties.headers!['x-death'] as Record<string, unknown>[])[0]).toMatchObject({
      count: 1,
      reason: 'rejected',
      queue: 'q',
      'routing-keys': ['q'],
    });
  });

  it('counts repeated deaths and keeps the history of other queues', async () => {
    // hop -> (rejected) -> src -> (rejected) -> dlx -> dlq
    await lastValueFrom(ch.queueDeclare('src', { arguments: { 'x-dead-letter-exchange': 'dlx' } }));
    await lastValueFrom(
      ch.queueDeclare('hop', {
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'src' },
      }),
    );
    await lastValueFrom(ch.publish('', 'hop', 'six'));
    (await lastValueFrom(ch.get('hop'))).nack({ requeue: false });
    (await lastValueFrom(ch.get('src'))).reject({ requeue: false });
    const dead = await deadLetter();
    const deaths = dead.properties.headers!['x-death'] as Record<string, unknown>[];
    expect(deaths.map((x) => x.queue)).toEqual(['src', 'hop']);
    // RabbitMQ re-encodes the earlier entries with their keys sorted.
    expect(Object.keys(deaths[1]!)).toEqual(['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
    expect(dead.properties.headers!['x-first-death-queue']).toBe('hop');
  });

  it('on max-length overflow (drop-head), with reason maxlen', async () => {
    await lastValueFrom(
      ch.queueDeclare('q', { arguments: { 'x-max-length': 1, 'x-dead-letter-exchange': 'dlx' } }),
    );
    await lastValueFrom(ch.publish('', 'q', 'first'));
    await lastValueFrom(ch.publish('', 'q', 'second'));
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect(bodies('q')).toEqual(['second']);
    const dead = await deadLetter();
    expect(text(dead.body)).toBe('first');
    expect(dead.properties.headers!['x-first-death-reason']).toBe('maxlen');
  });

  it('on x-max-length-bytes overflow, counting body bytes', async () => {
    await lastValueFrom(
      ch.queueDeclare('bytes', { arguments: { 'x-max-length-bytes': 10, 'x-dead-letter-exchange': 'dlx' } }),
    );
    for (const b of ['aaaa', 'bbbb', 'cccc']) await lastValueFrom(ch.publish('', 'bytes', b));
    await lastValueFrom(
      ch.queueDeclare('bytes', {
        passive: true,
        arguments: { 'x-max-length-bytes': 10, 'x-dead-letter-exchange': 'dlx' },
      }),
    );
    expect(bodies('bytes')).toEqual(['bbbb', 'cccc']);
    expect(broker.queue('bytes')!.messageBytes).toBe(8);
    expect(bodies('dlq')).toEqual(['aaaa']);
  });

  it('reject-publish nacks a mandatory publish without returning it', async () => {
    await lastValueFrom(
      ch.queueDeclare('full', { arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } }),
    );
    await lastValueFrom(ch.confirmSelect());
    const returned: unknown[] = [];
    ch.returns$.subscribe((r) => returned.push(r));
    expect(await lastValueFrom(ch.publish('', 'full', 'x', {}, { mandatory: true }))).toMatchObject({
      status: 'nacked',
    });
    expect(returned).toEqual([]);
  });

  it('reject-publish-dlx refuses (nack) and dead-letters the new message', async () => {
    await lastValueFrom(
      ch.queueDeclare('q', {
        arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': 'dlx' },
      }),
    );
    await lastValueFrom(ch.confirmSelect());
    const outcomes = await Promise.all(['a', 'b'].map((b) => lastValueFrom(ch.publish('', 'q', b))));
    expect(outcomes.map((o) => o.status)).toEqual(['acked', 'nacked']);
    expect(bodies('q')).toEqual(['a']);
    expect(bodies('dlq')).toEqual(['b']);
  });
});

describe('quorum queues', () => {
  it('count deliveries in x-delivery-count and dead-letter past x-delivery-limit', async () => {
    await lastValueFrom(
      ch.queueDeclare('qq', {
        durable: true,
        arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2, 'x-dead-letter-exchange': 'dlx' },
      }),
    );
    expect(broker.queue('qq')!.type).toBe('quorum');
    await lastValueFrom(ch.publish('', 'qq', 'q1', { headers: { z: 1 } }));
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await lastValueFrom(ch.get('qq'));
      seen.push([d.fields.redelivered, d.properties.headers]);
      d.reject({ requeue: true });
    }
    expect(seen).toEqual([
      [false, { 'x-delivery-count': 0, z: 1 }],
      [true, { 'x-delivery-count': 1, z: 1 }],
      [true, { 'x-delivery-count': 2, z: 1 }],
    ]);
    await lastValueFrom(ch.queueDeclare('qq', { passive: true }));
    expect(broker.queue('qq')!.messageCount).toBe(0);
    const dead = await deadLetter();
    expect(dead.properties.headers!['x-first-death-reason']).toBe('delivery_limit');
  });

  it('counts a return by a closing channel too (as 3.10 does)', async () => {
    await lastValueFrom(
      ch.queueDeclare('qq1', {
        durable: true,
        arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 1 },
      }),
    );
    broker.publish('', 'qq1', 'm');
    const counts: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await conn.openChannel();
      const d = await lastValueFrom(c.get('qq1'));
      counts.push(d.properties.headers!['x-delivery-count']);
      await lastValueFrom(c.close());
    }
    expect(counts).toEqual([0, 1]);
    expect(broker.queue('qq1')!.messageCount).toBe(0); // past the limit: dropped (no dead-letter exchange)
  });

  it('refuses a redeclare without x-queue-type', async () => {
    await lastValueFrom(ch.queueDeclare('qq2', { durable: true, arguments: { 'x-queue-type': 'quorum' } }));
    const c = await conn.openChannel();
    await expect(lastValueFrom(c.queueDeclare('qq2', { durable: true }))).rejects.toMatchObject({
      replyText:
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'qq2' in vhost '/': received none but current is the value 'quorum' of type 'longstr'",
    });
    await settle();
  });
});

describe('consumer timeout', () => {
  it('closes a channel that holds a delivery unacknowledged past consumer_timeout (30 min by default)', async () => {
    await lastValueFrom(ch.queueDeclare('slow'));
    broker.publish('', 'slow', 'x');
    const consumerCh = await conn.openChannel();
    const d = await lastValueFrom(consumerCh.get('slow'));
    now += 1_799_999;
    broker.expire();
    expect(consumerCh.isOpen).toBe(true);
    now += 1;
    broker.expire();
    await settle();
    expect(consumerCh.isOpen).toBe(false);
    expect(consumerCh.error).toMatchObject({
      replyCode: 406,
      replyText:
        'PRECONDITION_FAILED - delivery acknowledgement on channel 2 timed out. Timeout value used: 1800000 ms. This timeout value can be configured, see consumers doc guide to learn more',
    });
    // The message is back, redelivered.
    expect(broker.queue('slow')!.messages[0]).toMatchObject({ redelivered: true });
    expect(d.ack()).toBe(false);
  });

  it('is off with consumerTimeout: 0', async () => {
    const b = new EmbeddedBroker({ clock: () => now, consumerTimeout: 0 });
    const c = await connectTo(b);
    const cch = await c.openChannel();
    await lastValueFrom(cch.queueDeclare('q'));
    b.publish('', 'q', 'x');
    await lastValueFrom(cch.get('q'));
    now += 10 * 3_600_000;
    b.expire();
    await settle();
    expect(cch.isOpen).toBe(true);
    await lastValueFrom(c.close());
  });
});
