import { lastValueFrom, type Observable } from 'rxjs';
import {
  AuthenticationError,
  ChannelClosedError,
  type Connection,
  ConnectionClosedError,
  type ConnectOptions,
  connect,
  FrameError,
} from '../../src/node.js';
import { connectTcp } from '../../src/transport/index.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(script: (peer: ScriptedPeer) => Promise<unknown>): Promise<ScriptedServer> {
  server = await ScriptedServer.start(script, { maxConnections: 1 });
  return server;
}

function options(extra: ConnectOptions = {}): ConnectOptions {
  return { hostname: '127.0.0.1', port: server!.port, connectionTimeout: 3000, ...extra };
}

/** Subscribes and collects the first connection, or the error. */
function outcome(
  source: Observable<Connection>,
): Promise<{ connection?: Connection; error?: unknown; events: string[] }> {
  const events: string[] = [];
  return new Promise((resolve) => {
    source.subscribe({
      next: (connection) => {
        events.push('next');
        resolve({ connection, events });
      },
      error: (error: unknown) => {
        events.push('error');
        resolve({ error, events });
      },
      complete: () => events.push('complete'),
    });
  });
}

describe('handshake', () => {
  it('sends PLAIN credentials, rxamqp capabilities and the connection name, and negotiates tune', async () => {
    let sent: Awaited<ReturnType<ScriptedPeer['handshake']>> | undefined;
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      sent = await peer.handshake({ tune: { channelMax: 10, frameMax: 8192, heartbeat: 5 } });
      await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
    });
    const { connection } = await outcome(connect(options({ name: 'svc-a', username: 'u', password: 'p' })));
    expect(connection!.tune).toEqual({ channelMax: 10, frameMax: 8192, heartbeat: 5 });
    await lastValueFrom(connection!.close());
    await server!.done();
    expect(sent!.startOk.mechanism).toBe('PLAIN');
    expect(Buffer.from(sent!.startOk.response).toString('latin1')).toBe('\0u\0p');
    expect(sent!.startOk.clientProperties).toMatchObject({
      product: 'rxamqp',
      connection_name: 'svc-a',
      capabilities: {
        publisher_confirms: true,
        consumer_cancel_notify: true,
        'connection.blocked': true,
        authentication_failure_close: true,
        'basic.nack': true,
        exchange_exchange_bindings: true,
        per_consumer_qos: true,
      },
    });
    expect(sent!.tuneOk).toMatchObject({ channelMax: 10, frameMax: 8192, heartbeat: 5 });
    expect(sent!.open.virtualHost).toBe('/');
  });

  it('negotiates as RabbitMQ clients do: 0 on one side means the other side decides', async () => {
    let tuneOk: unknown;
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      tuneOk = (await peer.handshake({ tune: { channelMax: 0, frameMax: 0, heartbeat: 0 } })).tuneOk;
      await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
    });
    const { connection } = await outcome(
      connect(options({ heartbeat: 7, frameMax: 65536, channelMax: 100 })),
    );
    expect(tuneOk).toMatchObject({ channelMax: 100, frameMax: 65536, heartbeat: 7 });
    await lastValueFrom(connection!.close());
    await server!.done();
  });

  it('rejects a hostile tune with frame_max below 4096, telling the server why', async () => {
    let close: unknown;
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.send(0, { name: 'connection.start', serverProperties: {}, mechanisms: 'PLAIN', locales: 'en_US' });
      await peer.expect('connection.start-ok');
      peer.send(0, { name: 'connection.tune', channelMax: 0, frameMax: 1024, heartbeat: 0 });
      close = await peer.expect('connection.close');
    });
    const { error } = await outcome(connect(options()));
    await server!.done();
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', replyCode: 502 });
    expect((error as Error).message).toContain('frame_max 1024');
    expect(close).toMatchObject({ replyCode: 502 });
  });

  it('turns a connection.close with 403 during the handshake into AuthenticationError, answering close-ok', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.send(0, { name: 'connection.start', serverProperties: {}, mechanisms: 'PLAIN', locales: 'en_US' });
      await peer.expect('connection.start-ok');
      peer.send(0, {
        name: 'connection.close',
        replyCode: 403,
        replyText: 'ACCESS_REFUSED - Login was refused',
        classId: 0,
        methodId: 0,
      });
      await peer.expect('connection.close-ok');
    });
    const { error } = await outcome(connect(options({ password: 'hunter2-secret' })));
    await server!.done();
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ replyCode: 403, mechanism: 'PLAIN' });
    expect(`${String(error)} ${(error as Error).stack}`).not.toContain('hunter2-secret');
  });

  it('reports a broker that hangs up after the credentials as an authentication failure', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.send(0, { name: 'connection.start', serverProperties: {}, mechanisms: 'PLAIN', locales: 'en_US' });
      await peer.expect('connection.start-ok');
      peer.end();
    });
    const { error } = await outcome(connect(options()));
    await server!.done();
    expect(error).toBeInstanceOf(AuthenticationError);
  });

  it('a hang-up after the credentials from a broker that refuses logins with a close is a lost connection, not a refused login', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.send(0, {
        name: 'connection.start',
        serverProperties: { capabilities: { authentication_failure_close: true } },
        mechanisms: 'PLAIN',
        locales: 'en_US',
      });
      await peer.expect('connection.start-ok');
      peer.end();
    });
    const { error } = await outcome(connect(options()));
    await server!.done();
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as ConnectionClosedError).code).toBe('CONNECTION_LOST');
  });

  it('fails with the close reason when the vhost is refused on connection.open', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.send(0, { name: 'connection.start', serverProperties: {}, mechanisms: 'PLAIN', locales: 'en_US' });
      await peer.expect('connection.start-ok');
      peer.send(0, { name: 'connection.tune', channelMax: 0, frameMax: 131072, heartbeat: 0 });
      await peer.expect('connection.tune-ok');
      await peer.expect('connection.open');
      peer.send(0, {
        name: 'connection.close',
        replyCode: 530,
        replyText: "NOT_ALLOWED - vhost 'x' not found",
        classId: 10,
        methodId: 40,
      });
      await peer.expect('connection.close-ok');
    });
    const { error } = await outcome(connect(options({ vhost: 'x' })));
    await server!.done();
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({
      code: 'SERVER_CLOSED',
      replyCode: 530,
      classId: 10,
      methodId: 40,
      initiator: 'server',
    });
  });

  it('fails on garbage after the protocol header with a protocol error caused by a FrameError', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.sendRaw('HTTP/1.1 400 Bad Request\r\n\r\n');
      await peer.closed;
    });
    const { error } = await outcome(connect(options()));
    await server!.done();
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect((error as ConnectionClosedError).cause).toBeInstanceOf(FrameError);
  });

  it('reports a server that answers with another protocol version', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      peer.sendRaw(Buffer.from('AMQP\x01\x01\x00\x0a', 'latin1'));
      peer.end();
    });
    const { error } = await outcome(connect(options()));
    await server!.done();
    expect(((error as ConnectionClosedError).cause as FrameError).code).toBe('PROTOCOL_MISMATCH');
  });

  it('times out a server that never answers', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.closed;
    });
    const started = Date.now();
    const { error } = await outcome(connect(options({ connectionTimeout: 300 })));
    expect(error).toMatchObject({ code: 'CONNECT_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(2000);
    await server!.done();
  });

  it('fails with a typed error when nothing listens', async () => {
    await serve(async () => {});
    const port = server!.port;
    await server!.close();
    const { error } = await outcome(connect({ hostname: '127.0.0.1', port }));
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
  });
});

describe('heartbeats', () => {
  it('sends heartbeats when idle and detects a silent peer after two intervals', async () => {
    let peerRef: ScriptedPeer | undefined;
    await serve(async (peer) => {
      peerRef = peer;
      await peer.expectProtocolHeader();
      await peer.handshake({ tune: { heartbeat: 1 } });
      await peer.closed; // then silence
    });
    const started = Date.now();
    let connection: Connection | undefined;
    const error = await new Promise<unknown>((resolve) => {
      connect(options({ heartbeat: 1 })).subscribe({ next: (c) => (connection = c), error: resolve });
    });
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as ConnectionClosedError).code).toBe('HEARTBEAT_TIMEOUT');
    expect((error as Error).message).toContain('two heartbeat intervals');
    expect(elapsed).toBeGreaterThanOrEqual(1500);
    expect(elapsed).toBeLessThan(4000);
    expect(connection!.isOpen).toBe(false);
    expect(peerRef!.heartbeatsReceived).toBeGreaterThanOrEqual(1);
    expect(connection!.counters.heartbeatsSent).toBeGreaterThanOrEqual(1);
    await server!.done();
  }, 10_000);
});

describe('while open', () => {
  it('stays open while the server sends heartbeats', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake({ tune: { heartbeat: 1 } });
      peer.startHeartbeats(300);
      await peer.expect('connection.close', { timeoutMs: 10_000 });
      peer.stopHeartbeats();
      peer.send(0, { name: 'connection.close-ok' });
    });
    const { connection } = await outcome(connect(options({ heartbeat: 1 })));
    await new Promise((r) => setTimeout(r, 2500));
    expect(connection!.isOpen).toBe(true);
    expect(connection!.counters.heartbeatsReceived).toBeGreaterThanOrEqual(5);
    await lastValueFrom(connection!.close());
    await server!.done();
  }, 10_000);

  it('fails pending channel operations when the server closes the connection, and answers close-ok', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1 });
      peer.send(1, { name: 'channel.open-ok' });
      await peer.expect('queue.declare', { channel: 1 });
      peer.send(0, {
        name: 'connection.close',
        replyCode: 320,
        replyText: 'CONNECTION_FORCED - shutdown',
        classId: 0,
        methodId: 0,
      });
      await peer.expect('connection.close-ok');
    });
    const { connection, events } = await outcome(connect(options()));
    const channel = await connection!.openChannel();
    const declare = await lastValueFrom(channel.queueDeclare('q')).catch((e: unknown) => e);
    await server!.done();
    expect(declare).toBeInstanceOf(ChannelClosedError);
    expect(declare).toMatchObject({ code: 'CONNECTION_CLOSED', replyCode: 320 });
    expect(((declare as ChannelClosedError).cause as ConnectionClosedError).code).toBe('SERVER_CLOSED');
    expect(events).toEqual(['next', 'error']);
  });

  it('closes with the connection.close handshake on unsubscribe', async () => {
    let close: unknown;
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake();
      close = await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
      await peer.closed;
    });
    const subscription = connect(options()).subscribe();
    while (server!.connections === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    subscription.unsubscribe();
    await server!.done();
    expect(close).toMatchObject({ replyCode: 200, classId: 0, methodId: 0 });
  });

  it('drops the socket when the server never answers the close', async () => {
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake();
      await peer.expect('connection.close');
      await peer.closed; // no close-ok: the client must give up after closeTimeout
    });
    const { connection } = await outcome(connect(options({ closeTimeout: 200 })));
    const started = Date.now();
    await lastValueFrom(connection!.close());
    expect(Date.now() - started).toBeLessThan(1500);
    await server!.done();
  });

  it('closes the connection with 504 when the server uses a channel that is not open', async () => {
    let close: unknown;
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake();
      peer.send(9, { name: 'basic.qos-ok' });
      close = await peer.expect('connection.close');
    });
    const { connection } = await outcome(connect(options()));
    const error = await new Promise((resolve) => connection!.channel().subscribe({ error: resolve }));
    await server!.done();
    expect(close).toMatchObject({ replyCode: 504 });
    expect(error).toBeInstanceOf(ConnectionClosedError);
  });
});

describe('backpressure', () => {
  it('holds publishes while the transport is above its high-water mark and releases them on drain', async () => {
    const published: string[] = [];
    await serve(async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1 });
      peer.send(1, { name: 'channel.open-ok' });
      for (let i = 0; i < 3; i++) published.push((await peer.expectContent('basic.publish')).body.toString());
      await peer.expect('channel.close');
      peer.send(1, { name: 'channel.close-ok' });
      await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
    });
    let full = false;
    let drain: (() => void) | undefined;
    const { connection } = await outcome(
      connect(
        options({
          transport: async (target, handler, signal) => {
            const inner = await connectTcp(target, handler, signal);
            drain = () => handler.onDrain();
            return {
              write: (chunk) => inner.write(chunk) && !full,
              end: () => inner.end(),
              destroy: () => inner.destroy(),
              get bufferedBytes() {
                return inner.bufferedBytes;
              },
              remote: inner.remote,
              secure: inner.secure,
            };
          },
        }),
      ),
    );
    const ch = await connection!.openChannel();
    full = true;
    const done: string[] = [];
    ch.publish('', 'q', 'one').subscribe({ complete: () => done.push('one') });
    await new Promise((r) => setTimeout(r, 20));
    ch.publish('', 'q', 'two').subscribe({ complete: () => done.push('two') });
    ch.publish('', 'q', 'three').subscribe({ complete: () => done.push('three') });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toEqual(['one']); // the first write filled the buffer: the others wait
    full = false;
    drain!();
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toEqual(['one', 'two', 'three']);
    await lastValueFrom(ch.close());
    await lastValueFrom(connection!.close());
    await server!.done();
    expect(published).toEqual(['one', 'two', 'three']);
  });
});
