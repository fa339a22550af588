/**
 * The topology API against a real broker: declaring, dead-lettering, exchange-to-exchange routing,
 * server-named queues, idempotence, passive checks, force, and the delayed-message exchange the broker
 * does not have.
 */
import { firstValueFrom, lastValueFrom, Subject, switchMap, take, tap, toArray } from 'rxjs';
import {
  type AppliedTopology,
  applyTopology,
  binding,
  type Channel,
  ChannelClosedError,
  type Connection,
  ConnectionClosedError,
  consumer,
  consumeSpec,
  type Delivery,
  defineTopology,
  exchange,
  openConnection,
  queue,
  type Topology,
} from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { openSession, type Session, uniqueName } from '../support/session.js';

let session: Session;
const createdQueues: string[] = [];
const createdExchanges: string[] = [];

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp topology tests' });
});

afterAll(async () => {
  // A fresh channel: some tests close channels on purpose.
  const { channel, close } = await session.openChannel();
  for (const name of createdQueues) await lastValueFrom(channel.queueDelete(name)).catch(() => undefined);
  for (const name of createdExchanges)
    await lastValueFrom(channel.exchangeDelete(name)).catch(() => undefined);
  close();
  session.close();
});

/** A unique queue name, deleted after the tests. */
function queueName(prefix: string): string {
  const name = uniqueName(`topo-${prefix}`);
  createdQueues.push(name);
  return name;
}

/** A unique exchange name, deleted after the tests. */
function exchangeName(prefix: string): string {
  const name = uniqueName(`topo-${prefix}`);
  createdExchanges.push(name);
  return name;
}

function apply(
  topology: Topology,
  options?: { passive?: boolean; force?: boolean },
): Promise<AppliedTopology> {
  return lastValueFrom(applyTopology(session.connection, topology, options));
}

async function applyError(
  topology: Topology,
  options?: { passive?: boolean; force?: boolean },
  connection = session.connection,
): Promise<unknown> {
  return lastValueFrom(applyTopology(connection, topology, options)).then(
    () => {
      throw new Error('expected applyTopology to fail');
    },
    (e: unknown) => e,
  );
}

/** basic.get, retried (bounded) while the queue is still empty: routing is asynchronous. */
async function getWait(queue: string, ch: Channel = session.channel, timeoutMs = 4000): Promise<Delivery> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const d = await firstValueFrom(ch.get(queue, { noAck: true }), { defaultValue: undefined });
    if (d !== undefined) return d;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no message in ${queue}`);
}

async function messageCount(queue: string): Promise<number> {
  return (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount;
}

/** Publishes and waits until the broker has routed it (a queue.declare after it on the channel). */
async function publish(exchangeName: string, routingKey: string, body: string): Promise<void> {
  await lastValueFrom(session.channel.publish(exchangeName, routingKey, body));
}

/** Opens a channel, runs `f` on it, and closes it; returns the channel's error, if any. */
async function onOwnChannel(f: (ch: Channel) => Promise<unknown>): Promise<unknown> {
  const { channel, close } = await session.openChannel();
  try {
    await f(channel);
    return undefined;
  } catch (e) {
    return e;
  } finally {
    close();
  }
}

/** Whether channel number `id` is free on the connection (opening it there succeeds). */
async function channelIdFree(conn: Session['connection'], id: number): Promise<boolean> {
  try {
    const ch = await firstValueFrom(conn.channel({ id }));
    return ch.id === id; // firstValueFrom unsubscribes: the channel closes again
  } catch {
    return false;
  }
}

describe('applyTopology (real broker)', () => {
  it('declares exchanges, a quorum queue and bindings that route; applying again changes nothing', async () => {
    const orders = exchange({ name: exchangeName('orders'), type: 'topic', durable: true });
    const jobs = queue({ name: queueName('quorum'), type: 'quorum', deliveryLimit: 3 });
    const t = defineTopology({
      exchanges: [orders],
      queues: [jobs],
      bindings: [binding({ exchange: orders, queue: jobs, routingKey: 'order.*' })],
    });
    const first = await apply(t);
    expect(first.queueName(jobs)).toBe(jobs.name);
    expect(first.queue(jobs)).toMatchObject({ name: jobs.name, messageCount: 0, consumerCount: 0 });

    await publish(orders.name, 'order.created', 'one');
    await publish(orders.name, 'invoice.created', 'not routed');
    expect((await getWait(jobs.name)).text()).toBe('one');
    await publish(orders.name, 'order.paid', 'two');
    for (let i = 0; i < 100 && (await messageCount(jobs.name)) < 1; i++)
      await new Promise((r) => setTimeout(r, 20));

    // Idempotent: the same declarations again succeed, and report the message waiting.
    const second = await apply(t);
    expect(second.queue(jobs)?.messageCount).toBe(1);
    expect(second.redeclared).toEqual([]);

    // It really is a quorum queue: declaring it as a classic one is refused.
    const e = await onOwnChannel((ch) =>
      lastValueFrom(ch.queueDeclare(jobs.name, { durable: true, arguments: { 'x-queue-type': 'classic' } })),
    );
    expect(e).toBeInstanceOf(ChannelClosedError);
    expect((e as ChannelClosedError).replyCode).toBe(406);
    expect((e as ChannelClosedError).replyText).toContain('x-queue-type');
  });

  it('sets up dead-lettering that works: an expired message reaches the dead-letter queue', async () => {
    const dlx = exchange({ name: exchangeName('dlx'), type: 'direct' });
    const dlq = queue({ name: queueName('dlq') });
    const work = queue({
      name: queueName('ttl'),
      messageTtl: 100,
      deadLetterExchange: dlx,
      deadLetterRoutingKey: 'expired',
    });
    await apply({
      exchanges: [dlx],
      queues: [dlq, work],
      bindings: [binding({ exchange: dlx, queue: dlq, routingKey: 'expired' })],
    });
    await publish('', work.name, 'too late');
    const dead = await getWait(dlq.name);
    expect(dead.text()).toBe('too late');
    expect(dead.fields.exchange).toBe(dlx.name);
    expect(dead.fields.routingKey).toBe('expired');
    const deaths = dead.properties.headers?.['x-death'] as { reason?: string; queue?: string }[];
    expect(deaths[0]).toMatchObject({ reason: 'expired', queue: work.name });
    expect(await messageCount(work.name)).toBe(0);
  });

  it('routes through an exchange-to-exchange binding', async () => {
    const source = exchange({ name: exchangeName('e2e-src'), type: 'topic', autoDelete: false });
    const destination = exchange({ name: exchangeName('e2e-dst'), type: 'fanout', internal: true });
    const audit = queue({ name: queueName('audit') });
    await apply({
      exchanges: [source, destination],
      queues: [audit],
      bindings: [
        binding({ exchange: destination, queue: audit }),
        binding({ source, destination, routingKey: 'order.*' }),
      ],
    });
    await publish(source.name, 'invoice.sent', 'not routed');
    await publish(source.name, 'order.created', 'routed');
    expect((await getWait(audit.name)).text()).toBe('routed');
    await publish(source.name, 'order.shipped.late', 'not routed either');
    await publish(source.name, 'order.shipped', 'routed too');
    expect((await getWait(audit.name)).text()).toBe('routed too');
    expect(await messageCount(audit.name)).toBe(0);
  });

  it('binds and consumes a server-named queue, with the spec prefetch; a new apply gives it a new name', async () => {
    const events = exchange({ name: exchangeName('events'), type: 'direct', autoDelete: true });
    const inbox = queue({ name: '', exclusive: true });
    const reader = consumer({ queue: inbox, prefetch: 1 });
    const t = defineTopology({
      exchanges: [events],
      queues: [inbox],
      bindings: [binding({ exchange: events, queue: inbox, routingKey: 'hello' })],
      consumers: [reader],
    });
    const applied = await apply(t);
    const name = applied.queueName(inbox);
    expect(name).toMatch(/^amq\.gen-/);

    const { channel, close } = await session.openChannel();
    try {
      const received: Delivery[] = [];
      const subscription = consumeSpec(channel, reader, applied).subscribe((d) => received.push(d));
      // The consumer is up once the queue reports it.
      for (let i = 0; i < 100; i++) {
        const { consumerCount } = await lastValueFrom(session.channel.queueDeclare(name, { passive: true }));
        if (consumerCount === 1) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const body of ['a', 'b', 'c']) await publish(events.name, 'hello', body);
      for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      // prefetch 1: one unacknowledged delivery at a time.
      expect(received.map((d) => d.text())).toEqual(['a']);
      received[0]!.ack();
      for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(received.map((d) => d.text())).toEqual(['a', 'b']);
      subscription.unsubscribe();
    } finally {
      close();
    }

    const again = await apply(t);
    expect(again.queueName(inbox)).toMatch(/^amq\.gen-/);
    expect(again.queueName(inbox)).not.toBe(name);
  });

  it('checks passively: an existing topology reports its counts, a missing entity is a 404', async () => {
    const present = exchange({ name: exchangeName('present'), type: 'fanout' });
    const stock = queue({ name: queueName('stock'), durable: true });
    const t = defineTopology({
      exchanges: [present],
      queues: [stock],
      bindings: [binding({ exchange: present, queue: stock })],
    });
    await apply(t);
    await publish(present.name, '', 'x');
    for (let i = 0; i < 100 && (await messageCount(stock.name)) < 1; i++)
      await new Promise((r) => setTimeout(r, 20));

    // Passive ignores the properties: a spec with other arguments still checks out.
    const checked = await apply(
      {
        exchanges: [exchange({ name: present.name, type: 'topic' })],
        queues: [queue({ name: stock.name, messageTtl: 5 })],
      },
      { passive: true },
    );
    expect(checked.passive).toBe(true);
    expect(checked.queues[0]).toMatchObject({ name: stock.name, messageCount: 1 });

    const missingQueue = await applyError(
      { queues: [queue({ name: uniqueName('missing') })] },
      { passive: true },
    );
    expect(missingQueue).toBeInstanceOf(ChannelClosedError);
    expect((missingQueue as ChannelClosedError).replyCode).toBe(404);
    expect((missingQueue as ChannelClosedError).replyText).toContain('no queue');

    const missingExchange = await applyError(
      { exchanges: [exchange({ name: uniqueName('missing') })], queues: [stock] },
      { passive: true },
    );
    expect((missingExchange as ChannelClosedError).replyCode).toBe(404);
    expect((missingExchange as ChannelClosedError).replyText).toContain('no exchange');

    // A soft error: the connection and the other channels stay.
    expect(session.connection.isOpen).toBe(true);
    expect(await messageCount(stock.name)).toBe(1);
  });

  it('with force, re-declares a queue and an exchange that exist with other arguments (dropping the messages)', async () => {
    const q = queueName('forced');
    const x = exchangeName('forced');
    await lastValueFrom(
      session.channel.queueDeclare(q, { durable: true, arguments: { 'x-message-ttl': 60_000 } }),
    );
    await lastValueFrom(session.channel.exchangeDeclare(x, 'direct'));
    await publish('', q, 'one');
    await publish('', q, 'two');
    for (let i = 0; i < 100 && (await messageCount(q)) < 2; i++) await new Promise((r) => setTimeout(r, 20));

    const wanted = queue({ name: q, durable: true, messageTtl: 30_000 });
    const fanout = exchange({ name: x, type: 'fanout' });
    const t = defineTopology({
      exchanges: [fanout],
      queues: [wanted],
      bindings: [binding({ exchange: fanout, queue: wanted })],
    });

    // Without force: the typed 406, and nothing changed.
    const e = await applyError(t);
    expect(e).toBeInstanceOf(ChannelClosedError);
    expect((e as ChannelClosedError).replyCode).toBe(406);
    expect((e as ChannelClosedError).replyText).toContain('inequivalent arg');
    expect(await messageCount(q)).toBe(2);

    const applied = await apply(t, { force: true });
    expect(applied.redeclared).toEqual([
      { kind: 'exchange', name: x },
      { kind: 'queue', name: q },
    ]);
    expect(applied.queue(wanted)?.messageCount).toBe(0);
    expect(await messageCount(q)).toBe(0);

    // The new declarations are in place: the spec applies without force, and the fanout routes.
    expect((await apply(t)).redeclared).toEqual([]);
    await publish(x, 'any key', 'fanned out');
    expect((await getWait(q)).text()).toBe('fanned out');
  });

  it('refuses a delayed-message exchange the broker has no plugin for with a typed error, and nothing breaks', async () => {
    const url = await brokerUrl();
    const conn = await openConnection(url, { name: 'rxamqp topology delayed test' });
    const later = exchange({ name: exchangeName('delayed'), delayed: { type: 'direct' } });
    const e = await applyError({ exchanges: [later] }, {}, conn);
    // RabbitMQ answers an unknown exchange type with a connection error: 503 COMMAND_INVALID.
    expect(e).toBeInstanceOf(ChannelClosedError);
    expect((e as ChannelClosedError).replyCode).toBe(503);
    expect((e as ChannelClosedError).message).toContain("unknown exchange type 'x-delayed-message'");
    expect((e as ChannelClosedError).cause).toBeInstanceOf(ConnectionClosedError);
    expect(conn.isOpen).toBe(false);
    expect(conn.error).toBeInstanceOf(ConnectionClosedError);
    // Other connections are not affected.
    expect(session.connection.isOpen).toBe(true);
    const ok = await apply({ queues: [queue({ name: '', exclusive: true })] });
    expect(ok.queues).toHaveLength(1);
  });

  it('closes its channel when it completes, fails, or is unsubscribed', async () => {
    const url = await brokerUrl();
    const conn = await openConnection(url, { name: 'rxamqp topology channel test' });
    try {
      const t = { queues: [queue({ name: '', exclusive: true })] };
      await lastValueFrom(applyTopology(conn, t));
      expect(await channelIdFree(conn, 1)).toBe(true);

      const missing = { queues: [queue({ name: uniqueName('missing') })] };
      await lastValueFrom(applyTopology(conn, missing, { passive: true })).catch(() => undefined);
      expect(await channelIdFree(conn, 1)).toBe(true);

      // Unsubscribed while the channel is still opening: it is closed as soon as it has opened.
      const subscription = applyTopology(conn, t).subscribe();
      subscription.unsubscribe();
      let free = false;
      for (let i = 0; i < 100 && !free; i++) {
        await new Promise((r) => setTimeout(r, 20));
        free = await channelIdFree(conn, 1);
      }
      expect(free).toBe(true);
      expect(conn.isOpen).toBe(true);
    } finally {
      await lastValueFrom(conn.close());
    }
  });

  it('applies, then consumes a server-named queue, in one pipeline', async () => {
    const topic = exchange({ name: exchangeName('topic'), type: 'topic', autoDelete: true });
    const inbox = queue({ name: '', exclusive: true });
    const t = defineTopology({
      exchanges: [topic],
      queues: [inbox],
      bindings: [binding({ exchange: topic, queue: inbox, routingKey: '#.important' })],
    });
    const received = lastValueFrom(
      applyTopology(session.connection, t).pipe(
        switchMap((applied) =>
          session.connection
            .channel()
            .pipe(switchMap((ch) => consumeSpec(ch, { queue: inbox, noAck: true }, applied))),
        ),
        take(2),
        toArray(),
      ),
    );
    // Publish until the binding exists and both messages are through (the consumer may start late).
    for (let i = 0; i < 50; i++) {
      const done = await Promise.race([
        received.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 100)),
      ]);
      if (done) break;
      await publish(topic.name, 'a.important', 'first');
      await publish(topic.name, 'b.unimportant', 'skipped');
    }
    const deliveries = await received;
    expect(deliveries.map((d) => d.fields.routingKey)).toEqual(['a.important', 'a.important']);
  });

  it('re-applies on each new connection in a switchMap: named entities stay, a server-named queue is new', async () => {
    const url = await brokerUrl();
    const fanout = exchange({ name: exchangeName('reconnect'), type: 'fanout', durable: true });
    const mine = queue({ name: '', exclusive: true });
    const t = defineTopology({
      exchanges: [fanout],
      queues: [mine],
      bindings: [binding({ exchange: fanout, queue: mine })],
    });
    // A stand-in for a recovering connection: a new Connection after the old one has gone.
    const connections = new Subject<Connection>();
    const names: string[] = [];
    const got: string[] = [];
    const subscription = connections
      .pipe(
        switchMap((conn) =>
          applyTopology(conn, t).pipe(
            tap((applied) => names.push(applied.queueName(mine))),
            switchMap((applied) =>
              conn.channel().pipe(switchMap((ch) => consumeSpec(ch, { queue: mine, noAck: true }, applied))),
            ),
          ),
        ),
      )
      .subscribe((d) => got.push(d.text()));
    const waitUntil = async (check: () => boolean, what: string) => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
      if (!check()) throw new Error(`timed out waiting for ${what}`);
    };
    const first = await openConnection(url);
    const second = await openConnection(url);
    try {
      connections.next(first);
      await waitUntil(() => names.length === 1, 'the first apply');
      await publish(fanout.name, '', 'one');
      await waitUntil(() => got.length === 1, 'the first message');
      await lastValueFrom(first.close()); // its exclusive queue goes with it
      connections.next(second);
      await waitUntil(() => names.length === 2, 'the second apply');
      expect(names[1]).not.toBe(names[0]);
      await publish(fanout.name, '', 'two');
      await waitUntil(() => got.length === 2, 'the second message');
      expect(got).toEqual(['one', 'two']);
    } finally {
      subscription.unsubscribe();
      await lastValueFrom(second.close());
    }
  });
});
