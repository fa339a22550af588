/**
 * What a stream consumer puts on the wire when it is cancelled with deliveries in flight: the ones
 * crossing its basic.cancel are acked (credit), never nacked, because RabbitMQ answers a nack or
 * reject on a stream with 540 NOT_IMPLEMENTED and closes the connection. Other consumers still
 * requeue them with a nack.
 */
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  type Channel,
  ConfigurationError,
  type ConsumeOptions,
  consumeStream,
  type Delivery,
  openConnection,
} from '../../src/node.js';
import { FrameWriter, type MethodOf } from '../../src/protocol/index.js';
import { ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A basic.deliver; without `offset`, as from a queue that is not a stream (no x-stream-offset header). */
function deliver(tag: number, offset: number | undefined): Uint8Array {
  const writer = new FrameWriter();
  writer.writeContent(
    1,
    {
      name: 'basic.deliver',
      consumerTag: 'ctag',
      deliveryTag: tag,
      redelivered: false,
      exchange: '',
      routingKey: 's',
    },
    offset === undefined ? {} : { headers: { 'x-stream-offset': offset } },
    Buffer.from(`m${tag}`),
  );
  return writer.take()!;
}

/**
 * Starts a consumer with `consume`, takes its first delivery (left unsettled) and unsubscribes; the server sends a
 * second delivery before its cancel-ok. Returns the consumer's arguments and what the client sent
 * about the deliveries.
 */
async function crossTheCancel(
  consume: (channel: Channel) => Promise<unknown>,
  fromStream = true,
): Promise<{ args: unknown; seen: string[] }> {
  let args: unknown;
  const seen: string[] = [];
  server = await ScriptedServer.start(
    async (peer) => {
      await peer.expectProtocolHeader();
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1 });
      peer.send(1, { name: 'channel.open-ok' });
      await peer.expect('basic.qos');
      peer.send(1, { name: 'basic.qos-ok' });
      const consumeMethod = (await peer.expect('basic.consume')) as MethodOf<'basic.consume'>;
      args = consumeMethod.arguments;
      peer.send(1, { name: 'basic.consume-ok', consumerTag: 'ctag' });
      peer.sendRaw(deliver(1, fromStream ? 100 : undefined));
      for (;;) {
        const event = await peer.next();
        if (event.kind !== 'method') continue;
        const m = event.method;
        if (m.name === 'basic.cancel') {
          peer.sendRaw(deliver(2, fromStream ? 101 : undefined)); // crosses the cancel
          peer.send(1, { name: 'basic.cancel-ok', consumerTag: 'ctag' });
        } else if (m.name === 'basic.ack') seen.push(`ack ${m.deliveryTag}${m.multiple ? '+' : ''}`);
        else if (m.name === 'basic.nack') seen.push(`nack ${m.deliveryTag} ${m.requeue}`);
        else if (m.name === 'basic.reject') seen.push(`reject ${m.deliveryTag}`);
        else if (m.name === 'channel.close') {
          peer.send(1, { name: 'channel.close-ok' });
          break;
        }
      }
      await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
    },
    { maxConnections: 1 },
  );
  const connection = await openConnection({
    hostname: '127.0.0.1',
    port: server.port,
    connectionTimeout: 3000,
  });
  const channel = await connection.openChannel();
  await consume(channel); // left unsettled: only the crossing delivery is settled
  await new Promise((r) => setTimeout(r, 100));
  await lastValueFrom(channel.close());
  await lastValueFrom(connection.close());
  await server.done();
  return { args, seen };
}

const consumeWith = (options: ConsumeOptions) => (channel: Channel) =>
  firstValueFrom(channel.consume('s', options));

describe('a stream consumer cancelled with deliveries in flight', () => {
  it('consumeStream acks the delivery crossing the cancel', async () => {
    const { args, seen } = await crossTheCancel((channel) =>
      firstValueFrom(consumeStream(channel, 's', { offset: 'first', prefetch: 10, credit: 'manual' })),
    );
    expect(args).toEqual({ 'x-stream-offset': 'first' });
    expect(seen).toEqual(['ack 2']);
  });

  it('channel.consume with a raw x-stream-offset (or x-stream-filter) argument does the same', async () => {
    const raw = await crossTheCancel(consumeWith({ prefetch: 10, arguments: { 'x-stream-offset': 'next' } }));
    expect(raw.seen).toEqual(['ack 2']);
    await server?.close();
    server = undefined;
    const filtered = await crossTheCancel(
      consumeWith({ prefetch: 10, arguments: { 'x-stream-filter': 'a' } }),
    );
    expect(filtered.seen).toEqual(['ack 2']);
  });

  it('a nack or reject of a stream delivery goes out as an ack (credit), even from channel.consume', async () => {
    for (const settle of [(d: Delivery) => d.nack({ requeue: true }), (d: Delivery) => d.reject()]) {
      const { seen } = await crossTheCancel(async (channel) => {
        const d = await firstValueFrom(
          channel.consume('s', { prefetch: 10, arguments: { 'x-stream-offset': 'first' } }),
        );
        expect(settle(d)).toBe(true);
        return d;
      });
      // Acks only: one for each, or one multiple ack covering both.
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((m) => m.startsWith('ack '))).toBe(true);
      expect(seen.at(-1)).toMatch(/^ack 2/);
      await server?.close();
      server = undefined;
    }
  });

  it('consumeStream on a queue that is not a stream errors, leaves that delivery unsettled and requeues the crossing one', async () => {
    let error: unknown;
    const { seen } = await crossTheCancel(
      (channel) =>
        new Promise<void>((resolve) => {
          consumeStream(channel, 's', { offset: 'first', prefetch: 10 }).subscribe({
            error: (e: unknown) => {
              error = e;
              resolve();
            },
          });
        }),
      false,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(String(error)).toMatch(/has no x-stream-offset header: consumeStream needs a stream queue/);
    // Never an ack, which would drop a message of a queue that is not a stream.
    expect(seen).toEqual(['nack 2 true']);
  });

  it('another consumer still requeues it', async () => {
    const { seen } = await crossTheCancel(consumeWith({ prefetch: 10 }));
    expect(seen).toEqual(['nack 2 true']);
  });
});
