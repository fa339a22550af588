import { map, tap, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { marbles } from 'rxjs-marbles/jest';
import { ackAll, ackOnSuccess, batchAck, decodeJson, nackAll } from '../../../operators/index.js';
import { ChannelClosedError, Delivery } from '../../../src/index.js';
import { marbleKit, settlement } from '../../../src/testing/index.js';

const { ack, nack, reject } = settlement;

describe('fake deliveries', () => {
  it(
    'are real Delivery objects with the body, properties and fields asked for, tags in order',
    marbles((m) => {
      const channel = marbleKit(m).channel({ consumerTag: 'ctag' });
      const text = channel.delivery('hello');
      const json = channel.delivery({ body: { id: 1 }, properties: { contentType: 'application/json' } });
      const bytes = channel.delivery({ body: new Uint8Array([1, 2]), redelivered: true, routingKey: 'rk' });
      const chosen = channel.delivery({ deliveryTag: 10, exchange: 'ex', messageCount: 3 });
      const next = channel.delivery();
      expect(text).toBeInstanceOf(Delivery);
      expect(text.text()).toBe('hello');
      expect(json.json()).toEqual({ id: 1 });
      expect(json.properties).toEqual({ contentType: 'application/json' });
      expect([...bytes.body]).toEqual([1, 2]);
      expect(bytes.fields).toEqual({
        deliveryTag: 3,
        redelivered: true,
        exchange: '',
        routingKey: 'rk',
        consumerTag: 'ctag',
      });
      expect(chosen.fields).toMatchObject({ deliveryTag: 10, exchange: 'ex', messageCount: 3 });
      expect(next.fields.deliveryTag).toBe(11);
      expect(next.body).toHaveLength(0);
    }),
  );

  it(
    'settle once, as Delivery does, and the channel records what was sent, with its frame',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b-c|', { a: 'one', b: 'two', c: 'three' });
      const result = source.pipe(
        tap((d) => {
          if (d.text() === 'two') d.nack({ requeue: false });
          if (d.text() === 'three') d.reject();
        }),
        ackAll(), // sends nothing for the two settled already
        map((d) => d.settled),
      );
      m.expect(result).toBeObservable('-t-t-t|', { t: true });
      m.expect(channel.settlements$).toBeObservable('-a-b-c', {
        a: ack(1),
        b: nack(2, { requeue: false }),
        c: reject(3),
      });
      m.flush();
      expect(channel.settlements).toEqual([ack(1), nack(2, { requeue: false }), reject(3)]);
      expect(channel.events.map((e) => [e.time, e.type])).toEqual([
        [1, 'settled'],
        [3, 'settled'],
        [5, 'settled'],
      ]);
      const { a } = source.deliveries;
      expect([a.ack(), a.nack(), a.reject(), a.markSettled()]).toEqual([false, false, false, false]);
      expect(channel.unsettledTags).toEqual([]);
    }),
  );

  it(
    'show settlements made while the test sets up on settlements$ at frame 0',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      channel.delivery().reject({ requeue: false });
      m.expect(channel.settlements$).toBeObservable('a', { a: reject(1, { requeue: false }) });
    }),
  );

  it(
    'received with noAck are settled from the start and send nothing',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const d = channel.delivery({ body: 'x', noAck: true });
      expect([d.settled, d.ack()]).toEqual([true, false]);
      expect(channel.settlements).toEqual([]);
    }),
  );

  it(
    'close the channel with 406 PRECONDITION_FAILED when a tag is settled twice (a multiple ack covered it)',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const [a, b] = [channel.delivery(), channel.delivery()];
      b.ack({ multiple: true }); // covers a, which the code forgets to mark settled
      expect(a.settled).toBe(false);
      expect(a.ack()).toBe(true); // sent: the broker answers by closing the channel
      expect(channel.isOpen).toBe(false);
      expect(channel.error).toBeInstanceOf(ChannelClosedError);
      expect(channel.error).toMatchObject({ replyCode: 406, classId: 60, methodId: 80 });
      expect(channel.delivery().ack()).toBe(false); // nothing is sent on a closed channel
      expect(channel.settlements).toEqual([ack(2, { multiple: true }), ack(1)]);
      m.expect(channel.settlements$).toBeObservable(
        '(ab#)',
        { a: ack(2, { multiple: true }), b: ack(1) },
        channel.error,
      );
    }),
  );

  it(
    'let batchAck be checked against the broker view: one multiple ack per batch, nothing twice',
    marbles((m) => {
      const channel = marbleKit(m).channel({ consumerTag: 'c' });
      const source = channel.cold('-ab-c---d|', { a: '1', b: '2', c: '3', d: '4' });
      const { a, b, c, d } = source.deliveries;
      m.expect(source.pipe(batchAck({ count: 2, timeMs: 3 }))).toBeObservable('--(ab)-c-(d|)', {
        a,
        b,
        c,
        d,
      });
      m.expect(channel.settlements$).toBeObservable('--a----b-c', {
        a: ack(2, { multiple: true }),
        b: ack(3, { multiple: true }),
        c: ack(4, { multiple: true }),
      });
      m.flush();
      expect(channel.isOpen).toBe(true);
      expect(channel.unsettledTags).toEqual([]);
    }),
  );

  it(
    'run through ackOnSuccess and decodeJson: a bad body rejected, a failing handler requeued',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.hot('^-a-b---c-|', {
        a: { body: { n: 1 } },
        b: 'not json',
        c: { body: { n: -1 } },
      });
      const handled = source.pipe(
        decodeJson<{ n: number }>(),
        map(({ delivery }) => delivery),
        ackOnSuccess(
          (d) => {
            const { n } = d.json<{ n: number }>();
            if (n < 0) throw new Error('negative');
            return m.cold('--r|', { r: n * 10 });
          },
          { onError: 'requeue', concurrency: 2 },
        ),
      );
      m.expect(handled).toBeObservable('----x-----|', { x: 10 });
      m.expect(channel.settlements$).toBeObservable('----(ab)c', {
        a: reject(2, { requeue: false }),
        b: ack(1),
        c: nack(3),
      });
    }),
  );

  it('work the same inside TestScheduler.run, given the scheduler or the helpers', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run((helpers) => {
      for (const kit of [marbleKit(scheduler), marbleKit({ ...helpers, scheduler })]) {
        const channel = kit.channel();
        const source = channel.cold('-a-b|', { a: 'x', b: 'y' });
        helpers.expectObservable(source.pipe(nackAll({ requeue: false }), toArray())).toBe('----(l|)', {
          l: [source.deliveries.a, source.deliveries.b],
        });
        helpers.expectObservable(channel.settlements$).toBe('-a-b', {
          a: nack(1, { requeue: false }),
          b: nack(2, { requeue: false }),
        });
        helpers.expectSubscriptions(source.subscriptions).toBe('^---!');
      }
    });
  });

  it(
    'come as hot streams too, whose subscriptions rxjs-marbles can check',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.hot('-a-^-b-c|', { a: 'early', b: 'b', c: 'c' });
      m.expect(source.pipe(ackAll()), '^--!').toBeObservable('--b', source.deliveries);
      m.expect(source).toHaveSubscriptions('^--!');
      m.expect(channel.settlements$).toBeObservable('--b', { b: ack(2) });
      m.flush();
      expect(channel.unsettledTags).toEqual([1, 3]);
    }),
  );
});
