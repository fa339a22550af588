/**
 * The TLS transport against the real broker behind a local TLS terminator (certificates made with
 * openssl for the run): a verified connection carries AMQP, and an untrusted CA, a wrong host name and
 * a server that never answers the handshake all fail as they should.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { ConnectionClosedError } from '../../src/errors.js';
import { FrameDecoder, type Method, PROTOCOL_HEADER } from '../../src/protocol/index.js';
import { connectTls, connectTransport } from '../../src/transport/index.js';
import type {
  ResolvedTlsOptions,
  Transport,
  TransportHandler,
  TransportTarget,
} from '../../src/transport/transport.js';
import { stopBroker } from '../support/broker.js';
import { startTlsTerminator, type TlsTerminator } from '../support/tls-terminator.js';

let terminator: TlsTerminator;
const transports: Transport[] = [];

// Generous: when the broker comes from testcontainers, this includes pulling and starting the image.
beforeAll(async () => {
  terminator = await startTlsTerminator();
}, 180_000);

afterAll(async () => {
  await terminator?.close();
  await stopBroker();
}, 60_000);

afterEach(() => {
  for (const transport of transports.splice(0)) transport.destroy();
});

function tlsOptions(overrides: Partial<ResolvedTlsOptions>): ResolvedTlsOptions {
  return {
    ca: undefined,
    cert: undefined,
    key: undefined,
    passphrase: undefined,
    pfx: undefined,
    rejectUnauthorized: true,
    servername: 'localhost',
    minVersion: undefined,
    checkServerIdentity: undefined,
    ...overrides,
  };
}

function target(tls: Partial<ResolvedTlsOptions>, overrides: Partial<TransportTarget> = {}): TransportTarget {
  return {
    scheme: 'amqps',
    url: `amqps://127.0.0.1:${terminator.port}/%2F`,
    hostname: '127.0.0.1',
    port: terminator.port,
    tls: tlsOptions(tls),
    socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
    timeoutMs: 5_000,
    writeHighWaterMark: 1024 * 1024,
    ...overrides,
  };
}

/** Decodes what the broker sends and keeps the methods; records the close. */
class AmqpRecorder implements TransportHandler {
  readonly methods: Method[] = [];
  readonly closes: (Error | undefined)[] = [];
  private readonly decoder = new FrameDecoder({
    onMethod: (_channel, method) => this.methods.push(method),
    onContent: () => {},
    onHeartbeat: () => {},
  });

  onData(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  onDrain(): void {}

  onClose(error: Error | undefined): void {
    this.closes.push(error);
  }

  async firstMethod(ms = 10_000): Promise<Method> {
    const deadline = Date.now() + ms;
    for (;;) {
      const method = this.methods[0];
      if (method !== undefined) return method;
      if (this.closes.length > 0)
        throw new Error(`closed before a method arrived: ${this.closes[0]?.message}`);
      if (Date.now() > deadline) throw new Error('no method from the broker');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

async function failure(attempt: Promise<Transport>): Promise<ConnectionClosedError> {
  const outcome = await attempt.then(
    (transport) => {
      transports.push(transport);
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(ConnectionClosedError);
  return outcome as ConnectionClosedError;
}

describe('connectTls through the terminator', () => {
  it('connects with the right CA and server name and carries AMQP: header in, connection.start out', async () => {
    const handler = new AmqpRecorder();
    const transport = await connectTls(
      target({ ca: [terminator.caPem] }),
      handler,
      new AbortController().signal,
    );
    transports.push(transport);
    expect(transport.secure).toBe(true);
    expect(transport.remote).toBe(`127.0.0.1:${terminator.port}`);
    expect(transport.write(PROTOCOL_HEADER)).toBe(true);
    const method = await handler.firstMethod();
    expect(method.name).toBe('connection.start');
    // The broker answered through the terminator, so its side of the handshake is done by now.
    expect(terminator.serverNames.at(-1)).toBe('localhost');
    if (method.name === 'connection.start') {
      expect(method.versionMajor).toBe(0);
      expect(method.versionMinor).toBe(9);
    }
    transport.destroy();
    for (let i = 0; i < 100 && handler.closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(handler.closes).toEqual([undefined]);
  });

  it('verifies against the connected host name when no server name (SNI) is given', async () => {
    const handler = new AmqpRecorder();
    const transport = await connectTransport(
      target({ ca: [terminator.caPem], servername: undefined }, { hostname: 'localhost' }),
      handler,
      new AbortController().signal,
    );
    transports.push(transport);
    expect(transport.secure).toBe(true);
    transport.write(PROTOCOL_HEADER);
    expect((await handler.firstMethod()).name).toBe('connection.start');
    expect(terminator.serverNames.at(-1)).toBe(false);
  });

  it('verifies an IP address given as server name against the certificate, without sending it as SNI', async () => {
    const handler = new AmqpRecorder();
    const transport = await connectTls(
      target({ ca: [terminator.caPem], servername: '127.0.0.1' }, { hostname: 'localhost' }),
      handler,
      new AbortController().signal,
    );
    transports.push(transport);
    expect(transport.secure).toBe(true);
    transport.write(PROTOCOL_HEADER);
    expect((await handler.firstMethod()).name).toBe('connection.start');
    expect(terminator.serverNames.at(-1)).toBe(false);
  });

  it('rejects an IP address given as server name that the certificate does not cover', async () => {
    const error = await failure(
      connectTls(
        target({ ca: [terminator.caPem], servername: '127.0.0.2' }),
        new AmqpRecorder(),
        new AbortController().signal,
      ),
    );
    expect(error.code).toBe('TLS_HANDSHAKE_FAILED');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.message).toMatch(/127\.0\.0\.2/);
  });

  it('rejects TLS_HANDSHAKE_FAILED when the certificate is not signed by a trusted CA', async () => {
    const handler = new AmqpRecorder();
    const error = await failure(
      connectTls(target({ ca: [terminator.otherCaPem] }), handler, new AbortController().signal),
    );
    expect(error.code).toBe('TLS_HANDSHAKE_FAILED');
    expect(error.initiator).toBe('network');
    expect(error.message).toMatch(
      new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${terminator.port} failed: `),
    );
    expect(String((error.cause as Error).message)).toMatch(/certificate/);
    expect(handler.closes).toEqual([]);
  });

  it('rejects TLS_HANDSHAKE_FAILED when the server name does not match the certificate', async () => {
    const error = await failure(
      connectTls(
        target({ ca: [terminator.caPem], servername: 'wrong.example' }),
        new AmqpRecorder(),
        new AbortController().signal,
      ),
    );
    expect(error.code).toBe('TLS_HANDSHAKE_FAILED');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.message).toMatch(/wrong\.example/);
  });

  it('checks the certificate against the connected host when there is no server name', async () => {
    const checked: string[] = [];
    const transport = await connectTls(
      target(
        {
          ca: [terminator.caPem],
          servername: undefined,
          checkServerIdentity: (hostname) => {
            checked.push(hostname);
            return undefined;
          },
        },
        { hostname: '127.0.0.1' },
      ),
      new AmqpRecorder(),
      new AbortController().signal,
    );
    transports.push(transport);
    expect(checked).toEqual(['127.0.0.1']);
  });

  it('uses a custom checkServerIdentity', async () => {
    const checked: string[] = [];
    const error = await failure(
      connectTls(
        target({
          ca: [terminator.caPem],
          checkServerIdentity: (hostname) => {
            checked.push(hostname);
            return new Error('pinned certificate mismatch');
          },
        }),
        new AmqpRecorder(),
        new AbortController().signal,
      ),
    );
    expect(checked).toEqual(['localhost']);
    expect(error.code).toBe('TLS_HANDSHAKE_FAILED');
    expect(error.message).toMatch(/pinned certificate mismatch/);
  });

  it('connects to an untrusted certificate with rejectUnauthorized: false', async () => {
    const handler = new AmqpRecorder();
    const transport = await connectTls(
      target({ ca: [terminator.otherCaPem], rejectUnauthorized: false, servername: 'wrong.example' }),
      handler,
      new AbortController().signal,
    );
    transports.push(transport);
    transport.write(PROTOCOL_HEADER);
    expect((await handler.firstMethod()).name).toBe('connection.start');
  });
});

describe('connectTls against servers that do not complete a handshake', () => {
  const servers: Server[] = [];
  const accepted: Socket[] = [];

  async function listen(onConnection: (socket: Socket) => void): Promise<number> {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      accepted.push(socket);
      onConnection(socket);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }

  afterEach(async () => {
    for (const socket of accepted.splice(0)) socket.destroy();
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('rejects CONNECT_TIMEOUT when the server accepts but never speaks TLS', async () => {
    const port = await listen((socket) => socket.resume()); // swallows the client hello, answers nothing
    const started = Date.now();
    const error = await failure(
      connectTls(
        target({ ca: [terminator.caPem] }, { port, timeoutMs: 300 }),
        new AmqpRecorder(),
        new AbortController().signal,
      ),
    );
    const elapsed = Date.now() - started;
    expect(error.code).toBe('CONNECT_TIMEOUT');
    expect(error.message).toBe(`could not connect to 127.0.0.1:${port} within 300 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    // The attempt's socket was destroyed: the server sees the connection close.
    const socket = accepted[0]!;
    if (!socket.destroyed) await once(socket, 'close');
  });

  it('rejects TLS_HANDSHAKE_FAILED when the server hangs up during the handshake', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.end()));
    const error = await failure(
      connectTls(
        target({ ca: [terminator.caPem] }, { port }),
        new AmqpRecorder(),
        new AbortController().signal,
      ),
    );
    expect(error.code).toBe('TLS_HANDSHAKE_FAILED');
  });

  it('rejects CONNECTION_LOST when nothing listens', async () => {
    const port = await listen(() => {});
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    const error = await failure(
      connectTls(
        target({ ca: [terminator.caPem] }, { port }),
        new AmqpRecorder(),
        new AbortController().signal,
      ),
    );
    expect(error.code).toBe('CONNECTION_LOST');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });
});
