/**
 * `connection.openChannel()` and the parts of a channel made when first needed, against RabbitMQ:
 * the promise settles in every case (a taken channel number, a closed connection, a connection closed
 * while the channel opens); `confirms$`, `returns$` and `unclaimed$` asked for after the channel ended
 * are complete; returns arrive on a channel whose `returns$` was asked for only after it had
 * already had unwatched returns.
 */
import { lastValueFrom, take, toArray } from 'rxjs';
import { AmqpError, ChannelClosedError, type Connection, openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { uniqueName } from '../support/session.js';

let conn: Connection;

beforeAll(async () => {
  conn = await openConnection(await brokerUrl(), { name: 'rxamqp openChannel tests' });
});

afterAll(async () => {
  await lastValueFrom(conn.close(), { defaultValue: undefined });
});

describe('openChannel', () => {
  it('resolves with an open channel that stays open after the promise settled', async () => {
    const ch = await conn.openChannel();
    expect(ch.isOpen).toBe(true);
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    expect(queue).toMatch(/^amq\.gen-/);
    await lastValueFrom(ch.close());
    expect(ch.isOpen).toBe(false);
  });

  it('rejects with CHANNEL_UNAVAILABLE when the asked-for number is taken', async () => {
    const ch = await conn.openChannel();
    await expect(conn.openChannel({ id: ch.id })).rejects.toMatchObject({
      name: AmqpError.name,
      code: 'CHANNEL_UNAVAILABLE',
    });
    await lastValueFrom(ch.close());
  });

  it('rejects on a closed connection, and when the connection closes before the channel opened', async () => {
    const other = await openConnection(await brokerUrl());
    const opening = other.openChannel();
    const closing = lastValueFrom(other.close(), { defaultValue: undefined });
    // The channel.open and the connection.close go out in the same write: the broker answers both,
    // but the client is closing, so the channel never becomes the user's.
    await expect(opening).rejects.toBeInstanceOf(Error);
    await closing;
    await expect(other.openChannel()).rejects.toBeInstanceOf(Error);
  });
});

describe('the parts of a channel made when first asked for', () => {
  it('are complete when first asked for after the channel ended', async () => {
    const ch = await conn.openChannel();
    // A passive declare of a queue that does not exist: 404 closes the channel.
    await expect(
      lastValueFrom(ch.queueDeclare(uniqueName('missing'), { passive: true })),
    ).rejects.toBeInstanceOf(ChannelClosedError);
    expect(ch.isOpen).toBe(false);
    expect(ch.confirmMode).toBe(false);
    await expect(lastValueFrom(ch.confirms$.pipe(toArray()))).resolves.toEqual([]);
    await expect(lastValueFrom(ch.returns$.pipe(toArray()))).resolves.toEqual([]);
    await expect(lastValueFrom(ch.unclaimed$.pipe(toArray()))).resolves.toEqual([]);
  });

  it('complete when the channel closes after they were asked for', async () => {
    const ch = await conn.openChannel();
    const confirms = lastValueFrom(ch.confirms$.pipe(toArray()));
    const returns = lastValueFrom(ch.returns$.pipe(toArray()));
    const unclaimed = lastValueFrom(ch.unclaimed$.pipe(toArray()));
    await lastValueFrom(ch.close());
    await expect(Promise.all([confirms, returns, unclaimed])).resolves.toEqual([[], [], []]);
  });

  it('returns$ asked for late sees the returns from then on; unwatched returns are dropped', async () => {
    const ch = await conn.openChannel();
    const nowhere = uniqueName('nowhere');
    // Unwatched: a mandatory publish that no queue takes comes back to a channel nobody listens on.
    await lastValueFrom(
      ch.publish('', nowhere, new TextEncoder().encode('first'), undefined, { mandatory: true }),
    );
    // A round trip on the same channel: the first return has arrived before it answers.
    await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const watched = lastValueFrom(ch.returns$.pipe(take(1)));
    await lastValueFrom(
      ch.publish('', nowhere, new TextEncoder().encode('second'), undefined, { mandatory: true }),
    );
    const returned = await watched;
    expect(new TextDecoder().decode(returned.body)).toBe('second');
    expect(returned).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', routingKey: nowhere });
    await lastValueFrom(ch.close());
  });

  it('a confirm channel made confirmed publishes and returns through the tracker made at confirm.select', async () => {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.confirmSelect());
    expect(ch.confirmMode).toBe(true);
    const nowhere = uniqueName('nowhere');
    const outcome = await lastValueFrom(
      ch.publish('', nowhere, new TextEncoder().encode('x'), undefined, { mandatory: true }),
    );
    expect(outcome).toMatchObject({ status: 'returned', seq: 1 });
    await lastValueFrom(ch.close());
  });
});
