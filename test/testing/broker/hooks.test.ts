/** What a test can do to the broker that a real broker does not offer on demand. */
import { lastValueFrom } from 'rxjs';
import {
  type BlockedEvent,
  type Connection,
  ConnectionClosedError,
  connect,
  type PublishOutcome,
} from '../../../src/index.js';
import { connectTo, EmbeddedBroker, rejection, settle, text } from './helpers.js';

let broker: EmbeddedBroker;
const opened: Connection[] = [];

beforeEach(() => {
  broker = new EmbeddedBroker();
});
afterEach(async () => {
  for (const c of opened.splice(0)) if (c.isOpen) await lastValueFrom(c.close());
});

async function open(name?: string): Promise<Connection> {
  const c = await connectTo(broker, undefined, name === undefined ? {} : { name });
  opened.push(c);
  return c;
}

/** Resolves with the error a connection ends with. */
function ended(conn: Connection): Promise<unknown> {
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if (!conn.isOpen) {
        clearInterval(check);
        resolve(conn.error);
      }
    }, 1);
  });
}

describe('connections', () => {
  it('lists connections with their client-provided name, user, vhost and tune', async () => {
    await open('orders-api');
    await open();
    const list = broker.connections();
    expect(list.map((c) => [c.id, c.name, c.user, c.vhost, c.state])).toEqual([
      [1, 'orders-api', 'guest', '/', 'open'],
      [2, undefined, 'guest', '/', 'open'],
    ]);
    expect(list[0]).toMatchObject({ channelMax: 2047, frameMax: 131072, channels: 0, blocked: false });
    expect(list[0]!.clientProperties.product).toBe('rxamqp');
  });

  it('closes a connection as rabbitmqctl close_connection does (320 CONNECTION_FORCED)', async () => {
    const conn = await open('victim');
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('excl', { exclusive: true }));
    broker.closeConnection('victim', 'maintenance window');
    const error = await ended(conn);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({
      code: 'SERVER_CLOSED',
      replyCode: 320,
      replyText: 'CONNECTION_FORCED - maintenance window',
      initiator: 'server',
    });
    expect(broker.connections()).toEqual([]);
    expect(broker.queue('excl')).toBeUndefined();
  });

  it('drops a connection abruptly: the client sees a transport error, not a clean close', async () => {
    const conn = await open('dropped');
    broker.dropConnection('dropped');
    const error = await ended(conn);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect((error as Error).message).toContain('ECONNRESET');
  });

  it('drops a connection in the middle of a frame', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const pending = rejection(lastValueFrom(ch.queueDeclare('q')));
    broker.dropConnection(broker.connections()[0]!, { midFrame: true });
    const error = await ended(conn);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(await pending).toBeInstanceOf(Error);
  });

  it('recovers after a drop when the client has recovery on', async () => {
    const seen: Connection[] = [];
    const sub = connect('amqp://guest:guest@embedded', {
      transport: broker.connector,
      name: 'recovering',
      recovery: { reconnect: { delays: [1] } },
    }).subscribe((c) => seen.push(c));
    while (seen.length < 1) await settle();
    broker.dropConnection('recovering');
    while (seen.length < 2) await new Promise((r) => setTimeout(r, 2));
    expect(seen[0]!.isOpen).toBe(false);
    expect(seen[1]!.isOpen).toBe(true);
    expect(broker.connections().map((c) => c.id)).toEqual([2]);
    sub.unsubscribe();
    await settle();
  });
});

describe('blocking (resource alarm)', () => {
  it('blocks a publishing connection, holds its publishes in order, and releases them on unblock', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.confirmSelect());
    const events: BlockedEvent[] = [];
    conn.blocked$.subscribe((e) => events.push(e));
    broker.block('low on memory');
    expect(broker.blocked).toBe(true);
    const outcomes: PublishOutcome[] = [];
    ch.publish('', 'q', 'one').subscribe((o) => outcomes.push(o));
    ch.publish('', 'q', 'two').subscribe((o) => outcomes.push(o));
    await settle(5);
    expect(events).toEqual([{ blocked: true, reason: 'low on memory' }]);
    expect(broker.connections()[0]!.blocked).toBe(true);
    expect(broker.queue('q')!.messageCount).toBe(0);
    expect(outcomes).toEqual([]);
    broker.unblock();
    await settle(5);
    expect(events).toEqual([{ blocked: true, reason: 'low on memory' }, { blocked: false }]);
    expect(outcomes.map((o) => o.status)).toEqual(['acked', 'acked']);
    expect(broker.queue('q')!.messages.map((m) => text(m.body))).toEqual(['one', 'two']);
  });

  it('does not block a connection that does not publish', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    broker.block();
    await lastValueFrom(ch.queueDeclare('q'));
    expect(conn.isBlocked).toBe(false);
    broker.unblock();
  });
});

describe('inspection and state', () => {
  it('shows queues with their messages, exchanges and bindings', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.exchangeDeclare('logs', 'fanout', { durable: true }));
    await lastValueFrom(ch.queueDeclare('audit', { arguments: { 'x-message-ttl': 60_000 } }));
    await lastValueFrom(ch.queueBind('audit', 'logs', ''));
    expect(broker.publish('logs', '', 'hello', { messageId: 'a' })).toBe(1);
    const q = broker.queue('audit')!;
    expect(q).toMatchObject({
      name: 'audit',
      messageCount: 1,
      messageBytes: 5,
      unackedCount: 0,
      consumerCount: 0,
    });
    expect(q.arguments).toEqual({ 'x-message-ttl': 60_000 });
    expect(q.messages[0]).toMatchObject({ exchange: 'logs', routingKey: '', redelivered: false });
    expect(q.messages[0]!.properties.messageId).toBe('a');
    expect(q.messages[0]!.expiresAt).toBeGreaterThan(Date.now());
    expect(broker.exchange('logs')).toEqual({
      name: 'logs',
      vhost: '/',
      type: 'fanout',
      durable: true,
      autoDelete: false,
      internal: false,
      arguments: {},
    });
    expect(broker.bindings()).toEqual([
      { source: 'logs', destination: 'audit', destinationType: 'queue', routingKey: '', arguments: {} },
    ]);
    expect(broker.purgeQueue('audit')).toBe(1);
  });

  it('resets everything, closing the connections', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    broker.reset();
    const error = await ended(conn);
    expect(error).toMatchObject({ replyCode: 320 });
    expect(broker.queues()).toEqual([]);
    expect(broker.exchanges().map((e) => e.name)).toEqual([
      '',
      'amq.direct',
      'amq.fanout',
      'amq.topic',
      'amq.headers',
      'amq.match',
    ]);
  });

  it('closes its connections on shutdown as RabbitMQ does, and refuses new ones', async () => {
    const conn = await open();
    broker.close();
    const error = await ended(conn);
    expect(error).toMatchObject({
      replyCode: 320,
      replyText: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
    });
    const e = await rejection(connectTo(broker));
    expect(e).toMatchObject({ code: 'CONNECTION_LOST' });
  });
});
