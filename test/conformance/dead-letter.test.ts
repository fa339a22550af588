/**
 * Conformance: message TTL and dead-lettering. Per-queue (`x-message-ttl`, 0 included) and
 * per-message (`expiration`) TTL, including that a per-message TTL only takes effect at the head of
 * the queue; invalid expirations; dead-lettering of rejected, expired and max-length messages with
 * the exact `x-death` and `x-first-death-*` headers (timestamps normalised, wire types pinned),
 * dead-letter routing keys, a missing dead-letter exchange, and the counts of a message that goes
 * round a retry loop twice.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { type Channel, type Delivery, type FieldTable, fieldTypesOf } from '../../src/node.js';
import { backends } from './backends.js';
import {
  channelError,
  collect,
  countsOf,
  deathHeaders,
  drain,
  eventually,
  getOne,
  publish,
  publishAll,
  shapeOf,
  sleep,
  texts,
  useBroker,
} from './support.js';

describe.each(backends)('TTL and dead-lettering [$name]', (backend) => {
  const broker = useBroker(backend);

  async function declare(ch: Channel, prefix: string, args: FieldTable = {}): Promise<string> {
    const q = broker.queue(prefix);
    await lastValueFrom(ch.queueDeclare(q, { arguments: args }));
    return q;
  }

  /** basic.get, polling until a message comes. */
  async function getEventually(ch: Channel, q: string): Promise<Delivery> {
    const d = await eventually(
      () => getOne(ch, q, { noAck: true }),
      (x) => x !== undefined,
      `a message in ${q}`,
    );
    return d!;
  }

  describe('TTL', () => {
    it('expires messages after the queue TTL; a consumer that comes later gets none', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'queue-ttl', { 'x-message-ttl': 30 });
      await publishAll(ch, q, ['1', '2', '3']);
      await eventually(
        () => countsOf(ch, q),
        (c) => c.messageCount === 0,
        'the messages to expire',
      );
      expect(await getOne(ch, q)).toBeUndefined();
    });

    it('expires a message after its own expiration', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'message-ttl');
      await publishAll(ch, q, ['short'], { expiration: '30' });
      await publishAll(ch, q, ['long'], { expiration: '60000' });
      await sleep(60);
      const d = await getOne(ch, q, { noAck: true });
      // The delivered message keeps its expiration property.
      expect([d?.text(), d?.properties.expiration, d?.fields.messageCount]).toEqual(['long', '60000', 0]);
    });

    it('drops an expired message only when it reaches the head of the queue', async () => {
      // Per-message TTL is checked at the head: an expired message behind a live one still counts and
      // is dropped (not delivered) once the messages before it are gone. RabbitMQ drops it as part of
      // the get that uncovers it: that get-ok already counts 0 messages left.
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'ttl-head');
      await publishAll(ch, q, ['head']);
      await publishAll(ch, q, ['behind'], { expiration: '10' });
      await sleep(60);
      expect(await countsOf(ch, q)).toEqual({ messageCount: 2, consumerCount: 0 });
      const d = await getOne(ch, q, { noAck: true });
      expect([d?.text(), d?.fields.messageCount]).toEqual(['head', 0]);
      expect(await getOne(ch, q, { noAck: true })).toBeUndefined();
      expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 0 });
    });

    it('with a queue TTL of 0, delivers only to a consumer ready at once and drops the rest', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'ttl-zero', { 'x-message-ttl': 0 });
      await publishAll(ch, q, ['nobody waiting']);
      expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 0 });
      const consumer = collect((await broker.channel()).consume(q, { noAck: true }));
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 1,
        'the consumer',
      );
      await publishAll(ch, q, ['taken at once']);
      expect(texts(await consumer.take(1))).toEqual(['taken at once']);
    });

    it('applies the lower of the queue TTL and the message expiration', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'ttl-lower', { 'x-message-ttl': 60000 });
      await publishAll(ch, q, ['short'], { expiration: '20' });
      await eventually(
        () => countsOf(ch, q),
        (c) => c.messageCount === 0,
        'the message to expire',
      );
    });

    it('closes the channel with 406 for an expiration that is not a number of milliseconds', async () => {
      const ch = await broker.channel();
      const q = await declare(ch, 'bad-expiration');
      expect(await publish(ch, '', q, 'x', { expiration: 'soon' })).toEqual({ status: 'sent' });
      await eventually(
        async () => ch.isOpen,
        (open) => !open,
        'the channel to close',
      );
      expect(shapeOf(ch.error)).toEqual(
        channelError(406, `PRECONDITION_FAILED - invalid expiration 'soon': no_integer`, 60, 40),
      );
    });
  });

  describe('dead-lettering', () => {
    it('dead-letters a rejected message with x-death reason rejected, to the dead-letter routing key', async () => {
      const ch = await broker.confirmChannel();
      const dlq = await declare(ch, 'dlq');
      const q = await declare(ch, 'rejecting', {
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq,
      });
      await publishAll(ch, q, ['no thanks'], { messageId: 'm1', headers: { own: 'header' } });
      const d = await getOne(ch, q);
      d?.reject({ requeue: false });
      const dead = await getEventually(ch, dlq);
      expect([dead.text(), dead.fields.exchange, dead.fields.routingKey, dead.fields.redelivered]).toEqual([
        'no thanks',
        '',
        dlq,
        false,
      ]);
      expect(dead.properties.messageId).toBe('m1');
      expect(deathHeaders(dead)).toEqual({
        own: 'header',
        'x-death': [
          { count: 1, reason: 'rejected', queue: q, time: '<timestamp>', exchange: '', 'routing-keys': [q] },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': q,
        'x-first-death-reason': 'rejected',
      });
      // The count is a long (l) and the time a timestamp (T) on the wire.
      const deaths = dead.properties.headers?.['x-death'];
      expect(deaths).toBeInstanceOf(Array);
      const entry = (deaths as FieldTable[])[0] ?? {};
      expect(fieldTypesOf(entry)).toEqual({ count: 'l' });
      expect(entry.time).toBeInstanceOf(Date);
    });

    it('dead-letters a nacked message the same way, and keeps the original keys without a dead-letter routing key', async () => {
      const ch = await broker.confirmChannel();
      const dlx = broker.exchange('dlx');
      await lastValueFrom(ch.exchangeDeclare(dlx, 'topic'));
      const dlq = await declare(ch, 'dlq-topic');
      await lastValueFrom(ch.queueBind(dlq, dlx, '#'));
      const src = broker.exchange('src');
      await lastValueFrom(ch.exchangeDeclare(src, 'direct'));
      const q = await declare(ch, 'nacking', { 'x-dead-letter-exchange': dlx });
      await lastValueFrom(ch.queueBind(q, src, 'orders.new'));
      expect((await publish(ch, src, 'orders.new', 'nacked')).status).toBe('acked');
      const d = await getOne(ch, q);
      d?.nack({ requeue: false });
      const dead = await getEventually(ch, dlq);
      expect([dead.fields.exchange, dead.fields.routingKey]).toEqual([dlx, 'orders.new']);
      expect(deathHeaders(dead)).toEqual({
        'x-death': [
          {
            count: 1,
            reason: 'rejected',
            queue: q,
            time: '<timestamp>',
            exchange: src,
            'routing-keys': ['orders.new'],
          },
        ],
        'x-first-death-exchange': src,
        'x-first-death-queue': q,
        'x-first-death-reason': 'rejected',
      });
    });

    it('dead-letters a message expired by the queue TTL with reason expired', async () => {
      const ch = await broker.confirmChannel();
      const dlq = await declare(ch, 'dlq-expired');
      const q = await declare(ch, 'expiring', {
        'x-message-ttl': 20,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq,
      });
      await publishAll(ch, q, ['too late']);
      const dead = await getEventually(ch, dlq);
      expect(deathHeaders(dead)).toEqual({
        'x-death': [
          { count: 1, reason: 'expired', queue: q, time: '<timestamp>', exchange: '', 'routing-keys': [q] },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': q,
        'x-first-death-reason': 'expired',
      });
    });

    it('records the original expiration of a message expired by its own TTL, and removes the property', async () => {
      const ch = await broker.confirmChannel();
      const dlq = await declare(ch, 'dlq-msg-expired');
      const q = await declare(ch, 'msg-expiring', {
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq,
      });
      await publishAll(ch, q, ['too late'], { expiration: '20' });
      const dead = await getEventually(ch, dlq);
      expect(dead.properties.expiration).toBeUndefined();
      expect(deathHeaders(dead)).toEqual({
        'x-death': [
          {
            count: 1,
            reason: 'expired',
            queue: q,
            time: '<timestamp>',
            exchange: '',
            'routing-keys': [q],
            'original-expiration': '20',
          },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': q,
        'x-first-death-reason': 'expired',
      });
    });

    it('dead-letters the oldest message over x-max-length with reason maxlen', async () => {
      const ch = await broker.confirmChannel();
      const dlq = await declare(ch, 'dlq-maxlen');
      const q = await declare(ch, 'bounded', {
        'x-max-length': 2,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq,
      });
      await publishAll(ch, q, ['1', '2', '3']);
      const dead = await getEventually(ch, dlq);
      expect(dead.text()).toBe('1');
      expect(deathHeaders(dead)).toEqual({
        'x-death': [
          { count: 1, reason: 'maxlen', queue: q, time: '<timestamp>', exchange: '', 'routing-keys': [q] },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': q,
        'x-first-death-reason': 'maxlen',
      });
      expect(await drain(ch, q)).toEqual(['2', '3']);
    });

    it('counts each queue and reason once per round of a retry loop, the latest first', async () => {
      // work --rejected--> wait (TTL) --expired--> work: each round bumps the count of its entry and
      // moves it to the front; x-first-death-* stay those of the first death.
      const ch = await broker.confirmChannel();
      const work = broker.queue('work');
      const wait = broker.queue('wait');
      await lastValueFrom(
        ch.queueDeclare(work, {
          arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': wait },
        }),
      );
      await lastValueFrom(
        ch.queueDeclare(wait, {
          arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': work },
        }),
      );
      await publishAll(ch, work, ['retry me']);
      const first = await eventually(
        () => getOne(ch, work),
        (d) => d !== undefined,
        'the first delivery',
      );
      expect(first?.properties.headers).toBeUndefined();
      first?.reject({ requeue: false });
      const second = await eventually(
        () => getOne(ch, work),
        (d) => d !== undefined,
        'the second delivery',
      );
      expect(deathHeaders(second!)).toEqual({
        'x-death': [
          {
            count: 1,
            reason: 'expired',
            queue: wait,
            time: '<timestamp>',
            exchange: '',
            'routing-keys': [wait],
          },
          {
            count: 1,
            reason: 'rejected',
            queue: work,
            time: '<timestamp>',
            exchange: '',
            'routing-keys': [work],
          },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': work,
        'x-first-death-reason': 'rejected',
      });
      second?.reject({ requeue: false });
      const third = await eventually(
        () => getOne(ch, work, { noAck: true }),
        (d) => d !== undefined,
        'the third',
      );
      expect(deathHeaders(third!)).toEqual({
        'x-death': [
          {
            count: 2,
            reason: 'expired',
            queue: wait,
            time: '<timestamp>',
            exchange: '',
            'routing-keys': [wait],
          },
          {
            count: 2,
            reason: 'rejected',
            queue: work,
            time: '<timestamp>',
            exchange: '',
            'routing-keys': [work],
          },
        ],
        'x-first-death-exchange': '',
        'x-first-death-queue': work,
        'x-first-death-reason': 'rejected',
      });
    });

    it('drops a message dead-lettered to an exchange that does not exist', async () => {
      const ch = await broker.confirmChannel();
      const q = await declare(ch, 'dlx-missing', { 'x-dead-letter-exchange': broker.name('no-dlx') });
      await publishAll(ch, q, ['gone']);
      (await getOne(ch, q))?.reject({ requeue: false });
      await eventually(
        () => countsOf(ch, q),
        (c) => c.messageCount === 0,
        'the message to go',
      );
      expect(ch.isOpen).toBe(true);
    });
  });
});
