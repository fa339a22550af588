import { EMPTY, firstValueFrom, map, of, Subject, tap, throwError, toArray } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { ackOnSuccess } from '../../operators/index.js';
import { ConfigurationError, type Delivery } from '../../src/node.js';
import { fakeChannel } from './fakeDeliveries.js';

describe('ackOnSuccess', () => {
  it(
    'acks each delivery after a synchronous handler and emits its result',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const d1 = delivery(1, 'a');
      const d2 = delivery(2, 'b');
      const source = m.cold('-a-b-|', { a: d1, b: d2 });
      const settledWhenEmitted: boolean[] = [];
      const result = source.pipe(
        ackOnSuccess((d) => d.text().toUpperCase()),
        tap((value) => settledWhenEmitted.push(value === 'A' ? d1.settled : d2.settled)),
      );
      m.expect(result).toBeObservable('-x-y-|', { x: 'A', y: 'B' });
      m.flush();
      expect(calls).toEqual([
        ['ack', 1, false, false],
        ['ack', 2, false, false],
      ]);
      expect(settledWhenEmitted).toEqual([true, true]);
    }),
  );

  it(
    'uses the first value of an Observable handler and unsubscribes from it',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const inner = m.cold('--rs|');
      const source = m.cold('-a|', { a: delivery(1) });
      m.expect(source.pipe(ackOnSuccess(() => inner))).toBeObservable('---(r|)');
      m.expect(inner).toHaveSubscriptions('-^-!');
      m.flush();
      expect(calls).toEqual([['ack', 1, false, false]]);
    }),
  );

  it(
    'processes one delivery at a time by default, in order',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const slow = m.cold('---r|');
      const fast = m.cold('-s|');
      const source = m.cold('-ab|', { a: delivery(1, 'slow'), b: delivery(2, 'fast') });
      const result = source.pipe(ackOnSuccess((d) => (d.text() === 'slow' ? slow : fast)));
      m.expect(result).toBeObservable('----r(s|)');
      m.expect(slow).toHaveSubscriptions('-^--!');
      m.expect(fast).toHaveSubscriptions('----^!');
      m.flush();
      expect(calls.map(([, tag]) => tag)).toEqual([1, 2]);
    }),
  );

  it(
    'runs up to `concurrency` handlers at once and emits results as they finish (mergeMap semantics)',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const slow = m.cold('-------r|');
      const fast = m.cold('-s|');
      const other = m.cold('t|');
      const source = m.cold('-abc|', { a: delivery(1, 'slow'), b: delivery(2, 'fast'), c: delivery(3) });
      const handler = (d: Delivery) => (d.text() === 'slow' ? slow : d.text() === 'fast' ? fast : other);
      const result = source.pipe(ackOnSuccess(handler, { concurrency: 2 }));
      // c waits for a free slot: b's handler finishes at frame 3.
      m.expect(result).toBeObservable('---(st)-(r|)');
      m.expect(other).toHaveSubscriptions('---(^!)');
      m.flush();
      expect(calls.map(([, tag]) => tag)).toEqual([2, 3, 1]);
    }),
  );

  it(
    'rejects a failed delivery without requeue by default and goes on with the next',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const failures: [unknown, number][] = [];
      const boom = new Error('boom');
      const source = m.cold('-a-b-c|', {
        a: delivery(1, 'throw'),
        b: delivery(2, 'error'),
        c: delivery(3, 'ok'),
      });
      const result = source.pipe(
        ackOnSuccess(
          (d) => {
            if (d.text() === 'throw') throw boom;
            if (d.text() === 'error') return m.cold('-#', undefined, boom);
            return d.text();
          },
          { onFailure: (error, d) => failures.push([error, d.fields.deliveryTag]) },
        ),
      );
      m.expect(result).toBeObservable('-----x|', { x: 'ok' });
      m.flush();
      expect(calls).toEqual([
        ['reject', 1, false, false],
        ['reject', 2, false, false],
        ['ack', 3, false, false],
      ]);
      expect(failures).toEqual([
        [boom, 1],
        [boom, 2],
      ]);
    }),
  );

  it(
    "settles by policy: 'requeue' nacks with requeue, 'dead-letter' rejects without",
    marbles((m) => {
      const requeued = fakeChannel();
      const deadLettered = fakeChannel();
      const fail = () => m.cold<string>('-#');
      m.expect(
        m.cold('-a|', { a: requeued.delivery(1) }).pipe(ackOnSuccess(fail, { onError: 'requeue' })),
      ).toBeObservable('--|');
      m.expect(
        m.cold('-a|', { a: deadLettered.delivery(1) }).pipe(ackOnSuccess(fail, { onError: 'dead-letter' })),
      ).toBeObservable('--|');
      m.flush();
      expect(requeued.calls).toEqual([['nack', 1, false, true]]);
      expect(deadLettered.calls).toEqual([['reject', 1, false, false]]);
    }),
  );

  it(
    'rejects instead of requeueing a redelivered message with requeueRedelivered: false',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const source = m.cold('-ab|', { a: delivery(1, 'x', false), b: delivery(2, 'x', true) });
      const result = source.pipe(
        ackOnSuccess(
          () => {
            throw new Error('poison');
          },
          { onError: 'requeue', requeueRedelivered: false },
        ),
      );
      m.expect(result).toBeObservable('---|');
      m.flush();
      expect(calls).toEqual([
        ['nack', 1, false, true],
        ['reject', 2, false, false],
      ]);
    }),
  );

  it(
    'errors the stream when onFailure throws',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const logError = new Error('logger down');
      const source = m.cold('-ab|', { a: delivery(1), b: delivery(2) });
      const result = source.pipe(
        ackOnSuccess(() => throwError(() => new Error('boom')), {
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

  it(
    'acks and emits nothing for a handler Observable that completes empty',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const source = m.cold('-a|', { a: delivery(1) });
      m.expect(source.pipe(ackOnSuccess(() => EMPTY))).toBeObservable('--|');
      m.flush();
      expect(calls).toEqual([['ack', 1, false, false]]);
    }),
  );

  it(
    'leaves running and waiting deliveries unsettled on unsubscription',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const inner = m.cold('-----r|');
      const source = m.cold('-ab---|', { a: delivery(1), b: delivery(2) });
      m.expect(source.pipe(ackOnSuccess(() => inner)), '^--!').toBeObservable('----');
      m.expect(inner).toHaveSubscriptions('-^-!');
      m.flush();
      expect(calls).toEqual([]);
    }),
  );

  it(
    'errors with the source error and leaves the running delivery unsettled',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const inner = m.cold('---r|');
      const source = m.cold('-a-#', { a: delivery(1) });
      m.expect(source.pipe(ackOnSuccess(() => inner))).toBeObservable('---#');
      m.flush();
      expect(calls).toEqual([]);
    }),
  );

  it(
    'does not settle twice a delivery the handler settled itself',
    marbles((m) => {
      const { calls, delivery } = fakeChannel();
      const source = m.cold('-a|', { a: delivery(1) });
      const result = source.pipe(
        ackOnSuccess((d) => {
          d.nack({ requeue: false });
          return 'done';
        }),
      );
      m.expect(result).toBeObservable('-x|', { x: 'done' });
      m.flush();
      expect(calls).toEqual([['nack', 1, false, false]]);
    }),
  );

  it('waits for a Promise handler and settles by its outcome', async () => {
    const { calls, delivery } = fakeChannel();
    const deliveries = new Subject<Delivery>();
    const results = firstValueFrom(
      deliveries.pipe(
        ackOnSuccess(async (d) => {
          await Promise.resolve();
          if (d.text() === 'bad') throw new Error('rejected');
          return d.fields.deliveryTag * 10;
        }),
        toArray(),
      ),
    );
    deliveries.next(delivery(1, 'good'));
    deliveries.next(delivery(2, 'bad'));
    deliveries.next(delivery(3, 'good'));
    deliveries.complete();
    expect(await results).toEqual([10, 30]);
    expect(calls).toEqual([
      ['ack', 1, false, false],
      ['reject', 2, false, false],
      ['ack', 3, false, false],
    ]);
  });

  it('infers the result type from Promise and Observable handlers', async () => {
    const { delivery } = fakeChannel();
    const fromPromise: number[] = await firstValueFrom(
      of(delivery(1)).pipe(
        ackOnSuccess(async () => 1),
        toArray(),
      ),
    );
    const fromObservable: string[] = await firstValueFrom(
      of(delivery(2)).pipe(
        ackOnSuccess(() => of(2).pipe(map(String))),
        toArray(),
      ),
    );
    expect([fromPromise, fromObservable]).toEqual([[1], ['2']]);
  });

  it('refuses a concurrency below 1', () => {
    expect(() => ackOnSuccess(() => 1, { concurrency: 0 })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { concurrency: 1.5 })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { concurrency: Infinity })).not.toThrow();
  });
});
