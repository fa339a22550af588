import { marbles } from 'rxjs-marbles/jest';
import { nackAll } from '../../operators/index.js';
import { marbleKit, settlement } from '../../src/testing/index.js';

const { ack, nack } = settlement;

describe('nackAll', () => {
  it(
    'nacks each delivery with requeue by default and emits it unchanged',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', { a: 'm1', b: 'm2' });
      m.expect(source.pipe(nackAll())).toBeObservable('-a-b|', source.deliveries);
      m.expect(channel.settlements$).toBeObservable('-a-b', { a: nack(1), b: nack(2) });
      m.flush();
      expect([source.deliveries.a.settled, source.deliveries.b.settled]).toEqual([true, true]);
    }),
  );

  it(
    'nacks without requeue with requeue: false, and skips settled deliveries',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-ab|', { a: 'm1', b: 'm2' });
      source.deliveries.b.ack();
      m.expect(source.pipe(nackAll({ requeue: false }))).toBeObservable('-ab|', source.deliveries);
      m.flush();
      expect(channel.settlements).toEqual([ack(2), nack(1, { requeue: false })]);
    }),
  );
});
