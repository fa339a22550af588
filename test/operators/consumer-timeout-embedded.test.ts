/**
 * Consumer timeouts end to end on the embedded broker (`rxamqp/testing`), fast and beside the
 * real-broker suite (test/integration/consumer-timeout.test.ts): RabbitMQ 3.x's form (a 406 channel
 * close, which the embedded broker reproduces with its `consumerTimeout` option) and the form of
 * RabbitMQ 4.3 (basic.cancel while deliveries are held; the embedded broker sends basic.cancel when a
 * queue is deleted, which is the same frame).
 */
import {
  filter,
  firstValueFrom,
  lastValueFrom,
  map,
  merge,
  NEVER,
  of,
  Subject,
  type Subscription,
  switchMap,
  take,
  tap,
  timeout,
  toArray,
} from 'rxjs';
import { ackOnSuccess, resumeOnConsumerTimeout } from '../../operators/index.js';
import {
  type Channel,
  ChannelClosedError,
  type Connection,
  ConsumerCancelledError,
  connect,
  type DrainProgress,
  isConsumerTimeout,
  openConnection,
} from '../../src/node.js';
import { EmbeddedBroker } from '../../src/testing/index.js';

const URL = 'amqp://guest:guest@embedded';

describe('consumer timeout (embedded broker)', () => {
  let broker: EmbeddedBroker;
  afterEach(() => broker.close());

  it('3.x form: the consumer errors with the 406 close, which isConsumerTimeout recognises', async () => {
    broker = new EmbeddedBroker({ consumerTimeout: 50, timers: true });
    const conn = await openConnection(URL, { transport: broker.connector });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('slow'));
    broker.publish('', 'slow', 'x');
    const error = await new Promise<unknown>((resolve) => {
      ch.consume('slow').subscribe({ error: resolve });
    });
    expect(error).toBeInstanceOf(ChannelClosedError);
    expect(isConsumerTimeout(error)).toBe(true);
    // A copy for later use of the closed channel still says so (through its cause).
    expect(isConsumerTimeout((error as ChannelClosedError).forLaterUse('basic.ack'))).toBe(true);
    expect(broker.queue('slow')!.messages[0]).toMatchObject({ redelivered: true });
  });

  it('without recovery, resumeOnConsumerTimeout brings the consumer back and the message is redelivered', async () => {
    broker = new EmbeddedBroker({ consumerTimeout: 50, timers: true });
    const setup = await openConnection(URL, { transport: broker.connector });
    await lastValueFrom((await setup.openChannel()).queueDeclare('jobs'));
    await lastValueFrom(setup.close());
    broker.publish('', 'jobs', 'job');
    const seen: boolean[] = [];
    const resumes: unknown[] = [];
    const result = lastValueFrom(
      connect(URL, { transport: broker.connector }).pipe(
        switchMap((conn) =>
          conn.channel().pipe(
            switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
            ackOnSuccess((d) => {
              seen.push(d.fields.redelivered);
              return d.fields.redelivered ? of(d.text()) : NEVER; // the first attempt hangs
            }),
            resumeOnConsumerTimeout({ onResume: (e) => resumes.push(e) }),
          ),
        ),
        take(1),
        timeout(5_000),
      ),
    );
    expect(await result).toBe('job');
    expect(seen).toEqual([false, true]);
    expect(resumes).toHaveLength(1);
    expect(isConsumerTimeout(resumes[0])).toBe(true);
    expect(broker.queue('jobs')!.messageCount).toBe(0);
  });

  it('4.3 form: a broker cancel while the consumer holds unsettled deliveries is a consumer timeout', async () => {
    broker = new EmbeddedBroker();
    const conn = await openConnection(URL, { transport: broker.connector });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('held'));
    broker.publish('', 'held', 'x');
    const error = await new Promise<unknown>((resolve) => {
      ch.consume('held').subscribe({
        next: () => broker.deleteQueue('held'), // the delivery stays unsettled
        error: resolve,
      });
    });
    expect(error).toBeInstanceOf(ConsumerCancelledError);
    expect((error as ConsumerCancelledError).heldUnsettled).toBe(true);
    expect(isConsumerTimeout(error)).toBe(true);
    expect(ch.isOpen).toBe(true); // the channel stays open, as RabbitMQ 4.3 keeps it
    await lastValueFrom(conn.close());
  });

  it('a broker cancel with every delivery settled is not a timeout (a deleted queue)', async () => {
    broker = new EmbeddedBroker();
    const conn = await openConnection(URL, { transport: broker.connector });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('done'));
    broker.publish('', 'done', 'x');
    const error = await new Promise<unknown>((resolve) => {
      ch.consume('done').subscribe({
        next: (d) => {
          d.ack();
          broker.deleteQueue('done');
        },
        error: resolve,
      });
    });
    expect(error).toBeInstanceOf(ConsumerCancelledError);
    expect((error as ConsumerCancelledError).heldUnsettled).toBe(false);
    expect(isConsumerTimeout(error)).toBe(false);
    await lastValueFrom(conn.close());
  });

  describe('on a recovering connection the consumer comes back by itself', () => {
    /** A queue `jobs` holding `count` messages. */
    async function withJobs(options: ConstructorParameters<typeof EmbeddedBroker>[0], count = 1) {
      broker = new EmbeddedBroker(options);
      const setup = await openConnection(URL, { transport: broker.connector });
      await lastValueFrom((await setup.openChannel()).queueDeclare('jobs'));
      await lastValueFrom(setup.close());
      for (let i = 1; i <= count; i++) broker.publish('', 'jobs', `job-${i}`);
    }

    it('3.x form: channel() opens a fresh channel, the hung handler is let go and the message is redelivered', async () => {
      await withJobs({ consumerTimeout: 50, timers: true });
      const channels: Channel[] = [];
      const seen: string[] = [];
      let hungUnsubscribed = false;
      const lines: string[] = [];
      const result = lastValueFrom(
        connect(URL, { transport: broker.connector, recovery: true, debug: (l) => lines.push(l) }).pipe(
          switchMap((conn) => conn.channel()),
          tap((ch) => channels.push(ch)),
          switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
          // Concurrency 1: the redelivery only runs if the hung handler's place was freed.
          ackOnSuccess((d) => {
            seen.push(`${d.text()}${d.fields.redelivered ? ' (redelivered)' : ''}`);
            if (d.fields.redelivered) return of(d.text());
            return new Subject<string>().pipe(tap({ finalize: () => (hungUnsubscribed = true) }));
          }),
          take(1),
          timeout(5_000),
        ),
      );
      expect(await result).toBe('job-1');
      expect(seen).toEqual(['job-1', 'job-1 (redelivered)']);
      expect(hungUnsubscribed).toBe(true);
      expect(channels).toHaveLength(2);
      expect(channels[0]!.reopenedAfter).toBeUndefined();
      expect(isConsumerTimeout(channels[0]!.error)).toBe(true);
      expect(channels[1]!.reopenedAfter).toBe(channels[0]!.error);
      expect(isConsumerTimeout(channels[1]!.reopenedAfter)).toBe(true);
      expect(lines.some((l) => /consumer timeout; opening a fresh one/.test(l))).toBe(true);
      expect(broker.queue('jobs')!.messageCount).toBe(0);
    });

    it('3.x form: deliveries of the closed channel still waiting for a place are not processed', async () => {
      await withJobs({ consumerTimeout: 50, timers: true }, 3);
      const seen: string[] = [];
      const done: string[] = [];
      await lastValueFrom(
        connect(URL, { transport: broker.connector, recovery: true }).pipe(
          switchMap((conn) => conn.channel()),
          switchMap((ch) => ch.consume('jobs', { prefetch: 3 })),
          ackOnSuccess((d) => {
            seen.push(`${d.text()}${d.fields.redelivered ? '*' : ''}`);
            return d.fields.redelivered ? of(d.text()) : NEVER;
          }),
          tap((r) => done.push(r)),
          take(3),
          timeout(5_000),
        ),
      );
      // job-2 and job-3 waited behind the hung job-1 on the first channel: they never ran there.
      expect(seen).toEqual(['job-1', 'job-1*', 'job-2*', 'job-3*']);
      expect(done).toEqual(['job-1', 'job-2', 'job-3']);
      expect(broker.queue('jobs')!.messageCount).toBe(0);
    });

    it('4.3 form: the stream goes on with a fresh consumer on the same channel; the late ack is ignored', async () => {
      await withJobs({ consumerTimeout: 50, timers: true, consumerTimeoutResponse: 'notify-consumer' });
      const channels: Channel[] = [];
      const tags: string[] = [];
      const lines: string[] = [];
      let hung: ((value: string) => void) | undefined;
      let hungDelivery: { ack(): boolean } | undefined;
      const result = lastValueFrom(
        connect(URL, { transport: broker.connector, recovery: true, debug: (l) => lines.push(l) }).pipe(
          switchMap((conn) => conn.channel()),
          tap((ch) => channels.push(ch)),
          switchMap((ch) => ch.consume('jobs', { prefetch: 1, consumerTag: 'worker' })),
          ackOnSuccess((d) => {
            tags.push(d.fields.consumerTag ?? '');
            if (d.fields.redelivered) return of(d.text());
            hungDelivery = d;
            return new Promise<string>((resolve) => {
              hung = resolve;
            });
          }),
          take(1),
          timeout(5_000),
        ),
      );
      expect(await result).toBe('job-1');
      expect(channels).toHaveLength(1); // no fresh channel: the broker kept it open
      // The broker does not let go of a cancelled tag before RabbitMQ 4.3.7: it names the new one.
      expect(tags[0]).toBe('worker');
      expect(tags[1]).toMatch(/^amq\.ctag-/);
      expect(lines.some((l) => /consuming jobs again/.test(l))).toBe(true);
      // The hung handler finishing now changes nothing: its delivery was let go, nothing is sent.
      hung?.('late');
      await new Promise((r) => setTimeout(r, 20));
      expect(hungDelivery?.ack()).toBe(false);
      expect(broker.queue('jobs')!.messageCount).toBe(0);
    });

    it('4.3 form: a drain after the resume does not wait for the delivery the broker took back', async () => {
      await withJobs({ consumerTimeout: 50, timers: true, consumerTimeoutResponse: 'notify-consumer' });
      const connection$ = connect(URL, { transport: broker.connector, recovery: true });
      const results: string[] = [];
      const drained = new Promise<DrainProgress[]>((resolve, reject) => {
        connection$
          .pipe(
            switchMap((conn) => conn.channel()),
            switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
            ackOnSuccess((d) => (d.fields.redelivered ? of(d.text()) : NEVER), { concurrency: 2 }),
          )
          .subscribe({
            next: (r) => {
              results.push(r);
              lastValueFrom(connection$.drain({ timeout: 5_000 }).pipe(toArray())).then(resolve, reject);
            },
            error: reject,
          });
      });
      const progress = await drained;
      expect(results).toEqual(['job-1']);
      expect(progress.at(-1)).toMatchObject({ phase: 'closed', timedOut: false });
      expect(progress.at(-1)!.elapsed).toBeLessThan(2_000);
      expect(broker.queue('jobs')!.messageCount).toBe(0);
    });

    it('4.3 form: a late ack of a taken-back delivery is ignored by the broker, as RabbitMQ 4.3 does', async () => {
      await withJobs({ consumerTimeout: 50, timers: true, consumerTimeoutResponse: 'notify-consumer' });
      const conn = await openConnection(URL, { transport: broker.connector });
      const ch = await conn.openChannel();
      const error = await new Promise<unknown>((resolve) => {
        ch.consume('jobs', { prefetch: 1 }).subscribe({
          next: (d) => setTimeout(() => d.ack(), 150), // after the timeout took it back
          error: resolve,
        });
      });
      expect(isConsumerTimeout(error)).toBe(true); // no recovery: the stream errors
      await new Promise((r) => setTimeout(r, 250));
      expect(ch.isOpen).toBe(true);
      expect(broker.queue('jobs')!.messageCount).toBe(1); // back in the queue
      await lastValueFrom(conn.close());
    });

    it('while the connection drains, a consumer timeout ends channel() instead of reopening', async () => {
      await withJobs({ consumerTimeout: 100, timers: true });
      const connection$ = connect(URL, { transport: broker.connector, recovery: true });
      const channels: Channel[] = [];
      let drained: Promise<string[]> | undefined;
      const ended = new Promise<string>((resolve, reject) => {
        connection$
          .pipe(
            switchMap((conn) => conn.channel().pipe(tap({ complete: () => resolve('complete') }))),
            tap((ch) => channels.push(ch)),
            switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
            // The delivery is never settled: the drain waits for it until the timeout closes the channel.
            tap(() => {
              drained ??= lastValueFrom(
                connection$.drain({ timeout: 5_000 }).pipe(
                  map((p) => p.phase),
                  toArray(),
                ),
              );
            }),
          )
          .subscribe({ error: reject });
      });
      expect(await ended).toBe('complete');
      expect(channels).toHaveLength(1);
      expect(await drained).toContain('closed');
      expect(broker.queue('jobs')!.messageCount).toBe(1);
    });
  });

  describe('during a drain a consumer timeout ends the stream (it completes)', () => {
    async function jobs(options: ConstructorParameters<typeof EmbeddedBroker>[0]) {
      broker = new EmbeddedBroker(options);
      const conn = await openConnection(URL, { transport: broker.connector });
      const ch = await conn.openChannel();
      await lastValueFrom(ch.queueDeclare('jobs'));
      await lastValueFrom(ch.queueDeclare('other'));
      broker.publish('', 'jobs', 'slow');
      return { conn, ch };
    }

    it('3.x form without recovery: channel() completes and the drain closes', async () => {
      const { conn } = await jobs({ consumerTimeout: 100, timers: true });
      let drained: Promise<string[]> | undefined;
      const end = await new Promise<string>((resolve) => {
        conn
          .channel()
          .pipe(
            switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
            tap(() => {
              drained ??= lastValueFrom(
                conn.drain({ timeout: 5_000 }).pipe(
                  map((p) => p.phase),
                  toArray(),
                ),
              );
            }),
          )
          .subscribe({ complete: () => resolve('complete'), error: (e: unknown) => resolve(`error ${e}`) });
      });
      expect(end).toBe('complete');
      expect(await drained).toContain('closed');
      expect(broker.queue('jobs')!.messageCount).toBe(1);
    });

    it('4.3 form: a delivery of a consumer the drain cancelled times out: the channel closes and the drain goes on at once', async () => {
      const { conn } = await jobs({
        consumerTimeout: 100,
        timers: true,
        consumerTimeoutResponse: 'notify-consumer',
      });
      const ch = await conn.openChannel();
      let drained: Promise<DrainProgress[]> | undefined;
      const started = Date.now();
      const end = await new Promise<string>((resolve) => {
        ch.consume('jobs', { prefetch: 1 })
          .pipe(
            tap(() => {
              drained ??= lastValueFrom(conn.drain({ timeout: 5_000 }).pipe(toArray()));
            }),
          )
          .subscribe({ complete: () => resolve('complete'), error: (e: unknown) => resolve(`error ${e}`) });
      });
      expect(end).toBe('complete'); // the drain ended the stream
      const progress = await drained!;
      expect(progress.at(-1)).toMatchObject({ phase: 'closed', timedOut: false });
      // Not the drain's 5 s: RabbitMQ 4.4 closes the channel when a cancelled consumer's delivery times out.
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(isConsumerTimeout(ch.error)).toBe(true);
      expect(broker.queue('jobs')!.messageCount).toBe(1);
    });

    it('without recovery, resumeOnConsumerTimeout meeting a drain when it subscribes again completes', async () => {
      const { conn, ch } = await jobs({ consumerTimeout: 100, timers: true });
      // Another consumer holds a delivery for a while: the drain is still running at the resume.
      ch.consume('other').subscribe((d) => setTimeout(() => d.ack(), 200));
      let drained: Promise<unknown> | undefined;
      const end = await new Promise<string>((resolve) => {
        conn
          .channel()
          .pipe(
            switchMap((c) => c.consume('jobs', { prefetch: 1 })),
            ackOnSuccess(() => NEVER),
            resumeOnConsumerTimeout({
              delayMs: 20,
              onResume: () => {
                broker.publish('', 'other', 'x');
                setTimeout(() => {
                  drained = lastValueFrom(conn.drain({ timeout: 3_000 }));
                }, 5);
              },
            }),
          )
          .subscribe({ complete: () => resolve('complete'), error: (e: unknown) => resolve(`error ${e}`) });
      });
      expect(end).toBe('complete');
      expect(await drained).toMatchObject({ phase: 'closed' });
    });
  });

  describe('what a recovering connection does not take for a timeout, and what it does not leak', () => {
    it('a queue deleted while deliveries were held: the stream errors with ConsumerCancelledError, the channel stays open', async () => {
      broker = new EmbeddedBroker();
      const setup = await openConnection(URL, { transport: broker.connector });
      const sch = await setup.openChannel();
      await lastValueFrom(sch.queueDeclare('held'));
      await lastValueFrom(sch.queueDeclare('other'));
      await lastValueFrom(setup.close());
      broker.publish('', 'held', 'x');
      const channels: Channel[] = [];
      const error = await new Promise<unknown>((resolve) => {
        connect(URL, { transport: broker.connector, recovery: true })
          .pipe(
            switchMap((conn) => conn.channel()),
            tap((ch) => channels.push(ch)),
            switchMap((ch) =>
              // Something else consumes on the same channel: it must survive.
              merge(ch.consume('held').pipe(tap(() => broker.deleteQueue('held'))), ch.consume('other')),
            ),
          )
          .subscribe({ error: resolve });
      });
      expect(error).toBeInstanceOf(ConsumerCancelledError);
      expect(channels).toHaveLength(1);
      // Closed by the pipeline's end, not by the broker (a 404 for consuming the deleted queue again).
      expect(channels[0]!.error).toBeUndefined();
    });

    it('no fresh channel for a pipeline that left as its consumer completed', async () => {
      broker = new EmbeddedBroker({ consumerTimeout: 50, timers: true });
      const setup = await openConnection(URL, { transport: broker.connector });
      await lastValueFrom((await setup.openChannel()).queueDeclare('jobs'));
      await lastValueFrom(setup.close());
      broker.publish('', 'jobs', 'job');
      let conn!: Connection;
      const keep = connect(URL, { transport: broker.connector, recovery: true }).subscribe((c) => {
        conn = c;
      });
      await new Promise((r) => setTimeout(r, 20));
      const opened: number[] = [];
      const sub: Subscription = conn
        .channel()
        .pipe(
          tap((ch) => opened.push(ch.id)),
          switchMap((ch) =>
            ch.consume('jobs', { prefetch: 1 }).pipe(tap({ complete: () => sub.unsubscribe() })),
          ),
        )
        .subscribe(); // never acks
      await new Promise((r) => setTimeout(r, 300));
      expect(sub.closed).toBe(true);
      expect(opened).toEqual([1]);
      expect(broker.connections().map((c) => c.channels)).toEqual([0]);
      keep.unsubscribe();
    });

    it('a settlement watcher that throws does not stop the others nor the recovery', async () => {
      broker = new EmbeddedBroker({ consumerTimeout: 50, timers: true });
      const setup = await openConnection(URL, { transport: broker.connector });
      await lastValueFrom((await setup.openChannel()).queueDeclare('jobs'));
      await lastValueFrom(setup.close());
      broker.publish('', 'jobs', 'job');
      const lines: string[] = [];
      const told: string[] = [];
      const redelivered = await firstValueFrom(
        connect(URL, { transport: broker.connector, recovery: true, debug: (l) => lines.push(l) }).pipe(
          switchMap((conn) => conn.channel()),
          switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
          tap((d) => {
            if (d.fields.redelivered) return;
            d.watchSettlement({
              settlementLost: () => {
                throw new Error('watcher threw');
              },
            });
            d.watchSettlement({ settlementLost: () => told.push('second') });
          }),
          filter((d) => d.fields.redelivered),
          timeout(2_000),
        ),
      );
      expect(redelivered.text()).toBe('job');
      expect(told).toEqual(['second']);
      expect(lines.some((l) => l.includes('a settlement watcher threw: watcher threw'))).toBe(true);
    });

    it('a delivery of a consumer cancelled by the client is not processed once its channel closed', async () => {
      broker = new EmbeddedBroker();
      const conn = await openConnection(URL, { transport: broker.connector });
      const ch = await conn.openChannel();
      await lastValueFrom(ch.queueDeclare('q1'));
      await lastValueFrom(ch.queueDeclare('q2'));
      broker.publish('', 'q2', 'slow');
      const ran: string[] = [];
      const started = new Subject<void>();
      const sub = merge(ch.consume('q2'), ch.consume('q1').pipe(take(1)))
        .pipe(
          ackOnSuccess((d) => {
            ran.push(d.text());
            started.next();
            return d.text() === 'slow' ? NEVER : of(d.text());
          }),
        )
        .subscribe();
      await firstValueFrom(started);
      broker.publish('', 'q1', 'waiting'); // waits behind 'slow'; take(1) cancels q1's consumer
      await new Promise((r) => setTimeout(r, 50));
      await lastValueFrom(ch.close());
      await new Promise((r) => setTimeout(r, 20));
      expect(ran).toEqual(['slow']);
      sub.unsubscribe();
      await lastValueFrom(conn.close());
    });
  });
});
