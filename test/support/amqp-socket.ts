/**
 * A test-only AMQP connection driven by hand with the codec: a `net` socket, a {@link FrameWriter} for
 * what the test sends and a {@link FrameDecoder} for what the server sends. Every decoded event keeps
 * the exact bytes of the frames it was decoded from, so tests and the golden capture can look at the
 * server's wire bytes. Not a client: no heartbeats, no channel bookkeeping, one waiter at a time.
 *
 * @module
 */
import { connect, type Socket } from 'node:net';
import type { BasicProperties } from '../../src/node.js';
import {
  type ContentMethod,
  FrameDecoder,
  FrameWriter,
  type Method,
  type MethodInit,
  type MethodName,
  type MethodOf,
  PROTOCOL_HEADER,
} from '../../src/protocol/index.js';
import type { BrokerEndpoint } from './broker.js';

/** Something the decoder handed over, with the bytes of the frames it came from. */
export type ServerEvent =
  | {
      readonly kind: 'method';
      readonly channel: number;
      readonly method: Method;
      readonly raw: Buffer;
      readonly frames: number;
    }
  | {
      readonly kind: 'content';
      readonly channel: number;
      readonly method: ContentMethod;
      readonly properties: BasicProperties;
      readonly body: Buffer;
      readonly raw: Buffer;
      readonly frames: number;
    }
  | { readonly kind: 'heartbeat'; readonly channel: 0; readonly raw: Buffer; readonly frames: 1 };

/** Options of {@link AmqpTestSocket.handshake}. */
export interface HandshakeOptions {
  /** frame_max sent in tune-ok; default: the server's proposal. */
  readonly frameMax?: number;
  /** Client properties sent in start-ok. */
  readonly clientProperties?: Record<string, string>;
}

/** A decoded method frame (or content method) with a known name. */
export type MethodEvent<N extends MethodName> = Extract<ServerEvent, { kind: 'method' | 'content' }> & {
  readonly method: MethodOf<N>;
};

/** What the handshake received. */
export interface HandshakeResult {
  readonly start: MethodEvent<'connection.start'>;
  readonly tune: MethodEvent<'connection.tune'>;
  readonly openOk: MethodEvent<'connection.open-ok'>;
  /** The frame_max both sides use from now on. */
  readonly frameMax: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const FRAME_HEADER_SIZE = 7;

/**
 * A raw AMQP 0-9-1 connection for tests.
 *
 * @example
 * ```ts
 * const amqp = await AmqpTestSocket.connect(await brokerEndpoint());
 * await amqp.handshake();
 * amqp.send(1, { name: 'channel.open' });
 * await amqp.expectMethod('channel.open-ok');
 * await amqp.close();
 * ```
 */
export class AmqpTestSocket {
  /** Every event decoded so far, in order. */
  readonly events: ServerEvent[] = [];
  /** Every byte the server sent, in order. */
  readonly received: Buffer[] = [];
  readonly decoder: FrameDecoder;
  readonly writer = new FrameWriter();
  private cursor = 0;
  private pending: Buffer = Buffer.alloc(0);
  private frameBytes: Buffer[] = [];
  private failure: Error | undefined;
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(
    readonly socket: Socket,
    readonly endpoint: BrokerEndpoint,
  ) {
    this.decoder = new FrameDecoder({
      onMethod: (channel, method) => this.emit({ kind: 'method', channel, method, ...this.takeRaw() }),
      onContent: (channel, method, properties, body) =>
        this.emit({
          kind: 'content',
          channel,
          method,
          properties,
          body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
          ...this.takeRaw(),
        }),
      onHeartbeat: () => {
        const { raw } = this.takeRaw();
        this.emit({ kind: 'heartbeat', channel: 0, raw, frames: 1 });
      },
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  /** Opens a TCP connection to the broker (nothing is sent yet). */
  static connect(endpoint: BrokerEndpoint, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<AmqpTestSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: endpoint.host, port: endpoint.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no TCP connection to ${endpoint.host}:${endpoint.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new AmqpTestSocket(socket, endpoint));
      });
    });
  }

  /** All bytes received so far, concatenated. */
  get receivedBytes(): Buffer {
    return Buffer.concat(this.received);
  }

  /** True once the server closed the TCP connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Writes raw bytes. */
  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Encodes and sends one method frame. */
  send(channel: number, method: MethodInit): void {
    this.writer.writeMethod(channel, method);
    this.flush();
  }

  /** Encodes and sends a basic.publish with its content. */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties?: BasicProperties,
    mandatory?: boolean,
  ): void {
    this.writer.writePublish(channel, exchange, routingKey, body, properties, mandatory);
    this.flush();
  }

  /** The next event not yet returned, waiting up to `timeoutMs` for it. */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerEvent> {
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

  /** The next event, which must be the method `name` (content methods included). */
  async expectMethod<N extends MethodName>(name: N, timeoutMs?: number): Promise<MethodEvent<N>> {
    const event = await this.next(timeoutMs);
    if (event.kind === 'heartbeat' || event.method.name !== name) {
      const got = event.kind === 'heartbeat' ? 'a heartbeat' : describeMethod(event.method);
      throw new Error(`expected ${name} from the server, got ${got}`);
    }
    return event as MethodEvent<N>;
  }

  /**
   * Sends the protocol header and runs connection.start → start-ok (PLAIN), tune → tune-ok,
   * open → open-ok with the endpoint's credentials and vhost. Heartbeats are turned off.
   */
  async handshake(options: HandshakeOptions = {}): Promise<HandshakeResult> {
    this.sendRaw(PROTOCOL_HEADER);
    const start = await this.expectMethod('connection.start');
    const { username, password, vhost } = this.endpoint;
    this.send(0, {
      name: 'connection.start-ok',
      clientProperties: { product: 'rxamqp-tests', ...options.clientProperties },
      mechanism: 'PLAIN',
      response: `\0${username}\0${password}`,
      locale: 'en_US',
    });
    const tune = await this.expectMethod('connection.tune');
    const serverFrameMax = tune.method.frameMax;
    const frameMax = options.frameMax ?? serverFrameMax;
    this.send(0, { name: 'connection.tune-ok', channelMax: tune.method.channelMax, frameMax, heartbeat: 0 });
    this.writer.frameMax = frameMax;
    this.decoder.frameMax = frameMax;
    this.send(0, { name: 'connection.open', virtualHost: vhost });
    const openOk = await this.expectMethod('connection.open-ok');
    return { start, tune, openOk, frameMax };
  }

  /** Sends connection.close, waits for close-ok and ends the socket. */
  async close(timeoutMs?: number): Promise<ServerEvent> {
    this.send(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    const closeOk = await this.expectMethod('connection.close-ok', timeoutMs);
    this.socket.end();
    return closeOk;
  }

  /** Closes the socket at once, whatever its state. Safe to call twice. */
  destroy(): void {
    this.socket.destroy();
  }

  private flush(): void {
    const bytes = this.writer.take();
    // take() hands out a view that the writer never writes again, so it can go to the socket as is.
    if (bytes !== undefined) this.socket.write(bytes);
  }

  /**
   * Cuts the stream into whole frames and feeds the decoder one frame at a time, so each decoded event
   * can carry exactly the frames it came from. Bytes that are not a frame (a protocol header sent back
   * on a version mismatch) go to the decoder as they are, for it to reject.
   */
  private onData(chunk: Buffer): void {
    this.received.push(chunk);
    if (this.failure !== undefined) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      while (this.pending.length > 0) {
        if (this.pending[0] === 0x41 /* 'A' of "AMQP" */) {
          const rest = this.pending;
          this.pending = Buffer.alloc(0);
          this.decoder.push(rest);
          return;
        }
        if (this.pending.length < FRAME_HEADER_SIZE) return;
        const total = this.pending.readUInt32BE(3) + FRAME_HEADER_SIZE + 1;
        if (this.pending.length < total) return;
        const frame = this.pending.subarray(0, total);
        this.pending = this.pending.subarray(total);
        this.frameBytes.push(frame);
        this.decoder.push(frame);
      }
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private takeRaw(): { raw: Buffer; frames: number } {
    const frames = this.frameBytes.length;
    const raw = Buffer.concat(this.frameBytes);
    this.frameBytes = [];
    return { raw, frames };
  }

  private emit(event: ServerEvent): void {
    this.events.push(event);
    this.notify();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.notify();
  }

  private notify(): void {
    this.wake?.();
  }
}

/** A method's name with the reply code and text when it has them (for error messages). */
export function describeMethod(method: Method): string {
  if ('replyCode' in method && 'replyText' in method)
    return `${method.name} ${method.replyCode} ${method.replyText}`;
  return method.name;
}
