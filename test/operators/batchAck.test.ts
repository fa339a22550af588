import { marbles } from 'rxjs-marbles/jest';
import { batchAck } from '../../operators/index.js';
import { ConfigurationError } from '../../src/node.js';
import { marbleKit, settlement } from '../../src/testing/index.js';

const { ack, nack, reject } = settlement;
const multiple = { multiple: true };
/** A values map naming deliveries a, b, c, ... (tags 1, 2, 3, ... when made in that order). */
const values = <K extends string>(...keys: K[]) =>
  Object.fromEntries(keys.map((key) => [key, `m-${key}`])) as Record<K, string>;

describe('batchAck', () => {
  it(
    'acks with multiple once `count` deliveries wait, and what remains on completion',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-abc----|', values('a', 'b', 'c'));
      m.expect(source.pipe(batchAck({ count: 2 }))).toBeObservable('--(ab)--(c|)', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('--a-----b', {
        a: ack(2, multiple),
        b: ack(3, multiple),
      });
      m.flush();
      expect(channel.unsettledTags).toEqual([]);
      expect(Object.values(source.deliveries).map((d) => d.settled)).toEqual([true, true, true]);
    }),
  );

  it(
    'acks as soon as possible without count or timeMs',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', values('a', 'b'));
      m.expect(source.pipe(batchAck())).toBeObservable('-a-b|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('-a-b', { a: ack(1, multiple), b: ack(2, multiple) });
    }),
  );

  it(
    'never acks beyond a delivery it has not received (out-of-order completion)',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('b-c-a--------e-d---|', values('a', 'b', 'c', 'd', 'e'));
      m.expect(source.pipe(batchAck())).toBeObservable('----(abc)------(de)|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('----a----------b', {
        a: ack(3, multiple),
        b: ack(5, multiple),
      });
    }),
  );

  it(
    'leaves deliveries behind a gap unacked and unemitted on completion',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const { a, b, c, d } = channel.deliveriesOf(values('a', 'b', 'c', 'd'));
      m.expect(m.cold('-dca|', { a, c, d }).pipe(batchAck({ count: 10 }))).toBeObservable('----(a|)', { a });
      m.expect(channel.settlements$).toBeObservable('----a', { a: ack(1, multiple) });
      m.flush();
      expect([a.settled, c.settled, d.settled]).toEqual([true, false, false]);
      expect(channel.unsettledTags).toEqual([
        b.fields.deliveryTag,
        c.fields.deliveryTag,
        d.fields.deliveryTag,
      ]);
    }),
  );

  it(
    'waits for the gap when `count` is reached behind it',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-cb-a----|', values('a', 'b', 'c'));
      m.expect(source.pipe(batchAck({ count: 2 }))).toBeObservable('----(abc)|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('----a', { a: ack(3, multiple) });
    }),
  );

  it(
    'acks `timeMs` after the first delivery of a batch (virtual time)',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b----c-|', values('a', 'b', 'c'));
      m.expect(source.pipe(batchAck({ timeMs: 5 }))).toBeObservable('------(ab)(c|)', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('------a---b', {
        a: ack(2, multiple),
        b: ack(3, multiple),
      });
    }),
  );

  it(
    'flushes by whichever of count and timeMs comes first',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-abc-d------------|', values('a', 'b', 'c', 'd'));
      m.expect(source.pipe(batchAck({ count: 3, timeMs: 10 }))).toBeObservable(
        '---(abc)-------d--|',
        source.deliveries,
      );
      m.expect(channel.settlements$).toBeObservable('---a-----------b', {
        a: ack(3, multiple),
        b: ack(4, multiple),
      });
    }),
  );

  it(
    'retries a batch stuck behind a gap when a later delivery starts a timer',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-b----a------|', values('a', 'b'));
      // b's timer fires at frame 4 with nothing ackable; a (frame 6) starts another.
      m.expect(source.pipe(batchAck({ timeMs: 3 }))).toBeObservable('---------(ab)|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('---------a', { a: ack(2, multiple) });
    }),
  );

  it(
    'acks what it can on unsubscription, without emitting',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const { a, b, d } = channel.deliveriesOf(values('a', 'b', 'c', 'd'));
      const result = m.cold('-abd-----|', { a, b, d }).pipe(batchAck({ count: 10, timeMs: 100 }));
      m.expect(result, '^-----!').toBeObservable('-------');
      m.expect(channel.settlements$).toBeObservable('------a', { a: ack(2, multiple) });
      m.flush();
      expect(d.settled).toBe(false);
    }),
  );

  it(
    'acks what it can before forwarding a source error',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const error = new Error('channel closed');
      const source = channel.cold('-ab#', values('a', 'b'), error);
      m.expect(source.pipe(batchAck({ count: 10 }))).toBeObservable('---(ab#)', source.deliveries, error);
      m.expect(channel.settlements$).toBeObservable('---a', { a: ack(2, multiple) });
    }),
  );

  it(
    'lets settled deliveries fill their place, carrying the ack on the highest unsettled one',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-dcba-----|', values('a', 'b', 'c', 'd'));
      const { c, d } = source.deliveries;
      c.reject({ requeue: false });
      d.nack({ requeue: true });
      m.expect(source.pipe(batchAck({ count: 4 }))).toBeObservable('----(abcd)|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('(ab)c', {
        a: reject(3, { requeue: false }),
        b: nack(4),
        c: ack(2, multiple),
      });
      m.flush();
      // The broker saw each tag settled once: the channel is still open.
      expect([channel.isOpen, channel.unsettledTags]).toEqual([true, []]);
    }),
  );

  it(
    'sends nothing for a batch that is all settled already',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a|', values('a'));
      source.deliveries.a.reject();
      m.expect(source.pipe(batchAck())).toBeObservable('-a|', source.deliveries);
      m.flush();
      expect(channel.settlements).toEqual([reject(1)]);
    }),
  );

  it(
    'tracks the tags of each consumer tag separately',
    marbles((m) => {
      const kit = marbleKit(m);
      const [one, two] = [kit.channel({ consumerTag: 'one' }), kit.channel({ consumerTag: 'two' })];
      const [a1, a2] = [one.delivery(), one.delivery()];
      const [b1, b2] = [two.delivery(), two.delivery()];
      const result = m.cold('-wxy---z|', { w: a2, x: b1, y: a1, z: b2 }).pipe(batchAck());
      m.expect(result).toBeObservable('--x(yw)z|', { w: a2, x: b1, y: a1, z: b2 });
      m.expect(one.settlements$).toBeObservable('---a', { a: ack(2, multiple) });
      m.expect(two.settlements$).toBeObservable('--a----b', { a: ack(1, multiple), b: ack(2, multiple) });
    }),
  );

  it(
    'starts afresh when tags restart (a new channel with the same consumer tag)',
    marbles((m) => {
      const kit = marbleKit(m);
      const [before, after] = [kit.channel({ consumerTag: 'c' }), kit.channel({ consumerTag: 'c' })];
      const [a1, a2, a4] = [before.delivery(), before.delivery(), before.delivery({ deliveryTag: 4 })];
      const b1 = after.delivery();
      const result = m.cold('-abcd|', { a: a1, b: a2, c: a4, d: b1 }).pipe(batchAck());
      m.expect(result).toBeObservable('-ab-d|', { a: a1, b: a2, d: b1 });
      m.expect(before.settlements$).toBeObservable('-ab', { a: ack(1, multiple), b: ack(2, multiple) });
      m.expect(after.settlements$).toBeObservable('----a', { a: ack(1, multiple) });
      m.flush();
      expect(a4.settled).toBe(false);
    }),
  );

  it('refuses a count below 1 and a negative timeMs', () => {
    expect(() => batchAck({ count: 0 })).toThrow(ConfigurationError);
    expect(() => batchAck({ timeMs: -1 })).toThrow(ConfigurationError);
    expect(() => batchAck({ count: 5, timeMs: 0 })).not.toThrow();
  });
});
