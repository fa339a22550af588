/**
 * What the conformance suite cannot see: hooks given bad arguments or called at awkward moments, values
 * a hook lets in that the wire could never carry, and the broker's timers and clock under Jest's fake
 * timers. Nothing may throw out of the broker into a job of its own, leave a timer running, or take a
 * connection down with 541 for what a test did through a hook.
 */
import { lastValueFrom } from 'rxjs';
import { type Connection, ConnectionClosedError } from '../../../src/index.js';
import { VirtualHost } from '../../../src/testing/broker/vhost.js';
import { connectTo, EmbeddedBroker, first, settle, text } from './helpers.js';
import { RawClient } from './raw-client.js';

const opened: Connection[] = [];
afterEach(async () => {
  jest.useRealTimers();
  for (const c of opened.splice(0)) if (c.isOpen) await lastValueFrom(c.close());
});

/** Lets the in-memory link move bytes: Promise jobs only, so it works under fake timers too. */
async function drain(): Promise<void> {
  for (let i = 0; i < 100; i++) await Promise.resolve();
}

async function open(broker: EmbeddedBroker, name?: string): Promise<Connection> {
  const c = await connectTo(broker, undefined, name === undefined ? {} : { name });
  opened.push(c);
  return c;
}

describe('hooks refuse what the wire cannot carry, before changing anything', () => {
  it('publish() throws for properties, keys or bodies that cannot be encoded, and routes nothing', async () => {
    const broker = new EmbeddedBroker();
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    expect(() => broker.publish('', 'q', 'x', { contentType: 'x'.repeat(300) })).toThrow(
      /content-type is longer than 255 bytes/,
    );
    expect(() => broker.publish('', 'q', 'x', { headers: { f: (() => 1) as never } })).toThrow(
      /cannot carry/,
    );
    expect(() => broker.publish('', 'q'.repeat(300), 'x')).toThrow(/longer than 255 bytes/);
    expect(broker.queue('q')!.messageCount).toBe(0);
    // The consumer (and its connection) are not hurt by what was refused.
    broker.publish('', 'q', 'fine');
    const [d] = await first(ch.consume('q'), 1);
    expect(text(d!.body)).toBe('fine');
    expect(conn.isOpen).toBe(true);
  });

  it('a message published through the hook and dead-lettered later reaches a consumer', async () => {
    let now = 1_000;
    const broker = new EmbeddedBroker({ clock: () => now });
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('dlq'));
    await lastValueFrom(
      ch.queueDeclare('q', {
        arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' },
      }),
    );
    const got = first(ch.consume('dlq'), 1);
    await settle();
    broker.publish('', 'q', 'late', { headers: { n: 1 } });
    now += 100;
    broker.expire();
    const [d] = await got;
    expect(text(d!.body)).toBe('late');
    expect(conn.isOpen).toBe(true);
  });

  it('closeConnection() cuts a long reason as RabbitMQ cuts reply texts, and the close completes', async () => {
    const broker = new EmbeddedBroker();
    const conn = await open(broker, 'victim');
    broker.closeConnection('victim', 'x'.repeat(400));
    await settle(5);
    expect(conn.isOpen).toBe(false);
    expect(conn.error).toBeInstanceOf(ConnectionClosedError);
    const replyText = (conn.error as ConnectionClosedError & { replyText: string }).replyText;
    expect(replyText.startsWith('CONNECTION_FORCED - xxx')).toBe(true);
    expect(replyText.endsWith('...')).toBe(true);
    expect(Buffer.byteLength(replyText)).toBe(255);
    expect(broker.connections()).toEqual([]);
  });

  it('block() with a long reason blocks (the reason cut to 255 bytes) rather than failing the publisher', async () => {
    const broker = new EmbeddedBroker();
    const conn = await open(broker);
    const ch = await conn.openChannel();
    const reasons: string[] = [];
    conn.blocked$.subscribe((b) => {
      if (b.blocked) reasons.push(b.reason);
    });
    broker.block('y'.repeat(300));
    ch.publish('', 'nowhere', 'x').subscribe({ error: () => {} });
    await settle(5);
    expect(conn.isOpen).toBe(true);
    expect(broker.connections()[0]!.blocked).toBe(true);
    expect(reasons).toHaveLength(1);
    expect(Buffer.byteLength(reasons[0]!)).toBe(255);
    broker.unblock();
  });

  it('purgeQueue() and deleteQueue() work on an exclusive queue; unknown names give clear errors', async () => {
    const broker = new EmbeddedBroker();
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('mine', { exclusive: true }));
    broker.publish('', 'mine', 'a');
    expect(broker.purgeQueue('mine')).toBe(1);
    expect(() => broker.purgeQueue('nope')).toThrow("the embedded broker has no queue 'nope' in vhost '/'");
    expect(() => broker.queues('nowhere')).toThrow('the embedded broker has no vhost "nowhere"');
    expect(() => broker.publish('missing', 'k', 'x')).toThrow(
      "the embedded broker has no exchange 'missing' in vhost '/'",
    );
    broker.deleteQueue('mine');
    expect(broker.queue('mine')).toBeUndefined();
    expect(conn.isOpen).toBe(true);
  });

  it('nackPublishes() refuses a count that is not a whole number, and forgets a used-up count', async () => {
    const broker = new EmbeddedBroker();
    expect(() => broker.nackPublishes(-1)).toThrow(TypeError);
    expect(() => broker.nackPublishes(1.5)).toThrow(TypeError);
    expect(() => broker.nackPublishes(Number.NaN)).toThrow(TypeError);
    expect(() => broker.nackPublishes('x' as never)).toThrow(TypeError);
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.confirmSelect());
    for (let i = 0; i < 100; i++) broker.nackPublishes(1);
    const outcomes = await Promise.all(
      Array.from({ length: 101 }, () => lastValueFrom(ch.publish('', 'q', 'x'))),
    );
    expect(outcomes.filter((o) => o.status === 'nacked')).toHaveLength(100);
    expect(outcomes[100]!.status).toBe('acked');
    expect((broker as unknown as { nackRules: unknown[] }).nackRules).toEqual([]);
  });

  it('hooks on a connection mid-handshake or already gone', async () => {
    const broker = new EmbeddedBroker();
    const raw = await RawClient.connect(broker, { handshake: false });
    expect(broker.connections().map((c) => c.state)).toEqual(['opening']);
    broker.closeConnection(broker.connections()[0]!);
    await settle();
    expect(raw.events.at(-1)).toEqual({ kind: 'closed', error: undefined });
    expect(broker.connections()).toEqual([]);
    expect(() => broker.closeConnection(1)).toThrow('the embedded broker has no open connection 1');
    expect(() => broker.dropConnection('ghost')).toThrow(
      'the embedded broker has no open connection "ghost"',
    );
    expect(() => broker.closeConnection(null as never)).toThrow(
      'the embedded broker has no open connection null',
    );
  });

  it('refuses options a RabbitMQ could not be configured with', () => {
    expect(() => new EmbeddedBroker({ frameMax: 1000 })).toThrow(/frameMax/);
    expect(() => new EmbeddedBroker({ channelMax: 70_000 })).toThrow(/channelMax/);
    expect(() => new EmbeddedBroker({ heartbeat: -1 })).toThrow(/heartbeat/);
    expect(() => new EmbeddedBroker({ consumerTimeout: -5 })).toThrow(/consumerTimeout/);
    expect(() => new EmbeddedBroker({ frameMax: 0, channelMax: 0, heartbeat: 0 })).not.toThrow();
  });
});

describe('a fault of the broker’s own', () => {
  it('ends the connection it happened on with 541 rather than escaping into the transport’s job', async () => {
    const broker = new EmbeddedBroker();
    const conn = await open(broker);
    const other = await open(broker);
    const spy = jest.spyOn(VirtualHost.prototype, 'expire').mockImplementationOnce(() => {
      throw new Error('boom');
    });
    try {
      const ch = await conn.openChannel().catch((e: unknown) => e);
      expect(ch).toBeInstanceOf(Error);
      expect(conn.error).toMatchObject({ replyCode: 541, replyText: 'INTERNAL_ERROR - boom' });
      // The broker goes on: the other connection still works.
      const och = await other.openChannel();
      await lastValueFrom(och.queueDeclare('q'));
      expect(broker.connections()).toHaveLength(1);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('the clock and timers under Jest’s fake timers', () => {
  it('the default clock follows fake timers installed after the broker was made', async () => {
    const broker = new EmbeddedBroker({ timers: true });
    jest.useFakeTimers();
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('dlq'));
    await lastValueFrom(
      ch.queueDeclare('q', {
        arguments: {
          'x-message-ttl': 1000,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'dlq',
        },
      }),
    );
    await lastValueFrom(ch.publish('', 'q', 'x'));
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    await jest.advanceTimersByTimeAsync(1000);
    expect(broker.queue('dlq')!.messageCount).toBe(1);
    await lastValueFrom(conn.close());
    broker.close();
  });

  it('with timers: true, what a hook publishes expires on schedule with no client around', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ timers: true });
    const conn = await connectTo(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('dlq', { durable: true }));
    await lastValueFrom(
      ch.queueDeclare('q', {
        durable: true,
        arguments: {
          'x-message-ttl': 1000,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'dlq',
        },
      }),
    );
    await lastValueFrom(conn.close());
    broker.publish('', 'q', 'x');
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(1000);
    expect(jest.getTimerCount()).toBe(0);
    const dlq = (
      broker as unknown as { vhosts: Map<string, { queues: Map<string, { messageCount: number }> }> }
    ).vhosts
      .get('/')!
      .queues.get('dlq')!;
    expect(dlq.messageCount).toBe(1);
    broker.close();
  });

  it('close() leaves no timer running, even for a client that never answers the close', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ timers: true, heartbeat: 5 });
    await RawClient.connect(broker, { heartbeat: 5 });
    const other = await RawClient.connect(broker, { heartbeat: 5 });
    other.send(0, { name: 'connection.close', replyCode: 200, replyText: '', classId: 0, methodId: 0 });
    await drain();
    expect(jest.getTimerCount()).toBeGreaterThan(0);
    broker.close();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('reset() leaves no timer behind and starts the generated names again', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ timers: true, seed: 7 });
    const names = async (): Promise<string[]> => {
      const conn = await connectTo(broker);
      const ch = await conn.openChannel();
      const q = await lastValueFrom(ch.queueDeclare('', { arguments: { 'x-expires': 60_000 } }));
      const tag = await new Promise<string>((resolve) => {
        const sub = ch.consume(q.queue).subscribe();
        void drain().then(() => {
          resolve(broker.queue(q.queue)!.consumerTags[0]!);
          sub.unsubscribe();
        });
      });
      await lastValueFrom(conn.close());
      return [q.queue, tag];
    };
    const before = await names();
    expect(jest.getTimerCount()).toBe(1); // the queue's x-expires
    broker.reset();
    expect(jest.getTimerCount()).toBe(0);
    expect(await names()).toEqual(before);
    broker.close();
  });
});

describe('inspection', () => {
  it('shows x-death as the client decodes it: count a number, time a Date', async () => {
    let now = 1_700_000_000_000;
    const broker = new EmbeddedBroker({ clock: () => now });
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('dlq'));
    await lastValueFrom(
      ch.queueDeclare('q', {
        arguments: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' },
      }),
    );
    broker.publish('', 'q', 'x');
    now += 10;
    const [dead] = broker.queue('dlq')!.messages;
    expect(dead!.properties.headers!['x-death']).toEqual([
      {
        count: 1,
        reason: 'expired',
        queue: 'q',
        time: new Date(1_700_000_000_000),
        exchange: '',
        'routing-keys': ['q'],
      },
    ]);
    // ... and a consumer gets the same, count still a long on the wire.
    const [d] = await first(ch.consume('dlq'), 1);
    expect(d!.properties.headers!['x-death']).toEqual(dead!.properties.headers!['x-death']);
  });
});

describe('a closing connection', () => {
  it('does not hand the messages of one of its channels to another of its channels on the way out', async () => {
    const broker = new EmbeddedBroker();
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    await raw.channel(2);
    raw.send(1, {
      name: 'queue.declare',
      queue: 'q',
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      nowait: false,
      arguments: {},
    });
    await raw.expect('queue.declare-ok');
    raw.send(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    await raw.expect('basic.qos-ok');
    raw.send(1, {
      name: 'basic.consume',
      queue: 'q',
      consumerTag: 'one',
      noLocal: false,
      noAck: false,
      exclusive: false,
      nowait: false,
      arguments: {},
    });
    await raw.expect('basic.consume-ok');
    broker.publish('', 'q', 'a');
    await raw.expect('basic.deliver');
    raw.send(2, {
      name: 'basic.consume',
      queue: 'q',
      consumerTag: 'two',
      noLocal: false,
      noAck: false,
      exclusive: false,
      nowait: false,
      arguments: {},
    });
    await raw.expect('basic.consume-ok');
    broker.closeConnection(broker.connections()[0]!);
    const close = await raw.next();
    expect(close).toMatchObject({ kind: 'method', method: { name: 'connection.close', replyCode: 320 } });
    expect(broker.queue('q')).toMatchObject({ messageCount: 1, unackedCount: 0, consumerCount: 0 });
  });
});

describe('frames a client sends before the connection is open', () => {
  it('content on a channel during the handshake is refused as a method there is (504), not silently dropped', async () => {
    const broker = new EmbeddedBroker();
    const raw = await RawClient.connect(broker, { handshake: false });
    raw.write(new Uint8Array([65, 77, 81, 80, 0, 0, 9, 1]));
    await raw.expect('connection.start');
    raw.send(0, {
      name: 'connection.start-ok',
      clientProperties: {},
      mechanism: 'PLAIN',
      response: '\0guest\0guest',
    });
    await raw.expect('connection.tune');
    raw.send(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: 131072, heartbeat: 0 });
    raw.publish(1, { name: 'basic.publish', exchange: '', routingKey: 'q' }, {}, 'early');
    expect(await raw.expect('connection.close')).toMatchObject({ replyCode: 504, classId: 60, methodId: 40 });
    raw.send(0, { name: 'connection.close-ok' });
    expect(await raw.next()).toEqual({ kind: 'closed', error: undefined });
    expect(broker.connections()).toEqual([]);
  });
});

describe('options at their limits', () => {
  it('frameMax: 0 (no limit) accepts a client that asks for no limit too', async () => {
    const broker = new EmbeddedBroker({ frameMax: 0 });
    const raw = await RawClient.connect(broker, { frameMax: 0 });
    expect(broker.connections()).toMatchObject([{ state: 'open', frameMax: 0 }]);
    await raw.channel(1);
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    const body = 'z'.repeat(300_000);
    broker.publish('', 'q', body);
    const [d] = await first(ch.consume('q'), 1);
    expect(text(d!.body)).toBe(body);
  });
});

describe('what a block held', () => {
  it('is not run on a connection that a held publish closed while the block was lifted', async () => {
    const broker = new EmbeddedBroker();
    const raw = await RawClient.connect(broker, {
      capabilities: { authentication_failure_close: true, 'connection.blocked': true },
    });
    await raw.channel(1);
    broker.block();
    raw.publish(1, { name: 'basic.publish', exchange: '', routingKey: 'q', immediate: true }, {}, 'x');
    expect(await raw.expect('connection.blocked')).toMatchObject({ reason: 'low on memory' });
    raw.send(2, { name: 'channel.open' });
    await drain();
    broker.unblock();
    expect(await raw.expect('connection.unblocked')).toBeDefined();
    expect(await raw.expect('connection.close')).toMatchObject({ replyCode: 540 });
    await drain();
    expect(raw.events).toEqual([]);
  });
});

describe('cost', () => {
  it('a client holding channel 65535 open does not slow every other client down', async () => {
    const broker = new EmbeddedBroker();
    const raw = await RawClient.connect(broker);
    await raw.channel(65535);
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.confirmSelect());
    const started = performance.now();
    // One chunk per publish: each is one tick of the broker over every connection's channels. An
    // array indexed by channel number made each tick walk 65,536 slots: about 1.5 ms per publish.
    for (let i = 0; i < 2000; i++) await lastValueFrom(ch.publish('', 'q', 'x'));
    expect(performance.now() - started).toBeLessThan(1500);
    expect(broker.queue('q')!.messageCount).toBe(2000);
  });
});

describe('a client that goes away at an awkward moment', () => {
  it('destroying its transport from inside onData (the broker still writing)', async () => {
    const broker = new EmbeddedBroker({ frameMax: 4096 });
    const conn = await open(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    broker.publish('', 'q', 'x'.repeat(20_000));
    let transport: { destroy(): void } | undefined;
    let chunks = 0;
    const closed: (Error | undefined)[] = [];
    transport = await broker.connector(
      {
        scheme: 'amqp',
        url: 'amqp://embedded:5672/',
        hostname: 'embedded',
        port: 5672,
        tls: undefined,
        socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
        timeoutMs: 1000,
        writeHighWaterMark: 1 << 20,
      },
      {
        onData: () => {
          chunks++;
          transport?.destroy();
        },
        onDrain: () => {},
        onClose: (e) => closed.push(e),
      },
      new AbortController().signal,
    );
    (transport as unknown as { write(b: Uint8Array): void }).write(
      new Uint8Array([65, 77, 81, 80, 0, 0, 9, 1]),
    );
    await settle();
    expect(chunks).toBe(1);
    expect(closed).toEqual([undefined]);
    // The broker forgot it, and serves the others as before.
    expect(broker.connections()).toHaveLength(1);
    const [d] = await first(ch.consume('q'), 1);
    expect(d!.body.length).toBe(20_000);
  });

  it('ending its transport in the middle of a frame', async () => {
    const broker = new EmbeddedBroker();
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.write(new Uint8Array([1, 0, 1, 0, 0, 0, 40, 0, 50]));
    (raw as unknown as { transport: { end(): void } }).transport.end();
    await settle();
    expect(raw.events).toEqual([{ kind: 'closed', error: undefined }]);
    expect(broker.connections()).toEqual([]);
  });
});

describe('lifetime', () => {
  it('leaves no connection, queue or timer behind after many connections end every way there is', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ timers: true, heartbeat: 5, seed: 1 });
    for (let i = 0; i < 60; i++) {
      const conn = await connectTo(broker, 'amqp://guest:guest@embedded?heartbeat=5', { name: `c${i}` });
      const ch = await conn.openChannel();
      const q = await lastValueFrom(
        ch.queueDeclare('', { exclusive: true, arguments: { 'x-expires': 60_000 } }),
      );
      broker.publish('', q.queue, 'x', { expiration: '30000' });
      // (An error handler: rxjs reports an unhandled one on a timer of its own.)
      const sub = ch.consume(q.queue, { prefetch: 5 }).subscribe({ error: () => {} });
      await drain();
      if (i % 4 === 0) {
        sub.unsubscribe();
        await lastValueFrom(conn.close());
      } else if (i % 4 === 1) broker.closeConnection(`c${i}`);
      else if (i % 4 === 2) broker.dropConnection(`c${i}`, { midFrame: true });
      else broker.reset();
      await drain();
    }
    expect(broker.connections()).toEqual([]);
    expect(broker.queues()).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
    // And close() on a broker with open, heartbeating connections leaves none either.
    await connectTo(broker, 'amqp://guest:guest@embedded?heartbeat=5');
    await connectTo(broker, 'amqp://guest:guest@embedded?heartbeat=5');
    expect(jest.getTimerCount()).toBeGreaterThan(0);
    broker.close();
    await drain();
    expect(broker.connections()).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });
});
