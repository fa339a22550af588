/**
 * What consuming puts on the wire, against a scripted server: acks held for `ackDelay` and merged into
 * `multiple` acks only where that acks the same messages, their order against other methods, and read
 * batching of dense delivery streams.
 */
import { lastValueFrom } from 'rxjs';
import {
  type Channel,
  type Connection,
  type ConnectOptions,
  type Delivery,
  HeadersDecodeError,
  openConnection,
} from '../../src/node.js';
import { FrameWriter, type Method } from '../../src/protocol/index.js';
import type { Transport, TransportConnector } from '../../src/transport/index.js';
import { connectTcp } from '../../src/transport/index.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const CONSUMER_TAG = 'ctag-1';

/** Opens channel 1 and answers basic.consume on it. */
async function acceptConsumer(peer: ScriptedPeer): Promise<void> {
  await peer.expectProtocolHeader();
  await peer.handshake();
  await peer.expect('channel.open', { channel: 1 });
  peer.send(1, { name: 'channel.open-ok' });
  let event = await peer.next();
  if (event.kind === 'method' && event.method.name === 'basic.qos') {
    peer.send(1, { name: 'basic.qos-ok' });
    event = await peer.next();
  }
  if (event.kind !== 'method' || event.method.name !== 'basic.consume') {
    throw new Error(
      `expected basic.consume, got ${event.kind === 'method' ? event.method.name : event.kind}`,
    );
  }
  peer.send(1, { name: 'basic.consume-ok', consumerTag: CONSUMER_TAG });
}

/** Deliveries `from`..`to` on channel 1, written to the socket in one piece. */
function deliveries(peer: ScriptedPeer, from: number, to: number): void {
  const writer = new FrameWriter();
  for (let tag = from; tag <= to; tag++) {
    writer.writeContent(
      1,
      {
        name: 'basic.deliver',
        consumerTag: CONSUMER_TAG,
        deliveryTag: tag,
        redelivered: false,
        exchange: '',
        routingKey: 'q',
      },
      {},
      Buffer.from(`m${tag}`),
    );
  }
  peer.sendRaw(writer.take()!);
}

/** The settlements the client sends until `until` arrives (that method included). */
async function settlementsUntil(peer: ScriptedPeer, until: Method['name']): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const event = await peer.next();
    if (event.kind !== 'method') continue;
    const m = event.method;
    if (m.name === 'basic.ack') seen.push(`ack ${m.deliveryTag}${m.multiple ? '+' : ''}`);
    else if (m.name === 'basic.nack') seen.push(`nack ${m.deliveryTag}${m.multiple ? '+' : ''} ${m.requeue}`);
    else if (m.name === 'basic.reject') seen.push(`reject ${m.deliveryTag} ${m.requeue}`);
    else seen.push(m.name);
    if (m.name === until) return seen;
  }
}

/** Answers the client's channel.close and connection.close. */
async function closeBoth(peer: ScriptedPeer, seen: string[]): Promise<void> {
  if (!seen.includes('channel.close')) seen.push(...(await settlementsUntil(peer, 'channel.close')));
  peer.send(1, { name: 'channel.close-ok' });
  await peer.expect('connection.close');
  peer.send(0, { name: 'connection.close-ok' });
}

async function open(extra: ConnectOptions = {}): Promise<{ connection: Connection; channel: Channel }> {
  const connection = await openConnection({
    hostname: '127.0.0.1',
    port: server!.port,
    connectionTimeout: 3000,
    ...extra,
  });
  return { connection, channel: await connection.openChannel() };
}

/** Consumes, handing each delivery to `onDelivery`, until `count` have arrived. */
function consumeSome(
  channel: Channel,
  count: number,
  onDelivery: (d: Delivery) => void,
  prefetch?: number,
): Promise<Delivery[]> {
  const got: Delivery[] = [];
  return new Promise((resolve, reject) => {
    const sub = channel.consume('q', prefetch === undefined ? {} : { prefetch }).subscribe({
      next: (d) => {
        got.push(d);
        onDelivery(d);
        if (got.length === count) resolve(got);
      },
      error: reject,
    });
    void sub;
  });
}

describe('consume and the client closing its channel', () => {
  it('completes a consumer whose basic.consume is still unanswered when the client closes the channel', async () => {
    let consumeSeen!: () => void;
    const sawConsume = new Promise<void>((r) => (consumeSeen = r));
    server = await ScriptedServer.start(
      async (peer) => {
        await peer.expectProtocolHeader();
        await peer.handshake();
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        await peer.expect('basic.consume');
        consumeSeen(); // and not answered yet
        await peer.expect('channel.close');
        peer.send(1, { name: 'basic.consume-ok', consumerTag: CONSUMER_TAG });
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    const ended = new Promise<string>((resolve) => {
      channel
        .consume('q')
        .subscribe({ complete: () => resolve('complete'), error: (e: Error) => resolve(e.message) });
    });
    await sawConsume;
    await lastValueFrom(channel.close());
    expect(await ended).toBe('complete');
    await lastValueFrom(connection.close());
    await server.done();
  });
});

describe('consumers that never start, and deliveries nobody claims', () => {
  it('sends nothing for consumers subscribed and unsubscribed in the same turn', async () => {
    let seen: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await peer.expectProtocolHeader();
        await peer.handshake();
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        // Everything the client sends on the channel until it closes it.
        seen = await settlementsUntil(peer, 'channel.close');
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    for (let i = 0; i < 5000; i++) {
      channel
        .consume(`q${i % 7}`, i % 2 === 0 ? { prefetch: 10 } : {})
        .subscribe()
        .unsubscribe();
    }
    // A later consumer that stays subscribed still starts, after nothing of the withdrawn ones.
    const kept = channel.consume('kept').subscribe();
    await new Promise((r) => setTimeout(r, 50));
    kept.unsubscribe();
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    // Without the deferred write: 5,000 basic.consume (and 2,500 basic.qos) before the kept consumer.
    expect(seen).toEqual(['basic.consume', 'channel.close']);
  });

  it('gives a delivery for an unknown consumer tag back to the queue and reports it on unclaimed$', async () => {
    let seen: string[] = [];
    let listening!: () => void;
    const subscribed = new Promise<void>((r) => (listening = r));
    server = await ScriptedServer.start(
      async (peer) => {
        await peer.expectProtocolHeader();
        await peer.handshake();
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        await subscribed;
        const writer = new FrameWriter();
        writer.writeContent(
          1,
          {
            name: 'basic.deliver',
            consumerTag: 'nobody',
            deliveryTag: 1,
            redelivered: false,
            exchange: 'x',
            routingKey: 'k',
          },
          { messageId: 'm-1' },
          Buffer.from('lost?'),
        );
        peer.sendRaw(writer.take()!);
        seen = await settlementsUntil(peer, 'channel.close');
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    const unclaimed = await new Promise<unknown>((resolve) => {
      channel.unclaimed$.subscribe(resolve);
      listening();
    });
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    // Before: the delivery was dropped unsettled and held a prefetch slot for the channel's life.
    expect(seen).toEqual(['reject 1 true', 'channel.close']);
    expect(unclaimed).toEqual({
      fields: { deliveryTag: 1, redelivered: false, exchange: 'x', routingKey: 'k', consumerTag: 'nobody' },
      properties: { messageId: 'm-1' },
      requeued: true,
    });
  });
});

describe('content the decoder cannot fully read, or should not assemble', () => {
  it('delivers a message whose headers table is unreadable with a HeadersDecodeError, and goes on', async () => {
    let seen: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        // basic.deliver, then a content header whose headers table holds tag 0x51 ('Q'), unknown to
        // every client, then the body; then an ordinary delivery.
        const method = new FrameWriter();
        method.writeContent(
          1,
          {
            name: 'basic.deliver',
            consumerTag: CONSUMER_TAG,
            deliveryTag: 1,
            redelivered: false,
            exchange: '',
            routingKey: 'q',
          },
          { headers: { ok: true } },
          Buffer.from('poison'),
        );
        const frames = Buffer.from(method.take()!);
        // The writer encoded headers { ok: true } as: 00 00 00 05 02 'o' 'k' 't' 01; make the 't' a 'Q'.
        const at = frames.indexOf(Buffer.from([0x02, 0x6f, 0x6b, 0x74, 0x01]));
        expect(at).toBeGreaterThan(0);
        frames[at + 3] = 0x51;
        peer.sendRaw(frames);
        deliveries(peer, 2, 2);
        seen = await settlementsUntil(peer, 'basic.ack');
        await closeBoth(peer, seen);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    const got = await consumeSome(channel, 2, () => {});
    const [poison, next] = got as [Delivery, Delivery];
    expect(poison.text()).toBe('poison');
    expect(poison.properties.headers).toBeUndefined();
    expect(poison.headersError).toBeInstanceOf(HeadersDecodeError);
    expect([...poison.headersError!.raw]).toEqual([0x02, 0x6f, 0x6b, 0x51, 0x01]);
    expect(next.text()).toBe('m2');
    expect(next.headersError).toBeUndefined();
    expect(connection.isOpen).toBe(true);
    expect(poison.reject({ requeue: false })).toBe(true);
    next.ack();
    await new Promise((r) => setTimeout(r, 30));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual(['reject 1 false', 'ack 2', 'channel.close']);
  });

  it('refuses content on a channel that was never opened before assembling any of it', async () => {
    let close: unknown;
    server = await ScriptedServer.start(
      async (peer) => {
        await peer.expectProtocolHeader();
        await peer.handshake();
        const writer = new FrameWriter();
        writer.writeContent(
          7,
          {
            name: 'basic.deliver',
            consumerTag: 'x',
            deliveryTag: 1,
            redelivered: false,
            exchange: '',
            routingKey: 'q',
          },
          {},
          Buffer.from('x'),
        );
        // Only the method frame: the content header (which could declare a huge body) never comes.
        const frames = Buffer.from(writer.take()!);
        const methodFrameLength = 7 + frames.readUInt32BE(3) + 1;
        peer.sendRaw(frames.subarray(0, methodFrameLength));
        close = await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const error = await new Promise<unknown>((resolve) => {
      openConnection({ hostname: '127.0.0.1', port: server!.port, connectionTimeout: 3000 }).then(
        (connection) => {
          connection.channel().subscribe({ error: resolve });
        },
        resolve,
      );
    });
    await server.done();
    // Before: the method frame was accepted and assembly began; the error came only with the whole message.
    expect(close).toMatchObject({ replyCode: 504 });
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', replyCode: 504 });
    expect(String((error as Error).message)).toContain('basic.deliver on channel 7, which is not open');
  });
});

describe('ack coalescing on the wire', () => {
  it('sends the acks of a burst as one multiple ack', async () => {
    let seen: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 10);
        seen = await settlementsUntil(peer, 'basic.ack');
        await closeBoth(peer, seen);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    await consumeSome(channel, 10, (d) => d.ack());
    await new Promise((r) => setTimeout(r, 30));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual(['ack 10+', 'channel.close']);
  });

  it('never lets a multiple ack cover a delivery still being processed', async () => {
    let seen: string[] = [];
    let later: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 5);
        seen = [await settlementsUntil(peer, 'basic.ack'), await settlementsUntil(peer, 'basic.ack')].flat();
        seen.push(...(await settlementsUntil(peer, 'basic.ack')));
        later = await settlementsUntil(peer, 'basic.ack');
        await closeBoth(peer, later);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    const got = await consumeSome(channel, 5, (d) => {
      if (d.fields.deliveryTag !== 3) d.ack();
    });
    await new Promise((r) => setTimeout(r, 30));
    got[2]!.ack();
    await new Promise((r) => setTimeout(r, 30));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual(['ack 2+', 'ack 4', 'ack 5']);
    expect(later).toEqual(['ack 3', 'channel.close']);
  });

  it('sends nacks and rejects at once and merges the acks around them', async () => {
    let seen: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 4);
        seen = await settlementsUntil(peer, 'basic.ack');
        await closeBoth(peer, seen);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    await consumeSome(channel, 4, (d) => {
      const tag = d.fields.deliveryTag;
      if (tag === 2) d.nack();
      else if (tag === 3) d.reject({ requeue: false });
      else d.ack();
    });
    await new Promise((r) => setTimeout(r, 30));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual(['nack 2 true', 'reject 3 false', 'ack 4+', 'channel.close']);
  });

  it('sends held acks before a later method of the channel (a tx.commit follows its acks)', async () => {
    let seen: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 3);
        seen = await settlementsUntil(peer, 'tx.commit');
        peer.send(1, { name: 'tx.commit-ok' });
        await closeBoth(peer, seen);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ ackDelay: 1000 });
    await consumeSome(channel, 3, (d) => d.ack());
    await lastValueFrom(channel.txCommit());
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual(['ack 3+', 'tx.commit', 'channel.close']);
  });

  it('sends held acks before closing the channel or the connection', async () => {
    const seen: string[][] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 2);
        seen.push(await settlementsUntil(peer, 'channel.close'));
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        await peer.expect('basic.consume');
        peer.send(1, { name: 'basic.consume-ok', consumerTag: CONSUMER_TAG });
        deliveries(peer, 1, 2);
        seen.push(await settlementsUntil(peer, 'connection.close'));
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ ackDelay: 1000 });
    await consumeSome(channel, 2, (d) => d.ack());
    await lastValueFrom(channel.close());
    const second = await connection.openChannel();
    await consumeSome(second, 2, (d) => d.ack());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual([
      ['ack 2+', 'channel.close'],
      ['ack 2+', 'connection.close'],
    ]);
  });

  it('holds a lone ack for ackDelay, but sends at once when a quarter of the prefetch is held', async () => {
    const arrivals: { what: string; at: number }[] = [];
    let sentAt = 0;
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 1);
        await peer.expect('basic.ack');
        arrivals.push({ what: 'lone', at: performance.now() - sentAt });
        sentAt = performance.now();
        deliveries(peer, 2, 3);
        const m = await peer.expect('basic.ack');
        arrivals.push({
          what: `quarter ${m.deliveryTag}${m.multiple ? '+' : ''}`,
          at: performance.now() - sentAt,
        });
        await closeBoth(peer, []);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ ackDelay: 400 });
    sentAt = performance.now();
    await consumeSome(channel, 3, (d) => d.ack(), 8);
    await new Promise((r) => setTimeout(r, 50));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(arrivals[0]!.what).toBe('lone');
    expect(arrivals[0]!.at).toBeGreaterThanOrEqual(350);
    expect(arrivals[1]!.what).toBe('quarter 3+');
    expect(arrivals[1]!.at).toBeLessThan(300);
  });

  it('sends every lone ack on its own timer, again and again (a fired timer is re-armed)', async () => {
    const gaps: number[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        for (let tag = 1; tag <= 4; tag++) {
          const sentAt = performance.now();
          deliveries(peer, tag, tag);
          const m = await peer.expect('basic.ack');
          expect(m.deliveryTag).toBe(tag);
          gaps.push(performance.now() - sentAt);
        }
        await closeBoth(peer, []);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ ackDelay: 20 });
    await consumeSome(channel, 4, (d) => d.ack(), 0);
    await new Promise((r) => setTimeout(r, 50));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    // Each ack came by its timer, not by the channel closing: the last one long before the close.
    expect(gaps).toHaveLength(4);
    for (const gap of gaps) expect(gap).toBeLessThan(1000);
  });

  it('with ackDelay 0 sends the acks at the end of the turn', async () => {
    let at = 0;
    let sentAt = 0;
    let seen: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        sentAt = performance.now();
        deliveries(peer, 1, 3);
        seen = await settlementsUntil(peer, 'basic.ack');
        at = performance.now() - sentAt;
        await closeBoth(peer, seen);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ ackDelay: 0 });
    await consumeSome(channel, 3, (d) => d.ack());
    await new Promise((r) => setTimeout(r, 30));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(seen).toEqual(['ack 3+', 'channel.close']);
    expect(at).toBeLessThan(200);
  });
});

describe('read batching', () => {
  /** A TCP transport that records pauses and resumes, reporting `limit` as its read size. */
  function recordingTransport(log: string[], limit?: number): TransportConnector {
    return async (target, handler, signal) => {
      const inner = await connectTcp(target, handler, signal);
      const wrapped: Transport = {
        write: (chunk) => inner.write(chunk),
        end: () => inner.end(),
        destroy: () => inner.destroy(),
        get bufferedBytes() {
          return inner.bufferedBytes;
        },
        remote: inner.remote,
        secure: inner.secure,
        readChunkLimit: limit ?? inner.readChunkLimit ?? Number.POSITIVE_INFINITY,
        pauseReading: () => {
          log.push('pause');
          inner.pauseReading?.();
        },
        resumeReading: () => {
          log.push('resume');
          inner.resumeReading?.();
        },
      };
      return wrapped;
    };
  }

  async function run(extra: ConnectOptions, perWrite: number, writes: number): Promise<number> {
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        for (let i = 0; i < writes; i++) {
          deliveries(peer, i * perWrite + 1, (i + 1) * perWrite);
          await new Promise((r) => setTimeout(r, 20));
        }
        await settlementsUntil(peer, 'channel.close');
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ ...extra, ackDelay: 0 });
    const started = performance.now();
    await consumeSome(channel, perWrite * writes, (d) => d.ack());
    const elapsed = performance.now() - started;
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    return elapsed;
  }

  it('pauses reading for a moment after a read that brought a dense batch, then resumes', async () => {
    const log: string[] = [];
    await run({ transport: recordingTransport(log) }, 20, 3);
    // One pause per dense read: three writes 20 ms apart make one to three reads (a loaded machine
    // may read two writes at once), each followed by a pause and then a resume.
    expect(log.length).toBeGreaterThanOrEqual(2);
    expect(log.length).toBeLessThanOrEqual(6);
    expect(log).toEqual(log.map((_, i) => (i % 2 === 0 ? 'pause' : 'resume')));
  });

  it('does not pause for sparse traffic, a full read, or when turned off', async () => {
    const sparse: string[] = [];
    await run({ transport: recordingTransport(sparse) }, 1, 3); // even read together: 3 < 4
    expect(sparse).toEqual([]);
    await server?.close();
    const full: string[] = [];
    await run({ transport: recordingTransport(full, 64) }, 20, 2);
    expect(full).toEqual([]);
    await server?.close();
    const off: string[] = [];
    await run({ transport: recordingTransport(off), readBatching: false }, 20, 2);
    expect(off).toEqual([]);
  });

  it('honours minMessages', async () => {
    const log: string[] = [];
    await run({ transport: recordingTransport(log), readBatching: { minMessages: 50 } }, 20, 2); // 40 at most
    expect(log).toEqual([]);
  });

  it('does not pause for deliveries that need no ack (the replies of request/reply)', async () => {
    const log: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 20);
        await new Promise((r) => setTimeout(r, 20));
        deliveries(peer, 21, 40);
        await peer.expect('basic.cancel');
        peer.send(1, { name: 'basic.cancel-ok', consumerTag: CONSUMER_TAG });
        await peer.expect('channel.close');
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ transport: recordingTransport(log) });
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      const sub = channel.consume('q', { noAck: true }).subscribe({
        next: () => {
          if (++got === 40) {
            sub.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    expect(log).toEqual([]);
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
  });

  it('a channel consuming while reads are paused still gets every message, in order', async () => {
    const order: number[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConsumer(peer);
        deliveries(peer, 1, 50);
        deliveries(peer, 51, 100);
        await settlementsUntil(peer, 'channel.close');
        peer.send(1, { name: 'channel.close-ok' });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open({ readBatching: { minMessages: 1, delayMs: 20 } });
    await consumeSome(channel, 100, (d) => {
      order.push(d.fields.deliveryTag);
      d.ack();
    });
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
  });
});
