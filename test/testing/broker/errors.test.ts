/** Channel and connection errors through the real client: codes, RabbitMQ 3.10's texts, class and method. */
import { lastValueFrom, type Observable } from 'rxjs';
import { ChannelClosedError, type Connection, ConnectionClosedError } from '../../../src/index.js';
import { connectTo, EmbeddedBroker, rejection } from './helpers.js';

let broker: EmbeddedBroker;
let conn: Connection;

beforeEach(async () => {
  broker = new EmbeddedBroker();
  conn = await connectTo(broker);
});
afterEach(async () => {
  if (conn.isOpen) await lastValueFrom(conn.close());
});

/** Runs `op` on a fresh channel and returns the channel error it fails with. */
async function softError(op: (ch: Awaited<ReturnType<Connection['openChannel']>>) => Observable<unknown>) {
  const ch = await conn.openChannel();
  const e = await rejection(lastValueFrom(op(ch)));
  expect(e).toBeInstanceOf(ChannelClosedError);
  expect(conn.isOpen).toBe(true);
  const { replyCode, replyText, classId, methodId } = e as unknown as ChannelClosedError;
  return { replyCode, replyText, classId, methodId };
}

describe('channel errors (soft: the channel closes, the connection stays)', () => {
  it('404 for a missing queue or exchange', async () => {
    expect(await softError((ch) => ch.queueDeclare('nope', { passive: true }))).toEqual({
      replyCode: 404,
      replyText: "NOT_FOUND - no queue 'nope' in vhost '/'",
      classId: 50,
      methodId: 10,
    });
    expect(await softError((ch) => ch.exchangeDeclare('nope', 'direct', { passive: true }))).toEqual({
      replyCode: 404,
      replyText: "NOT_FOUND - no exchange 'nope' in vhost '/'",
      classId: 40,
      methodId: 10,
    });
    expect((await softError((ch) => ch.queuePurge('nope'))).replyText).toBe(
      "NOT_FOUND - no queue 'nope' in vhost '/'",
    );
    expect((await softError((ch) => ch.get('nope'))).methodId).toBe(70);
    expect((await softError((ch) => ch.consume('nope'))).replyCode).toBe(404);
    expect((await softError((ch) => ch.queueBind('nope', 'amq.direct', 'k'))).replyText).toBe(
      "NOT_FOUND - no queue 'nope' in vhost '/'",
    );
  });

  it('404 when publishing to a missing exchange', async () => {
    const ch = await conn.openChannel();
    ch.publish('nope', 'k', 'x').subscribe();
    const e = await rejection(lastValueFrom(ch.queueDeclare('', { exclusive: true })));
    expect(e).toMatchObject({
      replyCode: 404,
      replyText: "NOT_FOUND - no exchange 'nope' in vhost '/'",
      classId: 60,
      methodId: 40,
    });
  });

  it('403 for the amq. prefix and the default exchange', async () => {
    expect((await softError((ch) => ch.exchangeDeclare('amq.custom', 'direct'))).replyText).toBe(
      "ACCESS_REFUSED - exchange name 'amq.custom' contains reserved prefix 'amq.*'",
    );
    expect((await softError((ch) => ch.exchangeDelete('amq.fanout'))).replyText).toBe(
      "ACCESS_REFUSED - deletion of system exchange 'amq.fanout' in vhost '/' not allowed",
    );
    expect((await softError((ch) => ch.queueBind('q', '', 'q'))).replyText).toBe(
      'ACCESS_REFUSED - operation not permitted on the default exchange',
    );
    expect((await softError((ch) => ch.queueDeclare('amq.gen-mine'))).replyText).toBe(
      "ACCESS_REFUSED - queue name 'amq.gen-mine' contains reserved prefix 'amq.*'",
    );
  });

  it('403 when publishing to an internal exchange', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.exchangeDeclare('inner', 'fanout', { internal: true }));
    ch.publish('inner', '', 'x').subscribe();
    const e = await rejection(lastValueFrom(ch.queueDeclare('', { exclusive: true })));
    expect(e).toMatchObject({
      replyCode: 403,
      replyText: "ACCESS_REFUSED - cannot publish to internal exchange 'inner' in vhost '/'",
    });
  });

  it('406 for inequivalent redeclarations', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.exchangeDeclare('x', 'direct'));
    expect((await softError((c) => c.queueDeclare('q', { durable: true }))).replyText).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'",
    );
    expect((await softError((c) => c.queueDeclare('q', { autoDelete: true }))).replyText).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'",
    );
    expect(
      (await softError((c) => c.queueDeclare('q', { arguments: { 'x-message-ttl': 1000 } }))).replyText,
    ).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received the value '1000' of type 'signedint' but current is none",
    );
    expect((await softError((c) => c.exchangeDeclare('x', 'fanout'))).replyText).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'",
    );
    expect(
      (
        await softError((c) =>
          c.exchangeDeclare('x', 'direct', { arguments: { 'alternate-exchange': 'ae' } }),
        )
      ).replyText,
    ).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received the value 'ae' of type 'longstr' but current is none",
    );
  });

  it('405 for another connection’s exclusive queue, for every operation but unbind', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('mine', { exclusive: true }));
    const other = await connectTo(broker);
    const text =
      "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.";
    const ops: ((c: Awaited<ReturnType<Connection['openChannel']>>) => Observable<unknown>)[] = [
      (c) => c.queueDeclare('mine', { exclusive: true }),
      (c) => c.queueDeclare('mine', { passive: true }),
      (c) => c.consume('mine'),
      (c) => c.get('mine'),
      (c) => c.queuePurge('mine'),
      (c) => c.queueDelete('mine'),
      (c) => c.queueBind('mine', 'amq.direct', 'k'),
    ];
    for (const op of ops) {
      const c = await other.openChannel();
      const e = await rejection(lastValueFrom(op(c)));
      expect(e).toMatchObject({ replyCode: 405, replyText: text });
    }
    const c = await other.openChannel();
    await lastValueFrom(c.queueUnbind('mine', 'amq.direct', 'k'));
    await lastValueFrom(other.close());
  });

  it('406 for delete if-unused / if-empty, with counts otherwise', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    broker.publish('', 'q', 'a');
    broker.publish('', 'q', 'b');
    expect((await softError((c) => c.queueDelete('q', { ifEmpty: true }))).replyText).toBe(
      "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty",
    );
    const consumer = ch.consume('q', { prefetch: 1 }).subscribe();
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect((await softError((c) => c.queueDelete('q', { ifUnused: true }))).replyText).toBe(
      "PRECONDITION_FAILED - queue 'q' in vhost '/' in use",
    );
    consumer.unsubscribe();
    const c = await conn.openChannel();
    // The message the cancelled consumer holds stays unacked (RabbitMQ keeps it on the channel).
    expect(await lastValueFrom(c.queuePurge('q'))).toEqual({ messageCount: 1 });
    expect(await lastValueFrom(c.queueDelete('q'))).toEqual({ messageCount: 0 });
    expect(await lastValueFrom(c.queueDelete('q'))).toEqual({ messageCount: 0 }); // missing: fine
    await lastValueFrom(c.exchangeDeclare('x', 'fanout'));
    await lastValueFrom(c.queueDeclare('bound'));
    await lastValueFrom(c.queueBind('bound', 'x', ''));
    expect((await softError((cc) => cc.exchangeDelete('x', { ifUnused: true }))).replyText).toBe(
      "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use",
    );
  });

  it('406 unknown delivery tag for an ack, nack or reject of a tag not outstanding', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    ch.ack(5);
    const e = await rejection(lastValueFrom(ch.queueDeclare('q', { passive: true })));
    expect(e).toMatchObject({
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - unknown delivery tag 5',
      classId: 60,
      methodId: 80,
    });
    const ch2 = await conn.openChannel();
    broker.publish('', 'q', 'x');
    const d = await lastValueFrom(ch2.get('q'));
    d.ack();
    ch2.reject(d.fields.deliveryTag);
    const e2 = await rejection(lastValueFrom(ch2.queueDeclare('q', { passive: true })));
    expect(e2).toMatchObject({
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - unknown delivery tag 1',
      methodId: 90,
    });
  });

  it('403 exclusive consumer conflicts', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    ch.consume('q', { exclusive: true }).subscribe();
    expect((await softError((c) => c.consume('q'))).replyText).toBe(
      "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    );
    await lastValueFrom(ch.queueDeclare('q2'));
    ch.consume('q2').subscribe();
    expect((await softError((c) => c.consume('q2', { exclusive: true }))).replyText).toBe(
      "ACCESS_REFUSED - queue 'q2' in vhost '/' in exclusive use",
    );
  });

  it('406 when switching between tx and confirm, or committing outside a transaction', async () => {
    expect((await softError((ch) => ch.txCommit())).replyText).toBe(
      'PRECONDITION_FAILED - channel is not transactional',
    );
    const ch = await conn.openChannel();
    await lastValueFrom(ch.txSelect());
    const e = await rejection(lastValueFrom(ch.confirmSelect()));
    expect(e).toMatchObject({
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - cannot switch from tx to confirm mode',
    });
    const ch2 = await conn.openChannel();
    await lastValueFrom(ch2.confirmSelect());
    const e2 = await rejection(lastValueFrom(ch2.txSelect()));
    expect(e2).toMatchObject({ replyText: 'PRECONDITION_FAILED - cannot switch from confirm to tx mode' });
  });

  it('406 for invalid queue arguments and quorum properties', async () => {
    expect(
      (await softError((ch) => ch.queueDeclare('q', { arguments: { 'x-max-length': -1 } }))).replyText,
    ).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}",
    );
    expect(
      (
        await softError((ch) =>
          ch.queueDeclare('qq', { durable: true, exclusive: true, arguments: { 'x-queue-type': 'quorum' } }),
        )
      ).replyText,
    ).toBe("PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'qq' in vhost '/'");
  });

  it('406 for an expiration that is not a non-negative integer', async () => {
    const ch = await conn.openChannel();
    ch.publish('', 'q', 'x', { expiration: 'abc' }).subscribe();
    expect(await rejection(lastValueFrom(ch.queueDeclare('', { exclusive: true })))).toMatchObject({
      replyCode: 406,
      replyText: "PRECONDITION_FAILED - invalid expiration 'abc': no_integer",
      classId: 60,
      methodId: 40,
    });
    const ch2 = await conn.openChannel();
    ch2.publish('', 'q', 'x', { expiration: '-1' }).subscribe();
    expect(await rejection(lastValueFrom(ch2.queueDeclare('', { exclusive: true })))).toMatchObject({
      replyText: "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}",
    });
  });

  it('403 for a passive declare of the default exchange', async () => {
    expect((await softError((ch) => ch.exchangeDeclare('', 'direct', { passive: true }))).replyText).toBe(
      'ACCESS_REFUSED - operation not permitted on the default exchange',
    );
  });

  it('406 for a user_id that is not the login', async () => {
    const ch = await conn.openChannel();
    ch.publish('', 'q', 'x', { userId: 'mallory' }).subscribe();
    const e = await rejection(lastValueFrom(ch.queueDeclare('', { exclusive: true })));
    expect(e).toMatchObject({
      replyCode: 406,
      replyText: "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'",
    });
  });
});

describe('connection errors (hard: connection.close)', () => {
  it('530 for a reused consumer tag on the channel', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    ch.consume('q', { consumerTag: 'dup' }).subscribe({ error: () => {} });
    const e = await rejection(lastValueFrom(ch.consume('q', { consumerTag: 'dup' })));
    // The operation fails with its channel's error, caused by the connection's.
    expect(e.cause).toBeInstanceOf(ConnectionClosedError);
    expect(e.cause).toMatchObject({ code: 'SERVER_CLOSED', replyCode: 530 });
    expect(e).toMatchObject({
      replyCode: 530,
      replyText: "NOT_ALLOWED - attempt to reuse consumer tag 'dup'",
      classId: 60,
      methodId: 20,
    });
    expect(conn.isOpen).toBe(false);
    expect(broker.connections()).toEqual([]);
  });

  it('503 for an unknown exchange type', async () => {
    const ch = await conn.openChannel();
    const e = await rejection(lastValueFrom(ch.exchangeDeclare('x', 'x-unknown')));
    expect(e.cause).toBeInstanceOf(ConnectionClosedError);
    expect(e).toMatchObject({
      replyCode: 503,
      replyText: "COMMAND_INVALID - unknown exchange type 'x-unknown'",
    });
  });

  it('540 for prefetch_size, channel.flow(false) and recover without requeue', async () => {
    for (const [op, text] of [
      [
        (ch: Awaited<ReturnType<Connection['openChannel']>>) => ch.qos(1, { prefetchSize: 10 }),
        'NOT_IMPLEMENTED - prefetch_size!=0 (10)',
      ],
      [
        (ch: Awaited<ReturnType<Connection['openChannel']>>) => ch.flow(false),
        'NOT_IMPLEMENTED - active=false',
      ],
      [
        (ch: Awaited<ReturnType<Connection['openChannel']>>) => ch.recover({ requeue: false }),
        'NOT_IMPLEMENTED - requeue=false',
      ],
    ] as [(ch: Awaited<ReturnType<Connection['openChannel']>>) => Observable<unknown>, string][]) {
      const c = await connectTo(broker);
      const ch = await c.openChannel();
      const e = await rejection(lastValueFrom(op(ch)));
      expect(e).toMatchObject({ replyCode: 540, replyText: text });
      expect(e.cause).toBeInstanceOf(ConnectionClosedError);
      expect(c.isOpen).toBe(false);
    }
  });
});
