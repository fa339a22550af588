/** Connection.drain and Publisher.drain against the embedded broker (the same scenarios run on RabbitMQ in test/integration/drain.test.ts). */
import {
  concat,
  firstValueFrom,
  lastValueFrom,
  merge,
  NEVER,
  Observable,
  Subject,
  type Subscription,
  switchMap,
  tap,
  toArray,
} from 'rxjs';
import { ackOnSuccess } from '../../operators/index.js';
import {
  type Connection,
  ConnectionClosedError,
  connect,
  createPublisher,
  DrainingError,
  openConnection,
  type PublishOutcome,
  withChannel,
} from '../../src/index.js';
import { EmbeddedBroker } from '../../src/testing/index.js';
import { drainUnderLoad } from '../support/drain-scenario.js';

let broker: EmbeddedBroker;
const open = (): Promise<Connection> =>
  openConnection('amqp://guest:guest@embedded', { transport: broker.connector });

beforeEach(() => {
  broker = new EmbeddedBroker();
});

describe('Connection.drain (embedded broker)', () => {
  it('drains with 50 handlers in flight: each finishes and is acked once, the rest stay in the queue', async () => {
    const f = await drainUnderLoad(open, 'drain.fifty', {
      messages: 200,
      prefetch: 50,
      concurrency: 50,
      handlerMs: (i) => 5 + ((i * 7) % 40),
      drainAfterStarted: 50,
      drain: { timeout: 5000 },
    });
    expect(f.started).toBe(50);
    expect(f.finished).toBe(50);
    expect(f.acked.size).toBe(50);
    expect(f.doubleAcks).toBe(0);
    expect(f.leftInQueue).toHaveLength(150);
    expect(f.ackedAndLeft).toEqual([]);
    expect(f.lost).toEqual([]);
    expect(f.consumerEnd).toBe('complete');
    expect(f.resultsConfirmed).toBe(50);
    expect(f.progress.map((p) => p.phase)).toEqual(['settling', 'publishing', 'closing', 'closed']);
    expect(f.progress[0]).toMatchObject({ consumers: 1, unsettled: 50, timedOut: false });
    expect(f.progress.at(-1)).toMatchObject({ unsettled: 0, unconfirmed: 0, timedOut: false });
  });

  it("prefetched: 'return' gives back the deliveries whose handlers had not started", async () => {
    const f = await drainUnderLoad(open, 'drain.return', {
      messages: 200,
      prefetch: 50,
      concurrency: 5,
      handlerMs: () => 30,
      drainAfterStarted: 5,
      drain: { timeout: 5000, prefetched: 'return' },
    });
    expect(f.started).toBe(5);
    expect(f.finished).toBe(5);
    expect(f.acked.size).toBe(5);
    expect(f.doubleAcks).toBe(0);
    expect(f.leftInQueue).toHaveLength(195);
    expect(f.lost).toEqual([]);
    expect(f.consumerEnd).toBe('complete');
  });

  it("prefetched: 'finish' (default) processes the deliveries waiting for a slot", async () => {
    const f = await drainUnderLoad(open, 'drain.finish', {
      messages: 200,
      prefetch: 50,
      concurrency: 5,
      handlerMs: () => 5,
      drainAfterStarted: 5,
      drain: { timeout: 5000 },
    });
    expect(f.finished).toBe(50);
    expect(f.acked.size).toBe(50);
    expect(f.leftInQueue).toHaveLength(150);
    expect(f.lost).toEqual([]);
  });

  it('closes at the timeout when handlers hang: every message goes back to the queue', async () => {
    const f = await drainUnderLoad(open, 'drain.hang', {
      messages: 100,
      prefetch: 20,
      concurrency: 20,
      handlerMs: () => 0,
      drainAfterStarted: 20,
      hang: true,
      drain: { timeout: 200 },
    });
    expect(f.finished).toBe(0);
    expect(f.leftInQueue).toHaveLength(100);
    expect(f.lost).toEqual([]);
    const last = f.progress.at(-1)!;
    expect(last).toMatchObject({ phase: 'closed', timedOut: true, unsettled: 20 });
    expect(last.elapsed).toBeGreaterThanOrEqual(200);
  });

  it('refuses consume() from the start and publishes once settled', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('drain.refuse'));
    await lastValueFrom(ch.publish('', 'drain.refuse', 'one'));
    let held: { ack(): boolean } | undefined;
    ch.consume('drain.refuse').subscribe((d) => {
      held = d;
    });
    while (held === undefined) await new Promise((r) => setTimeout(r, 5));
    const events: string[] = [];
    const done = lastValueFrom(conn.drain().pipe(toArray()));
    // consume() fails at once; publishing is still allowed while a delivery is unsettled.
    await expect(firstValueFrom(ch.consume('drain.refuse'))).rejects.toBeInstanceOf(DrainingError);
    await expect(lastValueFrom(ch.publish('', 'drain.refuse', 'two'))).resolves.toEqual({ status: 'sent' });
    expect(conn.isDraining).toBe(true);
    events.push('acked');
    held.ack();
    const progress = await done;
    expect(progress.map((p) => p.phase)).toEqual(['settling', 'publishing', 'closing', 'closed']);
    expect(conn.isOpen).toBe(false);
    expect(broker.queue('drain.refuse')?.messageCount).toBe(1);
  });

  it("publishes: 'refuse' refuses publishes from the start; late subscribers see the whole drain", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const drain = conn.drain({ publishes: 'refuse' });
    const first = lastValueFrom(drain.pipe(toArray()));
    const error = await lastValueFrom(ch.publish('', 'q', 'x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DrainingError);
    expect((error as DrainingError).code).toBe('DRAINING');
    const a = await first;
    const b = await lastValueFrom(drain.pipe(toArray()));
    expect(b).toEqual(a);
  });

  it('waits for publishes in flight and their confirms before closing', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('drain.confirms'));
    await lastValueFrom(ch.confirmSelect());
    const outcomes: Promise<PublishOutcome[]>[] = [];
    const body = new Uint8Array(1024);
    const all: Observable<PublishOutcome>[] = [];
    for (let i = 0; i < 2000; i++) all.push(ch.publish('', 'drain.confirms', body));
    outcomes.push(lastValueFrom(merge(...all).pipe(toArray())));
    const progress = await lastValueFrom(conn.drain().pipe(toArray()));
    const results = await outcomes[0]!;
    expect(results).toHaveLength(2000);
    expect(results.every((r) => r.status === 'acked')).toBe(true);
    expect(progress.at(-1)).toMatchObject({ phase: 'closed', unconfirmed: 0, timedOut: false });
    expect(broker.queue('drain.confirms')?.messageCount).toBe(2000);
  });

  it('refuses publishes once everything is settled, while it waits for the confirms', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('drain.late'));
    await lastValueFrom(ch.confirmSelect());
    const pending = lastValueFrom(ch.publish('', 'drain.late', 'early'));
    let late: unknown;
    const progress = await lastValueFrom(
      conn.drain().pipe(
        tap((p) => {
          if (p.phase === 'publishing') {
            ch.publish('', 'drain.late', 'late').subscribe({ error: (e: unknown) => (late = e) });
          }
        }),
        toArray(),
      ),
    );
    expect(progress[1]).toMatchObject({ phase: 'publishing', unconfirmed: 1 });
    expect(late).toBeInstanceOf(DrainingError);
    await expect(pending).resolves.toMatchObject({ status: 'acked' });
    expect(broker.queue('drain.late')?.messageCount).toBe(1);
  });

  it('keeps the publishes waiting for an unblock, in order, and closes once they are confirmed', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('drain.blocked'));
    await lastValueFrom(ch.confirmSelect());
    broker.block();
    const all: Observable<PublishOutcome>[] = [];
    for (let i = 0; i < 100; i++) all.push(ch.publish('', 'drain.blocked', String(i)));
    const outcomes = lastValueFrom(merge(...all).pipe(toArray()));
    while (!conn.isBlocked) await new Promise((r) => setTimeout(r, 5));
    const drained = lastValueFrom(conn.drain().pipe(toArray()));
    await new Promise((r) => setTimeout(r, 100));
    expect(conn.isOpen).toBe(true);
    broker.unblock();
    const progress = await drained;
    expect((await outcomes).every((o) => o.status === 'acked')).toBe(true);
    expect(progress.at(-1)).toMatchObject({ phase: 'closed', timedOut: false });
    const messages = broker.queue('drain.blocked')?.messages.map((m) => new TextDecoder().decode(m.body));
    expect(messages).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
  });

  it('leaves the direct reply-to consumer running: a handler finishing may still make a request', async () => {
    const server = await open();
    const serverCh = await server.openChannel();
    await lastValueFrom(serverCh.queueDeclare('drain.rpc'));
    serverCh.consume('drain.rpc').subscribe((req) => {
      const { replyTo, correlationId } = req.properties;
      serverCh
        .publish('', replyTo!, `re: ${req.text()}`, correlationId === undefined ? {} : { correlationId })
        .subscribe();
      req.ack();
    });
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('drain.work'));
    await lastValueFrom(ch.publish('', 'drain.work', 'job'));
    // A request before the drain starts the reply consumer; the handler's request comes during it.
    await lastValueFrom(ch.request('', 'drain.rpc', 'warm-up'));
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const replies: string[] = [];
    let started = false;
    const work = lastValueFrom(
      ch.consume('drain.work').pipe(
        ackOnSuccess(async () => {
          started = true;
          await gate;
          replies.push((await lastValueFrom(ch.request('', 'drain.rpc', 'during'))).text());
        }),
        toArray(),
      ),
    );
    while (!started) await new Promise((r) => setTimeout(r, 5));
    const drained = lastValueFrom(conn.drain({ timeout: 5000 }).pipe(toArray()));
    release();
    const progress = await drained;
    await work;
    expect(replies).toEqual(['re: during']);
    expect(progress[0]).toMatchObject({ consumers: 1 });
    expect(progress.at(-1)).toMatchObject({ phase: 'closed', timedOut: false });
    expect(broker.queue('drain.work')?.messageCount).toBe(0);
    await lastValueFrom(server.close());
  });

  it('a drain on a closed connection completes at once', async () => {
    const conn = await open();
    await lastValueFrom(conn.close());
    const progress = await lastValueFrom(conn.drain().pipe(toArray()));
    expect(progress).toEqual([expect.objectContaining({ phase: 'closed', consumers: 0, timedOut: false })]);
  });

  it('rejects bad options', async () => {
    const conn = await open();
    expect(() => conn.drain({ timeout: -1 })).toThrow('drain timeout');
    expect(() => conn.drain({ prefetched: 'drop' as never })).toThrow(
      "prefetched must be 'finish' or 'return'",
    );
    expect(() => conn.drain({ publishes: 'maybe' as never })).toThrow('publishes must be');
    expect(conn.isDraining).toBe(false);
    await lastValueFrom(conn.close());
  });
});

describe('ConnectionObservable.drain (embedded broker, recovery)', () => {
  const recovering = () =>
    connect('amqp://guest:guest@embedded', {
      transport: broker.connector,
      recovery: { reconnect: { delays: [20] } },
    });

  it('drains the current connection and ends the lifetime: the pipeline completes', async () => {
    const connection$ = recovering();
    await lastValueFrom(
      withChannel(connect('amqp://guest:guest@embedded', { transport: broker.connector }), (ch) =>
        concat(
          ch.queueDeclare('drain.rec'),
          ch.publish('', 'drain.rec', 'a'),
          ch.publish('', 'drain.rec', 'b'),
        ),
      ),
    );
    const handled: string[] = [];
    const pipeline = lastValueFrom(
      connection$.pipe(
        switchMap((c) => c.channel()),
        switchMap((ch) => ch.consume('drain.rec', { prefetch: 1 })),
        ackOnSuccess(async (d) => {
          handled.push(d.text());
          await new Promise((r) => setTimeout(r, 30));
        }),
        toArray(),
      ),
    );
    while (handled.length === 0) await new Promise((r) => setTimeout(r, 5));
    const progress = await lastValueFrom(connection$.drain().pipe(toArray()));
    await pipeline; // completes: the connection$ ended
    expect(handled).toEqual(['a']);
    expect(progress.at(-1)).toMatchObject({ phase: 'closed', timedOut: false });
    expect(broker.queue('drain.rec')?.messageCount).toBe(1);
    expect(broker.connections()).toHaveLength(0);
  });

  it('a connection lost during the drain is not recovered: the drain errors, the lifetime ends', async () => {
    const connection$ = recovering();
    const states: string[] = [];
    connection$.state$.subscribe((st) => states.push(st.status));
    let started = false;
    let ended: string | undefined;
    // The delivery is held, never settled: the drain waits for it until the connection is lost.
    connection$
      .pipe(
        switchMap((c) => c.channel()),
        switchMap((ch) =>
          concat(ch.queueDeclare('drain.lost'), ch.publish('', 'drain.lost', 'x'), ch.consume('drain.lost')),
        ),
      )
      .subscribe({
        next: (v) => {
          if (typeof v === 'object' && 'ack' in v) started = true;
        },
        complete: () => {
          ended = 'complete';
        },
        error: () => {
          ended = 'error';
        },
      });
    while (!started) await new Promise((r) => setTimeout(r, 5));
    const drained = lastValueFrom(connection$.drain({ timeout: 5000 })).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    broker.dropConnection(broker.connections()[0]!.id);
    expect(await drained).toBeInstanceOf(ConnectionClosedError);
    await new Promise((r) => setTimeout(r, 100));
    expect(ended).toBe('complete');
    expect(broker.connections()).toHaveLength(0);
    expect(states.at(-1)).toBe('CLOSED');
    expect(states).not.toContain('RECONNECTING');
  });

  it('with no connection open (never subscribed) emits closed at once', async () => {
    const progress = await lastValueFrom(recovering().drain().pipe(toArray()));
    expect(progress).toEqual([expect.objectContaining({ phase: 'closed' })]);
  });
});

describe('Publisher.drain (embedded broker)', () => {
  it('waits for every publish to be confirmed, then refuses more', async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('pub.drain'));
    const connection$ = connect('amqp://guest:guest@embedded', { transport: broker.connector });
    const publisher = createPublisher(connection$);
    const all: Promise<PublishOutcome>[] = [];
    for (let i = 0; i < 500; i++) all.push(lastValueFrom(publisher.publish('', 'pub.drain', String(i))));
    const report = await lastValueFrom(publisher.drain());
    expect(report).toMatchObject({ timedOut: false, dropped: 0 });
    const outcomes = await Promise.all(all);
    expect(outcomes.every((o) => o.status === 'acked')).toBe(true);
    await expect(lastValueFrom(publisher.publish('', 'pub.drain', 'late'))).rejects.toBeInstanceOf(
      DrainingError,
    );
    expect(broker.queue('pub.drain')?.messageCount).toBe(500);
    await lastValueFrom(conn.close());
  });

  it('fails the held messages with a DrainingError at the timeout', async () => {
    // A connection that never opens: messages stay held.
    const publisher = createPublisher(new Observable<Connection>(() => {}));
    const one = lastValueFrom(publisher.publish('', 'q', 'x')).catch((e: unknown) => e);
    const report = await lastValueFrom(publisher.drain({ timeout: 100 }));
    expect(report).toMatchObject({ timedOut: true, dropped: 1 });
    expect(await one).toBeInstanceOf(DrainingError);
  });

  it('ends as soon as the last held message fails with BUFFER_TIMEOUT, not at its timeout', async () => {
    const publisher = createPublisher(NEVER, { bufferTimeout: 100 });
    const one = lastValueFrom(publisher.publish('', 'q', 'x')).catch((e: unknown) => e);
    const report = await lastValueFrom(publisher.drain({ timeout: 1500 }));
    expect(report).toMatchObject({ timedOut: false, dropped: 0 });
    expect(report.elapsed).toBeGreaterThanOrEqual(90);
    expect(report.elapsed).toBeLessThan(700);
    expect(await one).toMatchObject({ name: 'PublisherError', code: 'BUFFER_TIMEOUT' });
  });

  it('ends as soon as the last held message is cancelled (its publish unsubscribed)', async () => {
    const publisher = createPublisher(new Subject<Connection>(), { bufferTimeout: 5000 });
    const outcomes: unknown[] = [];
    const sub = publisher.publish('', 'q', 'x').subscribe({
      next: (o) => outcomes.push(o),
      error: (e: unknown) => outcomes.push(e),
    });
    expect(publisher.buffered).toBe(1);
    const report = lastValueFrom(publisher.drain({ timeout: 1500 }));
    setTimeout(() => sub.unsubscribe(), 50);
    const { timedOut, dropped, elapsed } = await report;
    expect({ timedOut, dropped }).toEqual({ timedOut: false, dropped: 0 });
    expect(elapsed).toBeLessThan(700);
    expect(publisher.buffered).toBe(0);
    expect(outcomes).toEqual([]);
  });

  it('cancelling one of two held messages leaves the drain waiting for the other', async () => {
    const publisher = createPublisher(NEVER, { bufferTimeout: 300 });
    const first = publisher.publish('', 'q', 'a').subscribe({ error: () => {} });
    const second = lastValueFrom(publisher.publish('', 'q', 'b')).catch((e: unknown) => e);
    const report = lastValueFrom(publisher.drain({ timeout: 1500 }));
    first.unsubscribe();
    const { timedOut, elapsed } = await report;
    expect(timedOut).toBe(false);
    // The second message's buffer timeout ended it, not the cancel.
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1000);
    expect(await second).toMatchObject({ code: 'BUFFER_TIMEOUT' });
  });

  it('keeps draining after an unsubscribe, with a timer that no longer keeps the process alive', async () => {
    const timers: ReturnType<typeof setTimeout>[] = [];
    const real = globalThis.setTimeout;
    const spy = jest.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const t = real(fn, ms);
      timers.push(t);
      return t;
    }) as typeof setTimeout);
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    let one: Promise<unknown>;
    let sub: Subscription;
    const reports: unknown[] = [];
    try {
      const publisher = createPublisher(NEVER, { bufferTimeout: 5000 });
      one = lastValueFrom(publisher.publish('', 'q', 'x')).catch((e: unknown) => e);
      const before = timers.length;
      sub = publisher.drain({ timeout: 150 }).subscribe((r) => reports.push(r));
      drainTimer = timers[before];
    } finally {
      spy.mockRestore();
    }
    expect(drainTimer).toBeDefined();
    expect(drainTimer!.hasRef()).toBe(true);
    sub.unsubscribe();
    expect(drainTimer!.hasRef()).toBe(false);
    // The drain goes on: at its timeout the held message fails with a DrainingError.
    expect(await one).toBeInstanceOf(DrainingError);
    expect(reports).toEqual([]);
  });
});
