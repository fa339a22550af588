import { catchError, defer, firstValueFrom, map, mergeMap, of, throwError, toArray } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { ackOnSuccess, publishConfirmed, retryWithDelay } from '../../../operators/index.js';
import { ChannelClosedError, ConfigurationError } from '../../../src/index.js';
import { marbleKit, settlement } from '../../../src/testing/index.js';

describe('fake queues', () => {
  it(
    'hand messages round-robin to their consumers, within each prefetch, and requeue what is nacked',
    marbles((m) => {
      const kit = marbleKit(m);
      const jobs = kit.queue('jobs', '(abcd)', { a: 'a', b: 'b', c: 'c', d: 'd' });
      const channel = kit.channel();
      const handle = (tag: string) =>
        ackOnSuccess<string>(
          (d) => {
            if (d.text() === 'c' && !d.fields.redelivered) throw new Error('once');
            return m.cold('--r|', { r: `${tag}:${d.text()}${d.fields.redelivered ? '*' : ''}` });
          },
          { onError: 'requeue' },
        );
      const one = channel.consume('jobs', { prefetch: 1, consumerTag: 'one' }).pipe(handle('one'));
      const two = channel.consume('jobs', { prefetch: 1, consumerTag: 'two' }).pipe(handle('two'));
      // one gets a, two gets b; at 2 one takes c, which fails (back in the queue at 3, for two), then d.
      m.expect(one).toBeObservable('--a-d', { a: 'one:a', d: 'one:d' });
      m.expect(two).toBeObservable('--b--c', { b: 'two:b', c: 'two:c*' });
      m.flush();
      expect(channel.settlements).toEqual([
        settlement.ack(1),
        settlement.nack(3),
        settlement.ack(2),
        settlement.ack(4),
        settlement.ack(5),
      ]);
      expect([jobs.acked, jobs.depth, jobs.deadLettered]).toEqual([4, 0, []]);
    }),
  );

  it(
    'keep what nobody consumes, and dead-letter what is rejected without requeue',
    marbles((m) => {
      const kit = marbleKit(m);
      const inbox = kit.queue('inbox', '-a-b', {
        a: { body: { ok: true } },
        b: { body: 'x', properties: { priority: 9 } },
      });
      const channel = kit.channel();
      kit.at(5, () =>
        channel
          .consume('inbox')
          .subscribe((d) => (d.text() === 'x' ? d.reject({ requeue: false }) : d.ack())),
      );
      m.expect(m.cold('-----|')).toBeObservable('-----|');
      m.flush();
      expect(inbox.deadLettered).toEqual([
        {
          body: expect.anything(),
          text: 'x',
          properties: { priority: 9 },
          exchange: '',
          routingKey: 'inbox',
          redelivered: false,
        },
      ]);
      expect(channel.events.map((e) => e.time)).toEqual([5, 5]);
    }),
  );

  it(
    'receive what fake channels publish to the default exchange with their name: a retry loop through the queue',
    marbles((m) => {
      const kit = marbleKit(m);
      const jobs = kit.queue('jobs', '-a', { a: 'flaky' });
      const channel = kit.channel();
      const retry = retryWithDelay(channel, { queue: 'jobs', delays: [2, 2] });
      let attempts = 0;
      const results = channel.consume('jobs').pipe(
        mergeMap((d) =>
          defer(() =>
            ++attempts < 3 ? throwError(() => new Error('flaky')) : of(`done after ${attempts}`),
          ).pipe(
            map((text) => {
              d.ack();
              return text;
            }),
            catchError(() =>
              of(d).pipe(
                retry,
                map((o) => `retry ${o.retryCount}`),
              ),
            ),
          ),
        ),
      );
      // Frame 1: first try; its copy is published at 3 and delivered at once: second try, which fails
      // too; the original is acked when the copy is confirmed (3). At 5 the third try works, before the
      // second copy's confirm comes.
      m.expect(results).toBeObservable('---a-(cb)', { a: 'retry 0', b: 'retry 1', c: 'done after 3' });
      m.flush();
      expect(channel.published.map((p) => p.properties?.headers?.['x-retry-count'])).toEqual([1, 2]);
      expect(channel.settlements).toEqual([settlement.ack(1), settlement.ack(3), settlement.ack(2)]);
      expect([jobs.acked, jobs.depth]).toEqual([3, 0]);
    }),
  );

  it(
    'close a failed channel: consumers error, settlements$ errors, its deliveries go back',
    marbles((m) => {
      const kit = marbleKit(m);
      const jobs = kit.queue('jobs', 'a', { a: 'one' });
      const channel = kit.channel();
      const error = ChannelClosedError.fromServer(1, {
        replyCode: 404,
        replyText: "NOT_FOUND - no exchange 'x'",
        classId: 60,
        methodId: 40,
      });
      kit.at(2, () => channel.fail(error));
      m.expect(channel.consume('jobs').pipe(map((d) => d.text()))).toBeObservable('a-#', { a: 'one' }, error);
      m.expect(channel.settlements$).toBeObservable('--#', undefined, error);
      m.flush();
      expect([channel.isOpen, channel.error, jobs.depth]).toEqual([false, error, 1]);
    }),
  );
});

describe('fake channels, more', () => {
  it(
    'turn confirm mode on with confirmSelect(), as a Channel',
    marbles((m) => {
      const channel = marbleKit(m).channel({ confirm: false });
      const out = channel.confirmSelect().pipe(
        mergeMap(() => of({ exchange: '', routingKey: 'q', body: 'x' })),
        publishConfirmed(channel),
        map((r) => r.outcome.status),
      );
      m.expect(out).toBeObservable('(a|)', { a: 'acked' });
    }),
  );

  it('work without a test scheduler for async tests: deliveries, settlements, default acks in real time', async () => {
    const channel = marbleKit().channel({ confirmDelay: 5 });
    const outcome = await firstValueFrom(channel.publish('', 'q', 'x'));
    expect(outcome).toEqual({ status: 'acked', seq: 1 });
    const results = await firstValueFrom(
      of(channel.delivery('1'), channel.delivery('x')).pipe(
        ackOnSuccess(async (d) => {
          const n = Number(d.text());
          if (Number.isNaN(n)) throw new Error('not a number');
          return n;
        }),
        toArray(),
      ),
    );
    expect(results).toEqual([1]);
    expect(channel.settlements).toEqual([settlement.ack(1), settlement.reject(2)]); // 'retry': requeued once
    expect(() => marbleKit().channel().cold('-a', { a: 'x' })).toThrow(ConfigurationError);
  });

  it(
    'reject a connection marble with other letters',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('c-z');
      m.expect(connection$.pipe(map((c) => c.index))).toBeObservable(
        '1-#',
        { 1: 1 },
        new ConfigurationError("fake connection marbles: 'z' is not c, x, | or #"),
      );
    }),
  );
});
