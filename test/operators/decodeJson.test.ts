import { marbles } from 'rxjs-marbles/jest';
import { decodeJson } from '../../operators/index.js';
import type { Delivery } from '../../src/node.js';
import { marbleKit, settlement } from '../../src/testing/index.js';

describe('decodeJson', () => {
  it(
    'emits each delivery with its parsed body, without settling it',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', { a: '{"id":1}', b: '[true,"é"]' });
      const { a, b } = source.deliveries;
      m.expect(source.pipe(decodeJson())).toBeObservable('-x-y|', {
        x: { delivery: a, value: { id: 1 } },
        y: { delivery: b, value: [true, 'é'] },
      });
      m.expect(channel.settlements$).toBeObservable('');
    }),
  );

  it(
    'rejects a body that is not JSON without requeue by default, reports and skips it',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', { a: 'not json', b: '2' });
      const failures: [unknown, Delivery][] = [];
      const result = source.pipe(decodeJson<number>({ onFailure: (error, d) => failures.push([error, d]) }));
      m.expect(result).toBeObservable('---y|', { y: { delivery: source.deliveries.b, value: 2 } });
      m.expect(channel.settlements$).toBeObservable('-a', { a: settlement.reject(1, { requeue: false }) });
      m.flush();
      expect(failures).toEqual([[expect.any(SyntaxError), source.deliveries.a]]);
      expect(failures[0]?.[1]).toBe(source.deliveries.a);
    }),
  );

  it(
    "nacks with requeue with onError: 'requeue'",
    marbles((m) => {
      const channel = marbleKit(m).channel();
      m.expect(channel.cold('-a|', { a: '{' }).pipe(decodeJson({ onError: 'requeue' }))).toBeObservable(
        '--|',
      );
      m.expect(channel.settlements$).toBeObservable('-a', { a: settlement.nack(1) });
    }),
  );

  it(
    'errors the stream when onFailure throws',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const logError = new Error('logger down');
      const result = channel.cold('-a|', { a: '' }).pipe(
        decodeJson({
          onFailure: () => {
            throw logError;
          },
        }),
      );
      m.expect(result).toBeObservable('-#', undefined, logError);
      m.expect(channel.settlements$).toBeObservable('-a', { a: settlement.reject(1, { requeue: false }) });
    }),
  );
});
