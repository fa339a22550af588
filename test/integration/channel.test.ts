import { execFileSync } from 'node:child_process';
import { inspect } from 'node:util';
import {
  catchError,
  firstValueFrom,
  lastValueFrom,
  map,
  merge,
  of,
  retry,
  switchMap,
  take,
  toArray,
} from 'rxjs';
import {
  AmqpError,
  AuthenticationError,
  ChannelClosedError,
  ConnectionClosedError,
  connect,
  Decimal,
  type Delivery,
  field,
  fieldTypesOf,
  openConnection,
} from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { openSession, type Session, uniqueName } from '../support/session.js';

let session: Session;

beforeAll(async () => {
  session = await openSession({ heartbeat: 10, name: 'rxamqp channel tests' });
});

afterAll(() => {
  session?.close();
});

/** Waits (bounded) until the broker reports `count` messages in `queue`: publishes are asynchronous. */
async function waitForCount(queue: string, count: number): Promise<number> {
  let seen = -1;
  for (let i = 0; i < 100; i++) {
    seen = (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount;
    if (seen === count) return seen;
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen;
}

/** basic.get, retried (bounded) while the queue is still empty: publishes reach queues asynchronously. */
async function getWait(
  queue: string,
  options: { noAck?: boolean; channel?: Session['channel'] } = {},
): Promise<Delivery> {
  const ch = options.channel ?? session.channel;
  for (let i = 0; i < 100; i++) {
    const d = await firstValueFrom(ch.get(queue, { noAck: options.noAck ?? false }), {
      defaultValue: undefined,
    });
    if (d !== undefined) return d;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no message in ${queue}`);
}

function getOne(queue: string): Promise<Delivery> {
  return getWait(queue, { noAck: true });
}

describe('connection', () => {
  it('opens with the broker properties and the negotiated tune values', () => {
    const { connection } = session;
    expect(connection.serverProperties.product).toBe('RabbitMQ');
    expect(connection.tune).toEqual({ channelMax: 2047, frameMax: 131072, heartbeat: 10 });
    expect(connection.isOpen).toBe(true);
    const counters = connection.counters;
    expect(counters.bytesReceived).toBeGreaterThan(0);
    expect(counters.framesSent).toBeGreaterThanOrEqual(4);
    expect(inspect(connection)).not.toContain('guest:guest');
  });

  it('completes when the client closes it, and fails operations afterwards', async () => {
    const url = await brokerUrl();
    const events: string[] = [];
    const conn = await new Promise<import('../../src/node.js').Connection>((resolve, reject) => {
      connect(url).subscribe({ next: resolve, error: reject, complete: () => events.push('complete') });
    });
    await lastValueFrom(conn.close());
    expect(events).toEqual(['complete']);
    expect(conn.isOpen).toBe(false);
    const e = await firstValueFrom(conn.channel()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectionClosedError);
    expect((e as ConnectionClosedError).code).toBe('CLIENT_CLOSED');
  });

  it('rejects a wrong password with AuthenticationError that never shows the password', async () => {
    const url = (await brokerUrl()).replace(/:\/\/([^:]+):[^@]*@/, '://$1:Wr0ngPa55word@');
    const e = await firstValueFrom(connect(url)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AuthenticationError);
    expect((e as AuthenticationError).mechanism).toBe('PLAIN');
    for (const text of [String(e), (e as Error).stack ?? '', inspect(e), JSON.stringify(e)]) {
      expect(text).not.toContain('Wr0ngPa55word');
    }
  });

  it('authenticates with AMQPLAIN as well as PLAIN', async () => {
    const url = await brokerUrl();
    const conn = await openConnection(url, { authMechanism: 'AMQPLAIN' });
    expect(conn.isOpen).toBe(true);
    await lastValueFrom(conn.close());
    const refused = await openConnection(url, {
      authMechanism: 'AMQPLAIN',
      password: 'not-the-password',
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect((refused as AuthenticationError).mechanism).toBe('AMQPLAIN');
  });

  it('errors with CONNECTION_FORCED when an operator closes the connection', async () => {
    const name = uniqueName('forced');
    const url = await brokerUrl();
    const errors: unknown[] = [];
    const conn = await new Promise<import('../../src/node.js').Connection>((resolve, reject) => {
      connect(url, { name }).subscribe({
        next: resolve,
        error: (e: unknown) => {
          errors.push(e);
          reject(e);
        },
      });
    });
    const list = execFileSync('rabbitmqctl', ['list_connections', '-q', 'pid', 'client_properties'], {
      encoding: 'utf8',
    });
    const line = list.split('\n').find((l) => l.includes(name));
    expect(line).toBeDefined();
    const pid = line!.split('\t')[0]!;
    execFileSync('rabbitmqctl', ['close_connection', pid, 'test closing it'], { encoding: 'utf8' });
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(errors[0]).toBeInstanceOf(ConnectionClosedError);
    expect((errors[0] as ConnectionClosedError).replyCode).toBe(320);
    expect((errors[0] as ConnectionClosedError).replyText).toContain('test closing it');
    expect(conn.isOpen).toBe(false);
  }, 30_000);

  it('completes its channels when the client closes it', async () => {
    const own = await openSession();
    const extra = await own.openChannel();
    await lastValueFrom(own.connection.close());
    expect(await firstValueFrom(own.channelEvents)).toBe('complete');
    expect(await firstValueFrom(extra.events)).toBe('complete');
    expect(await firstValueFrom(own.connectionEvents)).toBe('complete');
    expect(own.channel.error).toBeUndefined();
    own.close();
  });

  it('allocates, recycles and bounds channel ids, and accepts explicit ids', async () => {
    const small = await openSession({ channelMax: 3 });
    try {
      expect(small.connection.tune.channelMax).toBe(3);
      expect(small.channel.id).toBe(1);
      const second = await small.openChannel();
      const third = await small.openChannel();
      expect([second.channel.id, third.channel.id]).toEqual([2, 3]);
      const e = await firstValueFrom(small.connection.channel()).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(AmqpError);
      expect((e as AmqpError).code).toBe('CHANNEL_UNAVAILABLE');
      await lastValueFrom(second.channel.close());
      expect(await firstValueFrom(second.events)).toBe('complete');
      const reused = await small.openChannel();
      expect(reused.channel.id).toBe(2);
      const explicit = await firstValueFrom(small.connection.channel({ id: 3 })).catch((x: unknown) => x);
      expect((explicit as AmqpError).code).toBe('CHANNEL_UNAVAILABLE'); // 3 is in use
    } finally {
      small.close();
    }
  });
});

describe('channel methods', () => {
  it('declares, binds, unbinds and deletes exchanges, including exchange-to-exchange bindings', async () => {
    const ch = session.channel;
    const src = uniqueName('src');
    const dst = uniqueName('dst');
    await lastValueFrom(ch.exchangeDeclare(src, 'topic', { autoDelete: false }));
    await lastValueFrom(ch.exchangeDeclare(dst, 'fanout'));
    await lastValueFrom(ch.exchangeDeclare(dst, 'fanout', { passive: true }));
    await lastValueFrom(ch.exchangeBind(dst, src, 'a.*'));
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.queueBind(queue, dst));
    await lastValueFrom(ch.publish(src, 'a.b', 'routed'));
    expect((await getOne(queue)).text()).toBe('routed');
    await lastValueFrom(ch.exchangeUnbind(dst, src, 'a.*'));
    await lastValueFrom(ch.publish(src, 'a.b', 'not routed'));
    expect(await firstValueFrom(ch.get(queue), { defaultValue: 'empty' })).toBe('empty');
    await lastValueFrom(ch.exchangeDelete(dst));
    await lastValueFrom(ch.exchangeDelete(src, { ifUnused: true }));
  });

  it('declares, binds, purges and deletes queues with their counts', async () => {
    const ch = session.channel;
    const name = uniqueName('q');
    const declared = await lastValueFrom(
      ch.queueDeclare(name, { durable: false, arguments: { 'x-max-length': 100 } }),
    );
    expect(declared).toEqual({ queue: name, messageCount: 0, consumerCount: 0 });
    await lastValueFrom(ch.queueBind(name, 'amq.direct', name));
    for (let i = 0; i < 3; i++) await lastValueFrom(ch.publish('amq.direct', name, `m${i}`));
    expect(await waitForCount(name, 3)).toBe(3);
    expect(await lastValueFrom(ch.queuePurge(name))).toEqual({ messageCount: 3 });
    await lastValueFrom(ch.queueUnbind(name, 'amq.direct', name));
    await lastValueFrom(ch.publish('amq.direct', name, 'dropped'));
    await lastValueFrom(ch.publish('', name, 'direct'));
    expect(await waitForCount(name, 1)).toBe(1);
    expect(await lastValueFrom(ch.queueDelete(name))).toEqual({ messageCount: 1 });
  });

  it('names server-named queues', async () => {
    const { queue } = await lastValueFrom(session.channel.queueDeclare('', { exclusive: true }));
    expect(queue).toMatch(/^amq\.gen-/);
  });

  it('runs qos, recover, flow, confirm.select and the nowait variants', async () => {
    const { channel } = await session.openChannel();
    await lastValueFrom(channel.qos(10, { global: false }));
    await lastValueFrom(channel.recover());
    expect(await lastValueFrom(channel.flow(true))).toBe(true);
    const ex = uniqueName('nowait');
    const q = uniqueName('nowait-q');
    await lastValueFrom(channel.exchangeDeclare(ex, 'direct', { nowait: true, autoDelete: true }));
    await lastValueFrom(channel.queueDeclareNoWait(q, { autoDelete: false }));
    await lastValueFrom(channel.queueBind(q, ex, 'k', { nowait: true }));
    await lastValueFrom(channel.confirmSelect({ nowait: true }));
    // A synchronous method after the nowait ones proves they were all accepted, in order.
    expect((await lastValueFrom(channel.queueDeclare(q, { passive: true }))).queue).toBe(q);
    await lastValueFrom(channel.publish(ex, 'k', 'via nowait binding'));
    expect(await waitForCount(q, 1)).toBe(1);
    expect(await lastValueFrom(channel.queueDelete(q))).toEqual({ messageCount: 1 });
    await lastValueFrom(channel.exchangeDelete(ex));
  });

  it('commits and rolls back transactions', async () => {
    const { channel } = await session.openChannel();
    const { queue } = await lastValueFrom(channel.queueDeclare('', { exclusive: true }));
    await lastValueFrom(channel.txSelect());
    await lastValueFrom(channel.publish('', queue, 'rolled back'));
    await lastValueFrom(channel.txRollback());
    await lastValueFrom(channel.publish('', queue, 'committed'));
    await lastValueFrom(channel.txCommit());
    const all = await lastValueFrom(
      merge(channel.get(queue, { noAck: true }), channel.get(queue, { noAck: true })).pipe(toArray()),
    );
    expect(all.map((d) => d.text())).toEqual(['committed']);
  });

  it('gets with manual ack, redelivers a nacked message, and settles once', async () => {
    const ch = session.channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.publish('', queue, 'again'));
    const first = await getWait(queue);
    expect(first.fields).toMatchObject({
      redelivered: false,
      exchange: '',
      routingKey: queue,
      messageCount: 0,
    });
    expect(first.nack({ requeue: true })).toBe(true);
    expect(first.ack()).toBe(false); // already settled
    const second = await getWait(queue);
    expect(second.fields.redelivered).toBe(true);
    expect(second.ack()).toBe(true);
    expect(await firstValueFrom(ch.get(queue), { defaultValue: 'empty' })).toBe('empty');
  });

  it('returns an unroutable mandatory message on returns$', async () => {
    const ch = session.channel;
    const returned = firstValueFrom(ch.returns$);
    await lastValueFrom(
      ch.publish('amq.direct', uniqueName('nobody'), 'lost', { messageId: 'r1' }, { mandatory: true }),
    );
    const r = await returned;
    expect(r).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', exchange: 'amq.direct' });
    expect(r.properties.messageId).toBe('r1');
    expect(r.body.toString()).toBe('lost');
  });

  it('round-trips all 14 properties and headers of every table type', async () => {
    const ch = session.channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const timestamp = new Date(Math.floor(Date.now() / 1000) * 1000);
    const headers = {
      bool: true,
      i8: field.int8(-8),
      u8: field.uint8(200),
      i16: field.int16(-1600),
      u16: field.uint16(60000),
      i32: -32,
      u32: field.uint32(4_000_000_000),
      i64: 2n ** 62n,
      f32: field.float32(1.5),
      f64: 2.25,
      dec: new Decimal(2, 1999),
      str: 'héllo',
      bytes: Buffer.from([0, 1, 2, 255]),
      arr: [1, 'two', [3]],
      ts: timestamp,
      table: { nested: { deep: 'yes' } },
      nothing: null,
    };
    const properties = {
      contentType: 'application/octet-stream',
      contentEncoding: 'identity',
      headers,
      deliveryMode: 2,
      priority: 5,
      correlationId: 'corr-1',
      replyTo: 'reply-queue',
      expiration: '60000',
      messageId: 'msg-1',
      timestamp,
      type: 'test.type',
      userId: 'guest',
      appId: 'rxamqp-tests',
      clusterId: 'cluster-a',
    };
    const body = Buffer.from([0, 1, 2, 3, 254, 255]);
    await lastValueFrom(ch.publish('', queue, body, properties));
    const d = await getOne(queue);
    expect(Buffer.from(d.body).equals(body)).toBe(true);
    const { headers: got, ...rest } = d.properties;
    const { headers: _sent, ...sentRest } = properties;
    expect(rest).toEqual(sentRest);
    expect(got).toEqual({
      ...headers,
      i8: -8,
      u8: 200,
      i16: -1600,
      u16: 60000,
      u32: 4_000_000_000,
      f32: 1.5,
    });
    expect(fieldTypesOf(got!)).toEqual({ i8: 'b', u8: 'B', i16: 's', u16: 'u', u32: 'i', f32: 'f' });
  });

  it('round-trips a 10 MiB message across many frames', async () => {
    const ch = session.channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const body = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
    const before = session.connection.counters.framesSent;
    await lastValueFrom(ch.publish('', queue, body));
    expect(session.connection.counters.framesSent - before).toBeGreaterThanOrEqual(
      2 + Math.ceil(body.length / (131072 - 8)),
    );
    const d = await getOne(queue);
    expect(d.body.length).toBe(body.length);
    expect(Buffer.from(d.body).equals(body)).toBe(true);
  });

  it('runs many synchronous methods on one channel in order', async () => {
    const ch = session.channel;
    const names = Array.from({ length: 50 }, (_, i) => `${uniqueName('order')}-${i}`);
    const replies = await lastValueFrom(
      merge(...names.map((n) => ch.queueDeclare(n, { autoDelete: true, exclusive: true }))).pipe(toArray()),
    );
    expect(replies.map((r) => r.queue)).toEqual(names);
  });
});

describe('channel errors', () => {
  it('keeps the connection when a soft error is caught in a pipeline, and retry reopens a channel', async () => {
    const missing = uniqueName('missing');
    let attempts = 0;
    const result = await lastValueFrom(
      session.connection.channel().pipe(
        switchMap((ch) => {
          attempts++;
          return attempts === 1
            ? ch.queueDeclare(missing, { passive: true })
            : ch.queueDeclare('', { exclusive: true });
        }),
        retry(1),
        take(1),
      ),
    );
    expect(attempts).toBe(2);
    expect(result.queue).toMatch(/^amq\.gen-/);
    const caught = await lastValueFrom(
      session.connection.channel().pipe(
        switchMap((ch) => ch.queueDeclare(missing, { passive: true })),
        map(() => 'found'),
        catchError(() => of('caught')),
      ),
    );
    expect(caught).toBe('caught');
    await new Promise((r) => setTimeout(r, 100));
    expect(session.connection.isOpen).toBe(true);
    expect((await lastValueFrom(session.channel.queueDeclare('', { exclusive: true }))).queue).toMatch(
      /^amq\.gen-/,
    );
  });

  it('keeps a publish behind the declarations subscribed before it', async () => {
    const { channel } = await session.openChannel();
    const a = uniqueName('order-a');
    const b = uniqueName('order-b');
    await lastValueFrom(
      merge(
        channel.queueDeclare(a, { exclusive: true }),
        channel.queueDeclare(b, { exclusive: true }),
        channel.publish('', b, 'after the declare'),
      ),
      { defaultValue: undefined },
    );
    expect((await getWait(b, { noAck: true, channel })).text()).toBe('after the declare');
  });

  it('closes only the offending channel on 404, and later use says where it closed', async () => {
    const doomed = await session.openChannel();
    const e = await lastValueFrom(
      doomed.channel.queueDeclare(uniqueName('missing'), { passive: true }),
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ChannelClosedError);
    expect(e).toMatchObject({
      replyCode: 404,
      classId: 50,
      methodId: 10,
      channel: doomed.channel.id,
      initiator: 'server',
    });
    expect((e as ChannelClosedError).closedAt).toContain('channel.test.ts');
    const events = await firstValueFrom(doomed.events);
    expect(events).toBe(e);
    const later = await lastValueFrom(doomed.channel.queueDeclare('x')).catch((x: unknown) => x);
    expect(later).toBeInstanceOf(ChannelClosedError);
    expect((later as ChannelClosedError).code).toBe('CHANNEL_CLOSED');
    expect((later as Error).message).toContain('channel.test.ts');
    expect(doomed.channel.ack(1)).toBe(false);
    // The session's own channel and connection are unaffected.
    expect((await lastValueFrom(session.channel.queueDeclare('', { exclusive: true }))).queue).toMatch(
      /^amq\.gen-/,
    );
    expect(session.connection.isOpen).toBe(true);
  });

  it('fails a redeclare with other arguments with 406', async () => {
    const name = uniqueName('mismatch');
    const ok = await session.openChannel();
    await lastValueFrom(ok.channel.queueDeclare(name, { autoDelete: true }));
    const other = await session.openChannel();
    const e = await lastValueFrom(other.channel.queueDeclare(name, { durable: true })).catch(
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ replyCode: 406 });
    expect((e as ChannelClosedError).replyText).toContain('PRECONDITION_FAILED');
    await lastValueFrom(ok.channel.queueDelete(name));
  });

  it('refuses amq.* exchange names with 403', async () => {
    const { channel } = await session.openChannel();
    const e = await lastValueFrom(channel.exchangeDeclare(`amq.${uniqueName('x')}`, 'direct')).catch(
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ replyCode: 403 });
    expect(e).toBeInstanceOf(ChannelClosedError);
  });

  it('fails operations queued behind the one the broker rejected', async () => {
    const { channel } = await session.openChannel();
    const results = await Promise.allSettled([
      lastValueFrom(channel.queueDeclare(uniqueName('missing'), { passive: true })),
      lastValueFrom(channel.queueDeclare('', { exclusive: true })),
      lastValueFrom(channel.qos(1)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ChannelClosedError);
  });
});
