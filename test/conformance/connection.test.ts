/**
 * Conformance: the connection and channel lifecycle as the broker shapes it. The negotiated tune and
 * the capabilities the broker announces; which errors close only a channel (soft: 403, 404, 405,
 * 406) and which close the connection (hard: 503, 530, 540), with what every other operation then
 * sees; the methods RabbitMQ does not implement (channel.flow off, basic.recover without requeue,
 * a prefetch size); channel numbers the client refuses before the broker could answer 504; and
 * direct reply-to.
 *
 * @module
 */
import { firstValueFrom, lastValueFrom } from 'rxjs';
import type { Connection } from '../../src/node.js';
import { backends } from './backends.js';
import {
  channelError,
  collect,
  connectionError,
  connectionErrorOnChannel,
  errorOf,
  eventually,
  publish,
  shapeOf,
  useBroker,
  withTimeout,
} from './support.js';

describe.each(backends)('connection and channels [$name]', (backend) => {
  const broker = useBroker(backend);

  /** Waits for the broker to close `conn` and returns the shape of its error. */
  async function closedWith(conn: Connection) {
    await eventually(
      async () => conn.isOpen,
      (open) => !open,
      'the connection to close',
    );
    return shapeOf(conn.error);
  }

  it('negotiates channel_max 2047 and frame_max 131072, and the lower heartbeat (the broker proposes 60)', async () => {
    // 0 from one side leaves the choice to the other: a client asking 0 gets the broker's 60.
    expect((await broker.connect({ heartbeat: 0 })).tune).toEqual({
      channelMax: 2047,
      frameMax: 131072,
      heartbeat: 60,
    });
    expect((await broker.connect({ heartbeat: 600 })).tune).toEqual({
      channelMax: 2047,
      frameMax: 131072,
      heartbeat: 60,
    });
    expect((await broker.connect({ heartbeat: 7 })).tune).toEqual({
      channelMax: 2047,
      frameMax: 131072,
      heartbeat: 7,
    });
  });

  it('announces the capabilities RabbitMQ announces', async () => {
    const conn = await broker.connection();
    expect(conn.serverProperties.capabilities).toEqual({
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      consumer_priorities: true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
  });

  it('closes only the channel on a soft error: operations queued behind fail with its reply, siblings go on', async () => {
    const conn = await broker.connection();
    const ch = await broker.channel(conn);
    const sibling = await broker.channel(conn);
    const q = broker.name('missing');
    const failing = errorOf(ch.queueDeclare(q, { passive: true }));
    const queued = errorOf(ch.queueDeclare('', { exclusive: true }));
    const reply = channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 50, 10);
    expect(await failing).toEqual(reply);
    // An operation already queued when the close came fails with the close itself.
    expect(await queued).toEqual(reply);
    // Later use says the same, and the channel's own error is the broker's close.
    expect(await errorOf(ch.queueDeclare('', { exclusive: true }))).toEqual({
      ...reply,
      code: 'CHANNEL_CLOSED',
    });
    expect(shapeOf(ch.error)).toEqual(reply);
    expect([ch.isOpen, sibling.isOpen, conn.isOpen]).toEqual([false, true, true]);
    await lastValueFrom(sibling.queueDeclare('', { exclusive: true }));
    // A channel opened afterwards may take the closed one's number.
    const next = await broker.channel(conn);
    await lastValueFrom(next.queueDeclare('', { exclusive: true }));
  });

  it('answers nothing to a nowait method, and closes the channel later when it fails', async () => {
    const conn = await broker.connection();
    const ch = await broker.channel(conn);
    const q = broker.queue('nowait');
    const x = broker.exchange('nowait');
    await lastValueFrom(ch.queueDeclareNoWait(q));
    await lastValueFrom(ch.exchangeDeclare(x, 'fanout', { nowait: true }));
    await lastValueFrom(ch.queueBind(q, x, '', { nowait: true }));
    // The next synchronous method's reply shows the nowait ones were done, in order.
    expect(await lastValueFrom(ch.queueDeclare(q, { passive: true }))).toEqual({
      queue: q,
      messageCount: 0,
      consumerCount: 0,
    });
    await lastValueFrom(ch.queueDeclareNoWait(q, { durable: true }));
    const reply = channelError(
      406,
      `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '${broker.vhost}': received 'true' but current is 'false'`,
      50,
      10,
    );
    await eventually(
      async () => ch.isOpen,
      (open) => !open,
      'the channel to close',
    );
    expect(shapeOf(ch.error)).toEqual(reply);
    expect(await errorOf(ch.queueDeclare(q, { passive: true }))).toEqual({
      ...reply,
      code: 'CHANNEL_CLOSED',
    });
    expect(conn.isOpen).toBe(true);
  });

  it('closes the connection on a hard error: every channel fails with the connection reply', async () => {
    const conn = await broker.connect();
    const ch = await broker.channel(conn);
    const other = await broker.channel(conn);
    const q = broker.queue('hard');
    await lastValueFrom(ch.queueDeclare(q));
    const consumer = collect(other.consume(q));
    await eventually(
      async () => (await lastValueFrom(ch.queueDeclare(q, { passive: true }))).consumerCount,
      (n) => n === 1,
      'the consumer',
    );
    // A prefetch size is not implemented: 540, a hard error.
    const text = 'NOT_IMPLEMENTED - prefetch_size!=0 (1)';
    expect(await errorOf(ch.qos(0, { prefetchSize: 1 }))).toEqual(
      connectionErrorOnChannel(540, text, 60, 10),
    );
    expect(await closedWith(conn)).toEqual(connectionError(540, text, 60, 10));
    expect(shapeOf(await consumer.error())).toEqual(connectionErrorOnChannel(540, text, 60, 10));
    expect([ch.isOpen, other.isOpen]).toEqual([false, false]);
    expect(await errorOf(other.queueDeclare(q, { passive: true }))).toEqual({
      ...connectionErrorOnChannel(540, text, 60, 10),
      code: 'CHANNEL_CLOSED',
    });
    expect(await errorOf(firstValueFrom(conn.channel()))).toEqual(connectionError(540, text, 60, 10));
  });

  it('answers channel.flow(true) and closes the connection with 540 for channel.flow(false)', async () => {
    const conn = await broker.connect();
    const ch = await broker.channel(conn);
    expect(await lastValueFrom(ch.flow(true))).toBe(true);
    expect(await errorOf(ch.flow(false))).toEqual(
      connectionErrorOnChannel(540, 'NOT_IMPLEMENTED - active=false', 20, 20),
    );
    expect(await closedWith(conn)).toEqual(connectionError(540, 'NOT_IMPLEMENTED - active=false', 20, 20));
  });

  it('closes the connection with 540 for basic.recover without requeue', async () => {
    const conn = await broker.connect();
    const ch = await broker.channel(conn);
    expect(await errorOf(ch.recover({ requeue: false }))).toEqual(
      connectionErrorOnChannel(540, 'NOT_IMPLEMENTED - requeue=false', 60, 110),
    );
    expect(await closedWith(conn)).toEqual(connectionError(540, 'NOT_IMPLEMENTED - requeue=false', 60, 110));
  });

  it('refuses, before the broker sees them, a channel number in use or beyond channel_max (which would be 504)', async () => {
    // RabbitMQ answers a second channel.open on an open channel with 504 CHANNEL_ERROR, a connection
    // error; the client never sends one: it refuses the number itself and the connection stays up.
    const conn = await broker.connection();
    const ch = await conn.openChannel({ id: 5 });
    expect(await errorOf(conn.openChannel({ id: 5 }))).toEqual({
      name: 'AmqpError',
      code: 'CHANNEL_UNAVAILABLE',
    });
    expect(await errorOf(conn.openChannel({ id: 2048 }))).toEqual({
      name: 'AmqpError',
      code: 'CHANNEL_UNAVAILABLE',
    });
    expect(await conn.openChannel({ id: 2047 })).toMatchObject({ id: 2047 });
    expect([ch.isOpen, conn.isOpen]).toEqual([true, true]);
  });

  describe('direct reply-to', () => {
    it('delivers a reply published to the amq.rabbitmq.reply-to name the request carried', async () => {
      const server = await broker.channel();
      const q = broker.queue('rpc');
      await lastValueFrom(server.queueDeclare(q));
      const requests = collect(server.consume(q, { noAck: true }));
      const client = await broker.channel();
      const reply = withTimeout(
        firstValueFrom(client.request('', q, 'ping', {}, { timeoutMs: 5000 })),
        'the reply',
      );
      const [request] = await requests.take(1);
      expect(request?.properties.replyTo).toMatch(/^amq\.rabbitmq\.reply-to\./);
      await publish(server, '', request!.properties.replyTo!, 'pong', {
        correlationId: request!.properties.correlationId!,
      });
      const answer = await reply;
      expect([answer.text(), answer.fields.exchange, answer.fields.routingKey]).toEqual([
        'pong',
        '',
        request!.properties.replyTo,
      ]);
    });

    it('refuses a reply-to consumer that would ack, with 406', async () => {
      const ch = await broker.channel();
      const consumer = collect(ch.consume('amq.rabbitmq.reply-to'));
      expect(shapeOf(await consumer.error())).toEqual(
        channelError(406, 'PRECONDITION_FAILED - reply consumer cannot acknowledge', 60, 20),
      );
    });

    it('refuses a publish with reply-to amq.rabbitmq.reply-to from a channel without a reply consumer, with 406', async () => {
      const ch = await broker.channel();
      const q = broker.queue('rpc-no-consumer');
      await lastValueFrom(ch.queueDeclare(q));
      expect(await publish(ch, '', q, 'x', { replyTo: 'amq.rabbitmq.reply-to' })).toEqual({ status: 'sent' });
      await eventually(
        async () => ch.isOpen,
        (open) => !open,
        'the channel to close',
      );
      expect(shapeOf(ch.error)).toEqual(
        channelError(406, 'PRECONDITION_FAILED - fast reply consumer does not exist', 60, 40),
      );
    });
  });
});
