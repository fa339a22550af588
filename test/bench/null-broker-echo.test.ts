/**
 * The null broker's echo responder (direct reply-to, for the `rpc` bench scenario): requests published
 * to a queue declared with `x-null-echo: true` with a reply-to of `amq.rabbitmq.reply-to` come back at
 * once on the channel's reply consumer with their correlation id; everything else is as before.
 */
import amqplib from 'amqplib';
import { count, lastValueFrom, mergeMap, range } from 'rxjs';
import { ECHO_ARGUMENT, type NullBroker, startNullBroker } from '../../bench/lib/null-broker.js';
import { type Channel, type Connection, openConnection } from '../../src/node.js';

const REPLY_TO = 'amq.rabbitmq.reply-to';

async function declareEcho(ch: Channel, queue: string): Promise<void> {
  await lastValueFrom(ch.queueDeclare(queue, { durable: false, arguments: { [ECHO_ARGUMENT]: true } }));
}

async function depth(ch: Channel, queue: string): Promise<number> {
  return (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).messageCount;
}

describe('null broker echo (direct reply-to)', () => {
  let broker: NullBroker;
  let conn: Connection;
  let ch: Channel;

  beforeAll(async () => {
    broker = await startNullBroker();
    conn = await openConnection(broker.url);
    ch = await conn.openChannel();
    await declareEcho(ch, 'echo');
    await lastValueFrom(ch.queueDeclare('plain', { durable: false }));
  });

  afterAll(async () => {
    if (conn?.isOpen) await lastValueFrom(conn.close());
    await broker?.close();
  });

  it("answers rxamqp's channel.request with a reply of the request's size", async () => {
    const body = Buffer.alloc(256, 0x7a);
    const reply = await lastValueFrom(ch.request('', 'echo', body));
    expect(reply.body.length).toBe(256);
    expect(Buffer.from(reply.body).toString('latin1')).toBe('a'.repeat(256));
    expect(reply.fields.exchange).toBe('');
    expect(reply.fields.routingKey).toBe(REPLY_TO);
    expect(reply.properties.correlationId).toEqual(expect.any(String));
    expect(await depth(ch, 'echo')).toBe(0);
  });

  it('answers 1,000 requests, 100 in flight, each to its own request', async () => {
    const before = broker.stats();
    const answered = await lastValueFrom(
      range(0, 1000).pipe(
        mergeMap(() => ch.request('', 'echo', Buffer.alloc(256)), 100),
        count(),
      ),
    );
    expect(answered).toBe(1000);
    const after = broker.stats();
    expect(after.published - before.published).toBe(1000);
    expect(after.delivered - before.delivered).toBe(1000);
  });

  it('copies the correlation id past the other properties, and answers a multi-frame body', async () => {
    const c = await openConnection(broker.url);
    try {
      const other = await c.openChannel();
      const replies: { id: string | undefined; size: number; tag: string }[] = [];
      const consumer = other.consume(REPLY_TO, { noAck: true, consumerTag: 'my-replies' }).subscribe((d) => {
        replies.push({
          id: d.properties.correlationId,
          size: d.body.length,
          tag: d.fields.consumerTag ?? '',
        });
      });
      // The reply consumer is started by the time a round trip on the same channel returns.
      await depth(other, 'echo');
      const properties = {
        contentType: 'application/octet-stream',
        contentEncoding: 'identity',
        headers: { trace: 'x'.repeat(300), n: 7 },
        deliveryMode: 2 as const,
        priority: 3,
        replyTo: REPLY_TO,
      };
      await lastValueFrom(
        other.publish('', 'echo', Buffer.alloc(300_000), { ...properties, correlationId: 'big' }),
      );
      await lastValueFrom(other.publish('', 'echo', '', { ...properties, correlationId: 'empty' }));
      await lastValueFrom(other.publish('', 'echo', 'x', { replyTo: REPLY_TO }));
      await new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 5000;
        const poll = (): void => {
          if (replies.length >= 3) resolve();
          else if (Date.now() > deadline) reject(new Error(`only ${replies.length} replies`));
          else setTimeout(poll, 5);
        };
        poll();
      });
      expect(replies).toEqual([
        { id: 'big', size: 300_000, tag: 'my-replies' },
        { id: 'empty', size: 0, tag: 'my-replies' },
        { id: undefined, size: 1, tag: 'my-replies' },
      ]);
      consumer.unsubscribe();
    } finally {
      await lastValueFrom(c.close());
    }
  });

  it('matches replies to requests by correlation id for a hand-written amqplib client', async () => {
    const c = await amqplib.connect(broker.url);
    try {
      const ach = await c.createChannel();
      const got = new Map<string, { routingKey: string; size: number }>();
      await ach.consume(
        REPLY_TO,
        (msg) => {
          if (msg !== null) {
            got.set(String(msg.properties.correlationId), {
              routingKey: msg.fields.routingKey,
              size: msg.content.length,
            });
          }
        },
        { noAck: true },
      );
      for (let i = 0; i < 50; i++) {
        ach.sendToQueue('echo', Buffer.alloc(i), { replyTo: REPLY_TO, correlationId: `req-${i}` });
      }
      const deadline = Date.now() + 5000;
      while (got.size < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(got.size).toBe(50);
      for (let i = 0; i < 50; i++) expect(got.get(`req-${i}`)).toEqual({ routingKey: REPLY_TO, size: i });
    } finally {
      await c.close();
    }
  });

  it('leaves ordinary publishes alone: no reply-to, another reply-to, or a queue that is not an echo queue', async () => {
    const before = broker.stats();
    await lastValueFrom(ch.queuePurge('echo'));
    await lastValueFrom(ch.publish('', 'echo', 'no reply-to'));
    await lastValueFrom(
      ch.publish('', 'echo', 'a reply queue', { replyTo: 'my-reply-queue', correlationId: '1' }),
    );
    await lastValueFrom(
      ch.publish('', 'plain', 'not an echo queue', { replyTo: REPLY_TO, correlationId: '2' }),
    );
    expect(await depth(ch, 'echo')).toBe(2);
    expect(await depth(ch, 'plain')).toBe(1);
    const after = broker.stats();
    expect(after.published - before.published).toBe(3);
    expect(after.delivered - before.delivered).toBe(0);
    await lastValueFrom(ch.queuePurge('echo'));
    await lastValueFrom(ch.queuePurge('plain'));
  });

  it('confirms a request on a channel in confirm mode', async () => {
    const c = await openConnection(broker.url);
    try {
      const cch = await c.openChannel();
      await lastValueFrom(cch.confirmSelect());
      const reply = await lastValueFrom(cch.request('', 'echo', 'ping'));
      expect(reply.body.length).toBe(4);
    } finally {
      await lastValueFrom(c.close());
    }
  });

  it('closes the channel with 406 on a request without a reply consumer, and on an acking reply consumer', async () => {
    const c = await amqplib.connect(broker.url);
    c.on('error', () => undefined);
    try {
      const a = await c.createChannel();
      const aClosed = new Promise<Error>((resolve) => a.once('error', resolve));
      a.sendToQueue('echo', Buffer.from('x'), { replyTo: REPLY_TO, correlationId: 'lost' });
      expect((await aClosed).message).toMatch(/406.*fast reply consumer does not exist/);

      const b = await c.createChannel();
      const bClosed = new Promise<Error>((resolve) => b.once('error', resolve));
      await expect(b.consume(REPLY_TO, () => undefined, { noAck: false })).rejects.toThrow();
      expect((await bClosed).message).toMatch(/406.*cannot acknowledge/);
    } finally {
      await c.close();
    }
  });
});
