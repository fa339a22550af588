/** Consumers, prefetch, settling and requeueing through the real client. */
import { lastValueFrom } from 'rxjs';
import { type Channel, type Connection, ConsumerCancelledError, type Delivery } from '../../../src/index.js';
import { connectTo, EmbeddedBroker, first, rejection, settle, text } from './helpers.js';

let broker: EmbeddedBroker;
let conn: Connection;
let ch: Channel;

beforeEach(async () => {
  broker = new EmbeddedBroker();
  conn = await connectTo(broker);
  ch = await conn.openChannel();
  await lastValueFrom(ch.queueDeclare('q'));
});
afterEach(async () => {
  if (conn.isOpen) await lastValueFrom(conn.close());
});

function fill(n: number, queue = 'q'): void {
  for (let i = 1; i <= n; i++) broker.publish('', queue, `m${i}`);
}

/** Collects deliveries of a consumer as they come. */
function collect(channel: Channel, queue: string, options: Parameters<Channel['consume']>[1] = {}) {
  const got: Delivery[] = [];
  const sub = channel.consume(queue, options).subscribe({ next: (d) => got.push(d), error: () => {} });
  return { got, sub, bodies: () => got.map((d) => text(d.body)) };
}

describe('consumers', () => {
  it('gets a server-generated amq.ctag-… tag and the deliveries in order', async () => {
    fill(3);
    const ds = await first(ch.consume('q'), 3);
    expect(ds.map((d) => text(d.body))).toEqual(['m1', 'm2', 'm3']);
    expect(ds[0]!.fields.consumerTag).toMatch(/^amq\.ctag-[A-Za-z0-9_-]{22}$/);
    expect(ds.map((d) => d.fields.deliveryTag)).toEqual([1, 2, 3]);
  });

  it('respects per-consumer prefetch (basic.qos global=false)', async () => {
    fill(5);
    const c = collect(ch, 'q', { prefetch: 2 });
    await settle();
    expect(c.bodies()).toEqual(['m1', 'm2']);
    expect(broker.queue('q')).toMatchObject({ messageCount: 3, unackedCount: 2 });
    c.got[0]!.ack();
    await settle();
    expect(c.bodies()).toEqual(['m1', 'm2', 'm3']);
  });

  it('shares a channel-wide prefetch with global=true', async () => {
    await lastValueFrom(ch.queueDeclare('q2'));
    fill(3, 'q');
    fill(3, 'q2');
    await lastValueFrom(ch.qos(3, { global: true }));
    const a = collect(ch, 'q');
    const b = collect(ch, 'q2');
    await settle();
    expect(a.got).toHaveLength(3);
    expect(b.got).toHaveLength(0);
    a.got[0]!.ack();
    a.got[1]!.ack();
    await settle();
    expect(a.got.length + b.got.length).toBe(5);
  });

  it('round-robins between consumers', async () => {
    const ch2 = await conn.openChannel();
    const a = collect(ch, 'q');
    const b = collect(ch2, 'q');
    await lastValueFrom(ch2.queueDeclare('q', { passive: true }));
    fill(4);
    await settle();
    expect(a.bodies()).toEqual(['m1', 'm3']);
    expect(b.bodies()).toEqual(['m2', 'm4']);
  });

  it('noAck consumers hold nothing unacked', async () => {
    fill(2);
    const ds = await first(ch.consume('q', { noAck: true }), 2);
    expect(ds.map((d) => text(d.body))).toEqual(['m1', 'm2']);
    expect(broker.queue('q')).toMatchObject({ messageCount: 0, unackedCount: 0 });
  });

  it('nack and reject requeue (redelivered, original place) or drop', async () => {
    fill(4);
    for (let i = 0; i < 4; i++) await lastValueFrom(ch.get('q'));
    ch.nack(2, { requeue: true });
    ch.reject(1, { requeue: true });
    ch.reject(3, { requeue: false });
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    const q = broker.queue('q')!;
    expect(q.messages.map((m) => [text(m.body), m.redelivered])).toEqual([
      ['m1', true],
      ['m2', true],
    ]);
    expect(q.unackedCount).toBe(1);
  });

  it('acks and nacks with multiple', async () => {
    fill(5);
    await lastValueFrom(ch.qos(5));
    const c = collect(ch, 'q');
    await settle();
    expect(c.got).toHaveLength(5);
    ch.ack(3, { multiple: true });
    ch.nack(5, { multiple: true, requeue: false });
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect(broker.queue('q')).toMatchObject({ messageCount: 0, unackedCount: 0 });
  });

  it('requeues unacked messages when the channel closes: redelivered, in their original order', async () => {
    fill(4);
    const other = await conn.openChannel();
    const ds = await first(other.consume('q', { prefetch: 3 }), 3);
    ds[1]!.ack();
    await lastValueFrom(other.close());
    const q = broker.queue('q')!;
    expect(q.messages.map((m) => [text(m.body), m.redelivered])).toEqual([
      ['m1', true],
      ['m3', true],
      ['m4', false],
    ]);
    const again = await lastValueFrom(ch.get('q'));
    expect(again.fields).toMatchObject({ redelivered: true, messageCount: 2 });
    expect(text(again.body)).toBe('m1');
  });

  it('requeues unacked messages when the connection closes', async () => {
    fill(2);
    const other = await connectTo(broker);
    const och = await other.openChannel();
    await first(och.consume('q', { prefetch: 2 }), 2);
    await lastValueFrom(other.close());
    expect(broker.queue('q')).toMatchObject({ messageCount: 2, unackedCount: 0 });
  });

  it('basic.recover requeues everything unacked', async () => {
    fill(2);
    await lastValueFrom(ch.get('q'));
    await lastValueFrom(ch.recover({ requeue: true }));
    expect(broker.queue('q')).toMatchObject({ messageCount: 2, unackedCount: 0 });
  });

  it('basic.get reports the remaining message count, and get-empty', async () => {
    fill(2);
    const d = await lastValueFrom(ch.get('q'));
    expect(d.fields).toMatchObject({
      deliveryTag: 1,
      redelivered: false,
      exchange: '',
      routingKey: 'q',
      messageCount: 1,
    });
    await lastValueFrom(ch.get('q', { noAck: true }));
    const none: Delivery[] = [];
    await new Promise<void>((resolve) =>
      ch.get('q').subscribe({ next: (x) => none.push(x), complete: resolve }),
    );
    expect(none).toEqual([]);
    d.ack();
  });

  it('cancelling keeps the unacked deliveries ackable', async () => {
    fill(1);
    const c = collect(ch, 'q');
    await settle();
    c.sub.unsubscribe();
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect(broker.queue('q')).toMatchObject({ consumerCount: 0, unackedCount: 1 });
    expect(c.got[0]!.ack()).toBe(true);
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect(broker.queue('q')).toMatchObject({ unackedCount: 0 });
  });

  it('sends basic.cancel to the consumers of a deleted queue', async () => {
    const errors: unknown[] = [];
    ch.consume('q').subscribe({ error: (e) => errors.push(e) });
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    broker.deleteQueue('q');
    await settle();
    expect(errors[0]).toBeInstanceOf(ConsumerCancelledError);
    expect(ch.isOpen).toBe(true);
  });

  it('deletes an auto-delete queue when its last consumer goes', async () => {
    await lastValueFrom(ch.queueDeclare('ad', { autoDelete: true }));
    const c = collect(ch, 'ad');
    await lastValueFrom(ch.queueDeclare('ad', { passive: true, autoDelete: true }));
    c.sub.unsubscribe();
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    await settle();
    expect(broker.queue('ad')).toBeUndefined();
  });

  it('deletes exclusive queues with their connection', async () => {
    const other = await connectTo(broker);
    const och = await other.openChannel();
    const { queue } = await lastValueFrom(och.queueDeclare('', { exclusive: true }));
    expect(queue).toMatch(/^amq\.gen-/);
    expect(broker.queue(queue)?.exclusive).toBe(true);
    await lastValueFrom(other.close());
    expect(broker.queue(queue)).toBeUndefined();
  });

  it('consumes the channel’s last declared queue for an empty name', async () => {
    const e = await rejection(lastValueFrom((await conn.openChannel()).consume('')));
    expect(e).toMatchObject({ replyCode: 404, replyText: 'NOT_FOUND - no previously declared queue' });
  });
});
