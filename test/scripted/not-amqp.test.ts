/**
 * Pointed at a port where no AMQP broker listens, the first connect says so: a peer that hangs up
 * before answering the protocol header (Mosquitto on 1883 does) or answers with bytes that are not
 * AMQP frames (a web server). Before, the error was a bare `read ECONNRESET` or `unknown frame type 72`.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { connect, openConnection } from '../../src/node.js';

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** A TCP server that answers the client's first bytes with `respond`. */
function listen(respond: (socket: Socket) => void): Promise<number> {
  return new Promise((resolve) => {
    server = createServer((socket) => {
      socket.once('data', () => respond(socket));
      socket.on('error', () => {});
    }).listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port));
  });
}

describe('a first connect to something that is not an AMQP broker', () => {
  it('a peer that hangs up before answering: says no AMQP broker seems to listen there', async () => {
    const port = await listen((socket) => socket.resetAndDestroy());
    const error = await openConnection(`amqp://127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect((error as Error).message).toContain('without answering the AMQP protocol header');
    expect((error as Error).message).toContain('is an AMQP 0-9-1 broker listening on that port?');
  });

  it('a peer that answers with something else: says it did not answer like an AMQP broker', async () => {
    const port = await listen((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const error = await openConnection(`amqp://127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect((error as Error).message).toContain('did not answer like an AMQP 0-9-1 broker');
  });
});

describe('the debug option', () => {
  it('reports every attempt and failure as a line, without the password', async () => {
    const lines: string[] = [];
    const error = await new Promise<unknown>((resolve) => {
      connect('amqp://user:Canary-S3cret@127.0.0.1:1', {
        recovery: { initial: { delays: [10, 10], maxAttempts: 2 } },
        debug: (line) => lines.push(line),
      }).subscribe({ error: resolve });
    });
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(lines.map((l) => /^rxamqp: ([A-Z]+)/.exec(l)?.[1])).toEqual([
      'CONNECTING',
      'RECONNECTING',
      'CONNECTING',
      'RECONNECTING',
      'CONNECTING',
      'CLOSED',
    ]);
    expect(lines[1]).toMatch(/^rxamqp: RECONNECTING 127\.0\.0\.1:1 \(retry 1 in 10 ms\): .*ECONNREFUSED/);
    for (const line of lines) expect(line).not.toContain('Canary-S3cret');
  });

  it('refuses a debug option that is neither a boolean nor a function', async () => {
    const error = await openConnection('amqp://127.0.0.1:1', { debug: 'yes' as never }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'INVALID_CONFIGURATION' });
  });
});
