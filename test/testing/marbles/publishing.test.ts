import { map, of, take } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { marbles } from 'rxjs-marbles/jest';
import {
  answerRequests,
  type OutgoingMessage,
  publishConfirmed,
  retryWithDelay,
} from '../../../operators/index.js';
import {
  ChannelClosedError,
  ConfigurationError,
  PublishNackedError,
  type PublishOutcome,
} from '../../../src/index.js';
import { marbleKit, outcome, published, settlement } from '../../../src/testing/index.js';

const { acked, nacked } = outcome;
const message = (body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  exchange: 'ex',
  routingKey: `rk.${body}`,
  body,
  ...extra,
});

describe('fake channel as a publish target', () => {
  it(
    'records every publish on published$ and acks it in the same frame by default',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const a = message('a', { properties: { contentType: 'text/plain' } });
      const b = message('b', { mandatory: true });
      const out = m.cold('-a-b|', { a, b }).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable('-x-y|', {
        x: { message: a, outcome: acked(1), attempts: 1 },
        y: { message: b, outcome: acked(2), attempts: 1 },
      });
      m.expect(channel.published$).toBeObservable('-a-b', {
        a: published('ex', 'rk.a', 'a', { properties: { contentType: 'text/plain' } }),
        b: published('ex', 'rk.b', 'b', { mandatory: true }),
      });
      m.expect(channel.confirms$).toBeObservable('-a-b', { a: acked(1), b: acked(2) });
      m.flush();
      expect(channel.published.map((p) => p.text)).toEqual(['a', 'b']);
      expect(channel.confirmMode).toBe(true);
    }),
  );

  it(
    'acks after confirmDelay frames, and publishConfirmed keeps its window (maxUnconfirmed)',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirmDelay: 4 });
      const [a, b, c] = ['a', 'b', 'c'].map((body) => message(body)) as [
        OutgoingMessage,
        OutgoingMessage,
        OutgoingMessage,
      ];
      const out = m.cold('(abc|)', { a, b, c }).pipe(publishConfirmed(channel, { window: 2 }));
      // c goes out when a's ack comes back (frame 4), and is acked at frame 8.
      m.expect(out).toBeObservable('----(xy)(z|)', {
        x: { message: a, outcome: acked(1), attempts: 1 },
        y: { message: b, outcome: acked(2), attempts: 1 },
        z: { message: c, outcome: acked(3), attempts: 1 },
      });
      m.expect(channel.published$.pipe(map((p) => p.text))).toBeObservable('(ab)c', {
        a: 'a',
        b: 'b',
        c: 'c',
      });
      m.flush();
      expect(channel.maxUnconfirmed).toBe(2);
      expect(channel.unconfirmed).toBe(0);
    }),
  );

  it(
    'answers each publish with the reply a function scripts: nacks, retries, returns, errors',
    marbles((m) => {
      const boom = new Error('scripted');
      const channel = marbleKit(m).channel({
        error: boom,
        reply: (p, { attempt }) => {
          if (p.text === 'retry') return attempt === 1 ? '-n' : '--a';
          if (p.text === 'lost') return 'r';
          if (p.text === 'fail') return '---#';
          return '-a';
        },
      });
      const retry = message('retry');
      const lost = message('lost', { mandatory: true });
      const ok = message('ok');
      const out = m
        .cold('(abc)', { a: retry, b: lost, c: ok })
        .pipe(publishConfirmed(channel, { onNack: { retry: 1 } }));
      m.expect(out).toBeObservable('---(xyz)', {
        x: { message: retry, outcome: acked(5), attempts: 2 },
        y: {
          message: lost,
          outcome: outcome.returned(2, published('ex', 'rk.lost', 'lost', { mandatory: true })),
          attempts: 1,
        },
        z: { message: ok, outcome: acked(3), attempts: 1 },
      });
      m.expect(channel.returns$.pipe(map((r) => [r.replyCode, r.routingKey]))).toBeObservable('r', {
        r: [312, 'rk.lost'],
      });
      const failing = m.cold('a|', { a: message('fail') }).pipe(publishConfirmed(channel));
      m.expect(failing).toBeObservable('---#', undefined, boom);
      m.flush();
      // 'fail' went out fourth, from the other stream, before the retry. The return (answered at 0)
      // is reported after the nack of the publish before it (1), as a real channel orders them.
      expect(
        channel.events.flatMap((e) =>
          e.type === 'confirmed' ? [[e.time, e.confirmation.status, e.confirmation.seq]] : [],
        ),
      ).toEqual([
        [1, 'nacked', 1],
        [1, 'returned', 2],
        [1, 'acked', 3],
        [3, 'failed', 4],
        [3, 'acked', 5],
      ]);
    }),
  );

  it(
    'errors publishConfirmed with PublishNackedError on a marble nack',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '--n' });
      const out = m.cold('a', { a: message('a') }).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable('--#', undefined, new PublishNackedError('ex', 'rk.a', 1, 1));
    }),
  );

  it(
    'takes an Observable reply as it is',
    marbles((m) => {
      const answer = m.cold<PublishOutcome>('--(x|)', { x: { status: 'acked', seq: 42 } });
      const channel = marbleKit(m).channel({ reply: () => answer });
      const out = m.cold('a|', { a: message('a') }).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable('--(x|)', {
        x: { message: message('a'), outcome: acked(42), attempts: 1 },
      });
      m.expect(answer).toHaveSubscriptions('^-!');
    }),
  );

  it(
    'reports sent at once without confirm mode, and publishConfirmed refuses it unless allowed',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      expect(channel.confirmMode).toBe(false);
      const a = message('a');
      m.expect(
        m.cold('a|', { a }).pipe(publishConfirmed(channel, { allowUnconfirmed: true })),
      ).toBeObservable('x|', {
        x: { message: a, outcome: outcome.sent(), attempts: 1 },
      });
      const errors: unknown[] = [];
      m.cold('a|', { a })
        .pipe(publishConfirmed(channel))
        .subscribe({ error: (e) => errors.push(e) });
      m.expect(channel.confirms$).toBeObservable('');
      m.flush();
      expect(errors).toEqual([expect.any(ConfigurationError)]);
      expect(channel.published).toHaveLength(1);
    }),
  );

  it(
    'holds publishes while blocked: publishWith returns a handle, cancel() drops an unwritten one',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ blocked: true });
      kit.at(4, () => channel.unblock());
      const [a, b] = [message('a'), message('b')];
      // Unsubscribed at frame 2, while both wait: publishConfirmed cancels them.
      m.expect(m.cold('(ab)', { a, b }).pipe(publishConfirmed(channel)), '^-!').toBeObservable('');
      m.flush();
      expect([channel.cancelled, channel.published, channel.unwritten]).toEqual([2, [], 0]);
    }),
  );

  it(
    'writes what waited, in order, on unblock(); a written publish can no longer be cancelled',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ blocked: true, reply: '--a' });
      kit.at(2, () => channel.unblock());
      const [a, b] = [message('a'), message('b')];
      m.expect(m.cold('(ab)', { a, b }).pipe(publishConfirmed(channel))).toBeObservable('----(xy)', {
        x: { message: a, outcome: acked(1), attempts: 1 },
        y: { message: b, outcome: acked(2), attempts: 1 },
      });
      m.expect(channel.published$.pipe(map((p) => p.text))).toBeObservable('--(ab)', { a: 'a', b: 'b' });
      m.flush();
      const done: unknown[] = [];
      const handle = channel.publishWith('', 'q', new Uint8Array(0), undefined, false, 'ctx', (ctx, o) =>
        done.push([ctx, o]),
      );
      expect(handle).toBeUndefined(); // written at once
      expect(channel.unconfirmed).toBe(1);
    }),
  );

  it(
    'answers a publish released by unblock() whose handle can no longer cancel it',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ blocked: true, reply: '-a' });
      const done: unknown[] = [];
      const handle = channel.publishWith('', 'q', new Uint8Array(0), undefined, false, 'ctx', (ctx, o) =>
        done.push([m.scheduler.now(), ctx, o]),
      );
      expect(channel.unwritten).toBe(1);
      kit.at(2, () => {
        channel.unblock();
        expect(handle?.cancel()).toBe(false); // written: too late to drop
      });
      m.flush();
      expect(done).toEqual([[3, 'ctx', acked(1)]]);
      expect([channel.cancelled, channel.unwritten, channel.published.length]).toEqual([0, 0, 1]);
    }),
  );

  it(
    'fails what waits or awaits its answer with a ChannelClosedError when the channel closes',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ reply: '-----a' });
      kit.at(2, () => channel.close().subscribe());
      const out = m.cold('a', { a: message('a') }).pipe(publishConfirmed(channel));
      m.expect(out).toBeObservable(
        '--#',
        undefined,
        new ChannelClosedError('CHANNEL_CLOSED', 'fake channel 1 closed', {
          channel: 1,
          initiator: 'client',
        }),
      );
      m.expect(channel.confirms$.pipe(map((c) => c.status))).toBeObservable('--(f|)', { f: 'failed' });
      m.flush();
      const errors: unknown[] = [];
      channel.publish('', 'q', 'late').subscribe({ error: (e) => errors.push(e) });
      expect(errors[0]).toMatchObject({ code: 'CHANNEL_CLOSED' });
    }),
  );

  it(
    'serves answerRequests: the reply published to replyTo, the request acked once it is confirmed',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '--a' });
      const requests = channel.cold('-a-b|', {
        a: { body: 'hello', properties: { replyTo: 'reply-1', correlationId: 'c1' } },
        b: { body: 'no reply-to' },
      });
      const out = requests.pipe(answerRequests(channel, (r) => r.text().toUpperCase()));
      m.expect(out).toBeObservable('---x|', { x: 'HELLO' });
      m.expect(channel.published$).toBeObservable('-p', {
        p: published('', 'reply-1', 'HELLO', { properties: { correlationId: 'c1' } }),
      });
      m.expect(channel.settlements$).toBeObservable('---(ab)', {
        a: settlement.ack(1),
        b: settlement.reject(2, { requeue: false }),
      });
    }),
  );

  it(
    'serves retryWithDelay: the copy republished after the delay, then the original acked',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '-a' });
      const failed = channel.cold('-a|', { a: { body: 'job', properties: { headers: { tenant: 'acme' } } } });
      const out = failed.pipe(
        retryWithDelay(channel, { queue: 'jobs', delays: [3] }),
        map((o) => o.action),
      );
      m.expect(out).toBeObservable('-----(r|)', { r: 'retried' });
      m.expect(channel.published$).toBeObservable('----p', {
        p: published('', 'jobs', 'job', { properties: { headers: { tenant: 'acme', 'x-retry-count': 1 } } }),
      });
      m.expect(channel.settlements$).toBeObservable('-----a', { a: settlement.ack(1) });
    }),
  );

  it('works inside TestScheduler.run with the publish() path', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ expectObservable }) => {
      const channel = marbleKit(scheduler).channel({ reply: (p) => (p.text === 'x' ? '-n' : '--a') });
      // A target with publish() only: publishConfirmed takes the Observable path.
      const target = { publish: channel.publish.bind(channel) };
      expectObservable(
        of(message('x'), message('y')).pipe(
          publishConfirmed(target, { onNack: 'emit' }),
          map((r) => r.outcome),
        ),
      ).toBe('-x(y|)', { x: nacked(1), y: acked(2) });
      expectObservable(channel.publish('', 'q', 'z').pipe(take(1))).toBe('--(a|)', { a: acked(3) });
    });
  });

  it(
    'drops an unwritten publish() when its subscriber leaves',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ blocked: true });
      kit.at(3, () => channel.unblock());
      m.expect(channel.publish('', 'q', 'dropped'), '^-!').toBeObservable('');
      m.expect(channel.publish('', 'q', 'kept')).toBeObservable('---(a|)', { a: acked(1) });
      m.flush();
      expect([channel.cancelled, channel.published.map((p) => p.text)]).toEqual([1, ['kept']]);
    }),
  );
});

describe('reply marbles with a write (w)', () => {
  it(
    'hold a publish unwritten until its w, then answer it; publishConfirmed cancels what is held when it stops',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: (p) => (p.text === 'a' ? '-w-a' : '----w-a') });
      const [a, b] = [message('a'), message('b')];
      // Unsubscribed at 4: a (written at 1) was acked at 3, b is still held and is dropped.
      m.expect(m.cold('(ab)', { a, b }).pipe(publishConfirmed(channel)), '^---!').toBeObservable('---x', {
        x: { message: a, outcome: acked(1), attempts: 1 },
      });
      m.flush();
      expect(channel.events.map((e) => [e.time, e.type, 'message' in e ? e.message.text : ''])).toEqual([
        [1, 'published', 'a'],
        [3, 'confirmed', ''],
        [4, 'cancelled', 'b'],
      ]);
      expect([channel.cancelled, channel.unwritten, channel.unconfirmed]).toEqual([1, 0, 0]);
    }),
  );

  it(
    'write at w and fail at # after it, or never answer a marble without an outcome',
    marbles((m) => {
      const boom = new Error('refused');
      const channel = marbleKit(m).channel({ error: boom, reply: (p) => (p.text === 'x' ? '--w#' : '---w') });
      m.expect(channel.publish('', 'q', 'x')).toBeObservable('---#', undefined, boom);
      m.expect(channel.publish('', 'q', 'never')).toBeObservable('');
      m.flush();
      expect(channel.published.map((p) => p.text)).toEqual(['x', 'never']);
      expect(channel.confirms.map((c) => c.status)).toEqual(['failed']);
      expect(channel.unconfirmed).toBe(1);
    }),
  );
});
