/**
 * RabbitMQ 4.3's form of the consumer timeout, against a scripted server: a nowait basic.cancel for a
 * consumer that holds an unacknowledged delivery. The stream errors with a ConsumerCancelledError that
 * `isConsumerTimeout` recognises, the channel stays open, and the client answers with basic.cancel-ok
 * only when the broker announced `accept_consumer_cancel_ok` (RabbitMQ 4.3.7 and later), since older
 * brokers take no cancel-ok from a client.
 */
import { lastValueFrom, map, switchMap, take, tap, toArray } from 'rxjs';
import { ConsumerCancelledError, connect, isConsumerTimeout, openConnection } from '../../src/node.js';
import { DEFAULT_SERVER_PROPERTIES, type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const TAG = 'amq.ctag-timeout';

async function timeoutCancel(peer: ScriptedPeer, acceptsCancelOk: boolean): Promise<string[]> {
  await peer.expectProtocolHeader();
  const capabilities = {
    ...(DEFAULT_SERVER_PROPERTIES.capabilities as Record<string, boolean>),
    ...(acceptsCancelOk ? { accept_consumer_cancel_ok: true } : {}),
  };
  await peer.handshake({ serverProperties: { ...DEFAULT_SERVER_PROPERTIES, capabilities } });
  await peer.expect('channel.open', { channel: 1 });
  peer.send(1, { name: 'channel.open-ok' });
  await peer.expect('basic.consume', { channel: 1 });
  peer.send(1, { name: 'basic.consume-ok', consumerTag: TAG });
  peer.sendContent(
    1,
    {
      name: 'basic.deliver',
      consumerTag: TAG,
      deliveryTag: 1,
      redelivered: false,
      exchange: '',
      routingKey: 'q',
    },
    {},
    Buffer.from('slow'),
  );
  // The delivery is held past the timeout: the broker cancels the consumer, keeping the channel.
  await new Promise((r) => setTimeout(r, 20));
  peer.send(1, { name: 'basic.cancel', consumerTag: TAG, nowait: true });
  const seen: string[] = [];
  for (;;) {
    const event = await peer.next();
    if (event.kind !== 'method') continue;
    seen.push(event.method.name);
    if (event.method.name === 'channel.close') {
      peer.send(1, { name: 'channel.close-ok' });
    }
    if (event.method.name === 'connection.close') {
      peer.send(0, { name: 'connection.close-ok' });
      return seen;
    }
  }
}

async function run(acceptsCancelOk: boolean): Promise<{ error: unknown; seen: string[] }> {
  let seen: string[] = [];
  server = await ScriptedServer.start(
    async (peer) => {
      seen = await timeoutCancel(peer, acceptsCancelOk);
    },
    { maxConnections: 1 },
  );
  const connection = await openConnection({
    hostname: '127.0.0.1',
    port: server.port,
    connectionTimeout: 3000,
  });
  const channel = await connection.openChannel();
  const error = await new Promise<unknown>((resolve) => {
    channel.consume('q').subscribe({ error: resolve }); // the delivery is never settled
  });
  expect(channel.isOpen).toBe(true);
  await lastValueFrom(channel.close());
  await lastValueFrom(connection.close());
  await server.done();
  return { error, seen };
}

describe('a consumer cancelled by the broker while it holds a delivery (RabbitMQ 4.3 consumer timeout)', () => {
  it('errors with a ConsumerCancelledError that isConsumerTimeout recognises; no cancel-ok to an older broker', async () => {
    const { error, seen } = await run(false);
    expect(error).toBeInstanceOf(ConsumerCancelledError);
    expect(error).toMatchObject({ consumerTag: TAG, queue: 'q', heldUnsettled: true });
    expect(isConsumerTimeout(error)).toBe(true);
    expect(seen).toEqual(['channel.close', 'connection.close']);
  });

  it('answers the nowait cancel with basic.cancel-ok when the broker accepts one (accept_consumer_cancel_ok)', async () => {
    const { error, seen } = await run(true);
    expect(isConsumerTimeout(error)).toBe(true);
    expect(seen).toEqual(['basic.cancel-ok', 'channel.close', 'connection.close']);
  });
});

describe('on a recovering connection the broker-cancelled consumer is started again on the same channel', () => {
  /** The broker cancels consumer `worker` while it holds a delivery; returns the tag the client asks for next. */
  async function resumeScript(
    peer: ScriptedPeer,
    acceptsCancelOk: boolean,
  ): Promise<{ tag: string; seen: string[] }> {
    await peer.expectProtocolHeader();
    const capabilities = {
      ...(DEFAULT_SERVER_PROPERTIES.capabilities as Record<string, boolean>),
      ...(acceptsCancelOk ? { accept_consumer_cancel_ok: true } : {}),
    };
    await peer.handshake({ serverProperties: { ...DEFAULT_SERVER_PROPERTIES, capabilities } });
    await peer.expect('channel.open', { channel: 1 });
    peer.send(1, { name: 'channel.open-ok' });
    const first = await peer.expect('basic.consume', { channel: 1 });
    expect(first.consumerTag).toBe('worker');
    peer.send(1, { name: 'basic.consume-ok', consumerTag: 'worker' });
    const deliver = (deliveryTag: number, redelivered: boolean, consumerTag: string) =>
      peer.sendContent(
        1,
        { name: 'basic.deliver', consumerTag, deliveryTag, redelivered, exchange: '', routingKey: 'q' },
        {},
        Buffer.from('job'),
      );
    deliver(1, false, 'worker');
    await new Promise((r) => setTimeout(r, 20));
    peer.send(1, { name: 'basic.cancel', consumerTag: 'worker', nowait: true });
    const seen: string[] = [];
    let tag = '';
    for (;;) {
      const event = await peer.next();
      if (event.kind !== 'method') continue;
      if (event.channel === 2) {
        // The client first asks, on a channel of its own, whether the queue still exists.
        seen.push(`probe ${event.method.name}`);
        if (event.method.name === 'channel.open') peer.send(2, { name: 'channel.open-ok' });
        if (event.method.name === 'queue.declare') {
          expect(event.method).toMatchObject({ queue: 'q', passive: true });
          peer.send(2, { name: 'queue.declare-ok', queue: 'q', messageCount: 1, consumerCount: 0 });
        }
        if (event.method.name === 'channel.close') peer.send(2, { name: 'channel.close-ok' });
        continue;
      }
      seen.push(event.method.name);
      if (event.method.name === 'basic.consume') {
        tag = event.method.consumerTag === '' ? 'amq.ctag-new' : event.method.consumerTag;
        peer.send(1, { name: 'basic.consume-ok', consumerTag: tag });
        deliver(2, true, tag);
      }
      if (event.method.name === 'channel.close') peer.send(1, { name: 'channel.close-ok' });
      if (event.method.name === 'connection.close') {
        peer.send(0, { name: 'connection.close-ok' });
        return { tag, seen };
      }
    }
  }

  async function resume(acceptsCancelOk: boolean) {
    let script: { tag: string; seen: string[] } | undefined;
    server = await ScriptedServer.start(
      async (peer) => {
        script = await resumeScript(peer, acceptsCancelOk);
      },
      { maxConnections: 1 },
    );
    const received = await lastValueFrom(
      connect({ hostname: '127.0.0.1', port: server.port, recovery: true }).pipe(
        switchMap((conn) => conn.channel()),
        switchMap((ch) => ch.consume('q', { consumerTag: 'worker' })),
        // The first delivery is never settled; the one after the resume is acked.
        tap((d) => {
          if (d.fields.redelivered) d.ack();
        }),
        map((d) => `${d.fields.deliveryTag}:${d.fields.consumerTag}`),
        take(2),
        toArray(),
      ),
    );
    expect(received).toEqual(['1:worker', `2:${acceptsCancelOk ? 'worker' : 'amq.ctag-new'}`]);
    await server.done();
    return script!;
  }

  it('reuses the explicit tag where the broker let go of it (accept_consumer_cancel_ok, after basic.cancel-ok)', async () => {
    const { tag, seen } = await resume(true);
    expect(seen.slice(0, 6)).toEqual([
      'basic.cancel-ok',
      'probe channel.open',
      'probe queue.declare',
      'probe channel.close',
      'basic.consume',
      'basic.ack',
    ]);
    expect(tag).toBe('worker');
  });

  it('lets the broker name the tag where it may still hold the old one (no accept_consumer_cancel_ok)', async () => {
    const { tag, seen } = await resume(false);
    expect(seen.slice(0, 5)).toEqual([
      'probe channel.open',
      'probe queue.declare',
      'probe channel.close',
      'basic.consume',
      'basic.ack',
    ]);
    expect(tag).toBe('amq.ctag-new');
  });
});
