import { marbles } from 'rxjs-marbles/jest';
import { nackAll } from '../../operators/index.js';
import { fakeChannel } from './fakeDeliveries.js';

describe('nackAll', () => {
  it(
    'nacks each delivery with requeue by default and emits it unchanged',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      const b = delivery(2);
      m.expect(m.cold('-a-b|', { a, b }).pipe(nackAll())).toBeObservable('-a-b|', { a, b });
      m.flush();
      expect(calls).toEqual([
        ['nack', 1, false, true],
        ['nack', 2, false, true],
      ]);
      expect([a.settled, b.settled]).toEqual([true, true]);
    }),
  );

  it(
    'nacks without requeue with requeue: false, and skips settled deliveries',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      const b = delivery(2);
      b.ack();
      m.expect(m.cold('-ab|', { a, b }).pipe(nackAll({ requeue: false }))).toBeObservable('-ab|', { a, b });
      m.flush();
      expect(calls).toEqual([
        ['ack', 2, false, false],
        ['nack', 1, false, false],
      ]);
    }),
  );
});
