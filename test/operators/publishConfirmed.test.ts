import fc from 'fast-check';
import { from, lastValueFrom, map, NEVER, of, take, tap, throwError, timer, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { marbles } from 'rxjs-marbles/jest';
import {
  type NackPolicy,
  type OutgoingMessage,
  type PublishResult,
  publishConfirmed,
} from '../../operators/index.js';
import {
  type BasicProperties,
  ConfigurationError,
  type PublishCallback,
  PublishNackedError,
  type PublishOutcome,
  type PublishTarget,
  type ReturnedMessage,
} from '../../src/node.js';
import {
  type ChannelEvent,
  type MarbleContext,
  marbleKit,
  published,
  type Reply,
} from '../../src/testing/index.js';

/**
 * How the fake channel publishes: `publish` only (the Observable path), or also `publishWith` (the
 * callback path the operator takes when the channel has it, as a real `Channel` does).
 */
type Path = 'publish' | 'publishWith';

/**
 * A confirm-mode channel of the marble kit (`wire`: what reached the broker) whose publishes are
 * answered by the reply scripted for the message's body: `replies[body][n]` for the n-th publish of
 * that body (an error past the script). `channel` is the target handed to the operator: `publish`
 * only on the `publish` path, `publishWith` too on the other; `paths` records the methods called.
 * The replies are Observables (then the kit needs no marble parser) or reply marbles (pass the test's
 * `context`), whose `#` errors with `error`.
 */
function fakeConfirmChannel(
  replies: Record<string, readonly Reply[]>,
  path: Path,
  context?: MarbleContext,
  error?: Error,
) {
  const wire = marbleKit(context).channel({
    // The operator takes any PublishTarget, including one that reports its outcomes as they come
    // (a real Channel orders them): the tests script answers out of order.
    inOrder: false,
    ...(error === undefined ? {} : { error }),
    reply: (p, { attempt }) =>
      replies[p.text]?.[attempt - 1] ??
      throwError(() => new Error(`no reply scripted for publish ${attempt} of '${p.text}'`)),
  });
  const paths = new Set<Path>();
  const publish: PublishTarget['publish'] = (...args) => {
    paths.add('publish');
    return wire.publish(...args);
  };
  const publishWith = <C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ) => {
    paths.add('publishWith');
    return wire.publishWith(exchange, routingKey, body, properties, mandatory, context, done);
  };
  const channel: PublishTarget = path === 'publish' ? { publish } : { publish, publishWith };
  /** The bodies published, in order. */
  const bodies = () => wire.published.map((p) => p.text);
  /** How many times each body was published, in first-publish order. */
  const publishCounts = () => {
    const counts: Record<string, number> = {};
    for (const body of bodies()) counts[body] = (counts[body] ?? 0) + 1;
    return counts;
  };
  return { channel, wire, paths, bodies, publishCounts };
}

/** A channel event as 'frame type body' (the confirm's status for a confirm). */
const seen = (e: ChannelEvent) =>
  `${e.time} ${e.type} ${'message' in e ? e.message.text : e.type === 'confirmed' ? e.confirmation.status : ''}`;

const message = (body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  exchange: 'ex',
  routingKey: `rk.${body}`,
  body,
  ...extra,
});

/** The policy `{ retry, exhausted: 'emit' }`. */
const retryThenEmit = (retry: number): NackPolicy => ({ retry, exhausted: 'emit' });

const acked = (seq: number): PublishOutcome => ({ status: 'acked', seq });
const nacked = (seq: number): PublishOutcome => ({ status: 'nacked', seq });

const result = <M extends OutgoingMessage>(
  msg: M,
  outcome: PublishOutcome,
  attempts = 1,
): PublishResult<M> => ({ message: msg, outcome, attempts });

describe.each<Path>(['publish', 'publishWith'])('publishConfirmed over %s', (path) => {
  const fake = (replies: Record<string, readonly Reply[]>, context?: MarbleContext, error?: Error) =>
    fakeConfirmChannel(replies, path, context, error);

  it(
    'publishes each message with its properties and mandatory flag, emits outcomes in source order with attempts 1',
    marbles((m) => {
      const a = message('a', { properties: { contentType: 'text/plain', deliveryMode: 2 } });
      const b = message('b', { mandatory: true });
      const c = { ...message('c', { mandatory: false }), id: 42 };
      const { channel, wire, paths } = fake({
        a: [m.cold('-(x|)', { x: acked(1) })],
        b: [m.cold('-(x|)', { x: acked(2) })],
        c: [m.cold('-(x|)', { x: acked(3) })],
      });
      const emitted: PublishResult<typeof c | OutgoingMessage>[] = [];
      const out = m.cold('-a-b-c---|', { a, b, c }).pipe(
        publishConfirmed(channel),
        tap((r) => emitted.push(r)),
      );
      // Completes when the source does, not before.
      m.expect(out).toBeObservable('--x-y-z--|', {
        x: result(a, acked(1)),
        y: result(b, acked(2)),
        z: result(c, acked(3)),
      });
      m.flush();
      expect(wire.published).toEqual([
        published('ex', 'rk.a', 'a', { properties: { contentType: 'text/plain', deliveryMode: 2 } }),
        published('ex', 'rk.b', 'b', { mandatory: true }),
        published('ex', 'rk.c', 'c'),
      ]);
      // The message emitted is the source's own object (extra fields kept).
      expect(emitted.map((r) => r.message)).toEqual([a, b, c]);
      expect(emitted[2]?.message).toBe(c);
      // The path under test is the one taken.
      expect([...paths]).toEqual([path]);
    }),
  );

  it(
    'completes only once every outcome is in when the source completes first',
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const { channel } = fake({
        a: [m.cold('---(x|)', { x: acked(1) })],
        b: [m.cold('---(x|)', { x: acked(2) })],
      });
      const out = m.cold('-ab|', { a, b }).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable('----x(y|)', { x: result(a, acked(1)), y: result(b, acked(2)) });
      m.flush();
    }),
  );

  it(
    'completes at once for an empty source, publishing nothing',
    marbles((m) => {
      const { channel, bodies } = fake({});
      m.expect(m.cold<OutgoingMessage>('--|').pipe(publishConfirmed(channel))).toBeObservable('--|');
      m.flush();
      expect(bodies()).toEqual([]);
    }),
  );

  it(
    'keeps at most `window` publishes subscribed at once; the next starts as one completes',
    marbles((m) => {
      const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((body) => message(body)) as [
        OutgoingMessage,
        OutgoingMessage,
        OutgoingMessage,
        OutgoingMessage,
      ];
      const ra = m.cold('-----(x|)', { x: acked(1) });
      const rb = m.cold('--(x|)', { x: acked(2) });
      const rc = m.cold('--(x|)', { x: acked(3) });
      const rd = m.cold('-(x|)', { x: acked(4) });
      const { channel, wire, bodies } = fake({ a: [ra], b: [rb], c: [rc], d: [rd] });
      const out = m.cold('(abcd|)', { a, b, c, d }).pipe(publishConfirmed(channel, { window: 2 }));
      const publishedBy: number[] = [];
      for (let frame = 0; frame <= 6; frame++) {
        m.scheduler.schedule(() => publishedBy.push(bodies().length), frame);
      }
      // c waits for b's confirm (frame 2), d for c's (frame 4); b, c and d are confirmed before a (frame 5).
      m.expect(out).toBeObservable('-----(wxyz|)', {
        w: result(a, acked(1)),
        x: result(b, acked(2)),
        y: result(c, acked(3)),
        z: result(d, acked(4)),
      });
      m.expect(ra).toHaveSubscriptions('^----!');
      m.expect(rb).toHaveSubscriptions('^-!');
      m.expect(rc).toHaveSubscriptions('--^-!');
      m.expect(rd).toHaveSubscriptions('----^!');
      m.flush();
      expect(wire.maxUnconfirmed).toBe(2);
      expect(wire.unconfirmed).toBe(0);
      // Probes run before what else happens in their frame.
      expect(publishedBy).toEqual([0, 2, 2, 3, 3, 4, 4]);
    }),
  );

  it(
    'subscribes up to 1000 publishes at once by default',
    marbles((m) => {
      const bodies = Array.from({ length: 1001 }, (_, i) => `m${i}`);
      const replies = Object.fromEntries(
        bodies.map((body, i) => [body, [m.cold('--(x|)', { x: acked(i) })]]),
      );
      const { channel, wire } = fake(replies);
      const count = { n: 0 };
      from(bodies.map((body) => message(body)))
        .pipe(publishConfirmed(channel))
        .subscribe(() => count.n++);
      m.flush();
      expect(wire.maxUnconfirmed).toBe(1000);
      expect(count.n).toBe(1001);
    }),
  );

  it(
    'holds back a result confirmed early and emits it right after the earlier ones',
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const c = message('c');
      const d = message('d');
      const { channel } = fake({
        a: [m.cold('-(x|)', { x: acked(1) })],
        b: [m.cold('----(x|)', { x: acked(2) })],
        c: [m.cold('-(x|)', { x: acked(3) })],
        d: [m.cold('--(x|)', { x: acked(4) })],
      });
      const out = m.cold('(abcd)----|', { a, b, c, d }).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable('-w--(xyz)-|', {
        w: result(a, acked(1)),
        x: result(b, acked(2)),
        y: result(c, acked(3)),
        z: result(d, acked(4)),
      });
      m.flush();
    }),
  );

  it.each([
    ['by default', {}],
    ["with onNack: 'error'", { onNack: 'error' as const }],
  ])('errors with PublishNackedError (seq, attempts 1) at once on a nack %s', (_, options) =>
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const ra = m.cold('--(n|)', { n: nacked(7) });
      const rb = m.cold('-----(x|)', { x: acked(8) });
      const { channel, bodies } = fake({ a: [ra], b: [rb] });
      const errors: unknown[] = [];
      const out = m
        .cold('(ab|)', { a, b })
        .pipe(publishConfirmed(channel, options), tap({ error: (e) => errors.push(e) }));
      m.expect(out).toBeObservable('--#', undefined, new PublishNackedError('ex', 'rk.a', 7, 1));
      m.flush();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(PublishNackedError);
      expect(errors[0]).toMatchObject({ code: 'PUBLISH_NACKED', seq: 7, attempts: 1 });
      expect((errors[0] as Error).message).toContain("exchange 'ex' with routing key 'rk.a'");
      expect(bodies()).toHaveLength(2);
    })(),
  );

  it(
    "emits the nacked outcome and goes on with onNack: 'emit', without republishing",
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const { channel, bodies } = fake({
        a: [m.cold('-(n|)', { n: nacked(1) })],
        b: [m.cold('--(x|)', { x: acked(2) })],
      });
      const out = m.cold('(ab|)', { a, b }).pipe(publishConfirmed(channel, { onNack: 'emit' }));
      m.expect(out).toBeObservable('-x(y|)', { x: result(a, nacked(1)), y: result(b, acked(2)) });
      m.flush();
      expect(bodies()).toEqual(['a', 'b']);
    }),
  );

  it(
    'republishes a nacked message under { retry: 2 } and emits the ack with its attempts, in source order',
    marbles((m) => {
      const a = message('a', { properties: { messageId: 'id-a' }, mandatory: true });
      const b = message('b');
      const c = message('c');
      const { channel, wire, publishCounts } = fake({
        a: [
          m.cold('-(n|)', { n: nacked(1) }),
          m.cold('-(n|)', { n: nacked(4) }),
          m.cold('-(x|)', { x: acked(6) }),
        ],
        b: [m.cold('-(n|)', { n: nacked(2) }), m.cold('-(x|)', { x: acked(5) })],
        c: [m.cold('-(x|)', { x: acked(3) })],
      });
      const out = m.cold('(abc|)', { a, b, c }).pipe(publishConfirmed(channel, { onNack: { retry: 2 } }));
      // a is acked at its third attempt (frame 3); b (second attempt, frame 2) and c wait for it.
      m.expect(out).toBeObservable('---(xyz|)', {
        x: result(a, acked(6), 3),
        y: result(b, acked(5), 2),
        z: result(c, acked(3), 1),
      });
      m.flush();
      expect(publishCounts()).toEqual({ a: 3, b: 2, c: 1 });
      // Every attempt publishes the same message.
      const republished = wire.published.filter((p) => p.text === 'a');
      const attempt = published('ex', 'rk.a', 'a', { properties: { messageId: 'id-a' }, mandatory: true });
      expect(republished).toEqual([attempt, attempt, attempt]);
    }),
  );

  it(
    'keeps a retried message in its place when a later one is confirmed meanwhile',
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const { channel } = fake({
        a: [m.cold('-(n|)', { n: nacked(1) }), m.cold('---(x|)', { x: acked(3) })],
        b: [m.cold('--(x|)', { x: acked(2) })],
      });
      const out = m.cold('(ab)-----|', { a, b }).pipe(publishConfirmed(channel, { onNack: { retry: 1 } }));
      m.expect(out).toBeObservable('----(xy)-|', { x: result(a, acked(3), 2), y: result(b, acked(2)) });
      m.flush();
    }),
  );

  it(
    'errors with PublishNackedError (attempts retry + 1, seq of the last attempt) once the retries are spent',
    marbles((m) => {
      const a = message('a');
      const { channel, publishCounts } = fake({
        a: [
          m.cold('-(n|)', { n: nacked(1) }),
          m.cold('-(n|)', { n: nacked(2) }),
          m.cold('-(n|)', { n: nacked(3) }),
        ],
      });
      const errors: unknown[] = [];
      const out = m
        .cold('a|', { a })
        .pipe(publishConfirmed(channel, { onNack: { retry: 2 } }), tap({ error: (e) => errors.push(e) }));
      m.expect(out).toBeObservable('---#', undefined, new PublishNackedError('ex', 'rk.a', 3, 3));
      m.flush();
      expect(publishCounts()).toEqual({ a: 3 });
      expect(errors[0]).toBeInstanceOf(PublishNackedError);
      expect(errors[0]).toMatchObject({ seq: 3, attempts: 3 });
    }),
  );

  it(
    "emits the last nack with attempts 2 under { retry: 1, exhausted: 'emit' } and goes on",
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const { channel, publishCounts } = fake({
        a: [m.cold('-(n|)', { n: nacked(1) }), m.cold('-(n|)', { n: nacked(3) })],
        b: [m.cold('-(x|)', { x: acked(2) })],
      });
      const out = m.cold('(ab|)', { a, b }).pipe(publishConfirmed(channel, { onNack: retryThenEmit(1) }));
      m.expect(out).toBeObservable('--(xy|)', { x: result(a, nacked(3), 2), y: result(b, acked(2)) });
      m.flush();
      expect(publishCounts()).toEqual({ a: 2, b: 1 });
    }),
  );

  it(
    'treats { retry: 0 } like no retry: error by default, emit with exhausted: emit',
    marbles((m) => {
      const a = message('a');
      const failing = fake({ a: [m.cold('-(n|)', { n: nacked(1) })] });
      const emitting = fake({ a: [m.cold('-(n|)', { n: nacked(1) })] });
      m.expect(
        m.cold('a|', { a }).pipe(publishConfirmed(failing.channel, { onNack: { retry: 0 } })),
      ).toBeObservable('-#', undefined, new PublishNackedError('ex', 'rk.a', 1, 1));
      m.expect(
        m.cold('a|', { a }).pipe(publishConfirmed(emitting.channel, { onNack: retryThenEmit(0) })),
      ).toBeObservable('-(x|)', { x: result(a, nacked(1)) });
      m.flush();
      expect([failing.bodies().length, emitting.bodies().length]).toEqual([1, 1]);
    }),
  );

  it.each([['error' as const], ['emit' as const], [{ retry: 3 }]])(
    "emits 'returned' and 'sent' outcomes as they are and never retries them (onNack %p)",
    (onNack) =>
      marbles((m) => {
        const returned: ReturnedMessage = {
          replyCode: 312,
          replyText: 'NO_ROUTE',
          exchange: 'ex',
          routingKey: 'rk.a',
          properties: {},
          body: Buffer.from('a'),
        };
        const returnedOutcome: PublishOutcome = { status: 'returned', seq: 1, returned };
        const sentOutcome: PublishOutcome = { status: 'sent' };
        const a = message('a', { mandatory: true });
        const b = message('b');
        const { channel, publishCounts } = fake({
          a: [m.cold('-(r|)', { r: returnedOutcome })],
          b: [m.cold('-(s|)', { s: sentOutcome })],
        });
        const emitted: PublishResult[] = [];
        const out = m.cold('(ab|)', { a, b }).pipe(
          publishConfirmed(channel, { onNack }),
          tap((r) => emitted.push(r)),
        );
        m.expect(out).toBeObservable('-(xy|)', { x: result(a, returnedOutcome), y: result(b, sentOutcome) });
        m.flush();
        expect(publishCounts()).toEqual({ a: 1, b: 1 });
        expect(emitted[0]?.outcome).toBe(returnedOutcome);
      })(),
  );

  it(
    'errors with the publish error (channel closed) at once, before the outcomes of earlier messages',
    marbles((m) => {
      const closed = new Error('channel closed');
      const a = message('a');
      const b = message('b');
      const c = message('c');
      const ra = m.cold('----(x|)', { x: acked(1) });
      const rb = m.cold<PublishOutcome>('--#', undefined, closed);
      const rc = m.cold('-(x|)', { x: acked(3) });
      const { channel } = fake({ a: [ra], b: [rb], c: [rc] });
      const errors: unknown[] = [];
      const out = m
        .cold('(abc|)', { a, b, c })
        .pipe(publishConfirmed(channel), tap({ error: (e) => errors.push(e) }));
      m.expect(out).toBeObservable('--#', undefined, closed);
      m.flush();
      expect(errors).toEqual([closed]);
      expect(errors[0]).toBe(closed);
    }),
  );

  it(
    "errors with the source's error at once",
    marbles((m) => {
      const failed = new Error('source failed');
      const a = message('a');
      const b = message('b');
      const { channel } = fake({
        a: [m.cold('-(x|)', { x: acked(1) })],
        b: [m.cold('-----(x|)', { x: acked(2) })],
      });
      const out = m.cold('ab#', { a, b }, failed).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable('-x#', { x: result(a, acked(1)) }, failed);
      m.flush();
    }),
  );

  it(
    'errors with the error of a republish',
    marbles((m) => {
      const closed = new Error('connection lost');
      const a = message('a');
      const { channel, publishCounts } = fake({
        a: [m.cold('-(n|)', { n: nacked(1) }), m.cold<PublishOutcome>('-#', undefined, closed)],
      });
      const out = m.cold('a|', { a }).pipe(publishConfirmed(channel, { onNack: { retry: 5 } }));
      m.expect(out).toBeObservable('--#', undefined, closed);
      m.flush();
      expect(publishCounts()).toEqual({ a: 2 });
    }),
  );

  it(
    'unsubscribes the source when unsubscribed, and publishes nothing more',
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const c = message('c');
      const rc = m.cold('-(x|)', { x: acked(4) });
      const { channel, bodies } = fake({
        a: [m.cold('------(x|)', { x: acked(1) })],
        b: [m.cold('-(n|)', { n: nacked(2) }), m.cold('------(x|)', { x: acked(3) })],
        c: [rc],
      });
      const source = m.cold('(abc)----|', { a, b, c });
      const out = source.pipe(publishConfirmed(channel, { window: 2, onNack: { retry: 1 } }));
      m.expect(out, '^--!').toBeObservable('');
      m.expect(source).toHaveSubscriptions('^--!');
      m.expect(rc).toHaveSubscriptions([]);
      m.flush();
      expect(bodies()).toEqual(['a', 'b', 'b']);
    }),
  );

  // Ending the stream drops the publishes not written yet (here, each waits for the `w` of its reply
  // marble) on both paths: publishWith's handle is cancelled, publish() is unsubscribed.
  const closed = new Error('channel closed');
  const sourceFailed = new Error('source failed');
  it.each([
    // [why it stops, source, a's reply, unsubscription, error, unwritten at frames 1 and 2, what the channel saw]
    [
      'a nack errors it',
      '(ab|)',
      '--(wn)',
      undefined,
      new PublishNackedError('ex', 'rk.a', 1, 1),
      [2, 2],
      ['2 published a', '2 confirmed nacked', '2 cancelled b'],
    ],
    [
      'a publish errors',
      '(ab|)',
      '--(w#)',
      undefined,
      closed,
      [2, 2],
      ['2 published a', '2 confirmed failed', '2 cancelled b'],
    ],
    [
      'the source errors',
      'ab#',
      '-----(wa)',
      undefined,
      sourceFailed,
      [1, 2],
      ['2 cancelled a', '2 cancelled b'],
    ],
    [
      'it is unsubscribed',
      '(ab|)',
      '-----(wa)',
      '^-!',
      undefined,
      [2, 2],
      ['2 cancelled a', '2 cancelled b'],
    ],
  ] as const)('stops the publishes in flight when %s', (_, source, replyA, until, error, unwritten, events) =>
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const { channel, wire } = fake({ a: [replyA], b: ['-----(wa)'] }, m, closed);
      // Probes run before what else happens in their frame (they are scheduled first).
      const probes: number[] = [];
      for (const frame of [1, 2]) m.scheduler.schedule(() => probes.push(wire.unwritten), frame);
      const out = m.cold(source, { a, b }, sourceFailed).pipe(publishConfirmed(channel));
      if (until === undefined) m.expect(out).toBeObservable('--#', undefined, error);
      else m.expect(out, until).toBeObservable('');
      m.flush();
      expect(probes).toEqual(unwritten);
      expect(wire.events.map(seen)).toEqual(events);
      expect([wire.unconfirmed, wire.unwritten, wire.published.length]).toEqual([0, 0, events.length - 2]);
    })(),
  );

  it(
    'stops a republish in flight when unsubscribed',
    marbles((m) => {
      const a = message('a');
      const { channel, wire } = fake({ a: ['-n', '----(wa)'] }, m);
      const out = m.cold('a', { a }).pipe(publishConfirmed(channel, { onNack: { retry: 1 } }));
      m.expect(out, '^--!').toBeObservable('');
      m.flush();
      expect(wire.events.map(seen)).toEqual(['0 published a', '1 confirmed nacked', '3 cancelled a']);
      expect([wire.unconfirmed, wire.unwritten]).toEqual([0, 0]);
    }),
  );

  // An error or an unsubscription while a synchronous source is still emitting stops it: the
  // source's next messages are not published.
  it('publishes nothing more once a synchronous nack has errored it', () => {
    const { channel, bodies } = fake({ a: [of(nacked(1))], b: [NEVER], c: [NEVER] });
    const errors: unknown[] = [];
    from([message('a'), message('b'), message('c')])
      .pipe(publishConfirmed(channel))
      .subscribe({ error: (e) => errors.push(e) });
    expect(errors).toEqual([new PublishNackedError('ex', 'rk.a', 1, 1)]);
    expect(bodies()).toEqual(['a']);
  });

  it('publishes nothing more once unsubscribed by take(1) during a synchronous source', () => {
    const { channel, bodies } = fake({ a: [of(acked(1))], b: [of(acked(2))], c: [of(acked(3))] });
    const emitted: PublishResult[] = [];
    from([message('a'), message('b'), message('c')])
      .pipe(publishConfirmed(channel), take(1))
      .subscribe((r) => emitted.push(r));
    expect(emitted).toEqual([result(message('a'), acked(1))]);
    expect(bodies()).toEqual(['a']);
  });

  it(
    'ignores the answers that still come in after it has errored: no emission, no republish, no next publish',
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const c = message('c');
      const rb = m.cold('---(n|)', { n: nacked(2) });
      const { channel, bodies } = fake({
        a: [m.cold<PublishOutcome>('-#', undefined, closed)],
        b: [rb, m.cold('-(x|)', { x: acked(3) })],
        c: [m.cold('-(x|)', { x: acked(4) })],
      });
      const out = m
        .cold('(abc|)', { a, b, c })
        .pipe(publishConfirmed(channel, { window: 2, onNack: { retry: 1 } }));
      m.expect(out).toBeObservable('-#', undefined, closed);
      m.flush();
      expect(bodies()).toEqual(['a', 'b']);
    }),
  );

  it('keeps source order over a long stream with answers out of order (thousands of messages)', () => {
    const count = 5000;
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(() => {
      // Every 7th message answers late, after 20 frames; the others after 0 to 2 frames.
      const replies = Object.fromEntries(
        Array.from({ length: count }, (_, i) => [
          `m${i}`,
          [timer(i % 7 === 0 ? 20 : i % 3).pipe(map(() => acked(i + 1)))],
        ]),
      );
      const { channel, wire } = fake(replies);
      const bodies: string[] = [];
      let completed = false;
      from(Array.from({ length: count }, (_, i) => message(`m${i}`)))
        .pipe(publishConfirmed(channel, { window: 64 }))
        .subscribe({ next: (r) => bodies.push(String(r.message.body)), complete: () => (completed = true) });
      scheduler.flush();
      expect(bodies).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
      expect(completed).toBe(true);
      expect(wire.maxUnconfirmed).toBe(64);
    });
  });

  it(
    'keeps separate order state for each subscription',
    marbles((m) => {
      const a = message('a');
      const b = message('b');
      const ra = m.cold('-(x|)', { x: acked(1) });
      const rb = m.cold('--(x|)', { x: acked(2) });
      const { channel } = fake({ a: [ra, ra], b: [rb, rb] });
      const out = m.cold('(ab|)', { a, b }).pipe(publishConfirmed(channel));
      const expected = { x: result(a, acked(1)), y: result(b, acked(2)) };
      m.expect(out).toBeObservable('-x(y|)', expected);
      m.expect(out).toBeObservable('-x(y|)', expected);
      m.flush();
    }),
  );

  it('works with publishes that answer synchronously', () => {
    const { channel } = fake({
      a: [of(nacked(1)), of(acked(2))],
      b: [of(acked(3))],
    });
    const emitted: PublishResult[] = [];
    from([message('a'), message('b')])
      .pipe(publishConfirmed(channel, { window: 1, onNack: { retry: 1 } }))
      .subscribe((r) => emitted.push(r));
    expect(emitted).toEqual([result(message('a'), acked(2), 2), result(message('b'), acked(3))]);
  });

  it('emits every message once, in source order, within the window, whatever the confirm timing and nacks', () => {
    const scenario = fc.record({
      messages: fc.array(fc.record({ delays: fc.array(fc.nat(8), { minLength: 1, maxLength: 4 }) }), {
        maxLength: 25,
      }),
      window: fc.integer({ min: 1, max: 6 }),
      retry: fc.nat(3),
    });
    fc.assert(
      fc.property(scenario, ({ messages, window, retry }) => {
        // Message i's attempt k answers after delays[k] frames: nacked, except the last attempt scripted.
        let seq = 0;
        const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
        scheduler.run(() => {
          const replies = Object.fromEntries(
            messages.map(({ delays }, i) => [
              `m${i}`,
              delays.map((delay, k) =>
                timer(delay).pipe(map(() => (k === delays.length - 1 ? acked(++seq) : nacked(++seq)))),
              ),
            ]),
          );
          const { channel, publishCounts, wire } = fake(replies);
          const emitted: PublishResult[] = [];
          let completed = false;
          from(messages.map((_, i) => message(`m${i}`)))
            .pipe(publishConfirmed(channel, { window, onNack: retryThenEmit(retry) }))
            .subscribe({ next: (r) => emitted.push(r), complete: () => (completed = true) });
          scheduler.flush();
          expect(completed).toBe(true);
          expect(emitted.map((r) => r.message.body)).toEqual(messages.map((_, i) => `m${i}`));
          messages.forEach(({ delays }, i) => {
            const attempts = Math.min(delays.length, retry + 1);
            expect(emitted[i]?.attempts).toBe(attempts);
            expect(emitted[i]?.outcome.status).toBe(attempts === delays.length ? 'acked' : 'nacked');
            expect(publishCounts()[`m${i}`]).toBe(attempts);
          });
          expect(wire.maxUnconfirmed).toBeLessThanOrEqual(window);
          expect(wire.maxUnconfirmed).toBe(Math.min(window, messages.length));
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('publishConfirmed options', () => {
  it('refuses a window that is not a positive integer and a retry count that is not a non-negative integer', () => {
    const { channel, bodies } = fakeConfirmChannel({}, 'publish');
    for (const window of [0, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => publishConfirmed(channel, { window })).toThrow(ConfigurationError);
    }
    expect(() => publishConfirmed(channel, { window: 0 })).toThrow(
      /window must be a positive integer, got 0/,
    );
    for (const retry of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => publishConfirmed(channel, { onNack: { retry } })).toThrow(ConfigurationError);
      expect(() => publishConfirmed(channel, { onNack: retryThenEmit(retry) })).toThrow(ConfigurationError);
    }
    expect(() => publishConfirmed(channel, { onNack: { retry: -1 } })).toThrow(
      /onNack.retry must be a non-negative integer, got -1/,
    );
    expect(() => publishConfirmed(channel, { window: 1, onNack: { retry: 0 } })).not.toThrow();
    expect(() => publishConfirmed(channel)).not.toThrow();
    expect(bodies()).toEqual([]);
  });
});

describe('publishConfirmed on a target not in confirm mode', () => {
  it('errors at the first message with a ConfigurationError instead of emitting silent sent outcomes', async () => {
    let published = 0;
    const target = {
      confirmMode: false,
      publish: () => {
        published++;
        return of({ status: 'sent' } as const);
      },
    };
    const error = await new Promise<unknown>((resolve) => {
      from([{ exchange: '', routingKey: 'q', body: 'x' }])
        .pipe(publishConfirmed(target))
        .subscribe({ error: resolve, complete: () => resolve(undefined) });
    });
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain('confirmSelect()');
    expect(published).toBe(0);
    const allowed = await lastValueFrom(
      from([{ exchange: '', routingKey: 'q', body: 'x' }]).pipe(
        publishConfirmed(target, { allowUnconfirmed: true }),
        toArray(),
      ),
    );
    expect(allowed.map((r) => r.outcome.status)).toEqual(['sent']);
  });

  it('publishes once the target is in confirm mode, and trusts a target that does not say', async () => {
    const confirmed = { confirmMode: true, publish: () => of({ status: 'acked', seq: 1 } as const) };
    const silent = { publish: () => of({ status: 'acked', seq: 1 } as const) };
    for (const target of [confirmed, silent]) {
      const out = await lastValueFrom(
        from([{ exchange: '', routingKey: 'q', body: 'x' }]).pipe(publishConfirmed(target), toArray()),
      );
      expect(out.map((r) => r.outcome.status)).toEqual(['acked']);
    }
  });
});
