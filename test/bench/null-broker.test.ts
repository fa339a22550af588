/**
 * The benchmark suite's null broker (`bench/lib/null-broker.ts`), in-process, driven by rxamqp and by
 * amqplib: the handshake, confirms, queue depths, prefetch-bounded deliveries, immediate delivery to a
 * waiting consumer, a large body, `blockAfter`, garbage input and a clean close.
 */
import { once } from 'node:events';
import * as net from 'node:net';
import amqplib from 'amqplib';
import { count, filter, from, lastValueFrom, map, take, toArray } from 'rxjs';
import { type NullBroker, startNullBroker } from '../../bench/lib/null-broker.js';
import { publishConfirmed } from '../../operators/index.js';
import {
  type BlockedEvent,
  type Channel,
  type Connection,
  ConsumerCancelledError,
  openConnection,
} from '../../src/node.js';
import { FrameDecoder, FrameWriter, type Method, PROTOCOL_HEADER } from '../../src/protocol/index.js';

async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function depth(ch: Channel, queue: string): Promise<number> {
  return (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).messageCount;
}

async function publishConfirmedMany(ch: Channel, queue: string, n: number, body: string | Buffer = 'x') {
  return lastValueFrom(
    from(Array.from({ length: n }, (_, i) => i)).pipe(
      map(() => ({ exchange: '', routingKey: queue, body })),
      publishConfirmed(ch, { window: 1000 }),
      filter((r) => r.outcome.status === 'acked'),
      count(),
    ),
  );
}

describe('null broker', () => {
  let broker: NullBroker;
  let conn: Connection;
  let ch: Channel;

  beforeAll(async () => {
    broker = await startNullBroker();
    conn = await openConnection(broker.url);
    ch = await conn.openChannel();
    await lastValueFrom(ch.confirmSelect());
  });

  afterAll(async () => {
    if (conn?.isOpen) await lastValueFrom(conn.close());
    await broker?.close();
  });

  it('listens on 127.0.0.1 and says so in its url', () => {
    expect(broker.port).toBeGreaterThan(0);
    expect(broker.url).toBe(`amqp://guest:guest@127.0.0.1:${broker.port}`);
  });

  it('does the handshake and the close with rxamqp', async () => {
    const c = await openConnection(broker.url);
    expect(c.serverProperties.product).toBe('rxamqp null broker');
    expect(c.serverProperties.capabilities).toMatchObject({
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      consumer_priorities: true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
    expect(c.tune).toMatchObject({ channelMax: 2047, frameMax: 131072 });
    const channel = await c.openChannel();
    await lastValueFrom(channel.close());
    expect(broker.stats().connections).toBe(2);
    await lastValueFrom(c.close());
    expect(c.isOpen).toBe(false);
    await eventually(() => broker.stats().connections === 1, 'the connection to end');
  });

  it('does the handshake and the close with amqplib', async () => {
    const c = await amqplib.connect(broker.url);
    expect(c.connection.serverProperties.product).toBe('rxamqp null broker');
    const channel = await c.createChannel();
    const { queue } = await channel.assertQueue('null-amqplib-handshake');
    expect(queue).toBe('null-amqplib-handshake');
    await channel.close();
    await c.close();
    await eventually(() => broker.stats().connections === 1, 'the connection to end');
  });

  it('acks 10,000 confirmed publishes, counts them in the queue, and purges them', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare(''));
    expect(queue).toMatch(/^amq\.gen-\d+$/);
    const before = broker.stats().published;
    expect(await publishConfirmedMany(ch, queue, 10_000)).toBe(10_000);
    expect(broker.stats().published - before).toBe(10_000);
    expect(await depth(ch, queue)).toBe(10_000);
    expect(await lastValueFrom(ch.queuePurge(queue))).toEqual({ messageCount: 10_000 });
    expect(await depth(ch, queue)).toBe(0);
  });

  it('delivers 10,000 with prefetch 100: increasing tags, never more than 100 unacked, queue empty after', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare('null-consume'));
    await publishConfirmedMany(ch, queue, 10_000);
    const consumer = await conn.openChannel();
    let received = 0;
    let lastTag = 0;
    let increasing = true;
    let maxUnacked = 0;
    const held: { ack(): boolean }[] = [];
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const ackHeld = (): void => {
        for (const d of held.splice(0)) d.ack();
        if (received === 10_000) {
          subscription.unsubscribe();
          resolve();
        }
      };
      // Deliveries are held until 100 are unacked (or none came for 20 ms), then acked together: the
      // broker must stop at 100 and go on once acked.
      const subscription = consumer.consume(queue, { prefetch: 100 }).subscribe({
        next: (d) => {
          received++;
          if (d.fields.deliveryTag <= lastTag) increasing = false;
          lastTag = d.fields.deliveryTag;
          held.push(d);
          maxUnacked = Math.max(maxUnacked, held.length);
          clearTimeout(timer);
          if (held.length >= 100) ackHeld();
          else timer = setTimeout(ackHeld, 20);
        },
        error: reject,
      });
    });
    expect(received).toBe(10_000);
    expect(increasing).toBe(true);
    expect(maxUnacked).toBe(100);
    expect(lastTag).toBe(10_000);
    expect(await depth(ch, queue)).toBe(0);
    await eventually(() => broker.stats().acked >= 10_000, 'the acks');
    await lastValueFrom(consumer.close());
  });

  it('delivers a publish to a waiting consumer at once (100 round trips)', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare('null-latency'));
    const consumer = await conn.openChannel();
    const latencies: number[] = [];
    let arrived: (() => void) | undefined;
    const subscription = consumer.consume(queue, { prefetch: 1 }).subscribe((d) => {
      d.ack();
      arrived?.();
    });
    const publisher = await conn.openChannel();
    for (let i = 0; i < 100; i++) {
      const start = performance.now();
      const delivered = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      publisher.publish('', queue, `ping ${i}`).subscribe({ error: () => {} });
      await delivered;
      latencies.push(performance.now() - start);
    }
    subscription.unsubscribe();
    latencies.sort((a, b) => a - b);
    expect(latencies).toHaveLength(100);
    // No timer or batching delay on the broker's side: a round trip is a few event-loop turns.
    expect(latencies[50]!).toBeLessThan(25);
    await lastValueFrom(publisher.close());
    await lastValueFrom(consumer.close());
  });

  it('takes a 1 MiB body over several frames and delivers one of the same size', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare('null-big'));
    const body = Buffer.alloc(1024 * 1024, 0x62);
    expect(await publishConfirmedMany(ch, queue, 2, body)).toBe(2);
    expect(await depth(ch, queue)).toBe(2);
    const consumer = await conn.openChannel();
    const sizes = await lastValueFrom(
      consumer.consume(queue, { prefetch: 1 }).pipe(
        take(2),
        map((d) => {
          d.ack();
          return d.body.length;
        }),
        toArray(),
      ),
    );
    expect(sizes).toEqual([1024 * 1024, 1024 * 1024]);
    await lastValueFrom(consumer.close());
  });

  it('answers basic.get with get-ok while the queue holds messages, then get-empty', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare('null-get'));
    await publishConfirmedMany(ch, queue, 1, 'hello');
    const got = await lastValueFrom(ch.get(queue), { defaultValue: undefined });
    expect(got?.body.length).toBe(5);
    expect(got?.fields.messageCount).toBe(0);
    got?.ack();
    expect(await lastValueFrom(ch.get(queue), { defaultValue: undefined })).toBeUndefined();
  });

  it('streams 50,000 deliveries without acks, pausing on a full socket buffer and going on after drain', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare('null-noack'));
    await publishConfirmedMany(ch, queue, 50_000);
    const consumer = await conn.openChannel();
    const n = await lastValueFrom(consumer.consume(queue, { noAck: true }).pipe(take(50_000), count()));
    expect(n).toBe(50_000);
    expect(await depth(ch, queue)).toBe(0);
    await lastValueFrom(consumer.close());
  });

  it('returns unacked deliveries to their queue when the channel closes, and cancels consumers of a deleted queue', async () => {
    const { queue } = await lastValueFrom(ch.queueDeclare('null-requeue'));
    await publishConfirmedMany(ch, queue, 50);
    const consumer = await conn.openChannel();
    const first = await lastValueFrom(consumer.consume(queue, { prefetch: 10 }).pipe(take(10), toArray()));
    expect(first).toHaveLength(10);
    first[0]!.ack();
    await lastValueFrom(consumer.close());
    expect(await depth(ch, queue)).toBe(49);

    const other = await conn.openChannel();
    const ended = new Promise<unknown>((resolve) => {
      other
        .consume(queue, { prefetch: 5 })
        .subscribe({ error: resolve, complete: () => resolve('complete') });
    });
    for (
      let i = 0;
      (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).consumerCount === 0;
      i++
    ) {
      if (i === 100) throw new Error('the consumer did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await lastValueFrom(ch.queueDelete(queue))).toMatchObject({ messageCount: expect.any(Number) });
    expect(await ended).toBeInstanceOf(ConsumerCancelledError);
    await lastValueFrom(other.close());
  });

  it('closes the channel with 404 for a passive declare of a missing queue, and nothing else', async () => {
    const channel = await conn.openChannel();
    await expect(
      lastValueFrom(channel.queueDeclare('null-missing', { passive: true })),
    ).rejects.toMatchObject({
      replyCode: 404,
    });
    expect(conn.isOpen).toBe(true);
    expect(await depth(ch, 'null-consume')).toBe(0);
  });

  it('serves amqplib: confirmed publishes, a prefetch-bounded consumer, requeue on nack', async () => {
    const c = await amqplib.connect(broker.url);
    const confirm = await c.createConfirmChannel();
    const queue = 'null-amqplib';
    await confirm.assertQueue(queue);
    for (let i = 0; i < 1000; i++) confirm.sendToQueue(queue, Buffer.from(`m${i}`));
    await confirm.waitForConfirms();
    expect((await confirm.checkQueue(queue)).messageCount).toBe(1000);

    const channel = await c.createChannel();
    await channel.prefetch(10);
    let received = 0;
    let unacked = 0;
    let maxUnacked = 0;
    let nacked = false;
    await new Promise<void>((resolve) => {
      void channel.consume(queue, (msg) => {
        if (msg === null) return;
        received++;
        unacked++;
        maxUnacked = Math.max(maxUnacked, unacked);
        setImmediate(() => {
          unacked--;
          if (!nacked) {
            nacked = true;
            channel.nack(msg, false, true); // back to the queue: one more delivery
          } else channel.ack(msg);
          if (received === 1001) resolve();
        });
      });
    });
    expect(maxUnacked).toBeLessThanOrEqual(10);
    await eventually(() => broker.stats().acked >= 10_000 + 1000, 'the acks');
    expect((await confirm.checkQueue(queue)).messageCount).toBe(0);
    await c.close();
  });

  it('destroys a connection that sends garbage, and only that one', async () => {
    const socket = net.connect({ port: broker.port, host: '127.0.0.1' });
    await once(socket, 'connect');
    const methods: string[] = [];
    const decoder = new FrameDecoder({
      onMethod: (_channel, method: Method) => methods.push(method.name),
      onContent: () => {},
      onHeartbeat: () => {},
    });
    socket.on('data', (chunk) => decoder.push(chunk));
    socket.on('error', () => {});
    const closed = once(socket, 'close');
    socket.write(PROTOCOL_HEADER);
    await eventually(() => methods.includes('connection.start'), 'connection.start');
    const writer = new FrameWriter();
    writer.writeMethod(0, {
      name: 'connection.start-ok',
      clientProperties: {},
      mechanism: 'PLAIN',
      response: '\0guest\0guest',
    });
    socket.write(writer.take()!);
    await eventually(() => methods.includes('connection.tune'), 'connection.tune');
    expect(broker.stats().connections).toBe(2);
    socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
    await closed;
    await eventually(() => broker.stats().connections === 1, 'the garbage connection to end');
    // The other connection carries on.
    expect(conn.isOpen).toBe(true);
    expect(await publishConfirmedMany(ch, 'null-consume', 3)).toBe(3);
    expect(await depth(ch, 'null-consume')).toBe(3);
  });

  it('parses publishes cut at any byte, bodies over several frames, with one multiple ack per chunk', async () => {
    const socket = net.connect({ port: broker.port, host: '127.0.0.1', noDelay: true });
    socket.on('error', () => {});
    await once(socket, 'connect');
    const methods: Method[] = [];
    const decoder = new FrameDecoder(
      {
        onMethod: (_channel, method: Method) => methods.push(method),
        onContent: () => {},
        onHeartbeat: () => {},
      },
      { frameMax: 131072 },
    );
    socket.on('data', (chunk) => decoder.push(chunk));
    const seen = (name: string): boolean => methods.some((m) => m.name === name);
    const writer = new FrameWriter();
    const send = (channel: number, method: Parameters<FrameWriter['writeMethod']>[1]): void => {
      writer.writeMethod(channel, method);
      socket.write(writer.take()!);
    };
    socket.write(PROTOCOL_HEADER);
    await eventually(() => seen('connection.start'), 'connection.start');
    send(0, { name: 'connection.start-ok', clientProperties: {}, response: '\0guest\0guest' });
    await eventually(() => seen('connection.tune'), 'connection.tune');
    send(0, { name: 'connection.tune-ok', channelMax: 10, frameMax: 4096, heartbeat: 0 });
    writer.frameMax = 4096;
    send(0, { name: 'connection.open', virtualHost: '/' });
    await eventually(() => seen('connection.open-ok'), 'connection.open-ok');
    for (const channel of [1, 2]) {
      send(channel, { name: 'channel.open' });
      send(channel, { name: 'confirm.select' });
    }
    send(1, { name: 'queue.declare', queue: 'null-chunks' });
    await eventually(() => seen('queue.declare-ok'), 'queue.declare-ok');

    // 300 publishes on two channels, bodies of 0 to 9,000 bytes (up to 3 body frames), one stream
    // cut into pieces of 1 to 300 bytes written one by one.
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 8) % n;
    };
    for (let i = 0; i < 300; i++) {
      writer.writePublish(1 + (i % 2), '', 'null-chunks', Buffer.alloc(random(9_001), 0x7a));
    }
    const stream = Buffer.concat(writer.takeSegments());
    for (let off = 0; off < stream.length; ) {
      const n = 1 + random(300);
      socket.write(stream.subarray(off, off + n));
      off += n;
      if (random(64) === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const finalAcks = (): number =>
      methods.filter((m) => m.name === 'basic.ack' && m.deliveryTag === 150).length;
    await eventually(() => finalAcks() === 2, 'the last ack on each channel');
    const acks = methods.filter((m) => m.name === 'basic.ack');
    expect(acks.every((m) => m.name === 'basic.ack' && m.multiple)).toBe(true);
    expect(acks.length).toBeLessThanOrEqual(300); // at most one per channel and chunk
    expect(await depth(ch, 'null-chunks')).toBe(300);
    const closed = once(socket, 'close');
    send(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await closed;
    expect(seen('connection.close-ok')).toBe(true);
  });

  it('destroys a connection that does not start with the protocol header', async () => {
    const socket = net.connect({ port: broker.port, host: '127.0.0.1' });
    socket.on('error', () => {});
    await once(socket, 'connect');
    const closed = once(socket, 'close');
    socket.write('hello there, this is not AMQP');
    await closed;
    expect(conn.isOpen).toBe(true);
  });
});

describe('null broker with blockAfter', () => {
  it('blocks a connection after that many publishes and stops reading it', async () => {
    const broker = await startNullBroker({ blockAfter: 10 });
    const conn = await openConnection(broker.url, { closeTimeout: 300 });
    const events: BlockedEvent[] = [];
    conn.blocked$.subscribe((e) => events.push(e));
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('null-blocked'));
    for (let i = 0; i < 20; i++) ch.publish('', 'null-blocked', `m${i}`).subscribe({ error: () => {} });
    await eventually(() => conn.isBlocked, 'connection.blocked');
    expect(events).toEqual([{ blocked: true, reason: 'null broker: blocked' }]);
    expect(broker.stats().published).toBe(10);
    await lastValueFrom(conn.close()).catch(() => undefined);
    await broker.close();
  });
});

describe('null broker heartbeats', () => {
  it('sends heartbeats to a client that asks for them, and never times it out', async () => {
    const broker = await startNullBroker();
    const conn = await openConnection(broker.url, { heartbeat: 1 });
    expect(conn.tune.heartbeat).toBe(1);
    await new Promise((r) => setTimeout(r, 3500)); // idle for more than twice the interval
    expect(conn.isOpen).toBe(true);
    expect(conn.counters.heartbeatsReceived).toBeGreaterThanOrEqual(3);
    await lastValueFrom(conn.close());
    await broker.close();
  });
});

describe('null broker close()', () => {
  it('ends its connections and stops listening', async () => {
    const broker = await startNullBroker();
    const socket = net.connect({ port: broker.port, host: '127.0.0.1' });
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(PROTOCOL_HEADER);
    await once(socket, 'data'); // connection.start
    const closed = once(socket, 'close');
    await broker.close();
    await closed;
    expect(broker.stats().connections).toBe(0);
    const refused = net.connect({ port: broker.port, host: '127.0.0.1' });
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
  });

  it('starts on a given port', async () => {
    const first = await startNullBroker();
    const port = first.port;
    await first.close();
    const broker = await startNullBroker({ port });
    expect(broker.port).toBe(port);
    const c = await openConnection(broker.url);
    await lastValueFrom(c.close());
    await broker.close();
  });
});
