import { EMPTY, firstValueFrom, type Observable, of, Subject, throwError, toArray } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { answerRequests } from '../../operators/index.js';
import { ConfigurationError, type Delivery } from '../../src/node.js';
import { type FakeMessageInit, marbleKit, published, settlement } from '../../src/testing/index.js';

const { ack, nack, reject } = settlement;
const dropped = { requeue: false };

/** Request n: body `m<n>` unless given, replyTo `reply-<n>`, correlationId `c<n>` (give it tag n). */
const request = (n: number, body = `m${n}`, extra: FakeMessageInit = {}): FakeMessageInit => ({
  body,
  properties: { replyTo: `reply-${n}`, correlationId: `c${n}` },
  ...extra,
});
/** The reply to request n. */
const reply = (n: number, body: string, contentType?: string) =>
  published('', `reply-${n}`, body, {
    properties: { correlationId: `c${n}`, ...(contentType === undefined ? {} : { contentType }) },
  });

describe('answerRequests', () => {
  it(
    'publishes each result to replyTo with the correlationId, acks after the publish emits, emits the result',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '--a' });
      const result = channel
        .cold('-a|', { a: request(1, 'hello') })
        .pipe(answerRequests(channel, (r) => r.text().toUpperCase()));
      m.expect(result).toBeObservable('---(x|)', { x: 'HELLO' });
      m.expect(channel.published$).toBeObservable('-a', { a: reply(1, 'HELLO') });
      m.expect(channel.settlements$).toBeObservable('---a', { a: ack(1) });
    }),
  );

  it(
    'JSON-encodes other results with contentType application/json, bytes as they are, undefined as empty',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const source = channel.cold('(abc|)', {
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
      expect(channel.published).toEqual([
        reply(1, '{"n":1}', 'application/json'),
        reply(2, 'raw'),
        reply(3, ''),
      ]);
    }),
  );

  it(
    'uses encode and contentType when given, and leaves out a missing correlationId',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const source = channel.cold('a|', {
        a: { body: '21', properties: { replyTo: 'amq.rabbitmq.reply-to.xyz' } },
      });
      const result = source.pipe(
        answerRequests(channel, (r) => Number(r.text()) * 2, {
          encode: (n) => `<n>${n}</n>`,
          contentType: 'application/xml',
        }),
      );
      m.expect(result).toBeObservable('x|', { x: 42 });
      m.flush();
      expect(channel.published).toEqual([
        published('', 'amq.rabbitmq.reply-to.xyz', '<n>42</n>', {
          properties: { contentType: 'application/xml' },
        }),
      ]);
    }),
  );

  it(
    'rejects a request without replyTo without requeue, and goes on',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      let calls = 0;
      const source = channel.cold('-ab|', {
        a: { body: 'x', properties: { correlationId: 'c1' } },
        b: request(2),
      });
      const result = source.pipe(
        answerRequests(channel, (r) => {
          calls++;
          return r.text();
        }),
      );
      m.expect(result).toBeObservable('--x|', { x: 'm2' });
      m.expect(channel.settlements$).toBeObservable('-ab', { a: reject(1, dropped), b: ack(2) });
      m.flush();
      expect(calls).toBe(1);
      expect(channel.published).toEqual([reply(2, 'm2')]);
    }),
  );

  it(
    'settles failed requests by policy (throw, error, empty Observable, encode throws), replies nothing, goes on',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const failures: [string, number][] = [];
      const source = channel.cold('-abcde|', {
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
      m.expect(channel.settlements$).toBeObservable('-abcde', {
        a: nack(1),
        b: nack(2),
        c: nack(3),
        d: nack(4),
        e: ack(5),
      });
      m.flush();
      expect(channel.published).toEqual([reply(5, 'ok')]);
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
      const kit = marbleKit(m);
      const [byDefault, poison] = [kit.channel(), kit.channel()];
      const fail = () => m.cold<string>('-#');
      m.expect(byDefault.cold('a|', { a: request(1) }).pipe(answerRequests(byDefault, fail))).toBeObservable(
        '-|',
      );
      m.expect(
        poison
          .cold('a|', { a: request(1, 'x', { redelivered: true }) })
          .pipe(answerRequests(poison, fail, { onError: 'requeue', requeueRedelivered: false })),
      ).toBeObservable('-|');
      m.expect(byDefault.settlements$).toBeObservable('-a', { a: reject(1, dropped) });
      m.expect(poison.settlements$).toBeObservable('-a', { a: reject(1, dropped) });
    }),
  );

  it(
    'runs up to `concurrency` handlers at once; results as they finish',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const slow = m.cold('------s|');
      const fast = m.cold('-f|');
      const other = m.cold('o|');
      const source = channel.cold('-abc|', { a: request(1, 'slow'), b: request(2, 'fast'), c: request(3) });
      const result = source.pipe(
        answerRequests(channel, (r) => (r.text() === 'slow' ? slow : r.text() === 'fast' ? fast : other), {
          concurrency: 2,
        }),
      );
      m.expect(result).toBeObservable('---(fo)(s|)');
      m.expect(other).toHaveSubscriptions('---(^!)');
      m.flush();
      expect(channel.published).toEqual([reply(2, 'f'), reply(3, 'o'), reply(1, 's')]);
    }),
  );

  it(
    'errors with the publish error and leaves the request unsettled',
    marbles((m) => {
      const boom = new Error('channel closed');
      const channel = marbleKit(m).channel({ reply: '-#', error: boom });
      const result = channel.cold('a|', { a: request(1) }).pipe(answerRequests(channel, (r) => r.text()));
      m.expect(result).toBeObservable('-#', undefined, boom);
      m.flush();
      expect(channel.unsettledTags).toEqual([1]);
    }),
  );

  it(
    'leaves running requests unsettled on unsubscription, without replying',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const inner = m.cold('---r|');
      const result = channel.cold('a|', { a: request(1) }).pipe(answerRequests(channel, () => inner));
      m.expect(result, '^-!').toBeObservable('');
      m.expect(inner).toHaveSubscriptions('^-!');
      m.flush();
      expect([channel.published, channel.unsettledTags]).toEqual([[], [1]]);
    }),
  );

  it('answers Promise handlers', async () => {
    const channel = marbleKit().channel({ confirm: false });
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
    for (const [n, body] of [
      [1, 'good'],
      [2, 'bad'],
      [3, 'good'],
    ] as const)
      requests.next(channel.delivery(request(n, body)));
    requests.complete();
    expect(await results).toEqual([10, 30]);
    expect(channel.published).toEqual([
      reply(1, '10', 'application/json'),
      reply(3, '30', 'application/json'),
    ]);
    expect(channel.settlements).toEqual([ack(1), reject(2, dropped), ack(3)]);
  });

  it('refuses a concurrency below 1', () => {
    const channel = { publish: () => of({ status: 'sent' as const }) };
    expect(() => answerRequests(channel, () => 1, { concurrency: 0 })).toThrow(ConfigurationError);
    expect(() => answerRequests(channel, () => 1, { concurrency: 2.5 })).toThrow(ConfigurationError);
    expect(() => answerRequests(channel, () => 1, { concurrency: Infinity })).not.toThrow();
  });
});

describe('answerRequests during a drain', () => {
  it('gives back the requests a drain returns (returnForDrain) unanswered, and answers the others', async () => {
    const channel = marbleKit().channel({ confirm: false });
    const requests = [1, 2, 3].map((n) => channel.delivery(request(n)));
    // As a drain with prefetched: 'return' would: the second one goes back when its turn comes.
    const returned: number[] = [];
    requests[1]!.returnForDrain = () => {
      returned.push(2);
      return true;
    };
    const handled: string[] = [];
    const results = await firstValueFrom(
      of(...requests).pipe(
        answerRequests(channel, (r) => {
          handled.push(r.text());
          return r.text();
        }),
        toArray(),
      ),
    );
    expect(results).toEqual(['m1', 'm3']);
    expect(handled).toEqual(['m1', 'm3']);
    expect(returned).toEqual([2]);
    expect(channel.published).toEqual([reply(1, 'm1'), reply(3, 'm3')]);
    expect(channel.settlements).toEqual([ack(1), ack(3)]);
  });
});
