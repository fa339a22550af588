import { map } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { ackAll } from '../../operators/index.js';
import { marbleKit, settlement } from '../../src/testing/index.js';

const { ack, reject } = settlement;

describe('ackAll', () => {
  it(
    'acks each delivery before emitting it unchanged',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', { a: 'm1', b: 'm2' });
      const { a, b } = source.deliveries;
      // Each delivery itself, settled when emitted.
      const result = source.pipe(
        ackAll(),
        map((d) => [d, d.settled]),
      );
      m.expect(result).toBeObservable('-a-b|', { a: [a, true], b: [b, true] });
      m.expect(channel.settlements$).toBeObservable('-a-b', { a: ack(1), b: ack(2) });
    }),
  );

  it(
    'sends nothing for a delivery already settled, and still emits it',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const a = channel.delivery();
      a.reject({ requeue: false });
      m.expect(m.cold('-a|', { a }).pipe(ackAll())).toBeObservable('-a|', { a });
      m.flush();
      expect(channel.settlements).toEqual([reject(1, { requeue: false })]);
    }),
  );

  it(
    'passes errors through',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a#', { a: 'm1' });
      m.expect(source.pipe(ackAll())).toBeObservable('-a#', source.deliveries);
      m.flush();
      expect(channel.settlements).toEqual([ack(1)]);
    }),
  );
});
