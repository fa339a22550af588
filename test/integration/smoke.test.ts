/**
 * Smoke test of the codec against a real RabbitMQ (found by test/support/broker.ts; no broker is a
 * failure, never a skip): the handshake, a channel, a queue, a publish with properties and headers read
 * back with basic.get, a clean close, and the decoder's answer to a protocol header the server rejects.
 */
import { connect, type Socket } from 'node:net';
import { Decimal, FrameError, field, fieldTypesOf } from '../../src/node.js';
import { FrameDecoder, type Method, PROTOCOL_HEADER } from '../../src/protocol/index.js';
import { AmqpTestSocket } from '../support/amqp-socket.js';
import { type BrokerEndpoint, brokerEndpoint, stopBroker } from '../support/broker.js';

let endpoint: BrokerEndpoint;
const sockets: { destroy(): void }[] = [];

// Generous: when the broker comes from testcontainers, this includes pulling and starting the image.
beforeAll(async () => {
  endpoint = await brokerEndpoint();
}, 180_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await stopBroker();
}, 60_000);

async function open(): Promise<AmqpTestSocket> {
  const amqp = await AmqpTestSocket.connect(endpoint);
  sockets.push(amqp);
  return amqp;
}

describe('handshake with RabbitMQ', () => {
  it('decodes connection.start: version 0-9, PLAIN, RabbitMQ server properties', async () => {
    const amqp = await open();
    amqp.sendRaw(PROTOCOL_HEADER);
    const event = await amqp.next();
    expect(event.kind).toBe('method');
    expect(event.channel).toBe(0);
    if (event.kind !== 'method' || event.method.name !== 'connection.start') {
      throw new Error(`expected connection.start, got ${event.kind}`);
    }
    const start = event.method;
    expect(start.versionMajor).toBe(0);
    expect(start.versionMinor).toBe(9);
    expect(start.mechanisms.split(' ')).toContain('PLAIN');
    expect(start.locales.split(' ')).toContain('en_US');
    const props = start.serverProperties;
    expect(props.product).toBe('RabbitMQ');
    expect(typeof props.version).toBe('string');
    expect(props.version).toMatch(/^\d+\.\d+/);
    expect(props.capabilities).toEqual(expect.objectContaining({ publisher_confirms: true }));
    expect(typeof props.capabilities).toBe('object');
    amqp.destroy();
  });

  it('completes the handshake, publishes with properties and headers, reads the message back, closes', async () => {
    const amqp = await open();
    const { tune, openOk, frameMax } = await amqp.handshake();
    expect(tune.method.frameMax).toBeGreaterThanOrEqual(4096);
    expect(frameMax).toBe(tune.method.frameMax);
    expect(openOk.method.name).toBe('connection.open-ok');
    expect(openOk.channel).toBe(0);

    amqp.send(1, { name: 'channel.open' });
    const channelOpenOk = await amqp.expectMethod('channel.open-ok');
    expect(channelOpenOk.channel).toBe(1);

    amqp.send(1, { name: 'queue.declare', queue: '', exclusive: true, autoDelete: true });
    const declareOk = (await amqp.expectMethod('queue.declare-ok')).method;
    expect(declareOk.queue).toMatch(/^amq\.gen-/);
    expect(declareOk.messageCount).toBe(0);
    expect(declareOk.consumerCount).toBe(0);

    const body = Buffer.from(JSON.stringify({ hello: 'rabbit', n: 42 }));
    const timestamp = new Date(Date.UTC(2024, 4, 17, 12, 30, 45));
    const big = 2n ** 60n + 7n;
    amqp.publish(1, '', declareOk.queue, body, {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr-1',
      messageId: 'msg-1',
      timestamp,
      type: 'smoke',
      appId: 'rxamqp-smoke',
      headers: {
        tenant: 'acme',
        retries: 3,
        tiny: field.int8(-5),
        ratio: field.float32(0.25),
        price: new Decimal(2, 1999),
        huge: big,
        nested: { ok: true, list: [1, 'two', null] },
        raw: Buffer.from([0, 255, 7]),
      },
    });

    amqp.send(1, { name: 'basic.get', queue: declareOk.queue, noAck: true });
    const got = await amqp.next();
    if (got.kind !== 'content' || got.method.name !== 'basic.get-ok') {
      throw new Error(`expected basic.get-ok with content, got ${got.kind}`);
    }
    expect(got.channel).toBe(1);
    expect(got.method.routingKey).toBe(declareOk.queue);
    expect(got.method.exchange).toBe('');
    expect(got.method.redelivered).toBe(false);
    expect(got.method.messageCount).toBe(0);
    expect(got.body.equals(body)).toBe(true);
    const { headers, ...rest } = got.properties;
    expect(rest).toEqual({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr-1',
      messageId: 'msg-1',
      timestamp,
      type: 'smoke',
      appId: 'rxamqp-smoke',
    });
    if (headers === undefined) throw new Error('headers missing from the delivered message');
    expect(headers.tenant).toBe('acme');
    expect(headers.retries).toBe(3);
    expect(headers.tiny).toBe(-5);
    expect(headers.ratio).toBe(0.25);
    expect(headers.price).toBeInstanceOf(Decimal);
    expect(String(headers.price)).toBe('19.99');
    expect(headers.huge).toBe(big);
    expect(headers.nested).toEqual({ ok: true, list: [1, 'two', null] });
    expect(Buffer.isBuffer(headers.raw)).toBe(true);
    expect([...(headers.raw as Buffer)]).toEqual([0, 255, 7]);
    expect(fieldTypesOf(headers)).toEqual({ tiny: 'b', ratio: 'f' });

    amqp.send(1, { name: 'basic.get', queue: declareOk.queue, noAck: true });
    await amqp.expectMethod('basic.get-empty');

    amqp.send(1, { name: 'channel.close', replyCode: 200, replyText: 'done', classId: 0, methodId: 0 });
    await amqp.expectMethod('channel.close-ok');
    const closeOk = await amqp.close();
    expect(closeOk.channel).toBe(0);
    expect(amqp.events.some((e) => e.kind === 'heartbeat')).toBe(false);
  });
});

describe('protocol header mismatch', () => {
  it('makes the decoder throw FrameError PROTOCOL_MISMATCH on the header the server answers with', async () => {
    const received = await new Promise<Buffer>((resolve, reject) => {
      const socket: Socket = connect({ host: endpoint.host, port: endpoint.port });
      sockets.push(socket);
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('the server did not close the connection after a wrong protocol header'));
      }, 10_000);
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', (e: NodeJS.ErrnoException) => {
        // RabbitMQ may reset the connection right after its header; 'close' follows and resolves.
        if (e.code === 'ECONNRESET') return;
        clearTimeout(timer);
        reject(e);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      });
      // AMQP 0-10: "AMQP", class 1, instance 1, version 0-10.
      socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 10]));
    });
    // The server answers with the header of the protocol it speaks and closes.
    expect(received.subarray(0, 4).toString('latin1')).toBe('AMQP');
    expect(received.length).toBe(8);

    const methods: Method[] = [];
    const decoder = new FrameDecoder({
      onMethod: (_channel, method) => methods.push(method),
      onContent: () => {
        throw new Error('unexpected content');
      },
      onHeartbeat: () => {
        throw new Error('unexpected heartbeat');
      },
    });
    let error: unknown;
    try {
      decoder.push(received);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FrameError);
    expect((error as FrameError).code).toBe('PROTOCOL_MISMATCH');
    expect((error as FrameError).replyCode).toBe(501);
    expect(methods).toEqual([]);
    // The decoder stays failed.
    expect(() => decoder.push(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]))).toThrow(FrameError);
  });
});
