/**
 * Publisher confirms against a scripted server: out-of-order and `multiple` confirms smoothed into
 * one outcome per publish in sequence order, returns attached to their publish, every outstanding
 * publish settled when the channel ends, and confirms the broker should never send.
 */
import { lastValueFrom } from 'rxjs';
import {
  type Channel,
  type ChannelClosedError,
  type Confirmation,
  type Connection,
  ConnectionClosedError,
  openConnection,
  type PublishOutcome,
} from '../../src/node.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Opens channel 1 and answers confirm.select on it. */
async function acceptConfirmChannel(peer: ScriptedPeer): Promise<void> {
  await peer.expectProtocolHeader();
  await peer.handshake();
  await peer.expect('channel.open', { channel: 1 });
  peer.send(1, { name: 'channel.open-ok' });
  await peer.expect('confirm.select', { channel: 1 });
  peer.send(1, { name: 'confirm.select-ok' });
}

/** Waits for `n` publishes; returns their routing keys. */
async function publishes(peer: ScriptedPeer, n: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push((await peer.expectContent('basic.publish')).method.routingKey);
  return keys;
}

async function closeBoth(peer: ScriptedPeer): Promise<void> {
  await peer.expect('channel.close');
  peer.send(1, { name: 'channel.close-ok' });
  await peer.expect('connection.close');
  peer.send(0, { name: 'connection.close-ok' });
}

async function open(): Promise<{ connection: Connection; channel: Channel; confirms: Confirmation[] }> {
  const connection = await openConnection({
    hostname: '127.0.0.1',
    port: server!.port,
    connectionTimeout: 3000,
  });
  const channel = await connection.openChannel();
  const confirms: Confirmation[] = [];
  channel.confirms$.subscribe((c) => confirms.push(c));
  await lastValueFrom(channel.confirmSelect());
  return { connection, channel, confirms };
}

/** Publishes `keys` and collects each publish's outcome or error, by index. */
function publishAll(
  channel: Channel,
  keys: string[],
  mandatory = false,
): Promise<(PublishOutcome | Error)[]> {
  return Promise.all(
    keys.map((key) =>
      lastValueFrom(channel.publish('x', key, 'body', {}, { mandatory })).catch((e: unknown) => e as Error),
    ),
  );
}

const show = (o: PublishOutcome | Error | Confirmation): string =>
  o instanceof Error ? o.constructor.name : 'seq' in o ? `${o.seq} ${o.status}` : o.status;

describe('publisher confirms on the wire', () => {
  it('smooths out-of-order single acks and a multiple ack into one outcome per publish, in order', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 5);
        peer.send(1, { name: 'basic.ack', deliveryTag: 3, multiple: false });
        peer.send(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
        peer.send(1, { name: 'basic.ack', deliveryTag: 5, multiple: true });
        await closeBoth(peer);
      },
      { maxConnections: 1 },
    );
    const { connection, channel, confirms } = await open();
    const outcomes = await publishAll(channel, ['a', 'b', 'c', 'd', 'e']);
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(outcomes.map(show)).toEqual(['1 acked', '2 acked', '3 acked', '4 acked', '5 acked']);
    expect(confirms.map(show)).toEqual(['1 acked', '2 acked', '3 acked', '4 acked', '5 acked']);
  });

  it('gives interleaved acks and multiple nacks each their own outcome', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 6);
        peer.send(1, { name: 'basic.ack', deliveryTag: 2, multiple: false });
        peer.send(1, { name: 'basic.nack', deliveryTag: 4, multiple: true, requeue: false });
        peer.send(1, { name: 'basic.ack', deliveryTag: 6, multiple: false });
        peer.send(1, { name: 'basic.nack', deliveryTag: 5, multiple: false, requeue: false });
        await closeBoth(peer);
      },
      { maxConnections: 1 },
    );
    const { connection, channel, confirms } = await open();
    const outcomes = await publishAll(channel, ['a', 'b', 'c', 'd', 'e', 'f']);
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    const expected = ['1 nacked', '2 acked', '3 nacked', '4 nacked', '5 nacked', '6 acked'];
    expect(outcomes.map(show)).toEqual(expected);
    expect(confirms.map(show)).toEqual(expected);
  });

  it('attaches a basic.return to the oldest unanswered mandatory publish with its exchange and key', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 3);
        peer.sendContent(
          1,
          { name: 'basic.return', replyCode: 312, replyText: 'NO_ROUTE', exchange: 'x', routingKey: 'b' },
          { messageId: 'm2' },
          Buffer.from('body'),
        );
        peer.send(1, { name: 'basic.ack', deliveryTag: 3, multiple: true });
        await closeBoth(peer);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    const returns: string[] = [];
    channel.returns$.subscribe((r) => returns.push(r.routingKey));
    const outcomes = await publishAll(channel, ['a', 'b', 'b'], true);
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(outcomes.map(show)).toEqual(['1 acked', '2 returned', '3 acked']);
    const second = outcomes[1] as Extract<PublishOutcome, { status: 'returned' }>;
    expect(second.returned).toMatchObject({
      replyCode: 312,
      routingKey: 'b',
      properties: { messageId: 'm2' },
    });
    expect(returns).toEqual(['b']);
  });

  it('gives a return to the publish its confirm answers, not to an older one still waiting', async () => {
    // A routed mandatory publish waiting for its queue (1) and an unroutable one to the same exchange
    // and key (2): RabbitMQ returns 2 and acks it at once; 1 is acked later.
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 3);
        peer.sendContent(
          1,
          { name: 'basic.return', replyCode: 312, replyText: 'NO_ROUTE', exchange: 'x', routingKey: 'k' },
          {},
          Buffer.from('body'),
        );
        peer.send(1, { name: 'basic.ack', deliveryTag: 2, multiple: false });
        peer.send(1, { name: 'basic.ack', deliveryTag: 3, multiple: true });
        await closeBoth(peer);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open();
    const outcomes = await publishAll(channel, ['k', 'k', 'k'], true);
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(outcomes.map(show)).toEqual(['1 acked', '2 returned', '3 acked']);
  });

  it('fails every unanswered publish, in order, when the broker closes the channel', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 4);
        peer.send(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
        peer.send(1, { name: 'basic.ack', deliveryTag: 3, multiple: false }); // held back behind 2
        peer.send(1, {
          name: 'channel.close',
          replyCode: 406,
          replyText: 'PRECONDITION_FAILED',
          classId: 0,
          methodId: 0,
        });
        await peer.expect('channel.close-ok');
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel, confirms } = await open();
    const outcomes = await publishAll(channel, ['a', 'b', 'c', 'd']);
    await lastValueFrom(connection.close());
    await server.done();
    expect(outcomes.map(show)).toEqual(['1 acked', 'ChannelClosedError', '3 acked', 'ChannelClosedError']);
    expect((outcomes[1] as ChannelClosedError).replyCode).toBe(406);
    expect(confirms.map(show)).toEqual(['1 acked', '2 failed', '3 acked', '4 failed']);
  });

  it('fails the unanswered publishes with CONNECTION_CLOSED (initiator client) when the client closes the connection', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 3);
        peer.send(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
        await peer.expect('connection.close');
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel, confirms } = await open();
    const outcomes = publishAll(channel, ['a', 'b', 'c']);
    await new Promise((r) => setTimeout(r, 50)); // the first ack is in
    await lastValueFrom(connection.close());
    await server.done();
    const [first, second, third] = (await outcomes) as [
      PublishOutcome,
      ChannelClosedError,
      ChannelClosedError,
    ];
    expect(show(first)).toBe('1 acked');
    // Before: CHANNEL_CLOSED, "publish on channel 1, which the client closed", with no cause.
    for (const e of [second, third]) {
      expect(e).toMatchObject({ code: 'CONNECTION_CLOSED', initiator: 'client' });
      expect(e.cause).toBeInstanceOf(ConnectionClosedError);
      expect((e.cause as ConnectionClosedError).code).toBe('CLIENT_CLOSED');
    }
    expect(confirms.map(show)).toEqual(['1 acked', '2 failed', '3 failed']);
    // A later operation on the channel says the same.
    await expect(lastValueFrom(channel.queueDeclare('q'))).rejects.toMatchObject({
      code: 'CONNECTION_CLOSED',
    });
  });

  it('treats a confirm for a tag never published as a protocol error that ends the connection', async () => {
    let closeCode = 0;
    server = await ScriptedServer.start(
      async (peer) => {
        await acceptConfirmChannel(peer);
        await publishes(peer, 2);
        peer.send(1, { name: 'basic.ack', deliveryTag: 7, multiple: false });
        closeCode = (await peer.expect('connection.close')).replyCode;
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const { connection, channel, confirms } = await open();
    const outcomes = await publishAll(channel, ['a', 'b']);
    await server.done();
    expect(closeCode).toBe(503);
    expect(outcomes.map(show)).toEqual(['ChannelClosedError', 'ChannelClosedError']);
    expect(connection.error).toBeInstanceOf(ConnectionClosedError);
    expect(connection.error?.message).toMatch(/delivery tag 7/);
    expect(confirms.map(show)).toEqual(['1 failed', '2 failed']);
  });

  it('treats a confirm on a channel not in confirm mode as a protocol error', async () => {
    let closeCode = 0;
    server = await ScriptedServer.start(
      async (peer) => {
        await peer.expectProtocolHeader();
        await peer.handshake();
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        await peer.expectContent('basic.publish');
        peer.send(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
        closeCode = (await peer.expect('connection.close')).replyCode;
        peer.send(0, { name: 'connection.close-ok' });
      },
      { maxConnections: 1 },
    );
    const connection = await openConnection({ hostname: '127.0.0.1', port: server.port });
    const channel = await connection.openChannel();
    expect(await lastValueFrom(channel.publish('x', 'a', 'body'))).toEqual({ status: 'sent' });
    await server.done();
    expect(closeCode).toBe(503);
    expect(connection.error?.message).toMatch(/not in confirm mode/);
  });
});
