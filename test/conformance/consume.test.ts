/**
 * Conformance: consumers. What a delivery carries (tags, flags, the server-generated consumer tag),
 * consumer tags reused (530, a connection error) and on missing queues (404), noLocal (ignored),
 * exclusive consumers (403), round robin across consumers, per-consumer and `global` prefetch,
 * cancel notifications when a queue is deleted, noAck consumers, what cancelling leaves unacked,
 * requeueing when a channel closes (redelivered, original order) or on a nack, message and consumer
 * priorities, single active consumer, and basic.recover.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { backends } from './backends.js';
import {
  channelError,
  collect,
  connectionError,
  connectionErrorOnChannel,
  countsOf,
  eventually,
  getOne,
  publishAll,
  redelivered,
  shapeOf,
  sleep,
  texts,
  useBroker,
} from './support.js';

/** How long a case waits to see that nothing more is delivered. */
const QUIET_MS = 100;

describe.each(backends)('consume [$name]', (backend) => {
  const broker = useBroker(backend);

  async function queueWith(prefix: string, bodies: readonly string[]): Promise<string> {
    const ch = await broker.confirmChannel();
    const q = broker.queue(prefix);
    await lastValueFrom(ch.queueDeclare(q));
    await publishAll(ch, q, bodies);
    return q;
  }

  it('delivers in publish order with consecutive delivery tags from 1 and a server-generated amq.ctag- tag', async () => {
    const q = await queueWith('fields', ['a', 'b', 'c']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q));
    const ds = await consumer.take(3);
    expect(texts(ds)).toEqual(['a', 'b', 'c']);
    const tag = ds[0]?.fields.consumerTag;
    expect(tag).toMatch(/^amq\.ctag-[A-Za-z0-9_-]{22}$/);
    expect(ds.map((d) => d.fields)).toEqual(
      [1, 2, 3].map((deliveryTag) => ({
        deliveryTag,
        redelivered: false,
        exchange: '',
        routingKey: q,
        consumerTag: tag,
      })),
    );
    // Delivery tags count per channel, across consumers and gets.
    const second = collect(ch.consume(await queueWith('fields-2', ['d'])));
    expect((await second.take(1))[0]?.fields.deliveryTag).toBe(4);
    for (const d of ds) d.ack();
  });

  it('uses the consumer tag the client chose; reusing it on the same channel closes the connection with 530', async () => {
    const q = await queueWith('tags', ['x']);
    const conn = await broker.connect();
    const ch = await broker.channel(conn);
    const first = collect(ch.consume(q, { consumerTag: 'conformance-tag', noAck: true }));
    expect((await first.take(1))[0]?.fields.consumerTag).toBe('conformance-tag');
    // The same tag on another channel is another consumer.
    const other = await broker.channel(conn);
    const elsewhere = collect(other.consume(q, { consumerTag: 'conformance-tag' }));
    await eventually(
      () => countsOf(other, q),
      (c) => c.consumerCount === 2,
      'two consumers',
    );
    const reuse = collect(ch.consume(q, { consumerTag: 'conformance-tag' }));
    expect(shapeOf(await reuse.error())).toEqual(
      connectionErrorOnChannel(530, `NOT_ALLOWED - attempt to reuse consumer tag 'conformance-tag'`, 60, 20),
    );
    expect(conn.isOpen).toBe(false);
    expect(shapeOf(conn.error)).toEqual(
      connectionError(530, `NOT_ALLOWED - attempt to reuse consumer tag 'conformance-tag'`, 60, 20),
    );
    // Every consumer of the connection ends with it.
    for (const stream of [first, elsewhere]) {
      expect(shapeOf(await stream.error())).toEqual(
        connectionErrorOnChannel(
          530,
          `NOT_ALLOWED - attempt to reuse consumer tag 'conformance-tag'`,
          60,
          20,
        ),
      );
    }
  });

  it('ignores noLocal: a consumer gets what its own connection published', async () => {
    const q = await queueWith('no-local', []);
    const conn = await broker.connection();
    const ch = await broker.channel(conn);
    const consumer = collect(ch.consume(q, { noLocal: true, noAck: true }));
    await eventually(
      () => countsOf(ch, q),
      (c) => c.consumerCount === 1,
      'the consumer',
    );
    await publishAll(await broker.confirmChannel(conn), q, ['mine']);
    expect(texts(await consumer.take(1))).toEqual(['mine']);
  });

  it('fails a consumer of a missing queue with 404, closing its channel', async () => {
    const ch = await broker.channel();
    const q = broker.name('missing');
    const consumer = collect(ch.consume(q));
    expect(shapeOf(await consumer.error())).toEqual(
      channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 60, 20),
    );
    expect(ch.isOpen).toBe(false);
  });

  it.each([
    ['classic', {}],
    ['quorum', { 'x-queue-type': 'quorum' }],
  ])(
    'refuses stream consumer arguments (x-stream-offset) on a %s queue with 406, closing its channel',
    async (type, args) => {
      const ch = await broker.channel();
      const q = broker.queue(`not-a-stream-${type}`);
      await lastValueFrom(ch.queueDeclare(q, { durable: true, arguments: args }));
      await publishAll(await broker.confirmChannel(), q, ['kept']);
      const consumer = collect(ch.consume(q, { prefetch: 5, arguments: { 'x-stream-offset': 'first' } }));
      expect(shapeOf(await consumer.error())).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '${q}' in vhost '${broker.vhost}' of queue type rabbit_${type}_queue`,
          60,
          20,
        ),
      );
      expect(ch.isOpen).toBe(false);
      expect((await getOne(await broker.channel(), q, { noAck: true }))?.text()).toBe('kept');
    },
  );

  it('refuses an exclusive consumer on a queue with consumers, and any consumer beside an exclusive one, with 403', async () => {
    const q = await queueWith('exclusive', []);
    const ch = await broker.channel();
    const plain = collect(ch.consume(q));
    await eventually(
      () => countsOf(ch, q),
      (c) => c.consumerCount === 1,
      'the consumer',
    );
    const ch2 = await broker.channel();
    const refused = collect(ch2.consume(q, { exclusive: true }));
    expect(shapeOf(await refused.error())).toEqual(
      channelError(403, `ACCESS_REFUSED - queue '${q}' in vhost '${broker.vhost}' in exclusive use`, 60, 20),
    );
    plain.stop();
    const ch3 = await broker.channel();
    const exclusive = collect(ch3.consume(q, { exclusive: true }));
    await eventually(
      () => countsOf(ch3, q),
      (c) => c.consumerCount === 1,
      'the exclusive consumer',
    );
    const ch4 = await broker.channel();
    const beside = collect(ch4.consume(q));
    expect(shapeOf(await beside.error())).toEqual(
      channelError(403, `ACCESS_REFUSED - queue '${q}' in vhost '${broker.vhost}' in exclusive use`, 60, 20),
    );
    // Even on the exclusive consumer's own channel.
    const again = collect(ch3.consume(q));
    expect(shapeOf(await again.error())).toEqual(
      channelError(403, `ACCESS_REFUSED - queue '${q}' in vhost '${broker.vhost}' in exclusive use`, 60, 20),
    );
    // That 403 closed ch3, and with it the exclusive consumer, whose stream ends with the same error.
    expect(shapeOf(await exclusive.error())).toEqual(
      channelError(403, `ACCESS_REFUSED - queue '${q}' in vhost '${broker.vhost}' in exclusive use`, 60, 20),
    );
  });

  it('round-robins messages across consumers', async () => {
    const q = await queueWith('rr', []);
    const [ch1, ch2] = [await broker.channel(), await broker.channel()];
    const a = collect(ch1.consume(q, { noAck: true }));
    await eventually(
      () => countsOf(ch1, q),
      (c) => c.consumerCount === 1,
      'consumer a',
    );
    const b = collect(ch2.consume(q, { noAck: true }));
    await eventually(
      () => countsOf(ch1, q),
      (c) => c.consumerCount === 2,
      'consumer b',
    );
    const pub = await broker.confirmChannel();
    await publishAll(pub, q, ['1', '2', '3', '4', '5', '6']);
    expect(texts(await a.take(3))).toEqual(['1', '3', '5']);
    expect(texts(await b.take(3))).toEqual(['2', '4', '6']);
  });

  it('gives a consumer no more than its prefetch of unacked messages, and the next one on each ack', async () => {
    const q = await queueWith('prefetch', ['1', '2', '3', '4', '5']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q, { prefetch: 2 }));
    const [d1, d2] = await consumer.take(2);
    await sleep(QUIET_MS);
    expect(consumer.waiting).toBe(0);
    expect(await countsOf(ch, q)).toEqual({ messageCount: 3, consumerCount: 1 });
    d2?.ack();
    expect(texts(await consumer.take(1))).toEqual(['3']);
    d1?.ack();
    expect(texts(await consumer.take(1))).toEqual(['4']);
    await sleep(QUIET_MS);
    expect(consumer.waiting).toBe(0);
  });

  it('applies a global prefetch to the consumers of the channel together', async () => {
    // RabbitMQ's reading of basic.qos global=true: one limit shared by all the channel's consumers
    // (not the connection's, as the AMQP specification says).
    const q = await queueWith('global', ['1', '2', '3', '4', '5', '6', '7', '8']);
    const ch = await broker.channel();
    await lastValueFrom(ch.qos(3, { global: true }));
    const a = collect(ch.consume(q));
    const fromA = await a.take(3);
    const b = collect(ch.consume(q));
    await eventually(
      () => countsOf(ch, q),
      (c) => c.consumerCount === 2,
      'two consumers',
    );
    await sleep(QUIET_MS);
    expect([a.waiting, b.waiting]).toEqual([0, 0]);
    expect(await countsOf(ch, q)).toEqual({ messageCount: 5, consumerCount: 2 });
    // Each ack frees one slot of the channel's limit.
    fromA[0]?.ack();
    await eventually(
      async () => a.waiting + b.waiting,
      (n) => n === 1,
      'one more delivery',
    );
    await sleep(QUIET_MS);
    expect(a.waiting + b.waiting).toBe(1);
  });

  it('lifts a global prefetch when a per-consumer prefetch is set after it', async () => {
    // RabbitMQ (3.10) clears the channel's global limit on every basic.qos with global=false, and
    // consume({ prefetch }) sends one before its basic.consume: the consumers below get 2 each, 4
    // unacked in all, above the global 3 set first.
    const q = await queueWith('global-lifted', ['1', '2', '3', '4', '5', '6', '7', '8']);
    const ch = await broker.channel();
    await lastValueFrom(ch.qos(3, { global: true }));
    const a = collect(ch.consume(q, { prefetch: 2 }));
    await a.take(2);
    const b = collect(ch.consume(q, { prefetch: 2 }));
    await b.take(2);
    await sleep(QUIET_MS);
    expect([a.waiting, b.waiting]).toEqual([0, 0]);
    expect(await countsOf(ch, q)).toEqual({ messageCount: 4, consumerCount: 2 });
  });

  it("ends a consumer's stream with ConsumerCancelledError when its queue is deleted, leaving the channel open", async () => {
    const q = await queueWith('cancelled', []);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q, { consumerTag: 'conformance-cancelled' }));
    await eventually(
      () => countsOf(ch, q),
      (c) => c.consumerCount === 1,
      'the consumer',
    );
    const other = await broker.channel();
    await lastValueFrom(other.queueDelete(q));
    const error = await consumer.error();
    expect(shapeOf(error)).toEqual({ name: 'ConsumerCancelledError', code: 'CONSUMER_CANCELLED' });
    expect(error).toMatchObject({ consumerTag: 'conformance-cancelled', queue: q });
    expect(ch.isOpen).toBe(true);
    await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
  });

  it('delivers to a noAck consumer without unacked messages: the queue is empty at once and settling does nothing', async () => {
    const q = await queueWith('noack', ['1', '2', '3']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q, { noAck: true, prefetch: 1 }));
    const ds = await consumer.take(3);
    expect(texts(ds)).toEqual(['1', '2', '3']);
    expect(ds.map((d) => [d.settled, d.ack()])).toEqual([
      [true, false],
      [true, false],
      [true, false],
    ]);
    expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 1 });
  });

  it('leaves unacked messages with the channel when their consumer is cancelled: they can still be acked', async () => {
    const q = await queueWith('cancel-unacked', ['1', '2', '3']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q, { prefetch: 2 }));
    const [d1, d2] = await consumer.take(2);
    consumer.stop();
    await eventually(
      () => countsOf(ch, q),
      (c) => c.consumerCount === 0,
      'the cancel',
    );
    // Not requeued by the cancel: only the never-delivered message is ready.
    expect(await countsOf(ch, q)).toEqual({ messageCount: 1, consumerCount: 0 });
    expect(d1?.ack()).toBe(true);
    await lastValueFrom(ch.close());
    // d2 came back when the channel closed, marked redelivered, ahead of 3.
    const ch2 = await broker.channel();
    const next = collect(ch2.consume(q, { noAck: true }));
    const ds = await next.take(2);
    expect([texts(ds), redelivered(ds)]).toEqual([
      [d2?.text(), '3'],
      [true, false],
    ]);
  });

  it('requeues the unacked messages of a closed channel in their original order, redelivered, ahead of the rest', async () => {
    const q = await queueWith('close-requeue', ['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q, { prefetch: 5 }));
    const ds = await consumer.take(5);
    ds[1]?.ack();
    ds[3]?.ack();
    // Two acks free two slots: 6 and 7 come and stay unacked, 8 and 9 are never delivered.
    expect(texts(await consumer.take(2))).toEqual(['6', '7']);
    await lastValueFrom(ch.close());
    // The client closed the channel: the consumer's stream completes.
    expect(await consumer.end()).toBe('complete');
    const ch2 = await broker.channel();
    const again = collect(ch2.consume(q, { noAck: true }));
    const back = await again.take(7);
    expect([texts(back), redelivered(back)]).toEqual([
      ['1', '3', '5', '6', '7', '8', '9'],
      [true, true, true, true, true, false, false],
    ]);
  });

  it('gives a message nacked with requeue back to the consumer before the next one: it keeps its position', async () => {
    const q = await queueWith('nack-consumer', ['1', '2', '3']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q, { prefetch: 1 }));
    const [d1] = await consumer.take(1);
    d1?.nack({ requeue: true });
    const [again] = await consumer.take(1);
    expect([again?.text(), again?.fields.redelivered]).toEqual(['1', true]);
    again?.reject({ requeue: false });
    const [d2] = await consumer.take(1);
    expect([d2?.text(), d2?.fields.redelivered]).toEqual(['2', false]);
  });

  describe('priorities and single active consumer', () => {
    it('delivers higher message priorities first, capped at x-max-priority, FIFO within a priority', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('priority');
      await lastValueFrom(ch.queueDeclare(q, { arguments: { 'x-max-priority': 5 } }));
      for (const [body, priority] of [
        ['p0', 0],
        ['p3', 3],
        ['p9', 9],
        ['none', undefined],
        ['p5', 5],
        ['p3 again', 3],
      ] as const) {
        await publishAll(ch, q, [body], priority === undefined ? {} : { priority });
      }
      const out: unknown[] = [];
      for (;;) {
        const d = await getOne(ch, q, { noAck: true });
        if (d === undefined) break;
        out.push([d.text(), d.properties.priority]);
      }
      // 9 counts as 5 (and keeps its property); no priority counts as 0.
      expect(out).toEqual([
        ['p9', 9],
        ['p5', 5],
        ['p3', 3],
        ['p3 again', 3],
        ['p0', 0],
        ['none', undefined],
      ]);
    });

    it('feeds the consumer of highest x-priority while it has room, then the others', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('consumer-priority');
      await lastValueFrom(ch.queueDeclare(q));
      const low = collect((await broker.channel()).consume(q, { prefetch: 2 }));
      const high = collect(
        (await broker.channel()).consume(q, { prefetch: 2, arguments: { 'x-priority': 5 } }),
      );
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 2,
        'two consumers',
      );
      await publishAll(ch, q, ['1', '2', '3', '4', '5']);
      expect(texts(await high.take(2))).toEqual(['1', '2']);
      expect(texts(await low.take(2))).toEqual(['3', '4']);
      await sleep(QUIET_MS);
      expect([high.waiting, low.waiting]).toEqual([0, 0]);
    });

    it('delivers to one consumer only with x-single-active-consumer, and to the next when it goes', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('sac');
      await lastValueFrom(ch.queueDeclare(q, { arguments: { 'x-single-active-consumer': true } }));
      const first = collect((await broker.channel()).consume(q, { noAck: true }));
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 1,
        'the first consumer',
      );
      const second = collect((await broker.channel()).consume(q, { noAck: true }));
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 2,
        'the second consumer',
      );
      await publishAll(ch, q, ['1', '2', '3']);
      expect(texts(await first.take(3))).toEqual(['1', '2', '3']);
      first.stop();
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 1,
        'the cancel',
      );
      await publishAll(ch, q, ['4']);
      expect(texts(await second.take(1))).toEqual(['4']);
      expect(second.received.length).toBe(1);
    });
  });

  it('redelivers unacked messages to the consumer on basic.recover with requeue', async () => {
    const q = await queueWith('recover', ['1', '2']);
    const ch = await broker.channel();
    const consumer = collect(ch.consume(q));
    const first = await consumer.take(2);
    expect(redelivered(first)).toEqual([false, false]);
    await lastValueFrom(ch.recover({ requeue: true }));
    const again = await consumer.take(2);
    expect([texts(again), redelivered(again)]).toEqual([
      ['1', '2'],
      [true, true],
    ]);
    expect(again.map((d) => d.fields.deliveryTag)).toEqual([3, 4]);
    for (const d of again) d.ack();
    await eventually(
      () => countsOf(ch, q),
      (c) => c.messageCount === 0,
      'an empty queue',
    );
  });
});
