import { marbles } from 'rxjs-marbles/jest';
import { decodeJson } from '../../operators/index.js';
import type { Delivery } from '../../src/node.js';
import { fakeChannel } from './fakeDeliveries.js';

describe('decodeJson', () => {
  it(
    'emits each delivery with its parsed body, without settling it',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const a = delivery(1, '{"id":1}');
      const b = delivery(2, '[true,"é"]');
      const result = m.cold('-a-b|', { a, b }).pipe(decodeJson());
      m.expect(result).toBeObservable('-x-y|', {
        x: { delivery: a, value: { id: 1 } },
        y: { delivery: b, value: [true, 'é'] },
      });
      m.flush();
      expect(calls).toEqual([]);
    }),
  );

  it(
    'rejects a body that is not JSON without requeue by default, reports and skips it',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const bad = delivery(1, 'not json');
      const good = delivery(2, '2');
      const failures: [unknown, Delivery][] = [];
      const result = m
        .cold('-a-b|', { a: bad, b: good })
        .pipe(decodeJson<number>({ onFailure: (error, d) => failures.push([error, d]) }));
      m.expect(result).toBeObservable('---y|', { y: { delivery: good, value: 2 } });
      m.flush();
      expect(calls).toEqual([['reject', 1, false, false]]);
      expect(failures).toHaveLength(1);
      expect(failures[0]?.[0]).toBeInstanceOf(SyntaxError);
      expect(failures[0]?.[1]).toBe(bad);
    }),
  );

  it(
    "nacks with requeue with onError: 'requeue'",
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const result = m.cold('-a|', { a: delivery(1, '{') }).pipe(decodeJson({ onError: 'requeue' }));
      m.expect(result).toBeObservable('--|');
      m.flush();
      expect(calls).toEqual([['nack', 1, false, true]]);
    }),
  );

  it(
    'errors the stream when onFailure throws',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const logError = new Error('logger down');
      const result = m.cold('-a|', { a: delivery(1, '') }).pipe(
        decodeJson({
          onFailure: () => {
            throw logError;
          },
        }),
      );
      m.expect(result).toBeObservable('-#', undefined, logError);
      m.flush();
      expect(calls).toEqual([['reject', 1, false, false]]);
    }),
  );
});
