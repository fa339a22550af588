/** The handshake and protocol rules, seen from a bare peer and from the client. */
import { lastValueFrom } from 'rxjs';
import { AuthenticationError, ConnectionClosedError } from '../../../src/index.js';
import { PROTOCOL_HEADER } from '../../../src/protocol/index.js';
import { connectTo, EmbeddedBroker, rejection } from './helpers.js';
import { RawClient } from './raw-client.js';

let broker: EmbeddedBroker;
beforeEach(() => {
  broker = new EmbeddedBroker();
});

describe('handshake', () => {
  it('offers PLAIN and AMQPLAIN and RabbitMQ 3.10 capabilities, and tunes as RabbitMQ', async () => {
    const raw = await RawClient.connect(broker, { handshake: false });
    raw.write(PROTOCOL_HEADER);
    const start = await raw.expect('connection.start');
    expect(start).toMatchObject({
      versionMajor: 0,
      versionMinor: 9,
      mechanisms: 'PLAIN AMQPLAIN',
      locales: 'en_US',
    });
    expect(start.serverProperties.capabilities).toMatchObject({
      publisher_confirms: true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
    });
    raw.send(0, {
      name: 'connection.start-ok',
      clientProperties: {},
      mechanism: 'PLAIN',
      response: '\0guest\0guest',
    });
    expect(await raw.expect('connection.tune')).toMatchObject({
      channelMax: 2047,
      frameMax: 131072,
      heartbeat: 60,
    });
  });

  it('answers a wrong protocol header with its own and hangs up', async () => {
    const raw = await RawClient.connect(broker, { handshake: false });
    raw.rawBytes = true;
    raw.write(new TextEncoder().encode('AMQP\x00\x00\x08\x00'));
    expect(await raw.next()).toEqual({ kind: 'bytes', bytes: PROTOCOL_HEADER });
    expect(await raw.next()).toEqual({ kind: 'closed', error: undefined });
  });

  it('refuses bad credentials with 403 when the client asked for authentication_failure_close', async () => {
    const raw = await RawClient.connect(broker, { password: 'wrong' });
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 403,
      replyText:
        'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.',
      classId: 0,
      methodId: 0,
    });
    expect(await raw.next()).toEqual({ kind: 'closed', error: undefined });
    const e = await rejection(connectTo(broker, 'amqp://guest:wrong@embedded'));
    expect(e).toBeInstanceOf(AuthenticationError);
  });

  it('logs in with AMQPLAIN too', async () => {
    const conn = await connectTo(broker, 'amqp://guest:guest@embedded', { authMechanism: 'AMQPLAIN' });
    expect(broker.connections()[0]).toMatchObject({ user: 'guest', state: 'open' });
    await lastValueFrom(conn.close());
    const e = await rejection(connectTo(broker, 'amqp://guest:nope@embedded', { authMechanism: 'AMQPLAIN' }));
    expect(e).toBeInstanceOf(AuthenticationError);
    expect(e.message).toContain('Login was refused using authentication mechanism AMQPLAIN');
  });

  it('only hangs up on bad credentials without that capability', async () => {
    const raw = await RawClient.connect(broker, { password: 'wrong', capabilities: {} });
    expect(await raw.next()).toEqual({ kind: 'closed', error: undefined });
  });

  it('checks users and their vhosts, with 530 for a vhost that does not exist', async () => {
    const b = new EmbeddedBroker({
      users: [
        { username: 'app', password: 'pw', vhosts: ['orders'] },
        { username: 'admin', password: 'root' },
      ],
      vhosts: ['/', 'orders'],
    });
    const conn = await connectTo(b, 'amqp://app:pw@embedded/orders');
    expect(b.connections()[0]).toMatchObject({ user: 'app', vhost: 'orders' });
    await lastValueFrom(conn.close());
    const e = await rejection(connectTo(b, 'amqp://app:pw@embedded/%2F'));
    expect(e).toMatchObject({
      replyCode: 530,
      replyText: "NOT_ALLOWED - access to vhost '/' refused for user 'app'",
    });
    const e2 = await rejection(connectTo(b, 'amqp://admin:root@embedded/nope'));
    expect(e2).toBeInstanceOf(ConnectionClosedError);
    expect(e2).toMatchObject({
      replyCode: 530,
      replyText: 'NOT_ALLOWED - vhost nope not found',
      classId: 10,
      methodId: 40,
    });
  });

  it('negotiates frame_max and splits large bodies into frames', async () => {
    const b = new EmbeddedBroker({ frameMax: 4096 });
    const conn = await connectTo(b);
    expect(conn.tune.frameMax).toBe(4096);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('big'));
    const body = new Uint8Array(50_000).map((_, i) => i & 0xff);
    await lastValueFrom(ch.publish('', 'big', body));
    const d = await lastValueFrom(ch.get('big'));
    expect(Buffer.from(d.body).equals(Buffer.from(body))).toBe(true);
    await lastValueFrom(conn.close());
  });

  it('answers heartbeats when it has no timers of its own', async () => {
    const raw = await RawClient.connect(broker, { heartbeat: 10 });
    raw.write(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0xce]));
    expect(await raw.next()).toEqual({ kind: 'heartbeat' });
  });
});

describe('protocol errors (hard)', () => {
  it('504 for a second channel.open', async () => {
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.send(1, { name: 'channel.open' });
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 504,
      replyText: "CHANNEL_ERROR - second 'channel.open' seen",
      classId: 20,
      methodId: 10,
    });
    raw.send(0, { name: 'connection.close-ok' });
    expect(await raw.next()).toEqual({ kind: 'closed', error: undefined });
    expect(broker.connections()).toEqual([]);
  });

  it('504 for a method or content on a channel that is not open', async () => {
    const raw = await RawClient.connect(broker);
    raw.send(2, { name: 'queue.declare', queue: '' });
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 504,
      replyText: "CHANNEL_ERROR - expected 'channel.open'",
      classId: 50,
      methodId: 10,
    });
    const raw2 = await RawClient.connect(broker);
    raw2.publish(3, { name: 'basic.publish', exchange: '', routingKey: 'q' }, {}, 'x');
    expect(await raw2.expect('connection.close')).toMatchObject({
      replyCode: 504,
      classId: 60,
      methodId: 40,
    });
  });

  it('504 for channel methods on channel 0, 503 for connection methods on a channel', async () => {
    const raw = await RawClient.connect(broker);
    raw.send(0, { name: 'channel.open' });
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 504,
      replyText: 'CHANNEL_ERROR - unexpected method in connection state running',
    });
    const raw2 = await RawClient.connect(broker);
    await raw2.channel(1);
    raw2.send(1, { name: 'connection.open' });
    expect(await raw2.expect('connection.close')).toMatchObject({
      replyCode: 503,
      replyText: 'COMMAND_INVALID - unimplemented method',
      classId: 10,
      methodId: 40,
    });
  });

  it('540 for immediate publishing', async () => {
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.publish(1, { name: 'basic.publish', exchange: '', routingKey: 'q', immediate: true }, {}, 'x');
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 540,
      replyText: 'NOT_IMPLEMENTED - immediate=true',
      classId: 60,
      methodId: 40,
    });
  });

  it('501 for a frame larger than frame_max, with RabbitMQ’s text', async () => {
    const raw = await RawClient.connect(broker, { frameMax: 4096 });
    await raw.channel(1);
    raw.writer.frameMax = 0;
    raw.publish(1, { name: 'basic.publish', exchange: '', routingKey: 'q' }, {}, 'x'.repeat(5000));
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 501,
      replyText: 'FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,5000,4088}',
    });
  });

  it('501 for an unknown frame type or a bad frame end', async () => {
    const raw = await RawClient.connect(broker);
    raw.write(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0xce]));
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 501,
      replyText: 'FRAME_ERROR - type 9, all octets = <<>>: unknown_frame',
    });
    const raw2 = await RawClient.connect(broker);
    raw2.write(new Uint8Array([1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 50, 0]));
    expect(await raw2.expect('connection.close')).toMatchObject({ replyCode: 501 });
  });

  it('505 for content frames out of order, with RabbitMQ’s texts', async () => {
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.write(new Uint8Array([2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xce]));
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 505,
      replyText: 'UNEXPECTED_FRAME - expected method frame, got non method frame instead',
      classId: 0,
      methodId: 0,
    });
    const raw2 = await RawClient.connect(broker);
    await raw2.channel(1);
    raw2.writer.writeContent(
      1,
      { name: 'basic.publish', exchange: '', routingKey: 'q' },
      {},
      new Uint8Array(3),
    );
    const publish = raw2.writer.take()!;
    const methodFrame = publish.subarray(
      0,
      8 + new DataView(publish.buffer, publish.byteOffset).getUint32(3),
    );
    raw2.write(methodFrame);
    raw2.send(1, { name: 'basic.qos', prefetchCount: 1 });
    expect(await raw2.expect('connection.close')).toMatchObject({
      replyCode: 505,
      replyText:
        'UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead',
      classId: 60,
      methodId: 40,
    });
  });

  it('hangs up on an unknown method, as RabbitMQ', async () => {
    const raw = await RawClient.connect(broker);
    raw.write(new Uint8Array([1, 0, 0, 0, 0, 0, 4, 0, 99, 0, 1, 0xce]));
    expect(await raw.next()).toEqual({ kind: 'closed', error: undefined });
  });

  it('530 past the negotiated channel_max', async () => {
    const b = new EmbeddedBroker({ channelMax: 2 });
    const raw = await RawClient.connect(b);
    await raw.channel(1);
    await raw.channel(7);
    raw.send(3, { name: 'channel.open' });
    expect(await raw.expect('connection.close')).toMatchObject({
      replyCode: 530,
      replyText: 'NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)',
    });
  });

  it('ignores everything but the close handshake on a channel it closed', async () => {
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.send(1, { name: 'queue.declare', queue: 'nope', passive: true });
    expect(await raw.expect('channel.close')).toMatchObject({ replyCode: 404 });
    raw.send(1, { name: 'queue.declare', queue: 'ignored' });
    raw.send(1, { name: 'channel.close-ok' });
    await raw.channel(1);
    expect(broker.queue('ignored')).toBeUndefined();
  });

  it('tells of a cancelled consumer after the reply to the delete that caused it', async () => {
    const raw = await RawClient.connect(broker, { capabilities: { consumer_cancel_notify: true } });
    await raw.channel(1);
    raw.send(1, { name: 'queue.declare', queue: 'q' });
    await raw.expect('queue.declare-ok');
    raw.send(1, { name: 'basic.consume', queue: 'q', consumerTag: 'c' });
    await raw.expect('basic.consume-ok');
    raw.send(1, { name: 'queue.delete', queue: 'q' });
    expect(await raw.expect('queue.delete-ok')).toMatchObject({ messageCount: 0 });
    expect(await raw.expect('basic.cancel')).toEqual({
      name: 'basic.cancel',
      consumerTag: 'c',
      nowait: true,
    });
  });

  it('does not tell a client that did not ask for consumer_cancel_notify', async () => {
    const raw = await RawClient.connect(broker, { capabilities: {} });
    await raw.channel(1);
    raw.send(1, { name: 'queue.declare', queue: 'q' });
    await raw.expect('queue.declare-ok');
    raw.send(1, { name: 'basic.consume', queue: 'q', consumerTag: 'c' });
    await raw.expect('basic.consume-ok');
    broker.deleteQueue('q');
    raw.send(1, { name: 'basic.qos', prefetchCount: 1 });
    expect(await raw.next()).toMatchObject({ kind: 'method', method: { name: 'basic.qos-ok' } });
  });

  it('confirms a batch of publishes with one multiple ack, but none that came with a channel error', async () => {
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.send(1, { name: 'queue.declare', queue: 'q' });
    await raw.expect('queue.declare-ok');
    raw.send(1, { name: 'confirm.select' });
    await raw.expect('confirm.select-ok');
    for (let i = 0; i < 3; i++)
      raw.writer.writeContent(1, { name: 'basic.publish', routingKey: 'q' }, {}, new Uint8Array(1));
    raw.write(raw.writer.take()!);
    expect(await raw.expect('basic.ack')).toEqual({ name: 'basic.ack', deliveryTag: 3, multiple: true });
    raw.writer.writeContent(1, { name: 'basic.publish', routingKey: 'q' }, {}, new Uint8Array(1));
    raw.writer.writeContent(
      1,
      { name: 'basic.publish', exchange: 'nope', routingKey: 'q' },
      {},
      new Uint8Array(1),
    );
    raw.write(raw.writer.take()!);
    expect(await raw.expect('channel.close')).toMatchObject({ replyCode: 404, classId: 60, methodId: 40 });
  });

  it('access.request is answered with ticket 1', async () => {
    const raw = await RawClient.connect(broker);
    await raw.channel(1);
    raw.send(1, { name: 'access.request' });
    expect(await raw.expect('access.request-ok')).toMatchObject({ ticket: 1 });
  });
});
