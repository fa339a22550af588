/**
 * Conformance: queue length limits and quorum queues. `x-max-length` with drop-head and
 * reject-publish (nacked under confirms, silently dropped without), `reject-publish-dlx`,
 * `x-max-length-bytes`; quorum queues: what they refuse at declare, `x-delivery-count` on
 * redeliveries, `x-delivery-limit` dropping or dead-lettering a message requeued too often, and where
 * a requeued message goes back.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import type { Channel, FieldTable } from '../../src/node.js';
import { backends } from './backends.js';
import {
  channelError,
  collect,
  countsOf,
  deathHeaders,
  drain,
  errorOf,
  eventually,
  getOne,
  publish,
  publishAll,
  useBroker,
} from './support.js';

describe.each(backends)('limits and quorum queues [$name]', (backend) => {
  const broker = useBroker(backend);

  async function declare(ch: Channel, prefix: string, args: FieldTable, durable = false): Promise<string> {
    const q = broker.queue(prefix);
    await lastValueFrom(ch.queueDeclare(q, { durable, arguments: args }));
    return q;
  }

  describe('max length', () => {
    it('drops the oldest messages over x-max-length by default (drop-head), and the publishes are acked', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'drop-head', { 'x-max-length': 3 });
      const outcomes = await Promise.all(['1', '2', '3', '4', '5'].map((b) => publish(ch, '', q, b)));
      expect(outcomes.map((o) => o.status)).toEqual(['acked', 'acked', 'acked', 'acked', 'acked']);
      expect(await countsOf(ch, q)).toEqual({ messageCount: 3, consumerCount: 0 });
      expect(await drain(ch, q)).toEqual(['3', '4', '5']);
    });

    it('nacks publishes to a full queue with reject-publish, keeping the messages it has', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'reject-publish', { 'x-max-length': 2, 'x-overflow': 'reject-publish' });
      const outcomes = [];
      for (const b of ['1', '2', '3', '4']) outcomes.push(await publish(ch, '', q, b));
      expect(outcomes).toEqual([
        { status: 'acked', seq: 1 },
        { status: 'acked', seq: 2 },
        { status: 'nacked', seq: 3 },
        { status: 'nacked', seq: 4 },
      ]);
      // Room again after a get: the next publish is taken.
      expect((await getOne(ch, q, { noAck: true }))?.text()).toBe('1');
      expect(await publish(ch, '', q, '5')).toEqual({ status: 'acked', seq: 5 });
      expect(await drain(ch, q)).toEqual(['2', '5']);
    });

    it('counts only ready messages towards the limit, not unacked ones, and drops silently without confirms', async () => {
      const pub = await broker.confirmChannel();
      const q = await declare(pub, 'reject-unconfirmed', {
        'x-max-length': 2,
        'x-overflow': 'reject-publish',
      });
      await publishAll(pub, q, ['1']);
      const holder = await broker.channel();
      const held = await getOne(holder, q);
      expect(held?.text()).toBe('1');
      // One unacked message does not count: two more fit, the third is refused.
      expect(await publish(pub, '', q, '2')).toEqual({ status: 'acked', seq: 2 });
      expect(await publish(pub, '', q, '3')).toEqual({ status: 'acked', seq: 3 });
      expect(await publish(pub, '', q, '4')).toEqual({ status: 'nacked', seq: 4 });
      const plain = await broker.channel();
      expect(await publish(plain, '', q, '5')).toEqual({ status: 'sent' });
      // Ordered after the publish on the same channel: by now the broker has refused it.
      expect(await countsOf(plain, q)).toEqual({ messageCount: 2, consumerCount: 0 });
      expect(plain.isOpen).toBe(true);
      // Requeued on close, the unacked message goes back over the limit: nothing is dropped for it.
      await lastValueFrom(holder.close());
      expect(await drain(pub, q)).toEqual(['1', '2', '3']);
    });

    it('dead-letters what reject-publish-dlx refuses, with reason maxlen, and nacks it', async () => {
      const ch = await broker.confirmChannel();
      const dlq = await declare(ch, 'dlq', {});
      const q = await declare(ch, 'reject-dlx', {
        'x-max-length': 1,
        'x-overflow': 'reject-publish-dlx',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq,
      });
      expect(await publish(ch, '', q, '1')).toEqual({ status: 'acked', seq: 1 });
      expect(await publish(ch, '', q, '2')).toEqual({ status: 'nacked', seq: 2 });
      const dead = await eventually(
        () => getOne(ch, dlq, { noAck: true }),
        (d) => d !== undefined,
        'the dead letter',
      );
      expect(dead?.text()).toBe('2');
      expect(deathHeaders(dead!)).toEqual({
        'x-death': [
          { count: 1, reason: 'maxlen', queue: q, time: '<timestamp>', exchange: '', 'routing-keys': [q] },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': q,
        'x-first-death-reason': 'maxlen',
      });
      expect(await drain(ch, q)).toEqual(['1']);
    });

    it('limits the bytes of message bodies with x-max-length-bytes, dropping from the head', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'max-bytes', { 'x-max-length-bytes': 5 });
      await publishAll(ch, q, ['123', '45', '678']);
      expect(await drain(ch, q)).toEqual(['45', '678']);
    });

    it('refuses an unknown x-overflow value with 406', async () => {
      const ch = await broker.channel();
      const q = broker.queue('bad-overflow');
      expect(await errorOf(ch.queueDeclare(q, { arguments: { 'x-overflow': 'explode' } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-overflow' for queue '${q}' in vhost '${broker.vhost}': invalid_overflow`,
          50,
          10,
        ),
      );
    });
  });

  describe('quorum queues', () => {
    const quorum = (extra: FieldTable = {}): FieldTable => ({ 'x-queue-type': 'quorum', ...extra });

    it('refuses non-durable, exclusive and auto-delete quorum queues with 406', async () => {
      const cases: [string, { durable?: boolean; exclusive?: boolean; autoDelete?: boolean }, string][] = [
        ['non-durable', { durable: false }, 'non-durable'],
        ['exclusive', { durable: true, exclusive: true }, 'exclusive-owner'],
        ['auto-delete', { durable: true, autoDelete: true }, 'auto-delete'],
      ];
      for (const [what, flags, property] of cases) {
        const ch = await broker.channel();
        const q = broker.queue(`quorum-${what}`);
        expect([what, await errorOf(ch.queueDeclare(q, { ...flags, arguments: quorum() }))]).toEqual([
          what,
          channelError(
            406,
            `PRECONDITION_FAILED - invalid property '${property}' for queue '${q}' in vhost '${broker.vhost}'`,
            50,
            10,
          ),
        ]);
      }
    });

    it('counts deliveries in x-delivery-count and drops a message requeued past x-delivery-limit', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'delivery-limit', quorum({ 'x-delivery-limit': 2 }), true);
      await publishAll(ch, q, ['again']);
      const seen: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const d = await eventually(
          () => getOne(ch, q),
          (x) => x !== undefined,
          `delivery ${i + 1}`,
        );
        seen.push([d?.fields.redelivered, d?.properties.headers?.['x-delivery-count']]);
        d?.nack({ requeue: true });
      }
      // Every delivery of a quorum queue carries the header, 0 the first time; each requeue adds one;
      // the third requeue passes the limit.
      expect(seen).toEqual([
        [false, 0],
        [true, 1],
        [true, 2],
      ]);
      await eventually(
        () => countsOf(ch, q),
        (c) => c.messageCount === 0,
        'the message to be dropped',
      );
      expect(await getOne(ch, q)).toBeUndefined();
    });

    it("leaves x-delivery-count out of a consumer's first delivery, and counts the redeliveries", async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'count-consume', quorum({}), true);
      await publishAll(ch, q, ['counted']);
      const consumer = collect(ch.consume(q, { prefetch: 1 }));
      try {
        const [first] = await consumer.take(1);
        // A basic.get shows 0 the first time (above); a consumer's first delivery has no header.
        expect([first?.fields.redelivered, first?.properties.headers?.['x-delivery-count']]).toEqual([
          false,
          undefined,
        ]);
        first?.nack({ requeue: true });
        const [second] = await consumer.take(1);
        expect([second?.fields.redelivered, second?.properties.headers?.['x-delivery-count']]).toEqual([
          true,
          1,
        ]);
        second?.ack();
      } finally {
        consumer.stop();
      }
    });

    it('dead-letters a message past x-delivery-limit with reason delivery_limit', async () => {
      const ch = await broker.confirmChannel();
      const dlq = await declare(ch, 'dlq-limit', {});
      const q = await declare(
        ch,
        'limit-dlx',
        quorum({ 'x-delivery-limit': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq }),
        true,
      );
      await publishAll(ch, q, ['poison']);
      for (let i = 0; i < 2; i++) {
        const d = await eventually(
          () => getOne(ch, q),
          (x) => x !== undefined,
          `delivery ${i + 1}`,
        );
        d?.reject({ requeue: true });
      }
      const dead = await eventually(
        () => getOne(ch, dlq, { noAck: true }),
        (d) => d !== undefined,
        'the dead letter',
      );
      expect(dead?.text()).toBe('poison');
      expect(deathHeaders(dead!)).toEqual({
        'x-death': [
          {
            count: 1,
            reason: 'delivery_limit',
            queue: q,
            time: '<timestamp>',
            exchange: '',
            'routing-keys': [q],
          },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': q,
        'x-first-death-reason': 'delivery_limit',
      });
    });

    it('puts a requeued message at the back of a quorum queue, in the order requeued', async () => {
      // Unlike classic queues (original position, ahead of the rest), a RabbitMQ 3.10 quorum queue
      // puts requeued messages behind the ones never delivered, in the order they came back.
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'quorum-requeue', quorum(), true);
      await publishAll(ch, q, ['1', '2', '3', '4']);
      const got = [];
      for (let i = 0; i < 3; i++)
        got.push(
          await eventually(
            () => getOne(ch, q),
            (x) => x !== undefined,
            'a message',
          ),
        );
      got[2]?.nack({ requeue: true });
      got[0]?.nack({ requeue: true });
      // The returns reach the queue asynchronously: wait until both are ready again.
      await eventually(
        () => countsOf(ch, q),
        (c) => c.messageCount === 3,
        'the requeues',
      );
      const again = [];
      for (let i = 0; i < 3; i++)
        again.push(
          await eventually(
            () => getOne(ch, q, { noAck: true }),
            (x) => x !== undefined,
            'a message',
          ),
        );
      expect(again.map((d) => [d?.text(), d?.fields.redelivered])).toEqual([
        ['4', false],
        ['3', true],
        ['1', true],
      ]);
      got[1]?.ack();
    });
  });
});
