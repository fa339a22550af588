import { marbles } from 'rxjs-marbles/jest';
import { rejectAll } from '../../operators/index.js';
import { marbleKit, settlement } from '../../src/testing/index.js';

const { ack, reject } = settlement;

describe('rejectAll', () => {
  it(
    'rejects each delivery with requeue by default and emits it unchanged',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', { a: 'm1', b: 'm2' });
      m.expect(source.pipe(rejectAll())).toBeObservable('-a-b|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('-a-b', { a: reject(1), b: reject(2) });
    }),
  );

  it(
    'rejects without requeue with requeue: false, and skips settled deliveries',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-ab|', { a: 'm1', b: 'm2' });
      source.deliveries.a.ack();
      m.expect(source.pipe(rejectAll({ requeue: false }))).toBeObservable('-ab|', source.deliveries);
      m.flush();
      expect(channel.settlements).toEqual([ack(1), reject(2, { requeue: false })]);
    }),
  );
});
