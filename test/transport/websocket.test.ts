/**
 * The WebSocket transport against a stand-in `WebSocket` class (what a browser's offers: no drain
 * event, `bufferedAmount` only): opening, refusals, timeouts and aborts, bytes each way, the
 * high-water signal polled from `bufferedAmount`, batches sent as one message, and every way it closes.
 * The `ws` package in Node, and real relays and brokers, are tested in test/relay and the
 * conformance suite's relay backend; a real browser in test/browser.
 */
import { ConnectionClosedError } from '../../src/errors.js';
import type { TransportHandler, TransportTarget } from '../../src/transport/transport.js';
import { type WebSocketLike, webSocketConnector } from '../../src/transport/websocket.js';
import { nodeWebSocketConnector } from '../../src/transport/websocket-node.js';

/** A WebSocket whose every event the test fires by hand; records what is sent and closed. */
class FakeWebSocket implements WebSocketLike {
  static last: FakeWebSocket | undefined;
  binaryType = 'blob';
  bufferedAmount = 0;
  readyState = 0;
  protocol = '';
  readonly sent: Uint8Array[] = [];
  readonly closes: (number | undefined)[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { readonly data: unknown }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.last = this;
  }

  send(data: Uint8Array): void {
    this.sent.push(data);
    this.bufferedAmount += data.length;
  }

  close(code?: number): void {
    this.closes.push(code);
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  closed(code: number, reason = '', wasClean = code === 1000): void {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean });
  }
}

const target = (overrides: Partial<TransportTarget> = {}): TransportTarget => ({
  scheme: 'ws',
  url: 'ws://relay.example:15670/amqp',
  hostname: 'relay.example',
  port: 15670,
  tls: undefined,
  socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
  timeoutMs: 5_000,
  writeHighWaterMark: 100,
  ...overrides,
});

interface Recorder extends TransportHandler {
  readonly data: Uint8Array[];
  readonly closes: (Error | undefined)[];
  drains: number;
}

function recorder(): Recorder {
  const r: Recorder = {
    data: [],
    closes: [],
    drains: 0,
    onData: (chunk) => r.data.push(Uint8Array.from(chunk)),
    onDrain: () => {
      r.drains++;
    },
    onClose: (error) => r.closes.push(error),
  };
  return r;
}

const connector = webSocketConnector({ WebSocket: FakeWebSocket, protocols: 'amqp' });

async function opened(handler = recorder(), t = target()) {
  const pending = connector(t, handler, new AbortController().signal);
  const socket = FakeWebSocket.last!;
  socket.open();
  return { transport: await pending, socket, handler };
}

async function rejection(promise: Promise<unknown>): Promise<ConnectionClosedError> {
  try {
    await promise;
  } catch (e) {
    return e as ConnectionClosedError;
  }
  throw new Error('expected the connector to reject');
}

describe('the WebSocket connector', () => {
  it('opens the target URL with the subprotocols, as binary, and resolves on open', async () => {
    const { transport, socket } = await opened();
    expect(socket.url).toBe('ws://relay.example:15670/amqp');
    expect(socket.protocols).toEqual(['amqp']);
    expect(socket.binaryType).toBe('arraybuffer');
    expect(transport.remote).toBe('ws://relay.example:15670/amqp');
    expect(transport.secure).toBe(false);
    expect(transport.pauseReading).toBeUndefined(); // a browser WebSocket cannot pause
  });

  it('says wss: is secure', async () => {
    const { transport } = await opened(
      recorder(),
      target({ scheme: 'wss', url: 'wss://relay.example/amqp' }),
    );
    expect(transport.secure).toBe(true);
  });

  it('fails the attempt when the socket closes before opening, with the close code in the message', async () => {
    const pending = connector(target(), recorder(), new AbortController().signal);
    FakeWebSocket.last!.closed(1006);
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toBe(
      'could not open a WebSocket to ws://relay.example:15670/amqp: closed abnormally ' +
        '(1006: refused, unreachable, or not a WebSocket server)',
    );
  });

  it("uses the error event's error (ws gives one: an HTTP status, a TLS failure) as the reason and cause", async () => {
    const pending = connector(target(), recorder(), new AbortController().signal);
    const cause = new Error('Unexpected server response: 403');
    FakeWebSocket.last!.onerror?.({ error: cause });
    FakeWebSocket.last!.closed(1006);
    const error = await rejection(pending);
    expect(error.message).toBe(
      'could not open a WebSocket to ws://relay.example:15670/amqp: Unexpected server response: 403',
    );
    expect(error.cause).toBe(cause);
  });

  it('gives up after timeoutMs, closing the socket', async () => {
    jest.useFakeTimers();
    try {
      const pending = connector(target({ timeoutMs: 250 }), recorder(), new AbortController().signal);
      const socket = FakeWebSocket.last!;
      jest.advanceTimersByTime(250);
      const error = await rejection(pending);
      expect(error.code).toBe('CONNECT_TIMEOUT');
      expect(error.message).toBe('could not open a WebSocket to ws://relay.example:15670/amqp within 250 ms');
      expect(socket.closes).toEqual([1000]);
      socket.open(); // too late: nothing happens
    } finally {
      jest.useRealTimers();
    }
  });

  it('gives up when the signal aborts, rejecting with its reason', async () => {
    const controller = new AbortController();
    const pending = connector(target(), recorder(), controller.signal);
    const reason = new Error('the connection gave up');
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(FakeWebSocket.last!.closes).toEqual([1000]);
  });

  it('rejects at once for an aborted signal, and when the constructor throws (a bad URL)', async () => {
    const controller = new AbortController();
    controller.abort(new Error('already'));
    expect((await rejection(connector(target(), recorder(), controller.signal))).message).toBe('already');
    const throwing = webSocketConnector({
      WebSocket: class {
        constructor() {
          throw new SyntaxError("The URL 'ws://bad url' is invalid");
        }
      } as never,
    });
    const error = await rejection(throwing(target(), recorder(), new AbortController().signal));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toBe(
      "could not open a WebSocket to ws://relay.example:15670/amqp: The URL 'ws://bad url' is invalid",
    );
  });

  it('says what to do in a runtime without a WebSocket', async () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
    Reflect.deleteProperty(globalThis, 'WebSocket');
    try {
      const error = await rejection(webSocketConnector()(target(), recorder(), new AbortController().signal));
      expect(error.message).toBe(
        'this runtime has no WebSocket to open ws://relay.example:15670/amqp with: pass one as webSocketConnector({ WebSocket })',
      );
    } finally {
      if (saved !== undefined) Object.defineProperty(globalThis, 'WebSocket', saved);
    }
  });

  it('refuses TLS settings a browser cannot apply instead of ignoring them', async () => {
    const tls = {
      ca: ['PEM'],
      cert: undefined,
      key: undefined,
      passphrase: undefined,
      pfx: undefined,
      rejectUnauthorized: false,
      servername: 'relay.example',
      minVersion: undefined,
      checkServerIdentity: undefined,
    };
    const error = await rejection(
      connector(
        target({ scheme: 'wss', url: 'wss://relay.example/amqp', tls }),
        recorder(),
        new AbortController().signal,
      ),
    );
    expect(error.message).toBe(
      "a WebSocket uses the runtime's own TLS settings and cannot apply ca, rejectUnauthorized: false " +
        "to wss://relay.example/amqp: trust the relay's certificate in the runtime instead",
    );
    // The defaults (verification on, no CA of its own) are what a browser does: accepted.
    const ok = connector(
      target({
        scheme: 'wss',
        url: 'wss://relay.example/amqp',
        tls: { ...tls, ca: undefined, rejectUnauthorized: true },
      }),
      recorder(),
      new AbortController().signal,
    );
    FakeWebSocket.last!.open();
    await expect(ok).resolves.toBeDefined();
  });
});

describe('an open WebSocket transport', () => {
  it('hands binary messages to onData (ArrayBuffers and views)', async () => {
    const { socket, handler } = await opened();
    socket.onmessage?.({ data: new Uint8Array([1, 2, 3]).buffer });
    const bytes = new Uint8Array([9, 4, 5, 6, 9]);
    socket.onmessage?.({ data: bytes.subarray(1, 4) });
    expect(handler.data).toEqual([new Uint8Array([1, 2, 3]), new Uint8Array([4, 5, 6])]);
  });

  it('closes with a PROTOCOL_ERROR on a text message (the peer is not an AMQP relay)', async () => {
    const { socket, handler } = await opened();
    socket.onmessage?.({ data: 'hello' });
    expect(socket.closes).toEqual([1003]);
    expect(handler.closes).toHaveLength(1);
    const error = handler.closes[0] as ConnectionClosedError;
    expect(error.code).toBe('PROTOCOL_ERROR');
    expect(error.message).toBe(
      'the WebSocket peer at ws://relay.example:15670/amqp sent a text message; an AMQP relay sends binary messages only',
    );
    socket.onmessage?.({ data: new Uint8Array([1]).buffer }); // detached: nothing more
    expect(handler.data).toEqual([]);
  });

  it('writes each chunk as a message and a batch as one message', async () => {
    const { transport, socket } = await opened();
    expect(transport.write(new Uint8Array([1, 2]))).toBe(true);
    expect(transport.writeMany!([new Uint8Array([3]), new Uint8Array([4, 5]), new Uint8Array([6])])).toBe(
      true,
    );
    expect(socket.sent).toEqual([new Uint8Array([1, 2]), new Uint8Array([3, 4, 5, 6])]);
    expect(transport.bufferedBytes).toBe(6);
  });

  it('returns false at the high-water mark and calls onDrain once bufferedAmount falls below it', async () => {
    const { transport, socket, handler } = await opened();
    expect(transport.write(new Uint8Array(60))).toBe(true);
    expect(transport.write(new Uint8Array(60))).toBe(false); // 120 >= 100
    expect(transport.write(new Uint8Array(10))).toBe(false); // still queued, still above
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(handler.drains).toBe(0); // the browser has not sent them yet
    socket.bufferedAmount = 99;
    for (let i = 0; i < 100 && handler.drains === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(handler.drains).toBe(1);
    expect(socket.sent.map((chunk) => chunk.length)).toEqual([60, 60, 10]);
  });

  it('ends with a normal close: onClose(undefined) when the socket has closed', async () => {
    const { transport, socket, handler } = await opened();
    transport.write(new Uint8Array([1]));
    transport.end();
    expect(socket.closes).toEqual([1000]);
    expect(transport.write(new Uint8Array([2]))).toBe(false); // ending: dropped
    expect(socket.sent).toHaveLength(1);
    expect(handler.closes).toEqual([]);
    socket.closed(1000);
    expect(handler.closes).toEqual([undefined]);
  });

  it('reports an abnormal close (the relay went away) as CONNECTION_LOST with its code and reason', async () => {
    const { socket, handler } = await opened();
    socket.closed(1011, 'broker connection failed', false);
    const error = handler.closes[0] as ConnectionClosedError;
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toBe(
      'the WebSocket to ws://relay.example:15670/amqp closed with code 1011: broker connection failed',
    );
  });

  it('treats a close with code 1000 from the peer as an orderly end', async () => {
    const { socket, handler } = await opened();
    socket.closed(1000);
    expect(handler.closes).toEqual([undefined]);
  });

  it('destroy closes at once and calls onClose(undefined) exactly once', async () => {
    const { transport, socket, handler } = await opened();
    transport.destroy();
    transport.destroy();
    socket.closed(1006); // detached: not heard
    expect(handler.closes).toEqual([undefined]);
    expect(socket.closes).toEqual([1000]);
    expect(transport.write(new Uint8Array([1]))).toBe(false);
  });
});

describe("Node's WebSocket connector (the ws package)", () => {
  it('says how to get ws when it cannot be loaded', async () => {
    const missing = nodeWebSocketConnector({
      load: () => {
        throw new Error("Cannot find module 'ws'");
      },
    });
    const error = await rejection(missing(target(), recorder(), new AbortController().signal));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toBe("ws: and wss: URLs in Node need the 'ws' package: npm install ws");
    expect((error.cause as Error).message).toBe("Cannot find module 'ws'");
  });
});

describe('the WebSocket transport, edge cases', () => {
  it("never shows the URL's query (a token, often) in messages or in remote", async () => {
    const withToken = target({ url: 'ws://relay.example:15670/amqp?access_token=SECRET123' });
    const pending = connector(withToken, recorder(), new AbortController().signal);
    FakeWebSocket.last!.closed(1006);
    const error = await rejection(pending);
    expect(error.message).not.toContain('SECRET123');
    expect(error.message).toContain('ws://relay.example:15670/amqp:');
    const { transport, socket, handler } = await opened(recorder(), withToken);
    expect(transport.remote).toBe('ws://relay.example:15670/amqp');
    socket.closed(1011, 'broker gone', false);
    expect((handler.closes[0] as Error).message).not.toContain('SECRET123');
  });

  it('drains with a writeHighWaterMark of 0 once the buffer is empty', async () => {
    const { transport, socket, handler } = await opened(recorder(), target({ writeHighWaterMark: 0 }));
    expect(transport.write(new Uint8Array(5))).toBe(false);
    socket.bufferedAmount = 0;
    for (let i = 0; i < 100 && handler.drains === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(handler.drains).toBe(1);
  });

  it('destroys with terminate() where the socket has it (ws), not a close handshake that can linger', async () => {
    const { transport, socket } = await opened();
    const terminated: boolean[] = [];
    (socket as FakeWebSocket & { terminate(): void }).terminate = () => terminated.push(true);
    transport.destroy();
    expect(terminated).toEqual([true]);
    expect(socket.closes).toEqual([]);
  });

  it('sends a large chunk in slices of at most 1 MiB and joins small chunks up to that size', async () => {
    const { transport, socket } = await opened(recorder(), target({ writeHighWaterMark: 64 * 1024 * 1024 }));
    const big = new Uint8Array(2.5 * 1024 * 1024).map((_, i) => i & 0xff);
    transport.writeMany!([new Uint8Array([1]), new Uint8Array([2]), big, new Uint8Array([3])]);
    expect(socket.sent.map((m) => m.length)).toEqual([2, 1024 * 1024, 1024 * 1024, 512 * 1024, 1]);
    const bytes = Uint8Array.from(socket.sent.flatMap((m) => [...m]));
    expect(bytes).toEqual(Uint8Array.from([1, 2, ...big, 3]));
    socket.sent.length = 0;
    transport.write(big);
    expect(socket.sent.map((m) => m.length)).toEqual([1024 * 1024, 1024 * 1024, 512 * 1024]);
  });

  it("tells a dropped connection (1006 after opening) from a refused one, with ws's error as the cause", async () => {
    const { socket, handler } = await opened();
    const reset = new Error('read ECONNRESET');
    socket.onerror?.({ error: reset });
    socket.closed(1006, '', false);
    const error = handler.closes[0] as ConnectionClosedError;
    expect(error.message).toBe('the WebSocket to ws://relay.example:15670/amqp failed: read ECONNRESET');
    expect(error.cause).toBe(reset);
    const second = await opened();
    second.socket.closed(1006, '', false);
    expect((second.handler.closes[0] as Error).message).toBe(
      'the WebSocket to ws://relay.example:15670/amqp closed abnormally (1006: the connection dropped without a close frame)',
    );
  });
});
