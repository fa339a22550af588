/**
 * A bare AMQP peer over the embedded broker's connector, speaking frames through the codec: for the
 * protocol violations the real client never commits (a second channel.open, a frame on a channel that
 * is not open, immediate publishing, oversized frames, a wrong protocol header).
 */
import {
  type BasicProperties,
  type FieldTable,
  FrameDecoder,
  FrameWriter,
  type Method,
  type MethodInit,
  PROTOCOL_HEADER,
} from '../../../src/protocol/index.js';
import type { EmbeddedBroker } from '../../../src/testing/index.js';
import type { Transport, TransportTarget } from '../../../src/transport/transport.js';

export type RawEvent =
  | { kind: 'method'; channel: number; method: Method }
  | { kind: 'content'; channel: number; method: Method; properties: BasicProperties; body: Uint8Array }
  | { kind: 'heartbeat' }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'closed'; error: Error | undefined };

const TARGET = {
  scheme: 'amqp',
  url: 'amqp://embedded:5672/',
  hostname: 'embedded',
  port: 5672,
  tls: undefined,
  socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
  timeoutMs: 1000,
  writeHighWaterMark: 1024 * 1024,
} as TransportTarget;

export class RawClient {
  readonly events: RawEvent[] = [];
  readonly writer = new FrameWriter();
  private readonly decoder: FrameDecoder;
  private transport!: Transport;
  rawBytes = false;

  private constructor() {
    this.decoder = new FrameDecoder({
      onMethod: (channel, method) => this.events.push({ kind: 'method', channel, method }),
      onContent: (channel, method, properties, body) =>
        this.events.push({ kind: 'content', channel, method, properties, body }),
      onHeartbeat: () => this.events.push({ kind: 'heartbeat' }),
    });
  }

  /** Connects; with `handshake`, runs the client side of the handshake too. */
  static async connect(
    broker: EmbeddedBroker,
    options: {
      handshake?: boolean;
      user?: string;
      password?: string;
      vhost?: string;
      capabilities?: FieldTable;
      frameMax?: number;
      heartbeat?: number;
    } = {},
  ): Promise<RawClient> {
    const client = new RawClient();
    client.transport = await broker.connector(
      TARGET,
      {
        onData: (chunk) => {
          if (client.rawBytes) client.events.push({ kind: 'bytes', bytes: chunk.slice() });
          else client.decoder.push(chunk);
        },
        onDrain: () => {},
        onClose: (error) => client.events.push({ kind: 'closed', error }),
      },
      new AbortController().signal,
    );
    if (options.handshake === false) return client;
    client.write(PROTOCOL_HEADER);
    await client.expect('connection.start');
    client.send(0, {
      name: 'connection.start-ok',
      clientProperties: { capabilities: options.capabilities ?? { authentication_failure_close: true } },
      mechanism: 'PLAIN',
      response: `\0${options.user ?? 'guest'}\0${options.password ?? 'guest'}`,
    });
    const tune = await client.next();
    if (tune.kind !== 'method' || tune.method.name !== 'connection.tune') {
      client.events.unshift(tune); // the login was refused: the test reads how
      return client;
    }
    const frameMax = options.frameMax ?? tune.method.frameMax;
    client.send(0, {
      name: 'connection.tune-ok',
      channelMax: tune.method.channelMax,
      frameMax,
      heartbeat: options.heartbeat ?? 0,
    });
    client.writer.frameMax = frameMax;
    client.decoder.frameMax = frameMax;
    client.send(0, { name: 'connection.open', virtualHost: options.vhost ?? '/' });
    await client.next();
    return client;
  }

  write(bytes: Uint8Array): void {
    this.transport.write(bytes);
  }

  send(channel: number, method: MethodInit): void {
    this.writer.writeMethod(channel, method);
    this.write(this.writer.take()!);
  }

  publish(channel: number, method: MethodInit, properties: BasicProperties, body: string): void {
    this.writer.writeContent(channel, method, properties, new TextEncoder().encode(body));
    this.write(this.writer.take()!);
  }

  /** The next event (waits for the broker's output). */
  async next(): Promise<RawEvent> {
    // The link moves bytes on the Promise job queue only: awaiting is enough, even under fake timers.
    for (let i = 0; i < 1000 && this.events.length === 0; i++) await Promise.resolve();
    const event = this.events.shift();
    if (event === undefined) throw new Error('no event from the broker');
    return event;
  }

  /** The next event, which must be the method `name`. */
  async expect<N extends Method['name']>(name: N): Promise<Extract<Method, { name: N }>> {
    const event = await this.next();
    if ((event.kind !== 'method' && event.kind !== 'content') || event.method.name !== name) {
      throw new Error(
        `expected ${name}, got ${JSON.stringify(event, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
    }
    return event.method as Extract<Method, { name: N }>;
  }

  /** Opens channel `n`. */
  async channel(n: number): Promise<void> {
    this.send(n, { name: 'channel.open' });
    await this.expect('channel.open-ok');
  }
}
