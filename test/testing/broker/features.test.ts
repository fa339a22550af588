/** Queue and consumer features beyond the basics: priorities, single active consumer, quorum returns. */
import { lastValueFrom } from 'rxjs';
import type { Channel, Connection, Delivery } from '../../../src/index.js';
import { connectTo, EmbeddedBroker, rejection, settle, text } from './helpers.js';

let broker: EmbeddedBroker;
let conn: Connection;
let ch: Channel;

beforeEach(async () => {
  broker = new EmbeddedBroker();
  conn = await connectTo(broker);
  ch = await conn.openChannel();
});
afterEach(async () => {
  if (conn.isOpen) await lastValueFrom(conn.close());
});

async function drain(queue: string): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (;;) {
    const got: Delivery[] = [];
    await new Promise<void>((resolve) =>
      ch.get(queue, { noAck: true }).subscribe({ next: (d) => got.push(d), complete: resolve }),
    );
    if (got.length === 0) return out;
    out.push(...got);
  }
}

function collect(channel: Channel, queue: string, options: Parameters<Channel['consume']>[1] = {}) {
  const got: Delivery[] = [];
  const sub = channel.consume(queue, options).subscribe((d) => got.push(d));
  return { got, sub, bodies: () => got.map((d) => text(d.body)) };
}

it('a priority queue delivers higher priorities first, capped at x-max-priority, FIFO within one', async () => {
  await lastValueFrom(ch.queueDeclare('prio', { arguments: { 'x-max-priority': 5 } }));
  for (const [body, priority] of [
    ['p0', 0],
    ['p3', 3],
    ['p9', 9],
    ['none', undefined],
    ['p5', 5],
    ['p3 again', 3],
  ] as const) {
    broker.publish('', 'prio', body, priority === undefined ? {} : { priority });
  }
  const out = await drain('prio');
  expect(out.map((d) => [text(d.body), d.properties.priority])).toEqual([
    ['p9', 9],
    ['p5', 5],
    ['p3', 3],
    ['p3 again', 3],
    ['p0', 0],
    ['none', undefined],
  ]);
});

it('feeds the consumer with the highest x-priority while it has room', async () => {
  await lastValueFrom(ch.queueDeclare('q'));
  const low = collect(await conn.openChannel(), 'q', { prefetch: 2 });
  const high = collect(await conn.openChannel(), 'q', { prefetch: 2, arguments: { 'x-priority': 5 } });
  await settle();
  for (const b of ['1', '2', '3', '4', '5']) broker.publish('', 'q', b);
  await settle();
  expect(high.bodies()).toEqual(['1', '2']);
  expect(low.bodies()).toEqual(['3', '4']);
});

it('delivers to the single active consumer only, then to the next', async () => {
  await lastValueFrom(ch.queueDeclare('sac', { arguments: { 'x-single-active-consumer': true } }));
  const first = collect(await conn.openChannel(), 'sac', { noAck: true });
  await settle();
  const second = collect(await conn.openChannel(), 'sac', { noAck: true });
  await settle();
  for (const b of ['1', '2', '3']) broker.publish('', 'sac', b);
  await settle();
  expect([first.bodies(), second.bodies()]).toEqual([['1', '2', '3'], []]);
  first.sub.unsubscribe();
  await settle();
  broker.publish('', 'sac', '4');
  await settle();
  expect(second.bodies()).toEqual(['4']);
});

it('a quorum queue puts requeued messages at the back, in the order they came back', async () => {
  await lastValueFrom(ch.queueDeclare('qq', { durable: true, arguments: { 'x-queue-type': 'quorum' } }));
  for (const b of ['1', '2', '3', '4']) broker.publish('', 'qq', b);
  const got: Delivery[] = [];
  for (let i = 0; i < 3; i++) got.push(await lastValueFrom(ch.get('qq')));
  got[2]!.nack({ requeue: true });
  got[0]!.nack({ requeue: true });
  got[1]!.ack();
  await lastValueFrom(
    ch.queueDeclare('qq', { passive: true, durable: true, arguments: { 'x-queue-type': 'quorum' } }),
  );
  expect(broker.queue('qq')!.messages.map((m) => [text(m.body), m.redelivered])).toEqual([
    ['4', false],
    ['3', true],
    ['1', true],
  ]);
});

it('cuts reply texts longer than 255 bytes to 252 and "..."', async () => {
  const name = `q-${'x'.repeat(250)}`;
  const e = await rejection(lastValueFrom(ch.queueDeclare(name, { passive: true })));
  expect(e.replyText).toBe(`${`NOT_FOUND - no queue '${name}' in vhost '/'`.slice(0, 252)}...`);
});

it('refuses x-dead-letter-routing-key without x-dead-letter-exchange, and non-integer integers', async () => {
  const e = await rejection(
    lastValueFrom(ch.queueDeclare('q', { arguments: { 'x-dead-letter-routing-key': 'k' } })),
  );
  expect(e.replyText).toBe(
    "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined",
  );
  const c2 = await conn.openChannel();
  const e2 = await rejection(lastValueFrom(c2.queueDeclare('q', { arguments: { 'x-message-ttl': 'soon' } })));
  expect(e2.replyText).toBe(
    `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got longstr"`,
  );
});
