import { catchError, EMPTY, map, mergeMap, switchMap } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { marbles } from 'rxjs-marbles/jest';
import { ackOnSuccess, publishConfirmed } from '../../../operators/index.js';
import { ChannelClosedError, ConnectionClosedError } from '../../../src/index.js';
import { type FakeChannel, marbleKit, published, settlement } from '../../../src/testing/index.js';

describe('fake connection', () => {
  it(
    'emits a fresh connection at each c, reports its state like state$, completes at |',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('c--x-c|');
      const states: [number, string][] = [];
      connection$.state$.subscribe((state) => states.push([m.scheduler.now(), state.status]));
      m.expect(connection$.pipe(map((c) => c.index))).toBeObservable('a----b|', { a: 1, b: 2 });
      m.flush();
      expect(states).toEqual([
        [0, 'INITIAL'],
        [0, 'CONNECTING'],
        [0, 'CONNECTED'],
        [3, 'RECONNECTING'],
        [5, 'CONNECTING'],
        [5, 'CONNECTED'],
        [6, 'CLOSING'],
        [6, 'CLOSED'],
      ]);
    }),
  );

  it(
    'completes the channels and consumers of a lost connection; switchMap re-establishes them',
    marbles((m) => {
      const kit = marbleKit(m);
      const connection$ = kit.connection('c---x--c');
      const received = connection$.pipe(
        switchMap((conn) => conn.channel().pipe(map((ch) => [conn.index, ch] as const))),
        mergeMap(([n, ch]) =>
          ch.consume('jobs').pipe(map((d) => `${d.text()}${d.fields.redelivered ? '*' : ''}@${n}`)),
        ),
      );
      kit.queue('jobs', '--a-----b', { a: 'one', b: 'two' });
      // 'one', left unacknowledged by the lost channel (frame 4), is ready again at 5 and goes to the
      // next connection's consumer when it comes (7).
      m.expect(received).toBeObservable('--a----bc', { a: 'one@1', b: 'one*@2', c: 'two@2' });
      m.flush();
      expect(
        connection$.connections.map((c) => [c.index, c.isOpen, c.channels.map((ch) => ch.isOpen)]),
      ).toEqual([
        [1, false, [false]],
        [2, true, [true]],
      ]);
      expect(connection$.connections[0]?.error).toBeInstanceOf(ConnectionClosedError);
    }),
  );

  it(
    'redelivers what the lost channel left unacknowledged to the next connection, redelivered',
    marbles((m) => {
      const kit = marbleKit(m);
      const jobs = kit.queue('jobs', '-a-b', { a: 'one', b: 'two' });
      const connection$ = kit.connection('c----x-c');
      const channels: FakeChannel[] = [];
      const handled = connection$.pipe(
        switchMap((conn) => conn.channel()),
        switchMap((ch) => {
          channels.push(ch);
          return ch
            .consume('jobs', { prefetch: 1 })
            .pipe(
              ackOnSuccess((d) => m.cold('--r|', { r: `${d.text()}${d.fields.redelivered ? '*' : ''}` })),
            );
        }),
      );
      // 'two' is being handled when the connection drops at 5: it can no longer be settled (the
      // channel is gone), so ackOnSuccess lets go of its handler and emits nothing for it; it comes
      // back on the next connection (7), redelivered.
      m.expect(handled).toBeObservable('---a-----c', { a: 'one', c: 'two*' });
      m.flush();
      const [before, after] = channels;
      expect(before?.settlements).toEqual([settlement.ack(1)]);
      expect(after?.settlements).toEqual([settlement.ack(1)]);
      expect([jobs.acked, jobs.depth, jobs.deadLettered]).toEqual([2, 0, []]);
    }),
  );

  it(
    "errors the channels with a ChannelClosedError with onLoss: 'error'",
    marbles((m) => {
      const connection$ = marbleKit(m).connection({ marbles: 'c-x', onLoss: 'error' });
      const channel$ = connection$.pipe(switchMap((conn) => conn.channel()));
      m.expect(channel$.pipe(map((ch) => ch.id))).toBeObservable(
        '1-#',
        { 1: 1 },
        new ChannelClosedError(
          'CONNECTION_CLOSED',
          'fake channel 1 closed with its connection: the fake connection was lost',
          { channel: 1, initiator: 'network' },
        ),
      );
    }),
  );

  it(
    'errors at #, with its channels, and reports CLOSED with the cause',
    marbles((m) => {
      const failure = new ConnectionClosedError('SERVER_CLOSED', 'forced', { initiator: 'server' });
      const connection$ = marbleKit(m).connection({ marbles: 'c--#', error: failure });
      const closed: unknown[] = [];
      connection$.pipe(switchMap((conn) => conn.channel())).subscribe({ error: (e) => closed.push(e) });
      m.expect(connection$.state$.pipe(map((s) => [s.status, s.cause?.message]))).toBeObservable('a--b', {
        a: ['CONNECTED', undefined],
        b: ['CLOSED', 'forced'],
      });
      m.flush();
      // The channel errors first, with a ChannelClosedError caused by the failure.
      expect(closed).toEqual([expect.any(ChannelClosedError)]);
      expect((closed[0] as Error).cause).toBe(failure);
    }),
  );

  it(
    'closes the connection and its channels on unsubscription',
    marbles((m) => {
      const connection$ = marbleKit(m).connection('c');
      const channels: FakeChannel[] = [];
      m.expect(
        connection$.pipe(
          switchMap((conn) => conn.channel()),
          map((ch) => channels.push(ch)),
        ),
        '^--!',
      ).toBeObservable('1', { 1: 1 });
      const states: [number, string][] = [];
      connection$.state$.subscribe((state) => states.push([m.scheduler.now(), state.status]));
      m.flush();
      expect(states).toEqual([
        [0, 'INITIAL'],
        [0, 'CONNECTING'],
        [0, 'CONNECTED'],
        [3, 'CLOSING'],
        [3, 'CLOSED'],
      ]);
      expect(channels.map((ch) => ch.isOpen)).toEqual([false]);
    }),
  );

  it('publishes through a recovering connection in TestScheduler.run: publishes in flight fail at the drop', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const kit = marbleKit(scheduler);
      const connection$ = kit.connection({ marbles: 'c--x-c', channel: { reply: '---a' } });
      const message = { exchange: 'orders', routingKey: 'new', body: 'o1' };
      const outcomes = connection$.pipe(
        switchMap((conn) => conn.channel()),
        // A publish in flight when the connection drops errors: catch it, the next channel carries on.
        switchMap((ch) =>
          cold('a', { a: message }).pipe(
            publishConfirmed(ch),
            catchError(() => EMPTY),
          ),
        ),
        map((r) => r.outcome.status),
      );
      expectObservable(outcomes).toBe('--------a', { a: 'acked' });
      scheduler.flush();
      const [first, second] = connection$.connections;
      expect(first?.channels[0]?.confirms.map((c) => c.status)).toEqual(['failed']);
      expect(second?.channels[0]?.published).toEqual([published('orders', 'new', 'o1')]);
    });
  });

  it(
    'shares a cached channel until it closes, completes blocked$ with the connection, closes on close()',
    marbles((m) => {
      const kit = marbleKit(m);
      const connection$ = kit.connection('c-x');
      const seen: string[] = [];
      connection$.subscribe((conn) => {
        conn.blocked$.subscribe({ complete: () => seen.push(`blocked$ done at ${m.scheduler.now()}`) });
        conn
          .cachedChannel()
          .subscribe((a) => conn.cachedChannel().subscribe((b) => seen.push(`same channel: ${a === b}`)));
      });
      const closing = kit.connection('c');
      m.expect(closing.pipe(switchMap((conn) => conn.close()))).toBeObservable('(v|)', { v: undefined });
      m.flush();
      expect(seen).toEqual(['same channel: true', 'blocked$ done at 2']);
      expect(connection$.connections[0]?.channels.map((ch) => ch.isOpen)).toEqual([false]);
    }),
  );
});
