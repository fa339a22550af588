import { tap } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { ackAll } from '../../operators/index.js';
import { fakeChannel } from './fakeDeliveries.js';

describe('ackAll', () => {
  it(
    'acks each delivery before emitting it unchanged',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      const b = delivery(2);
      const settledWhenEmitted: boolean[] = [];
      const result = m.cold('-a-b|', { a, b }).pipe(
        ackAll(),
        tap((d) => settledWhenEmitted.push(d.settled)),
      );
      m.expect(result).toBeObservable('-a-b|', { a, b });
      m.flush();
      expect(calls).toEqual([
        ['ack', 1, false, false],
        ['ack', 2, false, false],
      ]);
      expect(settledWhenEmitted).toEqual([true, true]);
    }),
  );

  it(
    'sends nothing for a delivery already settled, and still emits it',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      a.reject({ requeue: false });
      m.expect(m.cold('-a|', { a }).pipe(ackAll())).toBeObservable('-a|', { a });
      m.flush();
      expect(calls).toEqual([['reject', 1, false, false]]);
    }),
  );

  it(
    'passes errors through',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1);
      m.expect(m.cold('-a#', { a }).pipe(ackAll())).toBeObservable('-a#', { a });
      m.flush();
      expect(calls).toEqual([['ack', 1, false, false]]);
    }),
  );
});
