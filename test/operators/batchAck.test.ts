import { marbles } from 'rxjs-marbles/jest';
import { batchAck } from '../../operators/index.js';
import { ConfigurationError } from '../../src/node.js';
import { fakeChannel } from './fakeDeliveries.js';

describe('batchAck', () => {
  it(
    'acks with multiple once `count` deliveries wait, and what remains on completion',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, c] = [delivery(1), delivery(2), delivery(3)];
      const result = m.cold('-abc----|', { a, b, c }).pipe(batchAck({ count: 2 }));
      m.expect(result).toBeObservable('--(ab)--(c|)', { a, b, c });
      m.flush();
      expect(calls).toEqual([
        ['ack', 2, true, false],
        ['ack', 3, true, false],
      ]);
      expect([a.settled, b.settled, c.settled]).toEqual([true, true, true]);
    }),
  );

  it(
    'acks as soon as possible without count or timeMs',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b] = [delivery(1), delivery(2)];
      m.expect(m.cold('-a-b|', { a, b }).pipe(batchAck())).toBeObservable('-a-b|', { a, b });
      m.flush();
      expect(calls).toEqual([
        ['ack', 1, true, false],
        ['ack', 2, true, false],
      ]);
    }),
  );

  it(
    'never acks beyond a delivery it has not received (out-of-order completion)',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, c, d, e] = [delivery(1), delivery(2), delivery(3), delivery(4), delivery(5)];
      const result = m.cold('b-c-a--------e-d---|', { a, b, c, d, e }).pipe(batchAck());
      m.expect(result).toBeObservable('----(abc)------(de)|', { a, b, c, d, e });
      m.flush();
      expect(calls).toEqual([
        ['ack', 3, true, false],
        ['ack', 5, true, false],
      ]);
    }),
  );

  it(
    'leaves deliveries behind a gap unacked and unemitted on completion',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, c, d] = [delivery(1), delivery(3), delivery(4)];
      const result = m.cold('-dca|', { a, c, d }).pipe(batchAck({ count: 10 }));
      m.expect(result).toBeObservable('----(a|)', { a });
      m.flush();
      expect(calls).toEqual([['ack', 1, true, false]]);
      expect([a.settled, c.settled, d.settled]).toEqual([true, false, false]);
    }),
  );

  it(
    'waits for the gap when `count` is reached behind it',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, c] = [delivery(1), delivery(2), delivery(3)];
      const result = m.cold('-cb-a----|', { a, b, c }).pipe(batchAck({ count: 2 }));
      m.expect(result).toBeObservable('----(abc)|', { a, b, c });
      m.flush();
      expect(calls).toEqual([['ack', 3, true, false]]);
    }),
  );

  it(
    'acks `timeMs` after the first delivery of a batch (virtual time)',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, c] = [delivery(1), delivery(2), delivery(3)];
      const result = m.cold('-a-b----c-|', { a, b, c }).pipe(batchAck({ timeMs: 5 }));
      m.expect(result).toBeObservable('------(ab)(c|)', { a, b, c });
      m.flush();
      expect(calls).toEqual([
        ['ack', 2, true, false],
        ['ack', 3, true, false],
      ]);
    }),
  );

  it(
    'flushes by whichever of count and timeMs comes first',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, c, d] = [delivery(1), delivery(2), delivery(3), delivery(4)];
      const result = m.cold('-abc-d------------|', { a, b, c, d }).pipe(batchAck({ count: 3, timeMs: 10 }));
      m.expect(result).toBeObservable('---(abc)-------d--|', { a, b, c, d });
      m.flush();
      expect(calls).toEqual([
        ['ack', 3, true, false],
        ['ack', 4, true, false],
      ]);
    }),
  );

  it(
    'retries a batch stuck behind a gap when a later delivery starts a timer',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b] = [delivery(1), delivery(2)];
      const result = m.cold('-b----a------|', { a, b }).pipe(batchAck({ timeMs: 3 }));
      // b's timer fires at frame 4 with nothing ackable; a (frame 6) starts another.
      m.expect(result).toBeObservable('---------(ab)|', { a, b });
      m.flush();
      expect(calls).toEqual([['ack', 2, true, false]]);
    }),
  );

  it(
    'acks what it can on unsubscription, without emitting',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, d] = [delivery(1), delivery(2), delivery(4)];
      const result = m.cold('-abd-----|', { a, b, d }).pipe(batchAck({ count: 10, timeMs: 100 }));
      m.expect(result, '^-----!').toBeObservable('-------');
      m.flush();
      expect(calls).toEqual([['ack', 2, true, false]]);
      expect(d.settled).toBe(false);
    }),
  );

  it(
    'acks what it can before forwarding a source error',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b] = [delivery(1), delivery(2)];
      const error = new Error('channel closed');
      const result = m.cold('-ab#', { a, b }, error).pipe(batchAck({ count: 10 }));
      m.expect(result).toBeObservable('---(ab#)', { a, b }, error);
      m.flush();
      expect(calls).toEqual([['ack', 2, true, false]]);
    }),
  );

  it(
    'lets settled deliveries fill their place, carrying the ack on the highest unsettled one',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const [a, b, c, d] = [delivery(1), delivery(2), delivery(3), delivery(4)];
      c.reject({ requeue: false });
      d.nack({ requeue: true });
      const result = m.cold('-dcba-----|', { a, b, c, d }).pipe(batchAck({ count: 4 }));
      m.expect(result).toBeObservable('----(abcd)|', { a, b, c, d });
      m.flush();
      expect(calls).toEqual([
        ['reject', 3, false, false],
        ['nack', 4, false, true],
        ['ack', 2, true, false],
      ]);
    }),
  );

  it(
    'sends nothing for a batch that is all settled already',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      a.reject();
      m.expect(m.cold('-a|', { a }).pipe(batchAck())).toBeObservable('-a|', { a });
      m.flush();
      expect(calls).toEqual([['reject', 1, false, true]]);
    }),
  );

  it(
    'tracks the tags of each consumer tag separately',
    marbles((m) => {
      const one = fakeChannel({ consumerTag: 'one' });
      const two = fakeChannel({ consumerTag: 'two' });
      const [a1, a2] = [one.delivery(1), one.delivery(2)];
      const [b1, b2] = [two.delivery(1), two.delivery(2)];
      const result = m.cold('-wxy---z|', { w: a2, x: b1, y: a1, z: b2 }).pipe(batchAck());
      m.expect(result).toBeObservable('--x(yw)z|', { w: a2, x: b1, y: a1, z: b2 });
      m.flush();
      expect(one.calls).toEqual([['ack', 2, true, false]]);
      expect(two.calls).toEqual([
        ['ack', 1, true, false],
        ['ack', 2, true, false],
      ]);
    }),
  );

  it(
    'starts afresh when tags restart (a new channel with the same consumer tag)',
    marbles((m) => {
      const before = fakeChannel({ consumerTag: 'c' });
      const after = fakeChannel({ consumerTag: 'c' });
      const [a1, a2, a4] = [before.delivery(1), before.delivery(2), before.delivery(4)];
      const b1 = after.delivery(1);
      const result = m.cold('-abcd|', { a: a1, b: a2, c: a4, d: b1 }).pipe(batchAck());
      m.expect(result).toBeObservable('-ab-d|', { a: a1, b: a2, d: b1 });
      m.flush();
      expect(before.calls).toEqual([
        ['ack', 1, true, false],
        ['ack', 2, true, false],
      ]);
      expect(after.calls).toEqual([['ack', 1, true, false]]);
      expect(a4.settled).toBe(false);
    }),
  );

  it('refuses a count below 1 and a negative timeMs', () => {
    expect(() => batchAck({ count: 0 })).toThrow(ConfigurationError);
    expect(() => batchAck({ timeMs: -1 })).toThrow(ConfigurationError);
    expect(() => batchAck({ count: 5, timeMs: 0 })).not.toThrow();
  });
});
