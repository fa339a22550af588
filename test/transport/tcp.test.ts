/**
 * The TCP transport against small `net` servers on 127.0.0.1: bytes both ways, backpressure and
 * drain, the three ways a connection ends (peer end, reset, destroy), connect failures and aborts, and
 * the socket options.
 */
import { randomBytes } from 'node:crypto';
import { getEventListeners, once } from 'node:events';
import { type AddressInfo, createServer, type Server, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { ConnectionClosedError } from '../../src/errors.js';
import { connectTcp, connectTransport } from '../../src/transport/index.js';
import { ReusedReadBuffer } from '../../src/transport/tcp.js';
import type { Transport, TransportHandler, TransportTarget } from '../../src/transport/transport.js';

/** Records what the transport reports. */
class Recorder implements TransportHandler {
  readonly chunks: Buffer[] = [];
  received = 0;
  drains = 0;
  readonly closes: (Error | undefined)[] = [];
  private readonly waiters: (() => void)[] = [];

  onData(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk)); // the transport reuses its read buffer
    this.received += chunk.length;
    this.wake();
  }

  onDrain(): void {
    this.drains += 1;
    this.wake();
  }

  onClose(error: Error | undefined): void {
    this.closes.push(error);
    this.wake();
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once `condition` holds (checked after every event), or fails after `ms`. */
  async until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

interface TestServer {
  readonly server: Server;
  readonly port: number;
  /** Sockets accepted so far. */
  readonly accepted: Socket[];
}

const servers: Server[] = [];
const serverSockets: Socket[] = [];
const transports: Transport[] = [];

async function listen(
  onConnection: (socket: Socket) => void = () => {},
  host = '127.0.0.1',
): Promise<TestServer> {
  const accepted: Socket[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => {}); // resets and aborts are what these tests do on purpose
    accepted.push(socket);
    serverSockets.push(socket);
    onConnection(socket);
  });
  servers.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    accepted,
  };
}

function target(port: number, overrides: Partial<TransportTarget> = {}): TransportTarget {
  return {
    scheme: 'amqp',
    url: `amqp://127.0.0.1:${port}/%2F`,
    hostname: '127.0.0.1',
    port,
    tls: undefined,
    socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
    timeoutMs: 5_000,
    writeHighWaterMark: 1024 * 1024,
    ...overrides,
  };
}

async function open(port: number, handler: TransportHandler, overrides: Partial<TransportTarget> = {}) {
  const transport = await connectTcp(target(port, overrides), handler, new AbortController().signal);
  transports.push(transport);
  return transport;
}

/** A port nothing listens on (just released by a server). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length;
}

afterEach(async () => {
  for (const transport of transports.splice(0)) transport.destroy();
  for (const socket of serverSockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  jest.restoreAllMocks();
});

describe('connectTcp: bytes', () => {
  it('carries bytes both ways intact, including a 10 MiB write', async () => {
    const { port } = await listen((socket) => {
      socket.write('hello from the server');
      socket.pipe(socket);
    });
    const handler = new Recorder();
    const transport = await open(port, handler);
    const greeting = Buffer.from('hello from the server');
    await handler.until(() => handler.received >= greeting.length, 'the greeting');

    const big = randomBytes(10 * 1024 * 1024);
    const small = Buffer.from('AMQP\x00\x00\x09\x01');
    transport.write(small);
    transport.write(big);
    const expected = Buffer.concat([greeting, small, big]);
    await handler.until(() => handler.received >= expected.length, 'the echo', 20_000);
    expect(handler.received).toBe(expected.length);
    expect(handler.data.equals(expected)).toBe(true);
    expect(handler.closes).toEqual([]);
  });

  it('reports where it is connected and that it is not secure', async () => {
    const { port } = await listen();
    const transport = await open(port, new Recorder());
    expect(transport.remote).toBe(`127.0.0.1:${port}`);
    expect(transport.secure).toBe(false);
    expect(transport.bufferedBytes).toBe(0);
  });

  const hasIpv6Loopback = Object.values(networkInterfaces()).some((addresses) =>
    addresses?.some((a) => a.address === '::1'),
  );
  (hasIpv6Loopback ? it : it.skip)('puts an IPv6 address in brackets in remote', async () => {
    const { port } = await listen(() => {}, '::1');
    const transport = await open(port, new Recorder(), { hostname: '::1' });
    expect(transport.remote).toBe(`[::1]:${port}`);
  });

  it('connectTransport picks TCP when there are no TLS settings', async () => {
    const { port } = await listen();
    const transport = await connectTransport(target(port), new Recorder(), new AbortController().signal);
    transports.push(transport);
    expect(transport.secure).toBe(false);
  });
});

describe('connectTcp: backpressure', () => {
  it('returns false from write above the high-water mark and calls onDrain once the server reads', async () => {
    const hwm = 256 * 1024;
    const test = await listen(); // accepts but reads nothing until told to
    const handler = new Recorder();
    const transport = await open(test.port, handler, { writeHighWaterMark: hwm });
    await handler.until(() => test.accepted.length === 1, 'the server to accept');
    const server = test.accepted[0]!;

    // Below the mark (and far above Node's default of 16 KiB): keep writing.
    expect(transport.write(Buffer.alloc(200 * 1024, 1))).toBe(true);
    // Far more than the kernel buffers of a loopback connection hold.
    const big = Buffer.alloc(32 * 1024 * 1024, 2);
    expect(transport.write(big)).toBe(false);
    await delay(100);
    expect(transport.bufferedBytes).toBeGreaterThan(hwm);
    expect(handler.drains).toBe(0);

    let read = 0;
    server.on('data', (chunk: Buffer) => {
      read += chunk.length;
    });
    await handler.until(() => handler.drains === 1, 'onDrain', 20_000);
    expect(transport.bufferedBytes).toBeLessThan(hwm);
    await handler.until(() => read === 200 * 1024 + big.length, 'the server to read everything', 20_000);
    expect(handler.drains).toBe(1);
    expect(transport.write(Buffer.from('more'))).toBe(true);
  });
});

describe('connectTcp: closing', () => {
  it('calls onClose once with undefined when the peer ends the stream, after its last bytes', async () => {
    const test = await listen((socket) => {
      socket.end('goodbye');
    });
    const handler = new Recorder();
    await open(test.port, handler);
    await handler.until(() => handler.closes.length > 0, 'onClose');
    expect(handler.data.toString()).toBe('goodbye');
    expect(handler.closes).toEqual([undefined]);
    // Our side was ended too: the server saw the end of the stream.
    const server = test.accepted[0]!;
    if (!server.readableEnded) await once(server, 'end');
    await delay(50);
    expect(handler.closes).toEqual([undefined]);
  });

  it('calls onClose once with the socket error when the peer resets the connection', async () => {
    const { port } = await listen((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const handler = new Recorder();
    const transport = await open(port, handler);
    transport.write(Buffer.from('provoke a reset'));
    await handler.until(() => handler.closes.length > 0, 'onClose');
    await delay(50);
    expect(handler.closes).toHaveLength(1);
    // (Node's errors come from another realm than Jest's `Error`, so no toBeInstanceOf here.)
    const error = handler.closes[0] as NodeJS.ErrnoException | undefined;
    expect(error?.message).toMatch(/ECONNRESET/);
    expect(error?.code).toBe('ECONNRESET');
    expect(transport.write(Buffer.from('after the reset'))).toBe(false);
  });

  it('destroy() is idempotent and reports one orderly close', async () => {
    const test = await listen();
    const handler = new Recorder();
    const transport = await open(test.port, handler);
    await handler.until(() => test.accepted.length === 1, 'the server to accept');
    transport.destroy();
    transport.destroy();
    expect(transport.write(Buffer.from('dropped'))).toBe(false);
    await handler.until(() => handler.closes.length > 0, 'onClose');
    transport.destroy();
    await once(test.accepted[0]!, 'close');
    await delay(50);
    expect(handler.closes).toEqual([undefined]);
  });

  it('end() sends what is queued, then the stream ends and onClose reports an orderly close', async () => {
    let read = 0;
    const test = await listen((socket) => {
      socket.on('data', (chunk: Buffer) => {
        read += chunk.length;
      });
    });
    const handler = new Recorder();
    const transport = await open(test.port, handler);
    transport.write(Buffer.alloc(4 * 1024 * 1024, 7));
    transport.end();
    transport.end();
    expect(transport.write(Buffer.from('after end'))).toBe(false);
    await handler.until(() => handler.closes.length > 0, 'onClose');
    expect(read).toBe(4 * 1024 * 1024);
    expect(handler.closes).toEqual([undefined]);
  });
});

describe('connectTcp: failures', () => {
  it('rejects with CONNECTION_LOST and the ECONNREFUSED error as cause when nothing listens', async () => {
    const port = await freePort();
    const handler = new Recorder();
    const error = await connectTcp(target(port), handler, new AbortController().signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionClosedError);
    const closed = error as ConnectionClosedError;
    expect(closed.code).toBe('CONNECTION_LOST');
    expect(closed.initiator).toBe('network');
    expect(closed.message).toBe(`could not connect to 127.0.0.1:${port}: ECONNREFUSED`);
    expect((closed.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(handler.closes).toEqual([]);
  });

  it('rejects with the abort reason when aborted while connecting, and leaves no socket behind', async () => {
    const test = await listen();
    await delay(50); // let sockets of earlier tests finish closing
    const before = tcpHandles();
    const controller = new AbortController();
    const handler = new Recorder();
    const attempt = connectTcp(target(test.port), handler, controller.signal);
    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(attempt).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // The kernel may have completed the handshake: the server's side must then see the close.
    for (const socket of test.accepted) {
      if (!socket.destroyed) await once(socket, 'close');
    }
    await delay(50);
    expect(tcpHandles()).toBe(before);
    expect(handler.closes).toEqual([]);
  });

  it('rejects at once, without connecting, when the signal is already aborted', async () => {
    const test = await listen();
    const controller = new AbortController();
    controller.abort('not an Error');
    const error = await connectTcp(target(test.port), new Recorder(), controller.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as ConnectionClosedError).code).toBe('CONNECTION_LOST');
    expect((error as ConnectionClosedError).cause).toBe('not an Error');
    await delay(50);
    expect(test.accepted).toHaveLength(0);
  });

  it('removes its abort listener once connected, and a later abort does nothing', async () => {
    const { port } = await listen();
    const controller = new AbortController();
    const handler = new Recorder();
    const transport = await connectTcp(target(port), handler, controller.signal);
    transports.push(transport);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    controller.abort();
    await delay(20);
    expect(handler.closes).toEqual([]);
    expect(transport.write(Buffer.from('still open'))).toBe(true);
  });
});

describe('connectTcp: socket options', () => {
  // TCP_NODELAY cannot be read back from Node, so this observes the calls the transport makes on the
  // real socket (which Node forwards to the handle) rather than the kernel's flag.
  it('sets noDelay and keep-alive on the connected socket', async () => {
    const noDelay = jest.spyOn(Socket.prototype, 'setNoDelay');
    const keepAlive = jest.spyOn(Socket.prototype, 'setKeepAlive');
    const { port } = await listen();
    await open(port, new Recorder(), {
      socket: { noDelay: true, keepAlive: 15_000, localAddress: undefined, family: 4 },
    });
    expect(noDelay).toHaveBeenCalledWith(true);
    expect(noDelay.mock.contexts[0]).toBeInstanceOf(Socket);
    expect((noDelay.mock.contexts[0] as Socket).remotePort).toBe(port);
    expect(keepAlive).toHaveBeenCalledWith(true, 15_000);
  });

  it('leaves Nagle on and keep-alive off when asked to', async () => {
    const noDelay = jest.spyOn(Socket.prototype, 'setNoDelay');
    const keepAlive = jest.spyOn(Socket.prototype, 'setKeepAlive');
    const { port } = await listen();
    await open(port, new Recorder(), {
      socket: { noDelay: false, keepAlive: false, localAddress: '127.0.0.1', family: 0 },
    });
    expect(noDelay).toHaveBeenCalledWith(false);
    expect(keepAlive).not.toHaveBeenCalled();
  });

  it('binds the local address it is given', async () => {
    const test = await listen();
    await open(test.port, new Recorder(), {
      socket: { noDelay: true, keepAlive: true, localAddress: '127.0.0.2', family: 4 },
    });
    await new Promise((resolve) => setImmediate(resolve));
    await delay(20);
    expect(test.accepted[0]?.remoteAddress).toBe('127.0.0.2');
  });
});

describe('ReusedReadBuffer', () => {
  it('hands reads to the sink as views of one buffer, and replays copies of reads made before attaching', () => {
    const reads = new ReusedReadBuffer(8);
    const { buffer, callback } = reads.options;
    buffer.write('early');
    expect(callback(5, buffer)).toBe(true);
    buffer.write('again');
    callback(3, buffer);
    const got: string[] = [];
    const views: Buffer[] = [];
    reads.attach((chunk) => {
      got.push(chunk.toString());
      views.push(chunk);
    });
    expect(got).toEqual(['early', 'aga']); // copies: the buffer has been overwritten since
    buffer.write('later');
    callback(5, buffer);
    expect(got).toEqual(['early', 'aga', 'later']);
    expect(views[2]!.buffer).toBe(buffer.buffer); // no copy once attached
    expect(reads.size).toBe(8);
  });
});
