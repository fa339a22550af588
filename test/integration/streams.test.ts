/**
 * Stream queues on the real broker (RabbitMQ 3.10 here: streams, but no filtering on the broker):
 * offsets of every kind, credit granted for the user, resuming from a stored offset, the client-side
 * filter, and the settlements a stream refuses (a nack or reject closes the connection with 540).
 */
import {
  filter,
  firstValueFrom,
  lastValueFrom,
  map,
  merge,
  take,
  tap,
  throwError,
  timeout,
  timer,
  toArray,
} from 'rxjs';
import { ackOnSuccess } from '../../operators/index.js';
import {
  type Channel,
  ChannelClosedError,
  consumeStream,
  type DrainProgress,
  openConnection,
  queue,
  type StreamDelivery,
  toQueueDeclare,
  withStreamFilterValue,
} from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { openSession, type Session, uniqueName } from '../support/session.js';

let session: Session;
let publisher: Channel;
const created: string[] = [];

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp stream tests' });
  publisher = (await session.openChannel()).channel;
  await lastValueFrom(publisher.confirmSelect());
});

afterAll(async () => {
  if (session !== undefined) {
    const { channel, close } = await session.openChannel();
    for (const name of created) await lastValueFrom(channel.queueDelete(name));
    close();
    session.close();
  }
});

/** Declares a stream with small segments (so that it has several chunks and segments). */
async function declareStream(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  const { queue: q, options } = toQueueDeclare(
    queue({ name, type: 'stream', streamMaxSegmentSizeBytes: 2_000, maxAge: '1D' }),
  );
  await lastValueFrom(publisher.queueDeclare(q, options));
  created.push(name);
  return name;
}

/** Publishes `bodies` in order (one at a time, so that they are in several chunks), confirmed. */
async function publish(
  stream: string,
  bodies: string[],
  filterValue?: (i: number) => string | undefined,
): Promise<void> {
  for (let i = 0; i < bodies.length; i += 20) {
    const batch = bodies.slice(i, i + 20).map((body, j) => {
      const value = filterValue?.(i + j);
      return publisher.publish('', stream, body, value === undefined ? {} : withStreamFilterValue(value));
    });
    const outcomes = await lastValueFrom(merge(...batch).pipe(toArray()));
    for (const o of outcomes) expect(o.status).toBe('acked');
  }
}

function bodies(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `m${from + i}`);
}

async function newChannel(): Promise<Channel> {
  return (await session.openChannel()).channel;
}

/** The first `count` deliveries (failing with what came, if the rest does not come within 5 s). */
async function read(source: ReturnType<typeof consumeStream>, count: number): Promise<StreamDelivery[]> {
  const seen: StreamDelivery[] = [];
  return firstValueFrom(
    source.pipe(
      tap((d) => seen.push(d)),
      take(count),
      toArray(),
      timeout({
        first: 5_000,
        with: () =>
          throwError(
            () =>
              new Error(
                `${seen.length} of ${count} came: ${seen
                  .map((d) => `${d.text()}@${d.streamOffset}`)
                  .slice(-5)
                  .join(' ')}`,
              ),
          ),
      }),
    ),
  );
}

/** Whether the session's connection is still open (a passive declare goes through). */
async function connectionAlive(stream: string): Promise<void> {
  const ch = await newChannel();
  await lastValueFrom(ch.queueDeclare(stream, { passive: true }));
  const events: unknown[] = [];
  session.connectionEvents.subscribe((e) => events.push(e)).unsubscribe(); // replays what happened
  expect(events).toEqual([]);
}

describe('consumeStream (real broker)', () => {
  let stream: string;
  let all: StreamDelivery[];

  beforeAll(async () => {
    stream = await declareStream('stream');
    await publish(stream, bodies(0, 300));
  });

  it("reads the whole stream from 'first' with prefetch 10: credit goes back without an ack", async () => {
    all = await read(consumeStream(await newChannel(), stream, { offset: 'first', prefetch: 10 }), 300);
    expect(all.map((d) => d.text())).toEqual(bodies(0, 300));
    // Offsets rise (they may skip numbers: the stream also records entries that are not messages).
    for (let i = 1; i < all.length; i++)
      expect(all[i]!.streamOffset).toBeGreaterThan(all[i - 1]!.streamOffset);
    expect(all[0]!.streamOffset).toBe(0);
    expect(all.every((d) => d.settled)).toBe(true);
    expect(all[5]!.ack()).toBe(false); // harmless
    expect(JSON.parse(JSON.stringify(all[7]))).toMatchObject({
      streamOffset: all[7]!.streamOffset,
      settled: true,
    });
    await connectionAlive(stream);
  });

  it('resumes from a stored offset + 1 with exactly the rest, for every stored position', async () => {
    for (const processed of [0, 1, 57, 150, 298]) {
      const stored = all[processed]!.streamOffset;
      const rest = await read(
        consumeStream(await newChannel(), stream, { offset: stored + 1, prefetch: 25 }),
        299 - processed,
      );
      expect(rest.map((d) => d.text())).toEqual(bodies(processed + 1, 300));
      expect(rest[0]!.streamOffset).toBeGreaterThan(stored);
    }
    // A bigint offset works the same.
    const fromBig = await read(
      consumeStream(await newChannel(), stream, { offset: BigInt(all[299]!.streamOffset), prefetch: 1 }),
      1,
    );
    expect(fromBig.map((d) => d.text())).toEqual(['m299']);
  });

  it("starts at an offset without skipping what comes after: 'next' waits for new messages, 'last' gives the last chunk", async () => {
    const own = await declareStream('stream-next');
    await publish(own, bodies(0, 40));
    const ch = await newChannel();
    const next = firstValueFrom(
      consumeStream(ch, own, { offset: 'next', prefetch: 5 }).pipe(take(3), toArray()),
    );
    const last = await read(consumeStream(ch, own, { offset: 'last', prefetch: 5 }), 1);
    expect(bodies(0, 40)).toContain(last[0]!.text()); // the first message of the last chunk
    await new Promise((r) => setTimeout(r, 200)); // the 'next' consumer is attached
    await publish(own, bodies(40, 43));
    expect((await next).map((d) => d.text())).toEqual(['m40', 'm41', 'm42']);
    // 'last' ends with the newest message: reading on from it reaches m42.
    const tail = await firstValueFrom(
      consumeStream(ch, own, { offset: 'last', prefetch: 5 }).pipe(
        filter((d) => d.text() === 'm42'),
        take(1),
      ),
    );
    expect(tail.text()).toBe('m42');
  });

  it('starts at a point in time (a Date, sent as a timestamp) and at an interval back from now', async () => {
    const own = await declareStream('stream-time');
    await publish(own, bodies(0, 20));
    const ch = await newChannel();
    const hourAgo = await read(
      consumeStream(ch, own, { offset: new Date(Date.now() - 3_600_000), prefetch: 7 }),
      20,
    );
    expect(hourAgo.map((d) => d.text())).toEqual(bodies(0, 20));
    const interval = await read(consumeStream(ch, own, { offset: '1h', prefetch: 7 }), 20);
    expect(interval.map((d) => d.text())).toEqual(bodies(0, 20));
    // A time after every message (timestamps are whole seconds: 2 s ahead) gives only later messages.
    const future = firstValueFrom(
      consumeStream(ch, own, { offset: new Date(Date.now() + 2_000), prefetch: 7 }).pipe(take(1)),
    );
    await new Promise((r) => setTimeout(r, 2_500));
    await publish(own, ['later']);
    expect((await future).text()).toBe('later');
  });

  it('post-filters on the filter value (RabbitMQ 3.10 ignores x-stream-filter and sends everything)', async () => {
    const own = await declareStream('stream-filter');
    // 0, 3, 6, ...: no filter value; others: 'odd' or 'even'.
    const value = (i: number): string | undefined => (i % 3 === 0 ? undefined : i % 2 === 1 ? 'odd' : 'even');
    await publish(own, bodies(0, 120), value);
    const expected = (keep: (v: string | undefined) => boolean): string[] =>
      bodies(0, 120).filter((_, i) => keep(value(i)));
    const ch = await newChannel();

    // prefetch 4 with most messages dropped: the stream only gets through if dropped ones grant credit.
    const odd = expected((v) => v === 'odd');
    const onlyOdd = await read(
      consumeStream(ch, own, { offset: 'first', prefetch: 4, filter: { values: ['odd'] } }),
      odd.length,
    );
    expect(onlyOdd.map((d) => d.text())).toEqual(odd);
    expect(onlyOdd.every((d) => d.filterValue === 'odd')).toBe(true);

    const oddOrNone = expected((v) => v === 'odd' || v === undefined);
    const withUnfiltered = await read(
      consumeStream(ch, own, {
        offset: 'first',
        prefetch: 4,
        filter: { values: ['odd'], matchUnfiltered: true },
      }),
      oddOrNone.length,
    );
    expect(withUnfiltered.map((d) => d.text())).toEqual(oddOrNone);

    // Several values, and a post-filter of the application's own.
    const custom = await read(
      consumeStream(ch, own, {
        offset: 'first',
        prefetch: 4,
        filter: { values: ['odd', 'even'], postFilter: (d) => d.text().endsWith('5') },
      }),
      12,
    );
    expect(custom.map((d) => d.text())).toEqual(bodies(0, 120).filter((b) => b.endsWith('5')));
    await connectionAlive(own);
  });

  it("with credit: 'manual', deliveries stop while unsettled; nack and reject only grant credit", async () => {
    const ch = await newChannel();
    const held: StreamDelivery[] = [];
    const subscription = consumeStream(ch, stream, {
      offset: 'first',
      prefetch: 5,
      credit: 'manual',
    }).subscribe({
      next: (d) => held.push(d),
      error: () => undefined,
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      // The broker sends whole chunks while the consumer has credit: at least prefetch, then it stops.
      const first = held.length;
      expect(first).toBeGreaterThanOrEqual(5);
      expect(first).toBeLessThan(300);
      await new Promise((r) => setTimeout(r, 300));
      expect(held).toHaveLength(first);
      expect(held.map((d) => d.text())).toEqual(bodies(0, first));
      // Settle them all, in every way: a real nack or reject on a stream would close the connection.
      held.forEach((d, i) => {
        const sent =
          i % 3 === 0 ? d.nack({ requeue: true }) : i % 3 === 1 ? d.reject({ requeue: false }) : d.ack();
        expect(sent).toBe(true);
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(held.length).toBeGreaterThan(first);
      expect(held.map((d) => d.text())).toEqual(bodies(0, held.length));
    } finally {
      subscription.unsubscribe();
    }
    await connectionAlive(stream);

    // ackOnSuccess settles them: the whole stream goes through 5 at a time, in order.
    const settled = await firstValueFrom(
      consumeStream(ch, stream, { offset: 'first', prefetch: 5, credit: 'manual' }).pipe(
        ackOnSuccess(
          async (d) => {
            await new Promise((r) => setTimeout(r, 0));
            return d.text();
          },
          { concurrency: 5 },
        ),
        take(300),
        toArray(),
      ),
    );
    expect(settled).toHaveLength(300);
  });

  it('unsubscribing while deliveries are in flight acks (not nacks) the ones crossing the cancel', async () => {
    const ch = await newChannel();
    for (let i = 0; i < 5; i++) {
      const some = await read(consumeStream(ch, stream, { offset: 'first', prefetch: 200 }), 3);
      expect(some.map((d) => d.text())).toEqual(['m0', 'm1', 'm2']);
    }
    // The same with channel.consume and a raw x-stream-offset argument.
    const raw = await firstValueFrom(
      ch
        .consume(stream, { prefetch: 200, arguments: { 'x-stream-offset': 'first' } })
        .pipe(take(2), toArray()),
    );
    expect(raw.map((d) => d.text())).toEqual(['m0', 'm1']);
    await new Promise((r) => setTimeout(r, 200));
    await connectionAlive(stream);
  });

  it('channel.consume on a stream sends its nacks and rejects as acks: credit, and the connection stays open', async () => {
    const ch = await newChannel();
    const got = await firstValueFrom(
      ch.consume(stream, { prefetch: 3, arguments: { 'x-stream-offset': 'first' } }).pipe(
        tap((d) => {
          if (Number(d.text().slice(1)) % 2 === 0) d.nack({ requeue: true });
          else d.reject({ requeue: false });
        }),
        take(30),
        toArray(),
      ),
    );
    expect(got.map((d) => d.text())).toEqual(bodies(0, 30));
    await new Promise((r) => setTimeout(r, 200));
    await connectionAlive(stream);
  });

  it('on a queue that is not a stream, the broker refuses the consumer (406 closes the channel)', async () => {
    const ch = await newChannel();
    const { queue: classic } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const error = await firstValueFrom(consumeStream(ch, classic, { offset: 'first', prefetch: 1 })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChannelClosedError);
    expect(error).toMatchObject({ replyCode: 406 });
    expect((error as Error).message).toMatch(/invalid arg 'x-stream-offset'/);
    await connectionAlive(stream);
  });

  it("a drain with prefetched: 'return' grants the waiting stream deliveries their credit unprocessed, and waits for the running one", async () => {
    const conn = await openConnection(await brokerUrl(), { name: 'rxamqp stream drain' });
    const ch = await conn.openChannel();
    const started: string[] = [];
    let received = 0;
    let progress: Promise<DrainProgress[]> | undefined;
    const results = await lastValueFrom(
      consumeStream(ch, stream, { offset: 'first', prefetch: 10, credit: 'manual' }).pipe(
        // The drain starts once the whole prefetch has come: nine deliveries wait behind the first.
        tap(() => {
          if (++received !== 10) return;
          // As from a signal handler: in a task of its own.
          setTimeout(() => {
            progress = lastValueFrom(conn.drain({ prefetched: 'return', timeout: 5_000 }).pipe(toArray()));
          });
        }),
        ackOnSuccess((d) => {
          started.push(d.text());
          return timer(300).pipe(map(() => d.text()));
        }),
        toArray(),
        timeout(10_000),
      ),
    );
    expect(results).toEqual(['m0']);
    expect(started).toEqual(['m0']);
    const last = (await progress!).at(-1)!;
    expect(last).toMatchObject({ phase: 'closed', timedOut: false });
    expect(last.elapsed).toBeLessThan(2_000);
  });
});
