/**
 * `channel.request` against a scripted server playing RabbitMQ's direct reply-to: the request's
 * publish carries `replyTo: 'amq.rabbitmq.reply-to'` and a fresh correlation id, the reply with that
 * id is emitted and completes the request, an abandoned request's late reply is dropped (and a request
 * abandoned before it was written is never sent), a failing publish errors the request, and
 * `timeoutMs` sets the message's expiration.
 */
import { lastValueFrom, type Subscription, TimeoutError } from 'rxjs';
import {
  type BasicProperties,
  type Channel,
  type Connection,
  type Delivery,
  openConnection,
} from '../../src/node.js';
import { type ContentEvent, type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';
import { nextTurn, WriteRecorder, waitFor } from '../support/write-recorder.js';

const REPLY_QUEUE = 'amq.rabbitmq.reply-to';
const REPLY_TAG = 'amq.ctag-reply';

/** A request the scripted server received. */
type Request = ContentEvent<'basic.publish'>;

/**
 * A scripted broker for request/reply: answers channel.open, the reply consumer's basic.consume and
 * the closes, and records each request; the test answers them with {@link reply}.
 */
class ReplyBroker {
  readonly requests: Request[] = [];
  readonly consumes: { queue: string; noAck: boolean }[] = [];
  peer: ScriptedPeer | undefined;
  private deliveryTag = 0;
  private constructor(readonly server: ScriptedServer) {}

  static async start(): Promise<ReplyBroker> {
    let broker!: ReplyBroker;
    const server = await ScriptedServer.start(
      async (peer) => {
        broker.peer = peer;
        await peer.handshake();
        for (;;) {
          const event = await peer.next(60_000).catch(() => undefined);
          if (event === undefined) return;
          if (event.kind === 'content') {
            if (event.method.name === 'basic.publish') {
              const { channel, properties, body } = event;
              broker.requests.push({ channel, method: event.method, properties, body });
            }
            continue;
          }
          if (event.kind !== 'method') continue;
          const { channel, method } = event;
          if (method.name === 'channel.open') peer.send(channel, { name: 'channel.open-ok' });
          else if (method.name === 'basic.consume') {
            broker.consumes.push({ queue: method.queue, noAck: method.noAck });
            peer.send(channel, { name: 'basic.consume-ok', consumerTag: REPLY_TAG });
          } else if (method.name === 'channel.close') peer.send(channel, { name: 'channel.close-ok' });
          else if (method.name === 'connection.close') {
            peer.send(0, { name: 'connection.close-ok' });
            peer.end();
            return;
          }
        }
      },
      { maxConnections: 1 },
    );
    broker = new ReplyBroker(server);
    return broker;
  }

  /** Resolves once `n` requests have arrived. */
  received(n: number): Promise<void> {
    return waitFor(() => this.requests.length >= n, `${n} requests (got ${this.requests.length})`);
  }

  /** Delivers a reply with `correlationId` to the reply consumer on channel 1. */
  reply(correlationId: string | undefined, body: string): void {
    const properties: BasicProperties = correlationId === undefined ? {} : { correlationId };
    this.peer!.sendContent(
      1,
      {
        name: 'basic.deliver',
        consumerTag: REPLY_TAG,
        deliveryTag: ++this.deliveryTag,
        redelivered: false,
        exchange: '',
        routingKey: REPLY_QUEUE,
      },
      properties,
      Buffer.from(body),
    );
  }
}

let broker: ReplyBroker | undefined;
let connection: Connection | undefined;

afterEach(async () => {
  if (connection !== undefined) await lastValueFrom(connection.close()).catch(() => undefined);
  connection = undefined;
  await broker?.server.close();
  broker = undefined;
});

async function open(writes?: WriteRecorder): Promise<{ broker: ReplyBroker; channel: Channel }> {
  broker = await ReplyBroker.start();
  connection = await openConnection({
    hostname: '127.0.0.1',
    port: broker.server.port,
    connectionTimeout: 3000,
    ...(writes === undefined ? {} : { transport: writes.connector }),
  });
  return { broker, channel: await connection.openChannel() };
}

/** Subscribes `request$` and records what it does. */
function watch(request$: ReturnType<Channel['request']>) {
  const seen = {
    replies: [] as Delivery[],
    errors: [] as Error[],
    completed: false,
    subscription: undefined as Subscription | undefined,
  };
  seen.subscription = request$.subscribe({
    next: (d) => seen.replies.push(d),
    error: (e: Error) => seen.errors.push(e),
    complete: () => {
      seen.completed = true;
    },
  });
  return seen;
}

const text = (d: Delivery): string => Buffer.from(d.body).toString();

describe('channel.request over direct reply-to', () => {
  it('publishes with replyTo and a correlation id, emits the matching reply and completes', async () => {
    const { broker, channel } = await open();
    const seen = watch(channel.request('', 'rpc', 'ping', { contentType: 'text/plain' }));
    await broker.received(1);
    expect(broker.consumes).toEqual([{ queue: REPLY_QUEUE, noAck: true }]);
    const request = broker.requests[0]!;
    expect(request.method.routingKey).toBe('rpc');
    expect(request.body.toString()).toBe('ping');
    expect(request.properties.replyTo).toBe(REPLY_QUEUE);
    expect(request.properties.contentType).toBe('text/plain');
    expect(request.properties.expiration).toBeUndefined();
    const id = request.properties.correlationId;
    expect(typeof id).toBe('string');
    expect(id!.length).toBeGreaterThan(0);

    broker.reply('some other id', 'not for us');
    broker.reply(undefined, 'no id at all');
    broker.reply(id, 'pong');
    await waitFor(() => seen.completed || seen.errors.length > 0, 'the reply');
    expect(seen.errors).toEqual([]);
    expect(seen.replies.map(text)).toEqual(['pong']);
    expect(seen.replies[0]!.properties.correlationId).toBe(id);
  });

  it('gives successive requests different ids and matches replies in any order', async () => {
    const { broker, channel } = await open();
    const requests = ['a', 'b', 'c'].map((body) => watch(channel.request('', 'rpc', body)));
    await broker.received(3);
    const ids = broker.requests.map((r) => r.properties.correlationId!);
    expect(new Set(ids).size).toBe(3);
    expect(broker.consumes).toHaveLength(1); // one reply consumer for all of them
    // Answered in reverse order, each with its request's body.
    for (let i = 2; i >= 0; i--) broker.reply(ids[i], `re ${broker.requests[i]!.body.toString()}`);
    await waitFor(() => requests.every((r) => r.completed), 'every reply');
    expect(requests.map((r) => r.replies.map(text))).toEqual([['re a'], ['re b'], ['re c']]);

    // A later request, after the others completed, gets yet another id.
    const later = watch(channel.request('', 'rpc', 'd'));
    await broker.received(4);
    const laterId = broker.requests[3]!.properties.correlationId!;
    expect(ids).not.toContain(laterId);
    broker.reply(laterId, 're d');
    await waitFor(() => later.completed, 'the later reply');
    expect(later.replies.map(text)).toEqual(['re d']);
  });

  it('drops the late reply of a request unsubscribed before its reply', async () => {
    const { broker, channel } = await open();
    const abandoned = watch(channel.request('', 'rpc', 'first'));
    await broker.received(1);
    const abandonedId = broker.requests[0]!.properties.correlationId!;
    abandoned.subscription!.unsubscribe();

    const next = watch(channel.request('', 'rpc', 'second'));
    await broker.received(2);
    const nextId = broker.requests[1]!.properties.correlationId!;
    broker.reply(abandonedId, 'too late'); // dropped: nobody waits for it
    broker.reply(nextId, 'on time');
    await waitFor(() => next.completed || next.errors.length > 0, 'the second reply');
    expect(next.errors).toEqual([]);
    expect(next.replies.map(text)).toEqual(['on time']);
    expect(abandoned.replies).toEqual([]);
    expect(abandoned.errors).toEqual([]);
    expect(abandoned.completed).toBe(false);
  });

  it('does not send a request unsubscribed while its publish waits for the transport', async () => {
    const writes = new WriteRecorder();
    const { broker, channel } = await open(writes);
    // Make the connection not writable: a publish written into a full transport.
    writes.full = true;
    channel.publish('', 'filler', 'x').subscribe({ error: () => {} });
    await nextTurn();
    const abandoned = watch(channel.request('', 'rpc', 'never sent'));
    const kept = watch(channel.request('', 'rpc', 'sent'));
    abandoned.subscription!.unsubscribe();
    writes.release();
    const bodies = (): string[] => broker.requests.map((r) => r.body.toString());
    await waitFor(() => bodies().includes('sent'), 'the kept request');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(bodies()).toEqual(['x', 'sent']); // the filler, then only the kept request
    broker.reply(broker.requests[1]!.properties.correlationId, 'answer');
    await waitFor(() => kept.completed, 'the reply');
    expect(kept.replies.map(text)).toEqual(['answer']);
  });

  it('errors the request when its publish fails (an invalid routing key)', async () => {
    const { channel } = await open();
    const seen = watch(channel.request('', 'k'.repeat(300), 'body'));
    await waitFor(() => seen.errors.length > 0 || seen.completed, 'the request to end');
    expect(seen.errors).toHaveLength(1);
    expect(seen.errors[0]!.name).toMatch(/EncodeError/);
    expect(seen.replies).toEqual([]);
    // The channel is still usable for requests.
    const next = watch(channel.request('', 'rpc', 'ok'));
    await broker!.received(1);
    broker!.reply(broker!.requests[0]!.properties.correlationId, 'fine');
    await waitFor(() => next.completed, 'the reply');
    expect(next.replies.map(text)).toEqual(['fine']);
  });

  it('errors a request made on a closed channel', async () => {
    const { channel } = await open();
    await lastValueFrom(channel.close());
    const error = await lastValueFrom(channel.request('', 'rpc', 'too late')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toMatch(/ChannelClosedError/);
  });

  it('sets the expiration from timeoutMs (rounded up) and errors with a TimeoutError without a reply', async () => {
    const { broker, channel } = await open();
    const timed = watch(channel.request('', 'rpc', 'a', {}, { timeoutMs: 100 }));
    const fractional = watch(channel.request('', 'rpc', 'b', {}, { timeoutMs: 1500.2 }));
    await broker.received(2);
    expect(broker.requests.map((r) => r.properties.expiration)).toEqual(['100', '1501']);
    await waitFor(() => timed.errors.length > 0, 'the timeout', 2000);
    expect(timed.errors[0]).toBeInstanceOf(TimeoutError);
    // A reply that comes after the timeout is dropped.
    broker.reply(broker.requests[0]!.properties.correlationId, 'late');
    broker.reply(broker.requests[1]!.properties.correlationId, 'in time');
    await waitFor(() => fractional.completed, 'the second reply');
    expect(fractional.replies.map(text)).toEqual(['in time']);
    expect(timed.replies).toEqual([]);
  });
});
