import { catchError, defer, map, mergeMap, type Observable, of, throwError } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { retryWithDelay } from '../../operators/index.js';
import {
  type BasicProperties,
  ConfigurationError,
  Delivery,
  FIELD_TYPES,
  fieldTypesOf,
  TypedField,
} from '../../src/node.js';
import { fakePublisher } from './fakeDeliveries.js';

/** A fake channel: `publish` records its calls and returns `reply()`; deliveries record settle calls. */
function fake(reply: () => Observable<void>) {
  const { channel, published, settled, settler } = fakePublisher(reply);
  const delivery = (tag: number, properties: BasicProperties = {}, body = `m${tag}`) =>
    new Delivery(
      Buffer.from(body),
      properties,
      { deliveryTag: tag, redelivered: false, exchange: '', routingKey: 'work' },
      settler,
    );
  return { channel, published, settled, delivery };
}

describe('retryWithDelay', () => {
  it(
    'waits delays[0] for a first failure, republishes a copy with the count 1, then acks the original',
    marbles((m) => {
      const { channel, published, settled, delivery } = fake(() => m.cold<void>('-p|', { p: undefined }));
      const d = delivery(1, { contentType: 'text/plain', correlationId: 'c1', headers: { tenant: 'acme' } });
      const result = m
        .cold('-a|', { a: d })
        .pipe(retryWithDelay(channel, { queue: 'work', delays: [3, 10] }));
      // Probes run before what else happens in their frame.
      const settledAt: [number, boolean, number][] = [];
      for (const frame of [4, 5, 6]) {
        m.scheduler.schedule(() => settledAt.push([frame, d.settled, published.length]), frame);
      }
      // timer fires at 1 + 3 = 4, the publish emits at 5: ack and outcome then.
      m.expect(result).toBeObservable('-----(x|)', { x: { delivery: d, action: 'retried', retryCount: 0 } });
      m.flush();
      expect(settledAt).toEqual([
        [4, false, 0],
        [5, false, 1],
        [6, true, 1],
      ]);
      expect(published).toEqual([
        [
          '',
          'work',
          'm1',
          {
            contentType: 'text/plain',
            correlationId: 'c1',
            headers: { tenant: 'acme', 'x-retry-count': 1 },
          },
        ],
      ]);
      expect(settled).toEqual([['ack', 1, false, false]]);
      // The original's properties are left as they were.
      expect(d.properties.headers).toEqual({ tenant: 'acme' });
    }),
  );

  it(
    'takes the delay for the count in the header, and handles deliveries concurrently',
    marbles((m) => {
      const { channel, published, settled, delivery } = fake(() => of(undefined));
      const first = delivery(1);
      const second = delivery(2, { headers: { 'x-retry-count': 1 } });
      const result = m
        .cold('-ab|', { a: second, b: first })
        .pipe(retryWithDelay(channel, { queue: 'work', delays: [2, 5] }));
      m.expect(result).toBeObservable('----x-(y|)', {
        x: { delivery: first, action: 'retried', retryCount: 0 },
        y: { delivery: second, action: 'retried', retryCount: 1 },
      });
      m.flush();
      expect(published.map(([, , body, p]) => [body, p?.headers?.['x-retry-count']])).toEqual([
        ['m1', 1],
        ['m2', 2],
      ]);
      expect(settled).toEqual([
        ['ack', 1, false, false],
        ['ack', 2, false, false],
      ]);
    }),
  );

  it(
    "dead-letters at once when the retries are used up (default), or requeues with onExhausted: 'requeue'",
    marbles((m) => {
      const dl = fake(() => of(undefined));
      const rq = fake(() => of(undefined));
      const a = dl.delivery(1, { headers: { 'x-retry-count': 2 } });
      const b = rq.delivery(1, { headers: { 'x-retry-count': 5 } });
      m.expect(
        m.cold('-a|', { a }).pipe(retryWithDelay(dl.channel, { queue: 'work', delays: [1, 1] })),
      ).toBeObservable('-x|', { x: { delivery: a, action: 'dead-lettered', retryCount: 2 } });
      m.expect(
        m
          .cold('-b|', { b })
          .pipe(retryWithDelay(rq.channel, { queue: 'work', delays: [1, 1], onExhausted: 'requeue' })),
      ).toBeObservable('-x|', { x: { delivery: b, action: 'requeued', retryCount: 5 } });
      m.flush();
      expect(dl.published).toEqual([]);
      expect(rq.published).toEqual([]);
      expect(dl.settled).toEqual([['reject', 1, false, false]]);
      expect(rq.settled).toEqual([['nack', 1, false, true]]);
    }),
  );

  it(
    'never retries with no delays',
    marbles((m) => {
      const { channel, published, settled, delivery } = fake(() => of(undefined));
      const d = delivery(1);
      m.expect(
        m.cold('a|', { a: d }).pipe(retryWithDelay(channel, { queue: 'q', delays: [] })),
      ).toBeObservable('x|', { x: { delivery: d, action: 'dead-lettered', retryCount: 0 } });
      m.flush();
      expect([published, settled]).toEqual([[], [['reject', 1, false, false]]]);
    }),
  );

  it(
    'uses a custom header, and reads counts sent as bigint, typed field or string; junk counts as 0',
    marbles((m) => {
      const { channel, published, delivery } = fake(() => of(undefined));
      const header = 'x-attempts';
      const source = m.cold('(abcd|)', {
        a: delivery(1, { headers: { [header]: 1n } }),
        b: delivery(2, { headers: { [header]: new TypedField('b', 1) } }),
        c: delivery(3, { headers: { [header]: ' 1 ' } }),
        d: delivery(4, { headers: { [header]: -3, 'x-retry-count': 1 } }),
      });
      const result = source.pipe(
        retryWithDelay(channel, { queue: 'q', delays: [1, 1], header }),
        map((o) => o.retryCount),
      );
      m.expect(result).toBeObservable('-(wxyz|)', { w: 1, x: 1, y: 1, z: 0 });
      m.flush();
      expect(published.map(([, , , p]) => p?.headers?.[header])).toEqual([2, 2, 2, 1]);
    }),
  );

  it(
    'keeps the remembered wire types of the other headers in the copy',
    marbles((m) => {
      const { channel, published, delivery } = fake(() => of(undefined));
      const headers = { small: 5, big: 7 };
      Object.defineProperty(headers, FIELD_TYPES, { value: { small: 'b' }, enumerable: false });
      expect(fieldTypesOf(headers)).toEqual({ small: 'b' });
      m.expect(
        m.cold('a|', { a: delivery(1, { headers }) }).pipe(
          retryWithDelay(channel, { queue: 'q', delays: [0] }),
          map((o) => o.action),
        ),
      ).toBeObservable('r|', { r: 'retried' });
      m.flush();
      expect(published[0]?.[3]?.headers).toEqual({
        small: new TypedField('b', 5),
        big: 7,
        'x-retry-count': 1,
      });
    }),
  );

  it(
    'errors with the publish error and leaves the original unsettled',
    marbles((m) => {
      const boom = new Error('channel closed');
      const { channel, settled, delivery } = fake(() => m.cold<void>('-#', undefined, boom));
      const result = m
        .cold('a|', { a: delivery(1) })
        .pipe(retryWithDelay(channel, { queue: 'q', delays: [2] }));
      m.expect(result).toBeObservable('---#', undefined, boom);
      m.flush();
      expect(settled).toEqual([]);
    }),
  );

  it(
    'publishes nothing and settles nothing when unsubscribed during the delay',
    marbles((m) => {
      const { channel, published, settled, delivery } = fake(() => of(undefined));
      const result = m
        .cold('a|', { a: delivery(1) })
        .pipe(retryWithDelay(channel, { queue: 'q', delays: [5] }));
      m.expect(result, '^--!').toBeObservable('');
      m.flush();
      expect([published, settled]).toEqual([[], []]);
    }),
  );

  it(
    'composes with catchError per delivery: failures retried, successes acked',
    marbles((m) => {
      const { channel, published, settled, delivery } = fake(() => of(undefined));
      const retry = retryWithDelay(channel, { queue: 'q', delays: [2] });
      const source = m.cold('-ab|', { a: delivery(1, {}, 'bad'), b: delivery(2, {}, 'good') });
      const result = source.pipe(
        mergeMap((d) =>
          defer(() => (d.text() === 'bad' ? throwError(() => new Error('fail')) : of(d.text()))).pipe(
            map((text) => {
              d.ack();
              return text;
            }),
            catchError(() =>
              of(d).pipe(
                retry,
                map((o) => o.action),
              ),
            ),
          ),
        ),
      );
      m.expect(result).toBeObservable('--g(r|)', { g: 'good', r: 'retried' });
      m.flush();
      expect(published.map(([, key, body]) => [key, body])).toEqual([['q', 'bad']]);
      expect(settled).toEqual([
        ['ack', 2, false, false],
        ['ack', 1, false, false],
      ]);
    }),
  );

  it('refuses bad delays', () => {
    const channel = { publish: () => of({ status: 'sent' as const }) };
    expect(() => retryWithDelay(channel, { queue: 'q', delays: [1, -1] })).toThrow(ConfigurationError);
    expect(() => retryWithDelay(channel, { queue: 'q', delays: [Number.NaN] })).toThrow(ConfigurationError);
    expect(() => retryWithDelay(channel, { queue: 'q', delays: [Infinity] })).toThrow(ConfigurationError);
    expect(() => retryWithDelay(channel, { queue: 'q', delays: [0, 1000] })).not.toThrow();
  });
});
