import { EMPTY, firstValueFrom, type Observable, of, Subject, throwError, toArray } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { answerRequests } from '../../operators/index.js';
import { type BasicProperties, ConfigurationError, Delivery } from '../../src/node.js';
import { fakePublisher } from './fakeDeliveries.js';

/** A fake channel: `publish` records its calls and returns `reply()`; requests record settle calls. */
function fake(reply: () => Observable<unknown>) {
  const { channel, published, settled, settler } = fakePublisher(reply);
  /** A request with replyTo `reply-<tag>` and correlationId `c<tag>` unless given. */
  const request = (tag: number, body = `m${tag}`, properties?: BasicProperties, redelivered = false) =>
    new Delivery(
      Buffer.from(body),
      properties ?? { replyTo: `reply-${tag}`, correlationId: `c${tag}` },
      { deliveryTag: tag, redelivered, exchange: '', routingKey: 'rpc' },
      settler,
    );
  return { channel, published, settled, request };
}

describe('answerRequests', () => {
  it(
    'publishes each result to replyTo with the correlationId, acks after the publish emits, emits the result',
    marbles((m) => {
      const { channel, published, settled, request } = fake(() => m.cold<void>('--p|', { p: undefined }));
      const r1 = request(1, 'hello');
      const result = m.cold('-a|', { a: r1 }).pipe(answerRequests(channel, (r) => r.text().toUpperCase()));
      // Probes run before what else happens in their frame.
      const probes: [number, boolean, number][] = [];
      for (const frame of [1, 2, 4])
        m.scheduler.schedule(() => probes.push([frame, r1.settled, published.length]), frame);
      m.expect(result).toBeObservable('---(x|)', { x: 'HELLO' });
      m.flush();
      expect(probes).toEqual([
        [1, false, 0],
        [2, false, 1],
        [4, true, 1],
      ]);
      expect(published).toEqual([['', 'reply-1', 'HELLO', { correlationId: 'c1' }]]);
      expect(settled).toEqual([['ack', 1, false, false]]);
    }),
  );

  it(
    'JSON-encodes other results with contentType application/json, bytes as they are, undefined as empty',
    marbles((m) => {
      const { channel, published, request } = fake(() => of(undefined));
      const source = m.cold('(abc|)', {
        a: request(1, 'obj'),
        b: request(2, 'bytes'),
        c: request(3, 'void'),
      });
      const result = source.pipe(
        answerRequests(channel, (r): unknown => {
          if (r.text() === 'obj') return { n: 1 };
          if (r.text() === 'bytes') return Buffer.from('raw');
          return undefined;
        }),
      );
      m.expect(result).toBeObservable('(xyz|)', { x: { n: 1 }, y: Buffer.from('raw'), z: undefined });
      m.flush();
      expect(published).toEqual([
        ['', 'reply-1', '{"n":1}', { correlationId: 'c1', contentType: 'application/json' }],
        ['', 'reply-2', 'raw', { correlationId: 'c2' }],
        ['', 'reply-3', '', { correlationId: 'c3' }],
      ]);
    }),
  );

  it(
    'uses encode and contentType when given, and leaves out a missing correlationId',
    marbles((m) => {
      const { channel, published, request } = fake(() => of(undefined));
      const source = m.cold('a|', { a: request(1, '21', { replyTo: 'amq.rabbitmq.reply-to.xyz' }) });
      const result = source.pipe(
        answerRequests(channel, (r) => Number(r.text()) * 2, {
          encode: (n) => `<n>${n}</n>`,
          contentType: 'application/xml',
        }),
      );
      m.expect(result).toBeObservable('x|', { x: 42 });
      m.flush();
      expect(published).toEqual([
        ['', 'amq.rabbitmq.reply-to.xyz', '<n>42</n>', { contentType: 'application/xml' }],
      ]);
    }),
  );

  it(
    'rejects a request without replyTo without requeue, and goes on',
    marbles((m) => {
      const { channel, published, settled, request } = fake(() => of(undefined));
      let calls = 0;
      const source = m.cold('-ab|', { a: request(1, 'x', { correlationId: 'c1' }), b: request(2) });
      const result = source.pipe(
        answerRequests(channel, (r) => {
          calls++;
          return r.text();
        }),
      );
      m.expect(result).toBeObservable('--x|', { x: 'm2' });
      m.flush();
      expect(calls).toBe(1);
      expect(published.map(([, to]) => to)).toEqual(['reply-2']);
      expect(settled).toEqual([
        ['reject', 1, false, false],
        ['ack', 2, false, false],
      ]);
    }),
  );

  it(
    'settles failed requests by policy (throw, error, empty Observable, encode throws), replies nothing, goes on',
    marbles((m) => {
      const { channel, published, settled, request } = fake(() => of(undefined));
      const failures: [string, number][] = [];
      const source = m.cold('-abcde|', {
        a: request(1, 'throw'),
        b: request(2, 'error'),
        c: request(3, 'empty'),
        d: request(4, 'encode'),
        e: request(5, 'ok'),
      });
      const result = source.pipe(
        answerRequests(
          channel,
          (r): string | Observable<string> => {
            const text = r.text();
            if (text === 'throw') throw new Error('thrown');
            if (text === 'error') return throwError(() => new Error('errored'));
            if (text === 'empty') return EMPTY;
            return text;
          },
          {
            onError: 'requeue',
            encode: (s) => {
              if (s === 'encode') throw new Error('unencodable');
              return s;
            },
            onFailure: (error, r) => failures.push([(error as Error).name, r.fields.deliveryTag]),
          },
        ),
      );
      m.expect(result).toBeObservable('-----x|', { x: 'ok' });
      m.flush();
      expect(published.map(([, to]) => to)).toEqual(['reply-5']);
      expect(settled).toEqual([
        ['nack', 1, false, true],
        ['nack', 2, false, true],
        ['nack', 3, false, true],
        ['nack', 4, false, true],
        ['ack', 5, false, false],
      ]);
      expect(failures).toEqual([
        ['Error', 1],
        ['Error', 2],
        ['EmptyError', 3],
        ['Error', 4],
      ]);
    }),
  );

  it(
    'rejects by default, and a redelivered request with requeueRedelivered: false',
    marbles((m) => {
      const byDefault = fake(() => of(undefined));
      const poison = fake(() => of(undefined));
      const fail = () => m.cold<string>('-#');
      m.expect(
        m.cold('a|', { a: byDefault.request(1) }).pipe(answerRequests(byDefault.channel, fail)),
      ).toBeObservable('-|');
      m.expect(
        m
          .cold('a|', { a: poison.request(1, 'x', undefined, true) })
          .pipe(answerRequests(poison.channel, fail, { onError: 'requeue', requeueRedelivered: false })),
      ).toBeObservable('-|');
      m.flush();
      expect(byDefault.settled).toEqual([['reject', 1, false, false]]);
      expect(poison.settled).toEqual([['reject', 1, false, false]]);
    }),
  );

  it(
    'runs up to `concurrency` handlers at once; results as they finish',
    marbles((m) => {
      const { channel, published, request } = fake(() => of(undefined));
      const slow = m.cold('------s|');
      const fast = m.cold('-f|');
      const other = m.cold('o|');
      const source = m.cold('-abc|', { a: request(1, 'slow'), b: request(2, 'fast'), c: request(3) });
      const result = source.pipe(
        answerRequests(channel, (r) => (r.text() === 'slow' ? slow : r.text() === 'fast' ? fast : other), {
          concurrency: 2,
        }),
      );
      m.expect(result).toBeObservable('---(fo)(s|)');
      m.expect(other).toHaveSubscriptions('---(^!)');
      m.flush();
      expect(published.map(([, to, body, p]) => [to, body, p?.correlationId])).toEqual([
        ['reply-2', 'f', 'c2'],
        ['reply-3', 'o', 'c3'],
        ['reply-1', 's', 'c1'],
      ]);
    }),
  );

  it(
    'errors with the publish error and leaves the request unsettled',
    marbles((m) => {
      const boom = new Error('channel closed');
      const { channel, settled, request } = fake(() => m.cold<void>('-#', undefined, boom));
      const result = m.cold('a|', { a: request(1) }).pipe(answerRequests(channel, (r) => r.text()));
      m.expect(result).toBeObservable('-#', undefined, boom);
      m.flush();
      expect(settled).toEqual([]);
    }),
  );

  it(
    'leaves running requests unsettled on unsubscription, without replying',
    marbles((m) => {
      const { channel, published, settled, request } = fake(() => of(undefined));
      const inner = m.cold('---r|');
      const result = m.cold('a|', { a: request(1) }).pipe(answerRequests(channel, () => inner));
      m.expect(result, '^-!').toBeObservable('');
      m.expect(inner).toHaveSubscriptions('^-!');
      m.flush();
      expect([published, settled]).toEqual([[], []]);
    }),
  );

  it('answers Promise handlers', async () => {
    const { channel, published, settled, request } = fake(() => of(undefined));
    const requests = new Subject<Delivery>();
    const results = firstValueFrom(
      requests.pipe(
        answerRequests(channel, async (r) => {
          await Promise.resolve();
          if (r.text() === 'bad') throw new Error('rejected');
          return r.fields.deliveryTag * 10;
        }),
        toArray(),
      ),
    );
    requests.next(request(1, 'good'));
    requests.next(request(2, 'bad'));
    requests.next(request(3, 'good'));
    requests.complete();
    expect(await results).toEqual([10, 30]);
    expect(published.map(([, to, body]) => [to, body])).toEqual([
      ['reply-1', '10'],
      ['reply-3', '30'],
    ]);
    expect(settled.map(([kind, tag]) => [kind, tag])).toEqual([
      ['ack', 1],
      ['reject', 2],
      ['ack', 3],
    ]);
  });

  it('refuses a concurrency below 1', () => {
    const channel = { publish: () => of({ status: 'sent' as const }) };
    expect(() => answerRequests(channel, () => 1, { concurrency: 0 })).toThrow(ConfigurationError);
    expect(() => answerRequests(channel, () => 1, { concurrency: 2.5 })).toThrow(ConfigurationError);
    expect(() => answerRequests(channel, () => 1, { concurrency: Infinity })).not.toThrow();
  });
});
