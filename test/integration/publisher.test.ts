/**
 * `createPublisher` against the real broker, with a TCP proxy to take the connection away: messages
 * held while disconnected (bounded in number and time) or failed at once, unconfirmed publishes failed
 * or republished when the connection is lost, a channel error that does not end the publisher,
 * `close()`, and the end of the connection Observable. Also the connection's cached channel.
 */
import { randomUUID } from 'node:crypto';
import { lastValueFrom, switchMap, timeout } from 'rxjs';
import {
  ChannelClosedError,
  ConfigurationError,
  type Connection,
  ConnectionClosedError,
  type ConnectionState,
  connect,
  createPublisher,
  openConnection,
  PublisherError,
  type PublishOutcome,
} from '../../src/node.js';
import { brokerEndpoint, brokerUrl } from '../support/broker.js';
import { eventually } from '../support/rabbitmqctl.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const unique = (what: string) => `rxamqp-test-publisher-${what}-${randomUUID().slice(0, 8)}`;

/** Messages now in `queue` (a passive-free declare on a separate connection). */
async function depth(url: string, queue: string): Promise<number> {
  const conn = await openConnection(url);
  const ch = await conn.openChannel();
  const ok = await lastValueFrom(ch.queueDeclare(queue, { durable: false }));
  await lastValueFrom(conn.close());
  return ok.messageCount;
}

async function removeQueue(url: string, queue: string): Promise<void> {
  const conn = await openConnection(url);
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDelete(queue)).catch(() => undefined);
  await lastValueFrom(conn.close());
}

type Result = { outcome?: PublishOutcome; error?: unknown };

function track(source: import('rxjs').Observable<PublishOutcome>): Result {
  const result: Result = {};
  source.subscribe({ next: (o) => (result.outcome = o), error: (e) => (result.error = e) });
  return result;
}

describe('createPublisher (real broker)', () => {
  let url: string;
  let proxy: TcpProxy;
  beforeAll(async () => {
    url = await brokerUrl();
    proxy = await startTcpProxy(await brokerEndpoint());
  });
  afterAll(async () => {
    await proxy.close();
  });
  afterEach(() => {
    proxy.refuse(false);
  });

  it('holds messages until the first connection opens, then publishes them in order with confirms', async () => {
    const queue = unique('first');
    await depth(url, queue);
    proxy.refuse(true);
    const connection$ = connect(proxy.url(url), { recovery: { initial: { delays: [50] } } });
    const publisher = createPublisher(connection$);
    const results = [1, 2, 3].map((i) => track(publisher.publish('', queue, String(i))));
    await eventually(() => false, 200);
    expect(publisher.buffered).toBe(3);
    expect(results.every((r) => r.outcome === undefined && r.error === undefined)).toBe(true);
    proxy.refuse(false);
    expect(await eventually(() => results.every((r) => r.outcome !== undefined))).toBe(true);
    expect(results.map((r) => r.outcome?.status)).toEqual(['acked', 'acked', 'acked']);
    expect(results.map((r) => (r.outcome as { seq: number }).seq)).toEqual([1, 2, 3]);
    await lastValueFrom(publisher.close());
    const conn = await openConnection(url);
    const ch = await conn.openChannel();
    const bodies: string[] = [];
    for (let i = 0; i < 3; i++)
      bodies.push((await lastValueFrom(ch.get(queue, { noAck: true }))).body.toString());
    expect(bodies).toEqual(['1', '2', '3']);
    await lastValueFrom(ch.queueDelete(queue));
    await lastValueFrom(conn.close());
  });

  it('while disconnected: buffers up to maxBuffered, times out after bufferTimeout, or fails fast', async () => {
    const queue = unique('disconnected');
    await depth(url, queue);
    const states: ConnectionState[] = [];
    const connection$ = connect(proxy.url(url), { recovery: { reconnect: { delays: [50] } } });
    connection$.state$.subscribe((s) => states.push(s));
    const buffering = createPublisher(connection$, { maxBuffered: 2, bufferTimeout: 60_000 });
    const timing = createPublisher(connection$, { bufferTimeout: 150 });
    const failing = createPublisher(connection$, { whileDisconnected: 'fail' });
    for (const p of [buffering, timing, failing]) {
      expect((await lastValueFrom(p.publish('', queue, 'warm-up'))).status).toBe('acked');
    }
    proxy.refuse(true);
    proxy.reset();
    expect(await eventually(() => states.at(-1)?.status === 'RECONNECTING')).toBe(true);
    expect(await eventually(() => !buffering.isReady && !timing.isReady && !failing.isReady)).toBe(true);

    const held = [track(buffering.publish('', queue, 'a')), track(buffering.publish('', queue, 'b'))];
    const overflow = track(buffering.publish('', queue, 'c'));
    expect(overflow.error).toBeInstanceOf(PublisherError);
    expect((overflow.error as PublisherError).code).toBe('BUFFER_FULL');
    const late = track(timing.publish('', queue, 'late'));
    const fast = track(failing.publish('', queue, 'fast'));
    expect((fast.error as PublisherError).code).toBe('DISCONNECTED');
    expect(await eventually(() => late.error !== undefined, 5000)).toBe(true);
    expect((late.error as PublisherError).code).toBe('BUFFER_TIMEOUT');
    expect(held.every((r) => r.outcome === undefined && r.error === undefined)).toBe(true);

    proxy.refuse(false);
    expect(await eventually(() => held.every((r) => r.outcome !== undefined), 10_000)).toBe(true);
    expect(held.map((r) => r.outcome?.status)).toEqual(['acked', 'acked']);
    expect(await depth(url, queue)).toBe(5); // 3 warm-ups, a and b
    for (const p of [buffering, timing, failing]) await lastValueFrom(p.close());
    await removeQueue(url, queue);
  });

  it('without republish, publishes awaiting confirms when the connection is lost fail with a typed error', async () => {
    const queue = unique('lost');
    await depth(url, queue);
    const connection$ = connect(proxy.url(url), { recovery: { reconnect: { delays: [50] } } });
    const publisher = createPublisher(connection$);
    expect((await lastValueFrom(publisher.publish('', queue, 'warm-up'))).status).toBe('acked');
    proxy.blackhole(); // confirms cannot come back
    const inFlight = Array.from({ length: 20 }, (_, i) => track(publisher.publish('', queue, String(i))));
    await eventually(() => false, 100);
    expect(publisher.pending).toBe(20);
    proxy.reset();
    proxy.unblackhole();
    expect(await eventually(() => inFlight.every((r) => r.error !== undefined))).toBe(true);
    const error = inFlight[0]!.error as ChannelClosedError;
    expect(error).toBeInstanceOf(ChannelClosedError);
    let cause: unknown = error;
    while (cause instanceof Error && !(cause instanceof ConnectionClosedError)) cause = cause.cause;
    expect(cause).toBeInstanceOf(ConnectionClosedError);
    expect(publisher.republishedCount).toBe(0);
    // The publisher carries on with the next connection.
    expect(await eventually(() => publisher.isReady, 10_000)).toBe(true);
    expect((await lastValueFrom(publisher.publish('', queue, 'after'))).status).toBe('acked');
    await lastValueFrom(publisher.close());
    await removeQueue(url, queue);
  });

  it('with republish, publishes awaiting confirms when the connection is lost are published again and acked', async () => {
    const queue = unique('republish');
    await depth(url, queue);
    const connection$ = connect(proxy.url(url), { recovery: { reconnect: { delays: [50] } } });
    const publisher = createPublisher(connection$, { republish: true });
    expect((await lastValueFrom(publisher.publish('', queue, 'warm-up'))).status).toBe('acked');
    proxy.blackhole();
    const inFlight = Array.from({ length: 20 }, (_, i) => track(publisher.publish('', queue, String(i))));
    await eventually(() => false, 100);
    proxy.reset();
    proxy.unblackhole();
    expect(
      await eventually(() => inFlight.every((r) => r.outcome !== undefined || r.error !== undefined), 10_000),
    ).toBe(true);
    expect(inFlight.map((r) => r.error)).toEqual(inFlight.map(() => undefined));
    expect(inFlight.every((r) => r.outcome?.status === 'acked')).toBe(true);
    expect(publisher.republishedCount).toBe(20);
    // The broker never got the blackholed first copies (the proxy reset dropped them), so exactly one of each.
    expect(await depth(url, queue)).toBeGreaterThanOrEqual(21);
    await lastValueFrom(publisher.close());
    await removeQueue(url, queue);
  });

  it('a channel error does not end the publisher: it opens another channel on the same connection', async () => {
    const queue = unique('channel-error');
    await depth(url, queue);
    const publisher = createPublisher(connect(url, { recovery: true }));
    const bad = track(publisher.publish(unique('no-such-exchange'), 'x', 'lost'));
    expect(await eventually(() => bad.error !== undefined)).toBe(true);
    expect((bad.error as ChannelClosedError).replyCode).toBe(404);
    expect(await eventually(() => publisher.isReady)).toBe(true);
    expect((await lastValueFrom(publisher.publish('', queue, 'ok'))).status).toBe('acked');
    await lastValueFrom(publisher.close());
    await removeQueue(url, queue);
  });

  it('close() fails held messages and waits for those in flight; the end of the connection fails the rest', async () => {
    const queue = unique('close');
    await depth(url, queue);
    proxy.refuse(true);
    const publisher = createPublisher(connect(proxy.url(url), { recovery: { initial: { delays: [50] } } }));
    const held = track(publisher.publish('', queue, 'held'));
    await lastValueFrom(publisher.close());
    expect((held.error as PublisherError).code).toBe('PUBLISHER_CLOSED');
    const after = track(publisher.publish('', queue, 'after'));
    expect((after.error as PublisherError).code).toBe('PUBLISHER_CLOSED');
    proxy.refuse(false);

    // A connection Observable that ends (no recovery, the connection lost) ends the publisher.
    const plain = createPublisher(connect(proxy.url(url)));
    expect((await lastValueFrom(plain.publish('', queue, 'one'))).status).toBe('acked');
    proxy.reset();
    expect(await eventually(() => !plain.isReady)).toBe(true);
    const ended = track(plain.publish('', queue, 'two'));
    expect(await eventually(() => ended.error !== undefined)).toBe(true);
    expect((ended.error as PublisherError).code).toBe('CONNECTION_ENDED');
    await removeQueue(url, queue);
  });
});

describe('createPublisher edge cases (real broker)', () => {
  it('a publish dropped while it waits in the channel (unsubscribed) is no longer pending: close() completes', async () => {
    const url = await brokerUrl();
    const queue = unique('drop-waiting');
    await depth(url, queue);
    // A tiny write buffer: after any write the channel holds later publishes until the socket drains.
    const publisher = createPublisher(connect(url, { recovery: true, writeHighWaterMark: 1 }), {
      confirm: false,
    });
    await lastValueFrom(publisher.publish('', queue, 'first'));
    const big = track(publisher.publish('', queue, Buffer.alloc(8 * 1024 * 1024)));
    publisher.publish('', queue, 'dropped').subscribe().unsubscribe();
    expect(await eventually(() => big.outcome !== undefined, 10_000)).toBe(true);
    expect(await eventually(() => publisher.pending === 0)).toBe(true);
    await lastValueFrom(publisher.close().pipe(timeout(5000)));
    await removeQueue(url, queue);
  });

  it('a publish made from the error of one lost with its connection is held for the next connection', async () => {
    const url = await brokerUrl();
    const proxy = await startTcpProxy(await brokerEndpoint());
    const queue = unique('retry-on-loss');
    await depth(url, queue);
    const publisher = createPublisher(connect(proxy.url(url), { recovery: { reconnect: { delays: [50] } } }));
    try {
      expect((await lastValueFrom(publisher.publish('', queue, 'warm-up'))).status).toBe('acked');
      proxy.blackhole();
      const second: Result = {};
      publisher.publish('', queue, 'lost').subscribe({
        error: () => {
          // Published again at once, while the lost connection's failures are still being reported.
          publisher.publish('', queue, 'again').subscribe({
            next: (o) => (second.outcome = o),
            error: (e) => (second.error = e),
          });
        },
      });
      await eventually(() => false, 100);
      proxy.reset();
      proxy.unblackhole();
      expect(await eventually(() => second.outcome !== undefined || second.error !== undefined, 10_000)).toBe(
        true,
      );
      expect(second.error).toBeUndefined();
      expect(second.outcome?.status).toBe('acked');
      await lastValueFrom(publisher.close());
    } finally {
      await proxy.close();
      await removeQueue(url, queue);
    }
  });

  it('a connection Observable that fails at once (a bad option) fails the first publish at once', async () => {
    const publisher = createPublisher(connect('amqp://127.0.0.1', { heartbeat: -1 }), {
      bufferTimeout: 30_000,
    });
    const started = Date.now();
    await expect(lastValueFrom(publisher.publish('', 'q', 'x'))).rejects.toMatchObject({
      code: 'CONNECTION_ENDED',
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('createPublisher options', () => {
  it('refuses bad options with a ConfigurationError', () => {
    const never = connect('amqp://127.0.0.1:1');
    expect(() => createPublisher(never, { maxBuffered: 0 })).toThrow(ConfigurationError);
    expect(() => createPublisher(never, { bufferTimeout: 2 ** 31 })).toThrow(/at most 2147483647/);
    expect(() => createPublisher(never, { whileDisconnected: 'drop' as 'fail' })).toThrow(ConfigurationError);
  });
});

describe('Connection.cachedChannel (real broker)', () => {
  it('reuses one channel for one-shot operations and replaces it after an error closes it', async () => {
    const url = await brokerUrl();
    const conns: Connection[] = [];
    const sub = connect(url).subscribe((c) => conns.push(c));
    expect(await eventually(() => conns.length === 1)).toBe(true);
    const conn = conns[0]!;
    const [a, b] = await Promise.all([
      lastValueFrom(conn.cachedChannel()),
      lastValueFrom(conn.cachedChannel()),
    ]);
    expect(a).toBe(b);
    const queue = unique('cached');
    await lastValueFrom(conn.cachedChannel().pipe(switchMap((ch) => ch.queueDeclare(queue))));
    await expect(
      lastValueFrom(
        conn.cachedChannel().pipe(switchMap((ch) => ch.queueDeclare(unique('missing'), { passive: true }))),
      ),
    ).rejects.toMatchObject({ replyCode: 404 });
    const c = await lastValueFrom(conn.cachedChannel());
    expect(c).not.toBe(a);
    expect(c.isOpen).toBe(true);
    await lastValueFrom(c.queueDelete(queue));
    sub.unsubscribe();
    expect(await eventually(() => !c.isOpen)).toBe(true);
  });
});
