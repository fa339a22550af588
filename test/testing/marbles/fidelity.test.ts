/**
 * Where the kit's fakes must behave as the real objects they stand for, so that a user's test does
 * not pass where production would fail: confirms reported in publish order, `r` only for a mandatory
 * message, one shared consumer per `consume()` Observable, what a lost connection leaves on its
 * channels, and the states a recovering connection reports.
 */
import { map, merge, mergeMap, NEVER, of, switchMap, timeout } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { ackOnSuccess, publishConfirmed } from '../../../operators/index.js';
import { ChannelClosedError, isConsumerTimeout } from '../../../src/index.js';
import { type FakeChannel, marbleKit, outcome } from '../../../src/testing/index.js';

const { acked, nacked } = outcome;

describe('fake channel publishes, as a real channel', () => {
  it(
    'report outcomes in publish order: one answered early waits for the one before it',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: (p) => (p.text === 'slow' ? '---n' : '-a') });
      const slow = channel.publish('', 'q', 'slow');
      const fast = channel.publish('', 'q', 'fast');
      m.expect(slow).toBeObservable('---(n|)', { n: nacked(1) });
      // Acked by the broker at 1, reported with the publish before it, at 3 (after it).
      m.expect(fast).toBeObservable('---(a|)', { a: acked(2) });
      m.expect(channel.confirms$).toBeObservable('---(nab)', {
        n: nacked(1),
        a: acked(2),
        b: acked(3),
      });
      // A timeout that the fast answer would meet fails, as it would in production.
      m.expect(
        channel.publish('', 'q', 'third').pipe(
          timeout({ first: 2, with: () => of('timed out') }),
          map((o) => (typeof o === 'string' ? o : o.status)),
        ),
      ).toBeObservable('--(t|)', { t: 'timed out' });
    }),
  );

  it(
    'report each outcome as it comes with inOrder: false',
    marbles((m) => {
      const channel = marbleKit(m).channel({
        inOrder: false,
        reply: (p) => (p.text === 'slow' ? '---n' : '-a'),
      });
      m.expect(channel.publish('', 'q', 'slow')).toBeObservable('---(n|)', { n: nacked(1) });
      m.expect(channel.publish('', 'q', 'fast')).toBeObservable('-(a|)', { a: acked(2) });
    }),
  );

  it(
    'fail the unanswered publishes on close, in order, and still report the ones answered behind them',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ reply: (p) => (p.text === 'slow' ? '-----a' : '-a') });
      kit.at(2, () => channel.close().subscribe());
      const statuses: string[] = [];
      for (const body of ['slow', 'fast']) {
        channel.publish('', 'q', body).subscribe({
          next: (o) => statuses.push(`${body} ${o.status} ${m.scheduler.now()}`),
          error: (e: Error) => statuses.push(`${body} ${e.name} ${m.scheduler.now()}`),
        });
      }
      m.flush();
      expect(statuses).toEqual(['slow ChannelClosedError 2', 'fast acked 2']);
      expect(channel.confirms.map((c) => c.status)).toEqual(['failed', 'acked']);
    }),
  );

  it(
    'return only a mandatory message: r acks one published without mandatory, as RabbitMQ does',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '-r' });
      m.expect(channel.publish('', 'nowhere', 'x')).toBeObservable('-(a|)', { a: acked(1) });
      m.expect(channel.publish('', 'nowhere', 'y', {}, { mandatory: true })).toBeObservable('-(r|)', {
        r: {
          status: 'returned',
          seq: 2,
          returned: {
            replyCode: 312,
            replyText: 'NO_ROUTE',
            exchange: '',
            routingKey: 'nowhere',
            properties: {},
            body: new TextEncoder().encode('y'),
          },
        },
      });
      m.expect(channel.returns$.pipe(map((r) => r.body.length))).toBeObservable('-r', { r: 1 });
      const lost = m
        .cold('a', { a: { exchange: '', routingKey: 'nowhere', body: 'z' } })
        .pipe(publishConfirmed(channel));
      m.expect(lost.pipe(map((r) => r.outcome.status))).toBeObservable('-a', { a: 'acked' });
    }),
  );
});

describe('fake consumers, as real ones', () => {
  it(
    'are shared by the subscribers of one consume() Observable, as Channel.consume is (one consumer, one prefetch)',
    marbles((m) => {
      const kit = marbleKit(m);
      kit.queue('jobs', '-a-b', { a: 'one', b: 'two' });
      const channel = kit.channel();
      const deliveries = channel.consume('jobs', { prefetch: 1 });
      const seen = deliveries.pipe(map((d) => `${d.text()} ${d.fields.consumerTag} ${d.fields.deliveryTag}`));
      // 'two' waits: the one consumer's single prefetch slot holds 'one', which nobody acks.
      m.expect(seen).toBeObservable('-a', { a: 'one ctag-1.1 1' });
      m.expect(seen).toBeObservable('-a', { a: 'one ctag-1.1 1' });
      // Another consume() is another consumer.
      m.expect(channel.consume('jobs').pipe(map((d) => d.text()))).toBeObservable('---b', { b: 'two' });
    }),
  );

  it(
    'start again for a subscriber that comes after the last one left (basic.cancel, then basic.consume)',
    marbles((m) => {
      const kit = marbleKit(m);
      kit.queue('jobs', '-a--b', { a: 'one', b: 'two' });
      const channel = kit.channel();
      const deliveries = channel.consume('jobs').pipe(map((d) => `${d.text()} ${d.fields.consumerTag}`));
      m.expect(deliveries, '^-!').toBeObservable('-a', { a: 'one ctag-1.1' });
      m.expect(deliveries, '---^').toBeObservable('----b', { b: 'two ctag-1.2' });
    }),
  );
});

describe('a fake connection, as a recovering ConnectionObservable', () => {
  it(
    'reports the attempt since the last open connection, and ends its channels before RECONNECTING',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('c-x-c');
      const channels: FakeChannel[] = [];
      const states: string[] = [];
      connection$.state$.subscribe((s) =>
        states.push(
          `${s.status}${s.attempt === undefined ? '' : ` ${s.attempt}`}${
            s.status === 'RECONNECTING' ? ` channel open: ${channels[0]?.isOpen}` : ''
          }`,
        ),
      );
      m.expect(
        connection$.pipe(
          switchMap((c) => c.channel()),
          map((ch) => channels.push(ch)),
        ),
      ).toBeObservable('a---b', { a: 1, b: 2 });
      m.flush();
      expect(states).toEqual([
        'INITIAL',
        'CONNECTING 1',
        'CONNECTED',
        'RECONNECTING 1 channel open: false',
        'CONNECTING 1',
        'CONNECTED',
      ]);
    }),
  );

  it(
    "leaves the lost connection's channels with their error, while their streams complete",
    marbles((m) => {
      const connection$ = marbleKit(m).connection('c-x');
      const channels: FakeChannel[] = [];
      m.expect(
        connection$.pipe(
          switchMap((c) => c.channel()),
          mergeMap((ch) => {
            channels.push(ch);
            return merge(ch.settlements$, ch.consume('jobs'));
          }),
        ),
      ).toBeObservable('--');
      m.flush();
      const [channel] = channels;
      expect(channel?.isOpen).toBe(false);
      expect(channel?.error).toBeInstanceOf(ChannelClosedError);
      expect(channel?.error).toMatchObject({ code: 'CONNECTION_CLOSED', initiator: 'network' });
    }),
  );

  it(
    'reports CLOSED without CLOSING when unsubscribed while no connection is open',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('cx');
      const states: string[] = [];
      connection$.state$.subscribe((s) => states.push(s.status));
      m.expect(connection$.pipe(map((c) => c.index)), '^--!').toBeObservable('1', { 1: 1 });
      m.flush();
      expect(states.slice(-2)).toEqual(['RECONNECTING', 'CLOSED']);
    }),
  );

  it(
    'stops reading its marble once it has errored on a bad letter',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('z-c');
      m.expect(connection$).toBeObservable('#', undefined, expect.anything());
      m.flush();
      expect(connection$.connections).toEqual([]);
    }),
  );
});

describe('a fake queue, as a RabbitMQ queue', () => {
  it(
    'puts requeued messages back in their original order (a closed channel, a multiple nack)',
    marbles((m) => {
      const kit = marbleKit(m);
      kit.queue('jobs', 'abc---------d', { a: 'a', b: 'b', c: 'c', d: 'd' });
      const [first, second, third] = [kit.channel(), kit.channel(), kit.channel()];
      const seen: string[] = [];
      const consume = (channel: FakeChannel, name: string) =>
        channel
          .consume('jobs')
          .subscribe((d) =>
            seen.push(`${m.scheduler.now()} ${name} ${d.text()}${d.fields.redelivered ? '*' : ''}`),
          );
      consume(first, 'first');
      kit.at(3, () => first.close().subscribe()); // a, b, c ready again at 4, in their order
      kit.at(5, () => {
        const subscription = consume(second, 'second');
        kit.at(1, () => {
          second.nack(3, { multiple: true }); // all three ready again at 7, in their order
          subscription.unsubscribe();
        });
      });
      kit.at(8, () => consume(third, 'third'));
      m.flush();
      expect(seen).toEqual([
        '0 first a',
        '1 first b',
        '2 first c',
        '5 second a*',
        '5 second b*',
        '5 second c*',
        '8 third a*',
        '8 third b*',
        '8 third c*',
        '12 third d',
      ]);
    }),
  );
});

describe('the kit at scale', () => {
  it(
    'delivers a deep queue to a consumer that acks synchronously without growing the stack',
    marbles((m) => {
      const kit = marbleKit(m);
      const jobs = kit.queue('jobs');
      for (let i = 0; i < 50_000; i++) jobs.send(`m${i}`);
      let handled = 0;
      kit
        .channel()
        .consume('jobs', { prefetch: 1 })
        .subscribe((d) => {
          handled++;
          d.ack();
        });
      m.flush();
      expect([handled, jobs.acked, jobs.depth]).toEqual([50_000, 50_000, 0]);
    }),
  );
});

describe('the kit at scale, publishing', () => {
  it('writes 100,000 publishes held by a blocked channel, in order, when unblocked', () => {
    const channel = marbleKit().channel({ confirm: false, blocked: true });
    const done: number[] = [];
    const handles = Array.from({ length: 100_000 }, (_, i) =>
      channel.publishWith('', 'q', new Uint8Array(0), undefined, false, i, (n) => done.push(n)),
    );
    expect(handles[1]?.cancel()).toBe(true);
    expect(channel.unwritten).toBe(99_999);
    const started = Date.now();
    channel.unblock();
    expect(Date.now() - started).toBeLessThan(2000); // quadratic (shift() per publish) took far longer
    expect(done).toHaveLength(99_999);
    expect(done.slice(0, 3)).toEqual([0, 2, 3]);
    expect([channel.unwritten, channel.cancelled]).toEqual([0, 1]);
  });
});

describe('a fake channel closed from inside an outcome', () => {
  it(
    'reports the outcomes after it, then ends confirms$ (as the real confirm tracker does)',
    marbles((m) => {
      const channel = marbleKit(m).channel({
        reply: (p) => ({ a: '--a', b: '-a', c: '----a' })[p.text as 'a' | 'b' | 'c'],
      });
      const seen: string[] = [];
      channel.publish('', 'q', 'a').subscribe(() => channel.close().subscribe());
      for (const body of ['b', 'c']) {
        channel.publish('', 'q', body).subscribe({
          next: (o) => seen.push(`${body} ${o.status}`),
          error: (e: Error) => seen.push(`${body} ${e.name}`),
        });
      }
      m.expect(channel.confirms$.pipe(map((c) => `${c.seq} ${c.status}`))).toBeObservable('--(abc|)', {
        a: '1 acked',
        b: '2 acked',
        c: '3 failed',
      });
      m.flush();
      expect(seen).toEqual(['b acked', 'c ChannelClosedError']);
      expect(channel.confirms.map((c) => c.status)).toEqual(['acked', 'acked', 'failed']);
    }),
  );
});

describe('a lost fake connection, as a lost recovering Connection', () => {
  it(
    'completes channel() and cachedChannel() subscribed after the loss (the next connection brings the next channel)',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('c-x');
      const seen: string[] = [];
      connection$.subscribe((conn) =>
        m.scheduler.schedule(() => {
          for (const [name, channel$] of [
            ['channel', conn.channel()],
            ['cachedChannel', conn.cachedChannel()],
          ] as const) {
            channel$.subscribe({
              next: () => seen.push(`${name} next`),
              error: (e: Error) => seen.push(`${name} ${e.name}`),
              complete: () => seen.push(`${name} complete`),
            });
          }
        }, 3),
      );
      m.flush();
      expect(seen).toEqual(['channel complete', 'cachedChannel complete']);
      expect(connection$.connections[0]?.isBlocked).toBe(false);
    }),
  );

  it(
    'errors them after a failure (#) or a loss with onLoss: error, as a connection without recovery',
    marbles((m) => {
      const connection$ = marbleKit(m).connection({ marbles: 'c-x', onLoss: 'error' });
      const seen: string[] = [];
      connection$.subscribe((conn) =>
        m.scheduler.schedule(() => {
          conn.channel().subscribe({ error: (e: Error) => seen.push(`channel ${e.name}`) });
          conn.cachedChannel().subscribe({ error: (e: Error) => seen.push(`cachedChannel ${e.name}`) });
        }, 3),
      );
      m.flush();
      expect(seen).toEqual(['channel ConnectionClosedError', 'cachedChannel ConnectionClosedError']);
    }),
  );
});

describe('a consumer timeout on a fake channel, as on a real one', () => {
  it(
    'on a recovering fake connection: the consumer completes, channel() emits a fresh channel and the pipeline goes on',
    marbles((m) => {
      const kit = marbleKit(m);
      const jobs = kit.queue('jobs', '-a', { a: 'job' });
      const connection$ = kit.connection('c');
      const channels: FakeChannel[] = [];
      const handled = connection$.pipe(
        switchMap((conn) => conn.channel()),
        switchMap((ch) => {
          channels.push(ch);
          return ch.consume('jobs', { prefetch: 1 });
        }),
        ackOnSuccess((d) => (d.fields.redelivered ? of(`${d.text()}*`) : NEVER)),
      );
      kit.at(4, () => channels[0]?.timeOut());
      m.expect(handled).toBeObservable('-----a', { a: 'job*' });
      m.flush();
      expect(channels.map((c) => c.id)).toEqual([1, 2]);
      expect(channels[0]?.reopenedAfter).toBeUndefined();
      expect(isConsumerTimeout(channels[0]?.error)).toBe(true);
      expect(channels[1]?.reopenedAfter).toBe(channels[0]?.error);
      expect([jobs.acked, jobs.depth]).toEqual([1, 0]);
    }),
  );

  it(
    "errors channel() and its consumers with onLoss: 'error', as a connection without recovery",
    marbles((m) => {
      const kit = marbleKit(m);
      kit.queue('jobs', '-a', { a: 'job' });
      const connection$ = kit.connection({ marbles: 'c', onLoss: 'error' });
      let channel: FakeChannel | undefined;
      const seen: string[] = [];
      connection$
        .pipe(
          switchMap((conn) => conn.channel()),
          switchMap((ch) => {
            channel = ch;
            return ch.consume('jobs');
          }),
        )
        .subscribe({ error: (e: unknown) => seen.push(isConsumerTimeout(e) ? 'timeout' : String(e)) });
      kit.at(3, () => channel?.timeOut());
      m.flush();
      expect(seen).toEqual(['timeout']);
    }),
  );
});

describe('consuming a closed fake channel, as a closed Channel', () => {
  it(
    'completes when the client closed it or a recovering connection lost it, errors when it failed',
    marbles((m) => {
      const kit = marbleKit(m);
      const closed = kit.channel();
      closed.close().subscribe();
      m.expect(closed.consume('jobs')).toBeObservable('|');
      const failed = kit.channel();
      failed.delivery().ack();
      failed.ack(1); // settled twice: 406
      m.expect(failed.consume('jobs')).toBeObservable(
        '#',
        undefined,
        expect.objectContaining({ name: 'ChannelClosedError' }),
      );
      const connection$ = kit.connection('c-x');
      const seen: string[] = [];
      connection$
        .pipe(switchMap((conn) => conn.channel()))
        .subscribe((ch) =>
          kit.at(3, () =>
            ch
              .consume('jobs')
              .subscribe({ complete: () => seen.push('complete'), error: () => seen.push('error') }),
          ),
        );
      m.flush();
      expect(seen).toEqual(['complete']);
    }),
  );
});
