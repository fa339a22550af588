/**
 * The failure-test TCP proxy (test/support/tcp-proxy.ts) against a small echo server on 127.0.0.1: bytes
 * both ways, cut (FIN), reset (RST), blackhole (bytes held, then delivered in order), refuse, close;
 * and one real-broker check that the client sees a reset through it as a lost connection.
 */
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { firstValueFrom, ReplaySubject } from 'rxjs';
import { type Connection, ConnectionClosedError, connect } from '../../src/node.js';
import { brokerEndpoint, brokerUrl, stopBroker } from '../support/broker.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** A socket's life as seen from one end: the bytes it read, and how it ended. */
class Peer {
  readonly chunks: Buffer[] = [];
  ended = false;
  closed = false;
  error: (Error & { code?: string }) | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', (e) => {
      this.error = e;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Polls `condition` every 5 ms until it holds, failing after `ms`. */
async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A target server on 127.0.0.1: echoes what it reads unless `echo` is off, and keeps its sockets. */
interface Target {
  readonly port: number;
  readonly peers: Peer[];
  echo: boolean;
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  const peers: Peer[] = [];
  const target = { port: 0, peers, echo: true, close: async () => {} };
  const server: Server = createServer((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    socket.on('data', (chunk: Buffer) => {
      if (target.echo && !socket.writableEnded) socket.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target.port = (server.address() as AddressInfo).port;
  target.close = () =>
    new Promise<void>((resolve) => {
      for (const peer of peers) peer.socket.destroy();
      server.close(() => resolve());
    });
  return target;
}

/** Connects a client to the proxy, resolving once the TCP connection is up. */
async function dial(port: number): Promise<Peer> {
  const socket = netConnect({ host: '127.0.0.1', port });
  const peer = new Peer(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return peer;
}

/** The error of a connection attempt that must fail. */
function dialError(port: number): Promise<Error & { code?: string }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error('the connection was accepted'));
    });
    socket.once('error', resolve);
  });
}

describe('TcpProxy (against an echo server)', () => {
  let target: Target;
  let proxy: TcpProxy;
  const clients: Peer[] = [];

  const client = async (): Promise<Peer> => {
    const peer = await dial(proxy.port);
    clients.push(peer);
    return peer;
  };

  beforeEach(async () => {
    target = await startTarget();
    proxy = await startTcpProxy({ host: '127.0.0.1', port: target.port });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await proxy.close();
    await target.close();
  });

  it('forwards bytes both ways, and counts connections', async () => {
    expect(proxy.port).toBeGreaterThan(0);
    const a = await client();
    a.socket.write('hello');
    await until(() => a.text === 'hello', 'the echo');
    expect(target.peers[0]?.text).toBe('hello');
    const b = await client();
    await until(() => proxy.connections === 2, 'two connections');
    expect(proxy.accepted).toBe(2);
    b.socket.destroy();
    await until(() => proxy.connections === 1, 'one connection');
    expect(proxy.accepted).toBe(2);
  });

  it('carries a large payload intact in both directions (backpressure)', async () => {
    const payload = randomBytes(4 * 1024 * 1024);
    const a = await client();
    a.socket.write(payload);
    await until(() => a.bytes.length === payload.length, 'the whole echo', 20_000);
    expect(a.bytes.equals(payload)).toBe(true);
  });

  it('rewrites a URL to the proxy, keeping credentials, vhost and query', () => {
    expect(proxy.url('amqp://user:p%40ss@broker.example:5672/my%2Fvhost?heartbeat=5&frame_max=8192')).toBe(
      `amqp://user:p%40ss@127.0.0.1:${proxy.port}/my%2Fvhost?heartbeat=5&frame_max=8192`,
    );
    expect(proxy.url('amqp://guest:guest@localhost')).toBe(`amqp://guest:guest@127.0.0.1:${proxy.port}`);
  });

  it('cut ends both sides with FIN, and still accepts new connections', async () => {
    const a = await client();
    a.socket.write('x');
    await until(() => a.text === 'x', 'the echo');
    proxy.cut();
    await until(() => a.ended, "the client's end");
    expect(a.error).toBeUndefined();
    await until(() => target.peers[0]?.ended === true, "the target's end");
    expect(target.peers[0]?.error).toBeUndefined();
    await until(() => proxy.connections === 0, 'no connections');

    const b = await client();
    b.socket.write('again');
    await until(() => b.text === 'again', 'the echo after the cut');
    expect(proxy.accepted).toBe(2);
  });

  it('reset gives the client ECONNRESET, and the target too', async () => {
    const a = await client();
    a.socket.write('x');
    await until(() => a.text === 'x', 'the echo');
    proxy.reset();
    await until(() => a.closed, 'the client closing');
    expect(a.error?.code).toBe('ECONNRESET');
    expect(a.ended).toBe(false);
    await until(() => target.peers[0]?.closed === true, 'the target closing');
    expect(target.peers[0]?.error?.code).toBe('ECONNRESET');
    await until(() => proxy.connections === 0, 'no connections');
  });

  it('passes a reset on: a client RST becomes an RST to the target', async () => {
    const a = await client();
    a.socket.write('x');
    await until(() => target.peers.length === 1 && a.text === 'x', 'the echo');
    a.socket.resetAndDestroy();
    await until(() => target.peers[0]?.closed === true, 'the target closing');
    expect(target.peers[0]?.error?.code).toBe('ECONNRESET');
  });

  it('blackhole stops bytes both ways, and unblackhole delivers the held bytes in order', async () => {
    const a = await client();
    a.socket.write('before');
    await until(() => a.text === 'before', 'the echo');
    const server = target.peers[0]!;
    target.echo = false;

    proxy.blackhole();
    a.socket.write('-up1');
    server.socket.write('-down1');
    a.socket.write('-up2');
    await delay(200);
    expect(server.text).toBe('before');
    expect(a.text).toBe('before');
    expect(proxy.connections).toBe(1);
    expect(a.closed || server.closed).toBe(false);

    proxy.unblackhole();
    await until(() => server.text === 'before-up1-up2', 'the held bytes upstream');
    await until(() => a.text === 'before-down1', 'the held bytes downstream');
    a.socket.write('-after');
    server.socket.write('-after');
    await until(() => server.text === 'before-up1-up2-after', 'new bytes upstream');
    await until(() => a.text === 'before-down1-after', 'new bytes downstream');
  });

  it('blackholes a connection accepted during the blackhole: the target hears of it only after', async () => {
    proxy.blackhole();
    const a = await client();
    expect(proxy.accepted).toBe(1);
    a.socket.write('hello');
    await delay(200);
    expect(target.peers).toHaveLength(0);
    expect(a.text).toBe('');
    proxy.unblackhole();
    await until(() => a.text === 'hello', 'the echo after the blackhole');
    expect(target.peers).toHaveLength(1);
  });

  it('holds an end during the blackhole and passes it on after', async () => {
    const a = await client();
    a.socket.write('x');
    await until(() => a.text === 'x', 'the echo');
    proxy.blackhole();
    a.socket.end('last');
    await delay(200);
    const server = target.peers[0]!;
    expect(server.ended).toBe(false);
    proxy.unblackhole();
    await until(() => server.ended, "the target's end");
    expect(server.text).toBe('xlast');
  });

  it('cut and reset still work during a blackhole', async () => {
    const a = await client();
    const b = await client();
    a.socket.write('a');
    b.socket.write('b');
    await until(() => a.text === 'a' && b.text === 'b', 'the echoes');
    proxy.blackhole();
    proxy.reset();
    await until(() => a.closed && b.closed, 'both clients closing');
    expect([a.error?.code, b.error?.code]).toEqual(['ECONNRESET', 'ECONNRESET']);

    const c = await client();
    proxy.cut();
    await until(() => c.ended, "the client's end");
    await until(() => proxy.connections === 0, 'no connections');
  });

  it('refuses new connections while refusing, keeps the open ones, and accepts again after', async () => {
    const a = await client();
    proxy.refuse(true);
    expect((await dialError(proxy.port)).code).toBe('ECONNREFUSED');
    a.socket.write('still');
    await until(() => a.text === 'still', 'the echo on the open connection');
    proxy.refuse(true); // twice is fine
    proxy.refuse(false);
    const b = await client();
    b.socket.write('back');
    await until(() => b.text === 'back', 'the echo after refusing');
    proxy.refuse(false); // twice is fine
    expect(proxy.accepted).toBe(2);
  });

  it('resets a client when the target refuses the connection', async () => {
    await target.close();
    const a = await client();
    await until(() => a.closed, 'the client closing');
    expect(a.error?.code).toBe('ECONNRESET');
  });

  it('close destroys every connection, stops listening, and can be called twice', async () => {
    const a = await client();
    proxy.blackhole();
    const b = await client();
    b.socket.write('held');
    await proxy.close();
    await until(() => a.closed && b.closed, 'the clients closing');
    expect(proxy.connections).toBe(0);
    expect((await dialError(proxy.port)).code).toBe('ECONNREFUSED');
    await proxy.close();
  });

  it('closes while refusing', async () => {
    await client();
    proxy.refuse(true);
    await proxy.close();
    expect(proxy.connections).toBe(0);
  });
});

describe('TcpProxy in front of the real broker', () => {
  let proxy: TcpProxy;

  beforeAll(async () => {
    const broker = await brokerEndpoint();
    proxy = await startTcpProxy({ host: broker.host, port: broker.port });
  });

  afterAll(async () => {
    await proxy?.close();
    await stopBroker();
  });

  /** Subscribes to `connect` through the proxy; resolves with the connection and its later events. */
  async function open(query = ''): Promise<{
    connection: Connection;
    events: ReplaySubject<Error | 'complete'>;
    stop: () => void;
  }> {
    const events = new ReplaySubject<Error | 'complete'>();
    const connections = new ReplaySubject<Connection>(1);
    const subscription = connect(proxy.url(await brokerUrl()) + query).subscribe({
      next: (c) => connections.next(c),
      error: (e: Error) => {
        connections.error(e);
        events.next(e);
      },
      complete: () => events.next('complete'),
    });
    const connection = await firstValueFrom(connections);
    return { connection, events, stop: () => subscription.unsubscribe() };
  }

  it('opens an AMQP connection through the proxy; a reset errors it with CONNECTION_LOST', async () => {
    const { connection, events, stop } = await open();
    try {
      expect(connection.serverProperties.product).toBe('RabbitMQ');
      expect(proxy.connections).toBe(1);
      proxy.reset();
      const error = await firstValueFrom(events);
      expect(error).toBeInstanceOf(ConnectionClosedError);
      expect((error as ConnectionClosedError).code).toBe('CONNECTION_LOST');
      expect((error as ConnectionClosedError).initiator).toBe('network');
    } finally {
      stop();
    }
  });

  it('a cut errors the connection with CONNECTION_LOST too', async () => {
    const { events, stop } = await open();
    try {
      proxy.cut();
      const error = await firstValueFrom(events);
      expect(error).toBeInstanceOf(ConnectionClosedError);
      expect((error as ConnectionClosedError).code).toBe('CONNECTION_LOST');
    } finally {
      stop();
    }
  });

  it('a blackhole ends the connection with HEARTBEAT_TIMEOUT', async () => {
    const { events, stop } = await open('?heartbeat=1');
    try {
      proxy.blackhole();
      const error = await firstValueFrom(events);
      expect(error).toBeInstanceOf(ConnectionClosedError);
      expect((error as ConnectionClosedError).code).toBe('HEARTBEAT_TIMEOUT');
    } finally {
      stop();
      proxy.unblackhole();
    }
  });
});
