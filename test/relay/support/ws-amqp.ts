/**
 * An AMQP 0-9-1 session driven by hand over a WebSocket through the relay, with the project's codec
 * (FrameWriter to send, FrameDecoder to read): what proves that the relay's byte copy carries a real
 * broker conversation, login included. Not a client: no heartbeats, one waiter at a time.
 *
 * @example
 * ```ts
 * const amqp = new WsAmqpSession(await openClient(url));
 * await amqp.login('guest', 'guest');
 * amqp.send(1, { name: 'channel.open' });
 * await amqp.expectMethod('channel.open-ok');
 * ```
 *
 * @module
 */
import type { BasicProperties } from '../../../src/node.js';
import {
  FrameDecoder,
  FrameWriter,
  type Method,
  type MethodInit,
  type MethodName,
  type MethodOf,
  PROTOCOL_HEADER,
} from '../../../src/protocol/index.js';
import type { TestClient } from './clients.js';

/** A method from the broker, with the body when it carried content. */
export interface Received {
  readonly channel: number;
  readonly method: Method;
  readonly body: Buffer | undefined;
}

export class WsAmqpSession {
  readonly events: Received[] = [];
  readonly writer = new FrameWriter();
  readonly decoder: FrameDecoder;
  private cursor = 0;
  private failure: unknown;
  private wake: (() => void) | undefined;

  constructor(readonly client: TestClient) {
    this.decoder = new FrameDecoder({
      onMethod: (channel, method) => this.emit({ channel, method, body: undefined }),
      onContent: (channel, method, _properties, body) =>
        this.emit({ channel, method, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) }),
      onHeartbeat: () => {},
    });
    client.onMessage = (data) => {
      try {
        this.decoder.push(data);
      } catch (e) {
        this.failure = e;
        this.wake?.();
      }
    };
    void client.closed.then(() => this.wake?.());
  }

  /** Sends one method frame. */
  send(channel: number, method: MethodInit): void {
    this.writer.writeMethod(channel, method);
    this.flush();
  }

  /** Sends a basic.publish with its content. */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties = {},
  ): void {
    this.writer.writePublish(channel, exchange, routingKey, body, properties);
    this.flush();
  }

  /** The next method from the broker, which must be `name`. */
  async expectMethod<N extends MethodName>(name: N): Promise<Received & { method: MethodOf<N> }> {
    for (;;) {
      const event = this.events[this.cursor];
      if (event !== undefined) {
        this.cursor++;
        if (event.method.name !== name) throw new Error(`expected ${name}, got ${event.method.name}`);
        return event as Received & { method: MethodOf<N> };
      }
      if (this.failure !== undefined) throw this.failure;
      const closed = await Promise.race([
        this.client.closed.then(() => true),
        new Promise<false>((resolve) => {
          this.wake = () => resolve(false);
        }),
      ]);
      this.wake = undefined;
      if (closed && this.events[this.cursor] === undefined) {
        const { code } = await this.client.closed;
        throw new Error(`the WebSocket closed (${code}) while waiting for ${name}`);
      }
    }
  }

  /** Protocol header, then start → start-ok (PLAIN), tune → tune-ok, open → open-ok. */
  async login(username: string, password: string, vhost = '/'): Promise<void> {
    this.client.send(PROTOCOL_HEADER);
    await this.expectMethod('connection.start');
    this.sendStartOk(username, password);
    const tune = await this.expectMethod('connection.tune');
    const { channelMax, frameMax } = tune.method;
    this.send(0, { name: 'connection.tune-ok', channelMax, frameMax, heartbeat: 0 });
    this.writer.frameMax = frameMax;
    this.decoder.frameMax = frameMax;
    this.send(0, { name: 'connection.open', virtualHost: vhost });
    await this.expectMethod('connection.open-ok');
  }

  /**
   * connection.start-ok with a PLAIN response. Asks for a connection.close on a failed login (RabbitMQ
   * otherwise drops the socket without a word).
   */
  sendStartOk(username: string, password: string): void {
    this.send(0, {
      name: 'connection.start-ok',
      clientProperties: {
        product: 'rxamqp relay tests',
        capabilities: { authentication_failure_close: true },
      },
      mechanism: 'PLAIN',
      response: `\0${username}\0${password}`,
      locale: 'en_US',
    });
  }

  private flush(): void {
    const bytes = this.writer.take();
    if (bytes !== undefined) this.client.send(bytes);
  }

  private emit(event: Received): void {
    this.events.push(event);
    this.wake?.();
  }
}
