/**
 * The same order flow as an integration test on the embedded broker of `rxamqp/testing`: the real
 * client, real AMQP frames, RabbitMQ's semantics (dead-lettering with `x-death`, publisher confirms),
 * in the test's process. The broker's hooks show what is in each queue and make it nack a publish.
 */
import { type Channel, type Connection, openConnection } from 'rxamqp';
import { EmbeddedBroker } from 'rxamqp/testing';
import { lastValueFrom, type Subscription } from 'rxjs';
import { type OrderResult, processOrders, RESULTS_QUEUE } from './order-flow.js';

let broker: EmbeddedBroker;
let conn: Connection;
let flow: Subscription | undefined;
const results: OrderResult[] = [];

/** Waits until `condition` holds, letting the client and the broker exchange frames meanwhile. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(condition()).toBe(true);
}

const text = (body: Uint8Array): string => new TextDecoder().decode(body);

beforeEach(async () => {
  broker = new EmbeddedBroker();
  conn = await openConnection('amqp://guest:guest@embedded', { transport: broker.connector });
  // The topology: orders dead-letter to orders.dead through a fanout exchange.
  const setup = await conn.openChannel();
  await lastValueFrom(setup.exchangeDeclare('orders.dlx', 'fanout'));
  await lastValueFrom(setup.queueDeclare('orders.dead'));
  await lastValueFrom(setup.queueBind('orders.dead', 'orders.dlx', ''));
  await lastValueFrom(
    setup.queueDeclare('orders', { arguments: { 'x-dead-letter-exchange': 'orders.dlx' } }),
  );
  await lastValueFrom(setup.queueDeclare(RESULTS_QUEUE));
  await lastValueFrom(setup.close());
  // The flow under test, on a confirm channel of its own.
  const ch = await conn.openChannel();
  await lastValueFrom(ch.confirmSelect());
  results.length = 0;
  flow = processOrders(ch.consume('orders', { prefetch: 10 }), ch).subscribe((r) => results.push(r));
});

afterEach(async () => {
  flow?.unsubscribe();
  await lastValueFrom(conn.close());
  broker.close();
});

async function sendOrders(...bodies: string[]): Promise<Channel> {
  const ch = await conn.openChannel();
  for (const body of bodies) await lastValueFrom(ch.publish('', 'orders', body));
  return ch;
}

describe('processOrders on the embedded broker', () => {
  it('publishes results for valid orders, acks them, and dead-letters the rest with x-death', async () => {
    await sendOrders(
      JSON.stringify({ id: 'o1', item: 'coffee', quantity: 2 }),
      'not json',
      JSON.stringify({ id: 'o3', item: 'caviar', quantity: 1 }),
      JSON.stringify({ id: 'o4', item: 'cake', quantity: 1 }),
    );
    await until(() => broker.queue('orders.dead')?.messageCount === 2 && results.length === 2);

    expect(results).toEqual([
      { orderId: 'o1', total: 500 },
      { orderId: 'o4', total: 400 },
    ]);
    // Every order was settled: none ready, none unacked.
    expect(broker.queue('orders')).toMatchObject({ messageCount: 0, unackedCount: 0, consumerCount: 1 });
    const published = broker.queue(RESULTS_QUEUE)?.messages ?? [];
    expect(published.map((m) => [m.properties.messageId, m.properties.contentType, text(m.body)])).toEqual([
      ['o1', 'application/json', '{"orderId":"o1","total":500}'],
      ['o4', 'application/json', '{"orderId":"o4","total":400}'],
    ]);
    const dead = broker.queue('orders.dead')?.messages ?? [];
    expect(dead.map((m) => text(m.body))).toEqual(['not json', '{"id":"o3","item":"caviar","quantity":1}']);
    // As a consumer of the dead-letter queue sees it: why, from where, how many times.
    const reader = await conn.openChannel();
    const first = await lastValueFrom(reader.get('orders.dead', { noAck: true }));
    expect(first?.properties.headers?.['x-death']).toEqual([
      expect.objectContaining({
        count: 1,
        reason: 'rejected',
        queue: 'orders',
        exchange: '',
        'routing-keys': ['orders'],
      }),
    ]);
  });

  it('dead-letters an order whose result the broker nacks', async () => {
    const stop = broker.nackPublishes((p) => p.routingKey === RESULTS_QUEUE && text(p.body).includes('"o1"'));
    await sendOrders(
      JSON.stringify({ id: 'o1', item: 'tea', quantity: 1 }),
      JSON.stringify({ id: 'o2', item: 'tea', quantity: 2 }),
    );
    await until(() => broker.queue('orders.dead')?.messageCount === 1 && results.length === 1);
    stop();
    expect(results).toEqual([{ orderId: 'o2', total: 400 }]);
    expect(broker.queue(RESULTS_QUEUE)?.messages.map((m) => m.properties.messageId)).toEqual(['o2']);
    expect(broker.queue('orders.dead')?.messages.map((m) => text(m.body))).toEqual([
      '{"id":"o1","item":"tea","quantity":1}',
    ]);
  });
});
