import { catchError, defer, map, mergeMap, of, throwError } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { retryWithDelay } from '../../operators/index.js';
import {
  type BasicProperties,
  ConfigurationError,
  FIELD_TYPES,
  fieldTypesOf,
  TypedField,
} from '../../src/node.js';
import { marbleKit, published, settlement } from '../../src/testing/index.js';

const { ack, nack, reject } = settlement;
/** A failed delivery with these properties (and body `m<n>` for the n-th of its channel, unless given). */
const failed = (properties: BasicProperties, body?: string) => ({
  properties,
  ...(body === undefined ? {} : { body }),
});

describe('retryWithDelay', () => {
  it(
    'waits delays[0] for a first failure, republishes a copy with the count 1, then acks the original',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '-a' });
      const source = channel.cold('-a|', {
        a: failed({ contentType: 'text/plain', correlationId: 'c1', headers: { tenant: 'acme' } }, 'm1'),
      });
      const d = source.deliveries.a;
      const result = source.pipe(retryWithDelay(channel, { queue: 'work', delays: [3, 10] }));
      // timer fires at 1 + 3 = 4, the publish emits at 5: ack and outcome then.
      m.expect(result).toBeObservable('-----(x|)', { x: { delivery: d, action: 'retried', retryCount: 0 } });
      m.expect(channel.published$).toBeObservable('----p', {
        p: published('', 'work', 'm1', {
          properties: {
            contentType: 'text/plain',
            correlationId: 'c1',
            headers: { tenant: 'acme', 'x-retry-count': 1 },
          },
        }),
      });
      m.expect(channel.settlements$).toBeObservable('-----a', { a: ack(1) });
      m.flush();
      // The original's properties are left as they were.
      expect(d.properties.headers).toEqual({ tenant: 'acme' });
    }),
  );

  it(
    'takes the delay for the count in the header, and handles deliveries concurrently',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const { first, second } = channel.deliveriesOf({
        first: 'm1',
        second: failed({ headers: { 'x-retry-count': 1 } }, 'm2'),
      });
      const result = m
        .cold('-ab|', { a: second, b: first })
        .pipe(retryWithDelay(channel, { queue: 'work', delays: [2, 5] }));
      m.expect(result).toBeObservable('----x-(y|)', {
        x: { delivery: first, action: 'retried', retryCount: 0 },
        y: { delivery: second, action: 'retried', retryCount: 1 },
      });
      m.expect(channel.settlements$).toBeObservable('----a-b', { a: ack(1), b: ack(2) });
      m.flush();
      expect(channel.published.map((p) => [p.text, p.properties?.headers?.['x-retry-count']])).toEqual([
        ['m1', 1],
        ['m2', 2],
      ]);
    }),
  );

  it(
    "dead-letters at once when the retries are used up (default), or requeues with onExhausted: 'requeue'",
    marbles((m) => {
      const kit = marbleKit(m);
      const [dl, rq] = [kit.channel(), kit.channel()];
      const a = dl.cold('-a|', { a: failed({ headers: { 'x-retry-count': 2 } }) });
      const b = rq.cold('-b|', { b: failed({ headers: { 'x-retry-count': 5 } }) });
      m.expect(a.pipe(retryWithDelay(dl, { queue: 'work', delays: [1, 1] }))).toBeObservable('-x|', {
        x: { delivery: a.deliveries.a, action: 'dead-lettered', retryCount: 2 },
      });
      m.expect(
        b.pipe(retryWithDelay(rq, { queue: 'work', delays: [1, 1], onExhausted: 'requeue' })),
      ).toBeObservable('-x|', { x: { delivery: b.deliveries.b, action: 'requeued', retryCount: 5 } });
      m.expect(dl.settlements$).toBeObservable('-a', { a: reject(1, { requeue: false }) });
      m.expect(rq.settlements$).toBeObservable('-a', { a: nack(1) });
      m.expect(dl.published$).toBeObservable('');
      m.expect(rq.published$).toBeObservable('');
    }),
  );

  it(
    'never retries with no delays',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('a|', { a: 'm1' });
      m.expect(source.pipe(retryWithDelay(channel, { queue: 'q', delays: [] }))).toBeObservable('x|', {
        x: { delivery: source.deliveries.a, action: 'dead-lettered', retryCount: 0 },
      });
      m.expect(channel.settlements$).toBeObservable('a', { a: reject(1, { requeue: false }) });
      m.expect(channel.published$).toBeObservable('');
    }),
  );

  it(
    'uses a custom header, and reads counts sent as bigint, typed field or string; junk counts as 0',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const header = 'x-attempts';
      const source = channel.cold('(abcd|)', {
        a: failed({ headers: { [header]: 1n } }),
        b: failed({ headers: { [header]: new TypedField('b', 1) } }),
        c: failed({ headers: { [header]: ' 1 ' } }),
        d: failed({ headers: { [header]: -3, 'x-retry-count': 1 } }),
      });
      const result = source.pipe(
        retryWithDelay(channel, { queue: 'q', delays: [1, 1], header }),
        map((o) => o.retryCount),
      );
      m.expect(result).toBeObservable('-(wxyz|)', { w: 1, x: 1, y: 1, z: 0 });
      m.flush();
      expect(channel.published.map((p) => p.properties?.headers?.[header])).toEqual([2, 2, 2, 1]);
    }),
  );

  it(
    'keeps the remembered wire types of the other headers in the copy',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const headers = { small: 5, big: 7 };
      Object.defineProperty(headers, FIELD_TYPES, { value: { small: 'b' }, enumerable: false });
      expect(fieldTypesOf(headers)).toEqual({ small: 'b' });
      m.expect(
        channel.cold('a|', { a: failed({ headers }) }).pipe(
          retryWithDelay(channel, { queue: 'q', delays: [0] }),
          map((o) => o.action),
        ),
      ).toBeObservable('r|', { r: 'retried' });
      m.flush();
      expect(channel.published[0]?.properties?.headers).toEqual({
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
      const channel = marbleKit(m).channel({ reply: '-#', error: boom });
      const result = channel
        .cold('a|', { a: 'm1' })
        .pipe(retryWithDelay(channel, { queue: 'q', delays: [2] }));
      m.expect(result).toBeObservable('---#', undefined, boom);
      m.flush();
      expect(channel.unsettledTags).toEqual([1]);
    }),
  );

  it(
    'publishes nothing and settles nothing when unsubscribed during the delay',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const result = channel
        .cold('a|', { a: 'm1' })
        .pipe(retryWithDelay(channel, { queue: 'q', delays: [5] }));
      m.expect(result, '^--!').toBeObservable('');
      m.flush();
      expect([channel.published, channel.unsettledTags]).toEqual([[], [1]]);
    }),
  );

  it(
    'composes with catchError per delivery: failures retried, successes acked',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const retry = retryWithDelay(channel, { queue: 'q', delays: [2] });
      const source = channel.cold('-ab|', { a: 'bad', b: 'good' });
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
      m.expect(channel.settlements$).toBeObservable('--ab', { a: ack(2), b: ack(1) });
      m.flush();
      expect(channel.published.map((p) => [p.routingKey, p.text])).toEqual([['q', 'bad']]);
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
