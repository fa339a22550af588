/**
 * Publishing without confirms against a scripted server, with a transport double counting the writes
 * and reporting backpressure on demand: a publish completes as soon as the connection has taken its
 * frames (before `subscribe()` returns); a turn's publishes go out in one write; a burst is written in
 * pieces of about 64 KiB during the loop and stops at backpressure; awaiting each publish costs few
 * writes; pipelines of many synchronous publishes (mergeMap, concatMap, publishConfirmed) neither
 * overflow the stack nor hang when the transport pushes back part way. A confirm-mode publish still
 * waits for the broker's ack.
 */
import {
  concatMap,
  lastValueFrom,
  map,
  mergeMap,
  Observable,
  type OperatorFunction,
  range,
  reduce,
  toArray,
} from 'rxjs';
import { type PublishResult, publishConfirmed } from '../../operators/index.js';
import { type Channel, type Connection, openConnection, type PublishOutcome } from '../../src/node.js';
import { uncaught } from '../../src/util/runtime.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';
import { nextTurn, WriteRecorder, waitFor } from '../support/write-recorder.js';

/** A publish the scripted broker received. */
interface Received {
  readonly routingKey: string;
  readonly body: Buffer;
}

/**
 * A scripted broker that answers channel.open, confirm.select and the closes, and records every
 * basic.publish (routing key and body) in arrival order.
 */
class RecordingBroker {
  readonly publishes: Received[] = [];
  peer: ScriptedPeer | undefined;
  private constructor(readonly server: ScriptedServer) {}

  static async start(): Promise<RecordingBroker> {
    let broker!: RecordingBroker;
    const server = await ScriptedServer.start(
      async (peer) => {
        broker.peer = peer;
        await peer.handshake();
        for (;;) {
          const event = await peer.next(60_000).catch(() => undefined);
          if (event === undefined) return; // the connection ended
          if (event.kind === 'content') {
            if (event.method.name === 'basic.publish') {
              broker.publishes.push({ routingKey: event.method.routingKey, body: event.body });
            }
            continue;
          }
          if (event.kind !== 'method') continue;
          const { channel, method } = event;
          if (method.name === 'channel.open') peer.send(channel, { name: 'channel.open-ok' });
          else if (method.name === 'confirm.select') peer.send(channel, { name: 'confirm.select-ok' });
          else if (method.name === 'channel.close') peer.send(channel, { name: 'channel.close-ok' });
          else if (method.name === 'connection.close') {
            peer.send(0, { name: 'connection.close-ok' });
            peer.end();
            return;
          }
        }
      },
      { maxConnections: 1 },
    );
    broker = new RecordingBroker(server);
    return broker;
  }

  /** Resolves once `n` publishes have arrived. */
  received(n: number, timeoutMs = 20_000): Promise<void> {
    return waitFor(
      () => this.publishes.length >= n,
      `${n} publishes (got ${this.publishes.length})`,
      timeoutMs,
    );
  }

  /** The routing keys received, in order. */
  get keys(): string[] {
    return this.publishes.map((p) => p.routingKey);
  }
}

let broker: RecordingBroker | undefined;
let connection: Connection | undefined;

afterEach(async () => {
  if (connection !== undefined) await lastValueFrom(connection.close()).catch(() => undefined);
  connection = undefined;
  await broker?.server.close();
  broker = undefined;
});

/** Starts the broker and opens a connection through `writes` and a channel on it. */
async function open(writes: WriteRecorder): Promise<{ broker: RecordingBroker; channel: Channel }> {
  broker = await RecordingBroker.start();
  connection = await openConnection({
    hostname: '127.0.0.1',
    port: broker.server.port,
    connectionTimeout: 3000,
    transport: writes.connector,
  });
  const channel = await connection.openChannel();
  await nextTurn(); // what the handshake and channel.open wrote is out of the way
  return { broker, channel };
}

/** The keys '0' .. String(n - 1). */
const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i));

const KIB = 1024;

/** `got` is '0' .. String(n - 1) in order (the first difference reported, not 100,000 lines). */
function expectInOrder(got: readonly string[], n: number): void {
  expect(got).toHaveLength(n);
  const first = got.findIndex((key, i) => key !== String(i));
  expect(first === -1 ? 'in order' : `position ${first} holds message ${got[first]}`).toBe('in order');
}

/** `got` holds '0' .. String(n - 1) once each, in any order. */
function expectAllOnce(got: readonly string[], n: number): void {
  expect(got).toHaveLength(n);
  const seen = new Set(got);
  expect(seen.size).toBe(n);
  for (let i = 0; i < n; i++) if (!seen.has(String(i))) throw new Error(`message ${i} is missing`);
}

describe('a publish without confirms on a writable connection', () => {
  it('emits sent and completes before subscribe() returns; the frames go out later, in order', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    const events: string[] = [];
    const subscription = channel.publish('x', 'first', 'body').subscribe({
      next: (o) => events.push(o.status),
      error: (e: Error) => events.push(`error ${e.message}`),
      complete: () => events.push('complete'),
    });
    expect(events).toEqual(['sent', 'complete']);
    expect(subscription.closed).toBe(true);
    // Completed, yet nothing handed to the transport yet: that happens after this synchronous code.
    expect(writes.count).toBe(before);
    expect(broker.publishes).toHaveLength(0);
    await broker.received(1);
    expect(broker.keys).toEqual(['first']);
  });

  it('hands the publishes of one turn to the transport in one write, at the end of the turn', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    let completed = 0;
    for (let i = 0; i < 20; i++) {
      channel
        .publish('x', String(i), `body ${i}`)
        .subscribe({ error: () => {}, complete: () => completed++ });
    }
    expect(completed).toBe(20);
    expect(writes.count).toBe(before);
    await nextTurn();
    expect(writes.count).toBe(before + 1);
    await broker.received(20);
    expect(broker.keys).toEqual(keys(20));
    expect(broker.publishes[7]!.body.toString()).toBe('body 7');
    expect(writes.count).toBe(before + 1);
  });
});

describe('a synchronous burst', () => {
  const body = Buffer.alloc(KIB, 7);

  it('is handed to the transport during the loop, in pieces of about 64 KiB', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    const n = 300; // about 300 KiB of frames
    for (let i = 0; i < n; i++) channel.publish('x', String(i), body).subscribe({ error: () => {} });
    const duringLoop = writes.writes.slice(before);
    // Written while the loop ran, not all at the end of the turn.
    expect(duringLoop.length).toBeGreaterThanOrEqual(4);
    for (const w of duringLoop) {
      expect(w.bytes).toBeGreaterThanOrEqual(64 * KIB);
      expect(w.bytes).toBeLessThan(64 * KIB + 2 * KIB); // at most one message past the mark
    }
    await broker.received(n);
    expect(broker.keys).toEqual(keys(n));
    // The rest went out at the end of the turn, in one more write.
    expect(writes.count).toBe(before + duringLoop.length + 1);
  });

  it('stops at backpressure: later publishes wait for drain, then complete in order, nothing lost', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    // The second piece of the burst meets a full transport.
    writes.onWrite = (index) => {
      if (index === before + 1) writes.full = true;
    };
    const n = 300;
    const completedInLoop: boolean[] = [];
    const completions: number[] = [];
    for (let i = 0; i < n; i++) {
      let done = false;
      channel.publish('x', String(i), body).subscribe({
        error: () => {},
        complete: () => {
          done = true;
          completions.push(i);
        },
      });
      completedInLoop.push(done);
    }
    writes.onWrite = undefined;
    // The publishes up to the full write completed at once, the rest did not.
    const synchronous = completedInLoop.indexOf(false);
    expect(synchronous).toBeGreaterThan(100); // two pieces of 64 KiB
    expect(synchronous).toBeLessThan(140);
    expect(completedInLoop.slice(synchronous).every((c) => !c)).toBe(true);
    expect(writes.count).toBe(before + 2);

    // Nothing more is written nor completed while the transport stays full.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(writes.count).toBe(before + 2);
    expect(completions).toHaveLength(synchronous);
    await broker.received(synchronous);
    expect(broker.publishes).toHaveLength(synchronous);

    writes.release();
    await broker.received(n);
    await waitFor(() => completions.length === n, 'every publish to complete');
    expect(completions).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(broker.keys).toEqual(keys(n));
  });
});

describe('awaiting each publish', () => {
  it('costs far fewer transport writes than publishes, and every message arrives in order', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const outcome = await lastValueFrom(channel.publish('x', String(i), 'body'));
      expect(outcome.status).toBe('sent');
    }
    await broker.received(n);
    expect(broker.keys).toEqual(keys(n));
    // The first flush of the turn in a microtask, the rest at its end: a handful of writes.
    expect(writes.count - before).toBeLessThanOrEqual(10);
  });
});

describe('pipelines of synchronous publishes with backpressure part way', () => {
  const N = 50_000;
  const body = Buffer.alloc(32, 1);

  /**
   * Runs `pipeline` over range(0, N) of publishes of key String(i): the transport turns full at its
   * third write and drains 20 ms later. Returns how many outcomes were emitted and the keys the broker
   * received, in arrival order, once all N have arrived.
   */
  async function run(
    pipeline: (
      publish: (i: number) => Observable<PublishOutcome>,
    ) => OperatorFunction<number, PublishOutcome>,
    wrap: (o: Observable<PublishOutcome>) => Observable<PublishOutcome> = (o) => o,
  ): Promise<{ count: number; keys: string[] }> {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    let pushedBack = false;
    writes.onWrite = (index) => {
      if (index === before + 2 && !pushedBack) {
        pushedBack = true;
        writes.full = true;
        setTimeout(() => writes.release(), 20);
      }
    };
    const count = await lastValueFrom(
      range(0, N).pipe(
        pipeline((i) => wrap(channel.publish('x', String(i), body))),
        reduce((n, outcome) => (outcome.status === 'sent' ? n + 1 : n), 0),
      ),
    );
    expect(pushedBack).toBe(true);
    await broker.received(N, 30_000);
    return { count, keys: broker.keys };
  }

  const plainObservable = (inner: Observable<PublishOutcome>): Observable<PublishOutcome> =>
    new Observable<PublishOutcome>((subscriber) => inner.subscribe(subscriber));

  it('mergeMap(publish, 1000) completes and delivers every message once', async () => {
    const { count, keys: got } = await run((publish) => mergeMap(publish, 1000));
    expect(count).toBe(N);
    expectAllOnce(got, N);
  });

  it('mergeMap over a plain Observable wrapping publish completes and delivers every message once', async () => {
    const { count, keys: got } = await run((publish) => mergeMap(publish, 1000), plainObservable);
    expect(count).toBe(N);
    expectAllOnce(got, N);
  });

  it('concatMap(publish) completes and delivers all in order', async () => {
    const { count, keys: got } = await run((publish) => concatMap(publish));
    expect(count).toBe(N);
    expectInOrder(got, N);
  });

  it('concatMap over a plain Observable wrapping publish completes and delivers all in order', async () => {
    const { count, keys: got } = await run((publish) => concatMap(publish), plainObservable);
    expect(count).toBe(N);
    expectInOrder(got, N);
  });

  it('mergeMap(publish, 1000) delivers the messages in subscription order', async () => {
    // After the drain, a publish subscribed from the completion of a released waiter must queue behind
    // the ~999 waiters still being released, not take the fast path (see the minimal case below).
    const { keys: got } = await run((publish) => mergeMap(publish, 1000));
    expectInOrder(got, N);
  });
});

describe('publishes released by a drain', () => {
  it('a publish subscribed from the completion of a released publish does not overtake the others released with it', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    writes.full = true;
    const failures: Error[] = [];
    const publish = (key: string, then?: () => void) =>
      channel
        .publish('x', key, 'body')
        .subscribe({ error: (e: Error) => failures.push(e), complete: () => then?.() });
    publish('w'); // written at the end of the turn; the transport answers false: not writable
    await nextTurn();
    // Both wait for the drain, in this order; a's completion publishes c.
    publish('a', () => publish('c'));
    publish('b');
    writes.release();
    await broker.received(4);
    expect(failures).toEqual([]);
    // Subscription order is w, a, b, c: c, subscribed from a's completion while the drain was still
    // releasing b, must not be written ahead of b even though the connection is writable again.
    expect(broker.keys).toEqual(['w', 'a', 'b', 'c']);
  });

  it('a publishWith callback that throws does not stop the publishes released after it', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    // The client reports the callback's error from a fresh task (an uncaught exception); see it here.
    const reported: unknown[] = [];
    const report = uncaught.report;
    uncaught.report = (e) => reported.push(e);
    try {
      writes.full = true;
      channel.publish('x', 'w', 'body').subscribe();
      await nextTurn();
      const outcomes: string[] = [];
      const body = new TextEncoder().encode('body');
      channel.publishWith('x', 'a', body, undefined, false, 'a', (key) => {
        outcomes.push(key);
        throw new Error('the callback of a failed');
      });
      channel.publishWith('x', 'b', body, undefined, false, 'b', (key, outcome) => {
        outcomes.push(`${key} ${outcome?.status}`);
      });
      writes.release();
      await broker.received(3);
      expect(broker.keys).toEqual(['w', 'a', 'b']);
      expect(outcomes).toEqual(['a', 'b sent']);
      expect(reported.map((e) => (e as Error).message)).toEqual(['the callback of a failed']);
    } finally {
      uncaught.report = report;
    }
  });
});

describe('publishConfirmed with allowUnconfirmed on a plain channel', () => {
  const n = 100_000;

  /** Publishes range(0, n) through publishConfirmed; the transport pushes back part way. */
  async function run(): Promise<{ results: PublishResult[]; keys: string[] }> {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    const before = writes.count;
    // Backpressure part way, so that messages wait in the operator and are started from its settle().
    writes.onWrite = (index) => {
      if (index === before + 2) {
        writes.full = true;
        setTimeout(() => writes.release(), 20);
      }
    };
    const results = await lastValueFrom(
      range(0, n).pipe(
        map((i) => ({ exchange: 'x', routingKey: String(i), body: 'b' })),
        publishConfirmed(channel, { allowUnconfirmed: true }),
        toArray(),
      ),
    );
    await broker.received(n, 30_000);
    return { results, keys: broker.keys };
  }

  it('publishes 100,000 messages from range without recursion and emits every result in order', async () => {
    const { results, keys: got } = await run();
    expect(results).toHaveLength(n);
    for (let i = 0; i < n; i++) {
      const r = results[i]!;
      if (r.message.routingKey !== String(i) || r.outcome.status !== 'sent' || r.attempts !== 1) {
        throw new Error(`result ${i}: ${JSON.stringify(r)}`);
      }
    }
    expectAllOnce(got, n);
  });

  it('puts the 100,000 messages on the wire in source order', async () => {
    // Fails like mergeMap above: a message started from settle() during the drain overtakes the
    // window's publishes still waiting to be released.
    const { keys: got } = await run();
    expectInOrder(got, n);
  });
});

describe('a confirm-mode publish', () => {
  it('completes only at the broker’s ack, not synchronously', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    await lastValueFrom(channel.confirmSelect());
    const events: string[] = [];
    channel.publish('x', 'k', 'body').subscribe({
      next: (o) => events.push(o.status),
      error: (e: Error) => events.push(`error ${e.message}`),
      complete: () => events.push('complete'),
    });
    expect(events).toEqual([]);
    await broker.received(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual([]);
    broker.peer!.send(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
    await waitFor(() => events.length === 2, 'the outcome');
    expect(events).toEqual(['acked', 'complete']);
  });
});
