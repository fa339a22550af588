import { marbles } from 'rxjs-marbles/jest';
import { rejectAll } from '../../operators/index.js';
import { fakeChannel } from './fakeDeliveries.js';

describe('rejectAll', () => {
  it(
    'rejects each delivery with requeue by default and emits it unchanged',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      const b = delivery(2);
      m.expect(m.cold('-a-b|', { a, b }).pipe(rejectAll())).toBeObservable('-a-b|', { a, b });
      m.flush();
      expect(calls).toEqual([
        ['reject', 1, false, true],
        ['reject', 2, false, true],
      ]);
    }),
  );

  it(
    'rejects without requeue with requeue: false, and skips settled deliveries',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      const b = delivery(2);
      a.ack();
      m.expect(m.cold('-ab|', { a, b }).pipe(rejectAll({ requeue: false }))).toBeObservable('-ab|', { a, b });
      m.flush();
      expect(calls).toEqual([
        ['ack', 1, false, false],
        ['reject', 2, false, false],
      ]);
    }),
  );
});
