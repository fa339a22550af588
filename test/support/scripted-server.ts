/**
 * A scripted AMQP 0-9-1 server for tests: a small fake broker on 127.0.0.1 that a test drives step by
 * step, for what a real broker will not do on demand (hostile tune values, missed heartbeats, a
 * connection.close in the middle of the handshake, garbage bytes, confirms out of order).
 *
 * Each accepted connection runs the test's script with a {@link ScriptedPeer}: the script reads what
 * the client sent (`expect`, `next`) and answers (`send`, `sendContent`, ...). A script that throws or
 * rejects fails: its connection is destroyed and {@link ScriptedServer.done} rejects with the error.
 * Script errors never become unhandled rejections, so tests must `await server.done()` to see them.
 *
 * @example
 * ```ts
 * const server = await ScriptedServer.start(async (peer) => {
 *   await peer.handshake({ tune: { heartbeat: 1 } });
 *   await peer.expect('channel.open', { channel: 1 });
 *   peer.send(1, { name: 'channel.open-ok' });
 * });
 * // ... connect the client under test to 127.0.0.1:server.port ...
 * await server.done();
 * await server.close();
 * ```
 *
 * @module
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import {
  type BasicProperties,
  type ContentMethod,
  type FieldTable,
  FrameDecoder,
  FrameWriter,
  type Method,
  type MethodInit,
  type MethodName,
  type MethodOf,
  PROTOCOL_HEADER,
} from '../../src/protocol/index.js';

/** What the client sent, decoded; `at` is `performance.now()` when it arrived. */
export type ClientEvent =
  | { readonly kind: 'method'; readonly channel: number; readonly method: Method; readonly at: number }
  | {
      readonly kind: 'content';
      readonly channel: number;
      readonly method: ContentMethod;
      readonly properties: BasicProperties;
      readonly body: Buffer;
      readonly at: number;
    }
  | { readonly kind: 'heartbeat'; readonly at: number };

/** A content method the client sends with its properties and body (see {@link ScriptedPeer.expectContent}). */
export interface ContentEvent<N extends ContentMethod['name'] = ContentMethod['name']> {
  readonly channel: number;
  readonly method: MethodOf<N>;
  readonly properties: BasicProperties;
  readonly body: Buffer;
}

/** What a connection runs, usually an async function. It fails by throwing or rejecting; its result is ignored. */
export type Script = (peer: ScriptedPeer) => unknown;

/** Options of {@link ScriptedServer.start}. */
export interface ScriptedServerOptions {
  /**
   * Run the script for the first N connections only; later ones are reset at once. Default: no limit
   * (with an array of scripts, its length).
   */
  readonly maxConnections?: number;
  /** Default timeout of {@link ScriptedPeer.next} and the methods built on it. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Make {@link ScriptedPeer.next} return heartbeats instead of only counting them. Default false. */
  readonly returnHeartbeats?: boolean;
}

/** Options of {@link ScriptedPeer.expect} and {@link ScriptedPeer.expectContent}. */
export interface ExpectOptions {
  /** The channel the method must arrive on; default: any. */
  readonly channel?: number;
  readonly timeoutMs?: number;
}

/** Options of {@link ScriptedPeer.handshake}; everything has a RabbitMQ-like default. */
export interface HandshakeOptions {
  /** connection.start server-properties; default {@link DEFAULT_SERVER_PROPERTIES}. */
  readonly serverProperties?: FieldTable;
  /** Default `'PLAIN AMQPLAIN'`. */
  readonly mechanisms?: string;
  /** Default `'en_US'`. */
  readonly locales?: string;
  /** What connection.tune proposes; default channel-max 2047, frame-max 131072, heartbeat 60. */
  readonly tune?: { readonly channelMax?: number; readonly frameMax?: number; readonly heartbeat?: number };
  /** Timeout of each step; default the server's. */
  readonly timeoutMs?: number;
}

/** What the client sent during {@link ScriptedPeer.handshake}. */
export interface HandshakeResult {
  readonly startOk: MethodOf<'connection.start-ok'>;
  readonly tuneOk: MethodOf<'connection.tune-ok'>;
  readonly open: MethodOf<'connection.open'>;
}

/** connection.start server-properties sent by default: RabbitMQ's capabilities. */
export const DEFAULT_SERVER_PROPERTIES: FieldTable = {
  product: 'rxamqp scripted server',
  version: '0.0.0',
  platform: 'Node.js',
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': true,
    consumer_priorities: true,
    authentication_failure_close: true,
    per_consumer_qos: true,
    direct_reply_to: true,
  },
};

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_DONE_TIMEOUT_MS = 10_000;

/**
 * A listening scripted server. Start it with {@link ScriptedServer.start}; always {@link close} it.
 *
 * @example
 * ```ts
 * // A different script per connection: the client's reconnect lands on the second one.
 * const server = await ScriptedServer.start([
 *   async (peer) => { await peer.handshake(); peer.destroy(); },
 *   async (peer) => { await peer.handshake(); await peer.closed; },
 * ]);
 * ```
 */
export class ScriptedServer {
  /** One peer per connection whose script was started, in order of arrival. */
  readonly peers: ScriptedPeer[] = [];
  /** The port listened on, on 127.0.0.1. */
  readonly port: number;
  /** Connections reset at once because they were beyond the limit. */
  refused = 0;
  private running = 0;
  private failure: { error: unknown } | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly doneChecks = new Set<() => void>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly scripts: Script | readonly Script[],
    private readonly options: ScriptedServerOptions,
  ) {
    this.port = (server.address() as AddressInfo).port;
    server.on('connection', (socket) => this.accept(socket));
  }

  /**
   * Listens on 127.0.0.1 (a free port) and runs `script` for every accepted connection, or with an
   * array, `scripts[i]` for connection i + 1 (connections beyond the array are reset at once).
   */
  static async start(
    script: Script | readonly Script[],
    options: ScriptedServerOptions = {},
  ): Promise<ScriptedServer> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new ScriptedServer(server, script, options);
  }

  /** How many connections had their script started. */
  get connections(): number {
    return this.peers.length;
  }

  /**
   * Resolves when the scripts have finished: every script started so far, and at least the first
   * connection's (with an array, every script of the array). Rejects as soon as a script fails, with
   * its error; when the server is closed before the awaited connections arrived; or after `timeoutMs`
   * (default 10 s), saying what each running script was waiting for.
   */
  done(timeoutMs = DEFAULT_DONE_TIMEOUT_MS): Promise<void> {
    const expected = Array.isArray(this.scripts) ? this.scripts.length : 1;
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: unknown): void => {
        clearTimeout(timer);
        this.doneChecks.delete(check);
        if (error === undefined) resolve();
        else reject(error);
      };
      const check = (): void => {
        if (this.failure !== undefined) finish(this.failure.error);
        else if (this.running === 0 && this.peers.length >= expected) finish();
        else if (this.closing !== undefined && this.running === 0)
          finish(new Error(`scripted server closed after ${this.peers.length} of ${expected} connections`));
      };
      const timer = setTimeout(() => {
        const waiting = this.peers
          .filter((p) => p.running)
          .map((p) => `connection ${p.id}: ${p.waitingFor ?? 'running'}`);
        const state =
          waiting.length > 0
            ? `still running (${waiting.join('; ')})`
            : `${this.peers.length} of ${expected} connections arrived`;
        finish(new Error(`scripted server not done after ${timeoutMs} ms: ${state}`));
      }, timeoutMs);
      this.doneChecks.add(check);
      check();
    });
  }

  /** Stops listening and destroys every connection. Idempotent; scripts still waiting then fail. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
      this.changed();
    });
    return this.closing;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {}); // reported to the peer; a reset must not be an uncaught error
    const id = this.peers.length + 1;
    const script = Array.isArray(this.scripts) ? this.scripts[id - 1] : (this.scripts as Script);
    const limit = this.options.maxConnections ?? Number.POSITIVE_INFINITY;
    if (script === undefined || id > limit || this.closing !== undefined) {
      this.refused++;
      socket.resetAndDestroy();
      return;
    }
    const peer = new ScriptedPeer(socket, id, this.options);
    this.peers.push(peer);
    this.running++;
    peer.running = true;
    Promise.resolve()
      .then(() => script(peer))
      .catch((error: unknown) => {
        this.failure ??= { error };
        peer.destroy();
      })
      .finally(() => {
        peer.running = false;
        this.running--;
        this.changed();
      });
  }

  private changed(): void {
    for (const check of [...this.doneChecks]) check();
  }
}

/**
 * The server's side of one connection, handed to the script. Bytes up to the protocol header are held
 * until {@link expectProtocolHeader} (or {@link handshake}) reads it; everything after is decoded into
 * {@link ClientEvent}s that {@link next} returns in order. Sends do nothing once the socket is closed.
 */
export class ScriptedPeer {
  /** Every event decoded so far, heartbeats included. */
  readonly received: ClientEvent[] = [];
  /** Heartbeat frames received so far. */
  heartbeatsReceived = 0;
  /** Whether {@link next} returns heartbeats (default: they are only counted). */
  returnHeartbeats: boolean;
  /** Resolves when the socket has closed, whoever closed it. Never rejects. */
  readonly closed: Promise<void>;
  /** True once the client ended its side (FIN). */
  clientEnded = false;
  /** True while the script runs. */
  running = false;
  /** What the script is waiting for, if it waits (for timeout messages). */
  waitingFor: string | undefined;
  readonly decoder: FrameDecoder;
  readonly writer = new FrameWriter();
  private readonly timeoutMs: number;
  private readonly queue: ClientEvent[] = [];
  private header: Buffer | undefined = Buffer.alloc(0);
  private failure: unknown;
  private socketError: Error | undefined;
  private isClosed = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly wakers = new Set<() => void>();

  /** @internal Created by {@link ScriptedServer}. */
  constructor(
    /** The accepted socket, for what the peer's methods do not cover. */
    readonly socket: Socket,
    /** 1 for the server's first connection, 2 for the next, ... */
    readonly id: number,
    options: ScriptedServerOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.returnHeartbeats = options.returnHeartbeats ?? false;
    this.decoder = new FrameDecoder({
      onMethod: (channel, method) => this.event({ kind: 'method', channel, method, at: performance.now() }),
      onContent: (channel, method, properties, body) =>
        this.event({
          kind: 'content',
          channel,
          method,
          properties,
          body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
          at: performance.now(),
        }),
      onHeartbeat: () => {
        this.heartbeatsReceived++;
        this.event({ kind: 'heartbeat', at: performance.now() });
      },
    });
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('end', () => {
      this.clientEnded = true;
      this.wake();
    });
    socket.on('error', (e) => {
      this.socketError ??= e;
    });
    this.closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        this.stopHeartbeats();
        this.wake();
        resolve();
      });
    });
  }

  /** frame_max of the peer's decoder and writer (4096 until tuned; 0 means no limit). */
  get frameMax(): number {
    return this.decoder.frameMax;
  }

  set frameMax(value: number) {
    this.decoder.frameMax = value;
    this.writer.frameMax = value;
  }

  /** Reads the 8-byte protocol header; fails if it is not AMQP 0-9-1's. */
  async expectProtocolHeader(timeoutMs = this.timeoutMs): Promise<Buffer> {
    const received = (): Buffer => this.header ?? Buffer.alloc(0);
    if (this.header === undefined) throw this.error('the protocol header was already read');
    await this.waitUntil(() => received().length >= 8 || this.ended, 'the protocol header', timeoutMs);
    const bytes = received();
    if (bytes.length < 8) {
      throw new ConnectionEnded(
        `connection ${this.id}: ${this.endReason()} after ${bytes.length} bytes of the protocol header`,
      );
    }
    const header = bytes.subarray(0, 8);
    if (!header.equals(PROTOCOL_HEADER)) {
      throw this.error(
        `expected the AMQP 0-9-1 protocol header, got ${header.toString('hex').replace(/(..)(?!$)/g, '$1 ')} (${JSON.stringify(header.toString('latin1'))})`,
      );
    }
    this.header = undefined;
    this.push(bytes.subarray(8));
    return Buffer.from(header);
  }

  /**
   * Runs the server's side of the handshake: reads the protocol header if not yet read, then
   * start → start-ok, tune → tune-ok (after which decoder and writer use the client's frame_max, or the
   * proposed one when the client sent 0), open → open-ok. Returns what the client sent.
   */
  async handshake(options: HandshakeOptions = {}): Promise<HandshakeResult> {
    const timeout = options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {};
    if (this.header !== undefined) await this.expectProtocolHeader(options.timeoutMs);
    this.send(0, {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: options.serverProperties ?? DEFAULT_SERVER_PROPERTIES,
      mechanisms: options.mechanisms ?? 'PLAIN AMQPLAIN',
      locales: options.locales ?? 'en_US',
    });
    const startOk = await this.expect('connection.start-ok', { channel: 0, ...timeout });
    const proposed = { channelMax: 2047, frameMax: 131072, heartbeat: 60, ...options.tune };
    this.send(0, { name: 'connection.tune', ...proposed });
    const tuneOk = await this.expect('connection.tune-ok', { channel: 0, ...timeout });
    const frameMax = tuneOk.frameMax !== 0 ? tuneOk.frameMax : proposed.frameMax;
    try {
      this.frameMax = frameMax;
    } catch {
      throw this.error(`the client's tune-ok has frame_max ${tuneOk.frameMax}, below the minimum 4096`);
    }
    const open = await this.expect('connection.open', { channel: 0, ...timeout });
    this.send(0, { name: 'connection.open-ok' });
    return { startOk, tuneOk, open };
  }

  /**
   * The next event from the client (heartbeats only when {@link returnHeartbeats}). Rejects after
   * `timeoutMs`, when the connection closes, or with the `FrameError` when the client's bytes do not
   * decode; events that arrived before either are returned first.
   */
  next(timeoutMs = this.timeoutMs): Promise<ClientEvent> {
    return this.nextEvent(timeoutMs, 'the next frame');
  }

  /** The next method, which must be `name` (on `channel`, if given). Content methods are accepted too. */
  async expect<N extends MethodName>(name: N, options: ExpectOptions = {}): Promise<MethodOf<N>> {
    const event = await this.nextEvent(options.timeoutMs ?? this.timeoutMs, expected(name, options.channel));
    if (event.kind === 'heartbeat' || event.method.name !== name || !onChannel(event, options.channel)) {
      throw this.error(`expected ${expected(name, options.channel)}, got ${describeEvent(event)}`);
    }
    return event.method as MethodOf<N>;
  }

  /** The next event, which must be the content method `name` (on `channel`, if given) with its content. */
  async expectContent<N extends ContentMethod['name']>(
    name: N,
    options: ExpectOptions = {},
  ): Promise<ContentEvent<N>> {
    const what = `${expected(name, options.channel)} with content`;
    const event = await this.nextEvent(options.timeoutMs ?? this.timeoutMs, what);
    if (event.kind !== 'content' || event.method.name !== name || !onChannel(event, options.channel)) {
      throw this.error(`expected ${what}, got ${describeEvent(event)}`);
    }
    const { channel, properties, body } = event;
    return { channel, method: event.method as MethodOf<N>, properties, body };
  }

  /** Sends a method frame. False when the socket is no longer writable. */
  send(channel: number, method: MethodInit): boolean {
    this.writer.writeMethod(channel, method);
    return this.flush();
  }

  /** Sends a content method (basic.deliver, basic.return, basic.get-ok) with its header and body. */
  sendContent(channel: number, method: MethodInit, properties: BasicProperties, body: Uint8Array): boolean {
    this.writer.writeContent(channel, method, properties, body);
    return this.flush();
  }

  /** Sends one heartbeat frame. */
  sendHeartbeat(): boolean {
    this.writer.writeHeartbeat();
    return this.flush();
  }

  /** Sends bytes as they are (garbage, partial frames, a protocol header). */
  sendRaw(bytes: Uint8Array | string): boolean {
    if (!this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Sends a heartbeat every `intervalMs` until {@link stopHeartbeats} or the socket closes. */
  startHeartbeats(intervalMs: number): void {
    this.stopHeartbeats();
    this.heartbeatTimer = setInterval(() => this.sendHeartbeat(), intervalMs);
    this.heartbeatTimer.unref();
  }

  /** Stops the heartbeats {@link startHeartbeats} started. */
  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /**
   * Sends connection.close and waits for connection.close-ok, skipping anything else (as a broker
   * does), then ends the socket. True when the close-ok came; false when the connection closed or
   * `timeoutMs` passed first.
   */
  async closeConnection(
    replyCode: number,
    replyText: string,
    classId = 0,
    methodId = 0,
    timeoutMs = this.timeoutMs,
  ): Promise<boolean> {
    this.send(0, { name: 'connection.close', replyCode, replyText, classId, methodId });
    const deadline = performance.now() + timeoutMs;
    try {
      for (;;) {
        const left = Math.max(0, deadline - performance.now());
        const event = await this.nextEvent(left, 'connection.close-ok').catch((e: unknown) => {
          if (e instanceof ConnectionEnded || e instanceof ScriptTimeout) return undefined;
          throw e;
        });
        if (event === undefined) return false;
        if (event.kind === 'method' && event.method.name === 'connection.close-ok') return true;
      }
    } finally {
      this.end();
    }
  }

  /** Ends the server's side of the socket (FIN) after what was sent. */
  end(): void {
    this.stopHeartbeats();
    this.socket.end();
  }

  /**
   * Resets the connection (RST) at once. Once the server's side has ended (after {@link end}, or after
   * the client's FIN, which Node answers with its own) the socket is destroyed without a reset: Node
   * cannot reset a socket whose shutdown is under way (EINVAL, and the socket would never close).
   */
  destroy(): void {
    this.stopHeartbeats();
    if (this.socket.destroyed) return;
    if (this.socket.writableEnded) this.socket.destroy();
    else this.socket.resetAndDestroy();
  }

  private flush(): boolean {
    const bytes = this.writer.take();
    if (bytes === undefined) return true;
    return this.sendRaw(bytes);
  }

  private data(chunk: Buffer): void {
    if (this.header !== undefined) {
      this.header = Buffer.concat([this.header, chunk]);
      this.wake();
    } else {
      this.push(chunk);
    }
  }

  private push(bytes: Buffer): void {
    if (this.failure !== undefined || bytes.length === 0) return;
    try {
      this.decoder.push(bytes);
    } catch (e) {
      this.failure = e;
      this.wake();
    }
  }

  private event(event: ClientEvent): void {
    this.received.push(event);
    if (event.kind !== 'heartbeat' || this.returnHeartbeats) this.queue.push(event);
    this.wake();
  }

  private async nextEvent(timeoutMs: number, what: string): Promise<ClientEvent> {
    if (this.header !== undefined && !this.ended) {
      throw this.error(
        `waiting for ${what} before the protocol header was read: call expectProtocolHeader()`,
      );
    }
    await this.waitUntil(
      () => this.queue.length > 0 || this.failure !== undefined || this.ended,
      what,
      timeoutMs,
    );
    const event = this.queue.shift();
    if (event !== undefined) return event;
    if (this.failure !== undefined) throw this.failure;
    throw new ConnectionEnded(`connection ${this.id}: ${this.endReason()} while waiting for ${what}`);
  }

  /** Resolves when `ready()` holds, checking after every event; rejects after `timeoutMs`. */
  private async waitUntil(ready: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (ready()) return;
    this.waitingFor = what;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.wakers.delete(check);
          reject(
            new ScriptTimeout(`connection ${this.id}: timed out after ${timeoutMs} ms waiting for ${what}`),
          );
        }, timeoutMs);
        const check = (): void => {
          if (!ready()) return;
          clearTimeout(timer);
          this.wakers.delete(check);
          resolve();
        };
        this.wakers.add(check);
      });
    } finally {
      this.waitingFor = undefined;
    }
  }

  /** The client ended its side or the socket closed: nothing more will arrive. */
  private get ended(): boolean {
    return this.clientEnded || this.isClosed;
  }

  private wake(): void {
    for (const check of [...this.wakers]) check();
  }

  private endReason(): string {
    if (this.socketError !== undefined) return `the connection failed (${this.socketError.message})`;
    if (this.clientEnded) return 'the client closed the connection';
    return 'the connection was closed on the server side';
  }

  private error(message: string): Error {
    return new Error(`connection ${this.id}: ${message}`);
  }
}

/** The connection ended while the script waited. */
class ConnectionEnded extends Error {}

/** Nothing came within the timeout. */
class ScriptTimeout extends Error {}

function expected(name: string, channel: number | undefined): string {
  return channel === undefined ? name : `${name} on channel ${channel}`;
}

function onChannel(event: { readonly channel: number }, channel: number | undefined): boolean {
  return channel === undefined || event.channel === channel;
}

/** An event for messages: the method with its arguments and channel, or "a heartbeat". */
export function describeEvent(event: ClientEvent): string {
  if (event.kind === 'heartbeat') return 'a heartbeat';
  const { name, ...args } = event.method;
  const shown = inspect(args, { breakLength: Number.POSITIVE_INFINITY, depth: 3, maxStringLength: 200 });
  const content = event.kind === 'content' ? ` with a body of ${event.body.length} bytes` : '';
  return `${name} ${shown} on channel ${event.channel}${content}`;
}
