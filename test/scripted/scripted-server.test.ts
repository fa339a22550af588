/**
 * Tests of the scripted server itself (test/support/scripted-server.ts), driven by a raw client built
 * on the codec alone: the handshake, expectations and their failure messages, heartbeats, raw bytes,
 * closing from either side, and that closing the server leaves nothing open.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import { FrameError } from '../../src/errors.js';
import {
  type BasicProperties,
  type ContentMethod,
  FrameDecoder,
  FrameWriter,
  type Method,
  type MethodInit,
  type MethodName,
  type MethodOf,
  PROTOCOL_HEADER,
} from '../../src/protocol/index.js';
import {
  type HandshakeResult,
  type Script,
  ScriptedServer,
  type ScriptedServerOptions,
} from '../support/scripted-server.js';

/** What the raw client decoded, with the number of frames it came in. */
type ServerEvent =
  | { kind: 'method'; channel: number; method: Method; frames: number }
  | {
      kind: 'content';
      channel: number;
      method: ContentMethod;
      properties: BasicProperties;
      body: Buffer;
      frames: number;
    }
  | { kind: 'heartbeat'; frames: number };

/** The client side for these tests: a socket, the codec, one waiter at a time. */
class RawClient {
  readonly events: ServerEvent[] = [];
  readonly chunks: Buffer[] = [];
  readonly writer = new FrameWriter();
  readonly decoder: FrameDecoder;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  private failure: unknown;
  private ended = false;
  private cursor = 0;
  private counted = 0;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    const frames = (): number => {
      const before = this.counted;
      this.counted = this.decoder.framesDecoded;
      return this.counted - before;
    };
    const push = (event: ServerEvent): void => {
      this.events.push(event);
      this.wake?.();
    };
    this.decoder = new FrameDecoder({
      onMethod: (channel, method) => push({ kind: 'method', channel, method, frames: frames() }),
      onContent: (channel, method, properties, body) =>
        push({
          kind: 'content',
          channel,
          method,
          properties,
          body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
          frames: frames(),
        }),
      onHeartbeat: () => push({ kind: 'heartbeat', frames: frames() }),
    });
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      try {
        if (this.failure === undefined) this.decoder.push(chunk);
      } catch (e) {
        this.failure = e;
        this.wake?.();
      }
    });
    socket.on('error', (e) => {
      this.failure ??= e;
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  get receivedBytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  send(channel: number, method: MethodInit): void {
    this.writer.writeMethod(channel, method);
    this.sendRaw(this.writer.take()!);
  }

  publish(channel: number, routingKey: string, body: Buffer, properties: BasicProperties): void {
    this.writer.writePublish(channel, '', routingKey, body, properties);
    this.sendRaw(this.writer.take()!);
  }

  async next(timeoutMs = 2000): Promise<ServerEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = this.events[this.cursor];
      if (event !== undefined) {
        this.cursor++;
        return event;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) throw new Error('the server closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing from the server within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  async expectMethod<N extends MethodName>(name: N): Promise<MethodOf<N>> {
    const event = await this.next();
    if (event.kind === 'heartbeat' || event.method.name !== name) {
      throw new Error(
        `expected ${name}, got ${event.kind === 'heartbeat' ? 'a heartbeat' : event.method.name}`,
      );
    }
    return event.method as MethodOf<N>;
  }

  /** The client's handshake as guest/guest, heartbeats off, frame_max as proposed unless given. */
  async handshake(options: { frameMax?: number } = {}) {
    this.sendRaw(PROTOCOL_HEADER);
    const start = await this.expectMethod('connection.start');
    this.send(0, { name: 'connection.start-ok', clientProperties: {}, response: '\0guest\0guest' });
    const tune = await this.expectMethod('connection.tune');
    const frameMax = options.frameMax ?? tune.frameMax;
    this.send(0, { name: 'connection.tune-ok', channelMax: tune.channelMax, frameMax, heartbeat: 0 });
    this.writer.frameMax = frameMax;
    this.decoder.frameMax = frameMax;
    this.send(0, { name: 'connection.open' });
    await this.expectMethod('connection.open-ok');
    return { start, tune };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const servers: ScriptedServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(script: Script | readonly Script[], options?: ScriptedServerOptions) {
  const server = await ScriptedServer.start(script, options);
  servers.push(server);
  return server;
}

async function connect(server: ScriptedServer): Promise<RawClient> {
  const client = await RawClient.connect(server.port);
  clients.push(client);
  return client;
}

/** Connects a plain socket and resolves when it has closed, however (a reset may come before connect). */
function connectUntilClosed(server: ScriptedServer): Promise<void> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port: server.port });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
  });
}

describe('handshake', () => {
  it('runs start, tune and open, then the script continues on channel 1', async () => {
    let result: HandshakeResult | undefined;
    let frameMax = 0;
    const server = await serve(async (peer) => {
      await peer.expectProtocolHeader();
      result = await peer.handshake({ tune: { channelMax: 10, frameMax: 4096, heartbeat: 1 } });
      frameMax = peer.frameMax;
      await peer.expect('channel.open', { channel: 1 });
      peer.send(1, { name: 'channel.open-ok' });
    });
    const client = await connect(server);
    const { start, tune } = await client.handshake();
    expect(start).toMatchObject({ versionMajor: 0, versionMinor: 9, mechanisms: 'PLAIN AMQPLAIN' });
    expect(start.serverProperties).toMatchObject({ capabilities: { publisher_confirms: true } });
    expect(tune).toMatchObject({ channelMax: 10, frameMax: 4096, heartbeat: 1 });
    client.send(1, { name: 'channel.open' });
    await client.expectMethod('channel.open-ok');
    await server.done();
    expect(result?.startOk).toMatchObject({ mechanism: 'PLAIN', locale: 'en_US' });
    expect(result?.startOk.response.toString()).toBe('\0guest\0guest');
    expect(result?.tuneOk).toMatchObject({ channelMax: 10, frameMax: 4096, heartbeat: 0 });
    expect(result?.open.virtualHost).toBe('/');
    expect(frameMax).toBe(4096);
    expect(server.connections).toBe(1);
  });

  it('uses the frame_max of the tune-ok for content both ways', async () => {
    const body = Buffer.alloc(10_000, 7);
    const server = await serve(async (peer) => {
      await peer.handshake({ tune: { frameMax: 131072 } });
      expect(peer.frameMax).toBe(5000);
      const published = await peer.expectContent('basic.publish', { channel: 1 });
      expect(published.method.routingKey).toBe('jobs');
      expect(published.properties.contentType).toBe('application/octet-stream');
      expect(published.body.equals(body)).toBe(true);
      peer.sendContent(
        1,
        { name: 'basic.deliver', consumerTag: 'c', deliveryTag: 1, exchange: '', routingKey: 'jobs' },
        { messageId: 'm1' },
        body,
      );
    });
    const client = await connect(server);
    await client.handshake({ frameMax: 5000 });
    client.publish(1, 'jobs', body, { contentType: 'application/octet-stream' });
    const delivery = await client.next();
    expect(delivery.kind).toBe('content');
    if (delivery.kind !== 'content') return;
    expect(delivery.frames).toBe(5); // method, header, three body frames of at most 4992 bytes
    expect(delivery.properties.messageId).toBe('m1');
    expect(delivery.body.equals(body)).toBe(true);
    await server.done();
  });

  it('fails the script on a protocol header that is not AMQP 0-9-1', async () => {
    const server = await serve((peer) => peer.expectProtocolHeader());
    const client = await connect(server);
    client.sendRaw(Buffer.from('HTTP/1.1'));
    await expect(server.done()).rejects.toThrow(
      'connection 1: expected the AMQP 0-9-1 protocol header, got 48 54 54 50 2f 31 2e 31 ("HTTP/1.1")',
    );
    await client.closed; // a failed script's connection is destroyed
  });
});

describe('expectations', () => {
  it('fails the script with what came instead of the expected method', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1 });
    });
    const client = await connect(server);
    await client.handshake();
    client.send(1, { name: 'queue.declare', queue: 'jobs', durable: true });
    await expect(server.done()).rejects.toThrow(
      /^connection 1: expected channel\.open on channel 1, got queue\.declare \{.*queue: 'jobs'.*durable: true.*\} on channel 1$/,
    );
    await client.closed;
  });

  it('fails the script when the method comes on another channel', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1 });
    });
    const client = await connect(server);
    await client.handshake();
    client.send(2, { name: 'channel.open' });
    await expect(server.done()).rejects.toThrow(
      "connection 1: expected channel.open on channel 1, got channel.open { outOfBand: '' } on channel 2",
    );
  });

  it('expectContent refuses a method without content', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expectContent('basic.publish');
    });
    const client = await connect(server);
    await client.handshake();
    client.send(1, { name: 'basic.qos', prefetchCount: 5 });
    await expect(server.done()).rejects.toThrow(
      /expected basic\.publish with content, got basic\.qos \{.*prefetchCount: 5.*\} on channel 1$/,
    );
  });

  it('says what it waited for when nothing comes', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1, timeoutMs: 50 });
    });
    const client = await connect(server);
    await client.handshake();
    await expect(server.done()).rejects.toThrow(
      'connection 1: timed out after 50 ms waiting for channel.open on channel 1',
    );
  });

  it('next() times out with the server default', async () => {
    const server = await serve((peer) => peer.expectProtocolHeader().then(() => peer.next()), {
      timeoutMs: 30,
    });
    const client = await connect(server);
    client.sendRaw(PROTOCOL_HEADER);
    await expect(server.done()).rejects.toThrow('timed out after 30 ms waiting for the next frame');
  });

  it('says so when the client closes the connection while the script waits', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open');
    });
    const client = await connect(server);
    await client.handshake();
    client.socket.end();
    await expect(server.done()).rejects.toThrow(
      'connection 1: the client closed the connection while waiting for channel.open',
    );
  });

  it('returns the events that came before the client closed, then rejects', async () => {
    const server = await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.closed;
      expect(peer.clientEnded).toBe(true);
      expect((await peer.next()).kind).toBe('method');
      await peer.next();
    });
    const client = await connect(server);
    client.sendRaw(PROTOCOL_HEADER);
    client.send(1, { name: 'channel.open' });
    client.socket.end();
    await expect(server.done()).rejects.toThrow(
      'connection 1: the client closed the connection while waiting for the next frame',
    );
  });

  it('rejects next() with the FrameError when the client sends bytes that do not decode', async () => {
    let error: unknown;
    const server = await serve(async (peer) => {
      await peer.handshake();
      expect(await peer.expect('channel.open')).toEqual({ name: 'channel.open', outOfBand: '' });
      error = await peer.next().catch((e: unknown) => e);
    });
    const client = await connect(server);
    await client.handshake();
    client.send(1, { name: 'channel.open' });
    client.sendRaw(Buffer.from([0x09, 0, 0, 0, 0, 0, 0, 0xce]));
    await server.done();
    expect(error).toBeInstanceOf(FrameError);
    expect(error).toMatchObject({ code: 'UNKNOWN_FRAME_TYPE' });
  });
});

describe('heartbeats', () => {
  it('counts the client heartbeats without returning them', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open');
      expect(peer.heartbeatsReceived).toBe(3);
      expect(peer.received.map((e) => e.kind).slice(-4)).toEqual([
        'heartbeat',
        'heartbeat',
        'heartbeat',
        'method',
      ]);
    });
    const client = await connect(server);
    await client.handshake();
    const heartbeat = Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]);
    client.sendRaw(Buffer.concat([heartbeat, heartbeat]));
    client.sendRaw(heartbeat);
    client.send(1, { name: 'channel.open' });
    await server.done();
  });

  it('returns them from next() with returnHeartbeats', async () => {
    const server = await serve(
      async (peer) => {
        await peer.handshake();
        expect(await peer.next()).toMatchObject({ kind: 'heartbeat' });
        await expect(peer.expect('channel.open')).rejects.toThrow('expected channel.open, got a heartbeat');
        expect(peer.heartbeatsReceived).toBe(2);
      },
      { returnHeartbeats: true },
    );
    const client = await connect(server);
    await client.handshake();
    const heartbeat = Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]);
    client.sendRaw(Buffer.concat([heartbeat, heartbeat]));
    await server.done();
  });

  it('sends heartbeats every interval until stopped', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake({ tune: { heartbeat: 1 } });
      peer.startHeartbeats(10);
      await peer.expect('channel.open');
      peer.stopHeartbeats();
      peer.send(1, { name: 'channel.open-ok' });
    });
    const client = await connect(server);
    await client.handshake();
    for (let i = 0; i < 3; i++) expect((await client.next()).kind).toBe('heartbeat');
    client.send(1, { name: 'channel.open' });
    for (;;) {
      const event = await client.next();
      if (event.kind === 'heartbeat') continue;
      expect(event.kind === 'method' && event.method.name).toBe('channel.open-ok');
      break;
    }
    await server.done();
    const count = client.events.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.events.length).toBe(count);
  });
});

describe('raw bytes', () => {
  it('sends them as they are', async () => {
    const garbage = Buffer.from([0x41, 0x42, 0x00, 0xff, 0xce, 0x01, 0x02]);
    const server = await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.sendRaw(garbage);
      await peer.closed;
    });
    const client = await connect(server);
    client.sendRaw(PROTOCOL_HEADER);
    await expect(client.next()).rejects.toThrow(FrameError);
    expect(client.receivedBytes.equals(garbage)).toBe(true);
    client.socket.end();
    await server.done();
  });

  it('decodes frames split anywhere, after a header that arrives in pieces', async () => {
    const server = await serve(async (peer) => {
      expect((await peer.expectProtocolHeader()).equals(PROTOCOL_HEADER)).toBe(true);
      await peer.expect('channel.open', { channel: 3 });
      await peer.expect('channel.close', { channel: 3 });
    });
    const client = await connect(server);
    client.writer.writeMethod(3, { name: 'channel.open' });
    client.writer.writeMethod(3, { name: 'channel.close', replyCode: 200, classId: 0, methodId: 0 });
    const bytes = Buffer.concat([PROTOCOL_HEADER, client.writer.take()!]);
    for (const piece of [
      bytes.subarray(0, 3),
      bytes.subarray(3, 11),
      bytes.subarray(11, 20),
      bytes.subarray(20),
    ]) {
      client.sendRaw(piece);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await server.done();
  });
});

describe('closing', () => {
  it('closeConnection gets the client close-ok, then ends the socket', async () => {
    let answered: boolean | undefined;
    const server = await serve(async (peer) => {
      await peer.handshake();
      answered = await peer.closeConnection(320, 'CONNECTION_FORCED - shutdown', 0, 0);
      await peer.closed;
    });
    const client = await connect(server);
    await client.handshake();
    const close = await client.expectMethod('connection.close');
    expect(close).toMatchObject({ replyCode: 320, replyText: 'CONNECTION_FORCED - shutdown' });
    client.send(1, { name: 'channel.open' }); // skipped: the server only waits for close-ok now
    client.send(0, { name: 'connection.close-ok' });
    await client.closed;
    await server.done();
    expect(answered).toBe(true);
  });

  it('closeConnection reports false when the close-ok does not come', async () => {
    let answered: boolean | undefined;
    const server = await serve(async (peer) => {
      await peer.handshake();
      answered = await peer.closeConnection(320, 'bye', 0, 0, 50);
    });
    const client = await connect(server);
    await client.handshake();
    await client.expectMethod('connection.close');
    await server.done();
    expect(answered).toBe(false);
    await client.closed;
  });

  it('closed resolves when the client ends the socket', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.closed;
      expect(peer.clientEnded).toBe(true);
    });
    const client = await connect(server);
    await client.handshake();
    client.socket.end();
    await server.done();
  });

  it('end() and destroy() close the connection from the server side', async () => {
    const server = await serve([
      async (peer) => {
        await peer.expectProtocolHeader();
        peer.end();
        await peer.closed;
        expect(peer.clientEnded).toBe(true); // the client answered the FIN with its own
      },
      async (peer) => {
        await peer.expectProtocolHeader();
        peer.destroy();
        await peer.closed;
        expect(peer.send(0, { name: 'connection.open-ok' })).toBe(false);
      },
    ]);
    const first = await connect(server);
    first.sendRaw(PROTOCOL_HEADER);
    await first.closed;
    const second = await connect(server);
    const reset = new Promise<unknown>((resolve) => second.socket.once('error', resolve));
    second.sendRaw(PROTOCOL_HEADER);
    expect(await reset).toMatchObject({ code: 'ECONNRESET' });
    await server.done();
  });

  it('server.close() destroys the connections still open and stops listening', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      peer.startHeartbeats(1000);
      await peer.closed;
    });
    const client = await connect(server);
    await client.handshake();
    await server.close();
    await server.close(); // idempotent
    await client.closed;
    await server.done();
    await expect(connect(server)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a script waiting when the server closes fails with a clear message', async () => {
    const server = await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open');
    });
    const client = await connect(server);
    await client.handshake();
    await server.close();
    await expect(server.done()).rejects.toThrow(
      'connection 1: the connection was closed on the server side while waiting for channel.open',
    );
  });
});

describe('connections and done()', () => {
  it('runs one script per connection from an array and resets connections beyond it', async () => {
    const ids: number[] = [];
    const script: Script = async (peer) => {
      ids.push(peer.id);
      await peer.expectProtocolHeader();
    };
    const server = await serve([script, script]);
    for (let i = 0; i < 2; i++) (await connect(server)).sendRaw(PROTOCOL_HEADER);
    await server.done();
    await connectUntilClosed(server);
    expect(ids).toEqual([1, 2]);
    expect(server.connections).toBe(2);
    expect(server.refused).toBe(1);
  });

  it('maxConnections limits a single script', async () => {
    const server = await serve(async (peer) => void (await peer.closed), { maxConnections: 1 });
    const first = await connect(server);
    await connectUntilClosed(server);
    expect(server.refused).toBe(1);
    first.socket.end();
    await server.done();
  });

  it('done() waits for the first connection', async () => {
    const server = await serve((peer) => peer.expectProtocolHeader());
    let settled = false;
    const done = server.done().then(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    (await connect(server)).sendRaw(PROTOCOL_HEADER);
    await done;
  });

  it('done() rejects when the server closes before a connection came, or after its timeout', async () => {
    const idle = await serve(() => undefined);
    await expect(idle.done(30)).rejects.toThrow(
      'scripted server not done after 30 ms: 0 of 1 connections arrived',
    );
    const stuck = await serve((peer) => peer.expectProtocolHeader().then(() => peer.closed));
    const client = await connect(stuck);
    client.sendRaw(PROTOCOL_HEADER);
    await expect(stuck.done(50)).rejects.toThrow(
      'scripted server not done after 50 ms: still running (connection 1: running)',
    );
    const waiting = await serve((peer) => peer.expectProtocolHeader());
    await connect(waiting);
    await expect(waiting.done(50)).rejects.toThrow(/still running \(connection 1: the protocol header\)$/);
    await idle.close();
    await expect(idle.done()).rejects.toThrow('scripted server closed after 0 of 1 connections');
  });

  it('a script that throws synchronously fails like one that rejects', async () => {
    const server = await serve(() => {
      throw new Error('boom');
    });
    await connectUntilClosed(server); // the failed script's connection is destroyed
    await expect(server.done()).rejects.toThrow('boom');
  });
});
