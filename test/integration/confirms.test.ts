/**
 * Publisher confirms, returns and transactions against the real broker.
 */
import { count, from, lastValueFrom, map, merge, toArray } from 'rxjs';
import { publishConfirmed } from '../../operators/index.js';
import {
  ChannelClosedError,
  ConfigurationError,
  type Confirmation,
  openConnection,
  PublishNackedError,
  type PublishOutcome,
} from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { openSession, type Session } from '../support/session.js';

let session: Session;

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp confirms tests' });
});

afterAll(() => {
  session?.close();
});

async function readyCount(queue: string): Promise<number> {
  return (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount;
}

describe('publisher confirms (real broker)', () => {
  it('publishConfirmed refuses a channel without confirmSelect(), and works once it is in confirm mode', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const messages = [{ exchange: '', routingKey: queue, body: 'm' }];
    expect(ch.confirmMode).toBe(false);
    await expect(lastValueFrom(from(messages).pipe(publishConfirmed(ch)))).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    expect(await readyCount(queue)).toBe(0); // nothing was published
    await lastValueFrom(ch.confirmSelect());
    expect(ch.confirmMode).toBe(true);
    const results = await lastValueFrom(from(messages).pipe(publishConfirmed(ch), toArray()));
    expect(results.map((r) => r.outcome.status)).toEqual(['acked']);
  });

  it('publishes 100,000 messages through publishConfirmed with a window of 1000: all acked, in order', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.confirmSelect());
    const seqs: number[] = [];
    ch.confirms$.subscribe((c) => seqs.push(c.seq));
    const total = 100_000;
    let inOrder = true;
    let expected = 0;
    let acked = 0;
    await lastValueFrom(
      from(
        Array.from({ length: total }, (_, i) => ({ exchange: '', routingKey: queue, body: `m${i}` })),
      ).pipe(
        publishConfirmed(ch, { window: 1000 }),
        map((result) => {
          if (result.message.body !== `m${expected}`) inOrder = false;
          expected++;
          if (result.outcome.status === 'acked') acked++;
          return result;
        }),
        count(),
      ),
    );
    expect(inOrder).toBe(true);
    expect(acked).toBe(total);
    expect(seqs.length).toBe(total);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    expect(await readyCount(queue)).toBe(total);
    await lastValueFrom(ch.queuePurge(queue));
  }, 120_000);

  it('returns a mandatory publish that no queue receives, as that publish’s outcome', async () => {
    const ch = (await session.openChannel()).channel;
    await lastValueFrom(ch.confirmSelect());
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    const [routed, unroutable] = await Promise.all([
      lastValueFrom(ch.publish('', queue, 'kept', {}, { mandatory: true })),
      lastValueFrom(
        ch.publish('amq.direct', 'nobody-is-bound-here', 'lost', { messageId: 'x1' }, { mandatory: true }),
      ),
    ]);
    expect(routed).toEqual({ status: 'acked', seq: 1 });
    expect(unroutable.status).toBe('returned');
    const returned = (unroutable as Extract<PublishOutcome, { status: 'returned' }>).returned;
    expect(returned).toMatchObject({
      replyCode: 312,
      exchange: 'amq.direct',
      routingKey: 'nobody-is-bound-here',
    });
    expect(returned.properties.messageId).toBe('x1');
    expect(returned.body.toString()).toBe('lost');
  });

  it('reports the broker’s nacks (a full queue that rejects publishes) under each nack policy', async () => {
    const ch = (await session.openChannel()).channel;
    await lastValueFrom(ch.confirmSelect());
    const { queue } = await lastValueFrom(
      ch.queueDeclare('', {
        exclusive: true,
        arguments: { 'x-max-length': 5, 'x-overflow': 'reject-publish' },
      }),
    );
    const messages = Array.from({ length: 10 }, (_, i) => ({
      exchange: '',
      routingKey: queue,
      body: `m${i}`,
    }));
    const emitted = await lastValueFrom(
      from(messages).pipe(publishConfirmed(ch, { window: 1, onNack: 'emit' }), toArray()),
    );
    expect(emitted.map((r) => r.outcome.status)).toEqual([
      ...Array(5).fill('acked'),
      ...Array(5).fill('nacked'),
    ]);

    const retried = await lastValueFrom(
      from(messages.slice(0, 2)).pipe(
        publishConfirmed(ch, { onNack: { retry: 2, exhausted: 'emit' } }),
        toArray(),
      ),
    );
    expect(retried.map((r) => [r.outcome.status, r.attempts])).toEqual([
      ['nacked', 3],
      ['nacked', 3],
    ]);

    const error = await lastValueFrom(from(messages.slice(0, 1)).pipe(publishConfirmed(ch))).catch((e) => e);
    expect(error).toBeInstanceOf(PublishNackedError);
    expect(error.attempts).toBe(1);
    expect(await readyCount(queue)).toBe(5);
  });

  it('settles every one of 10,000 in-flight publishes when the connection closes in the middle', async () => {
    const conn = await openConnection(await brokerUrl(), { name: 'rxamqp confirms: close mid-flight' });
    const ch = await conn.openChannel();
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.confirmSelect());
    const confirmations: Confirmation[] = [];
    ch.confirms$.subscribe((c) => {
      confirmations.push(c);
      if (confirmations.length === 1) void lastValueFrom(conn.close());
    });
    const total = 10_000;
    const results = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        lastValueFrom(ch.publish('', queue, `m${i}`)).then(
          (outcome) => outcome.status,
          (error: unknown) =>
            error instanceof ChannelClosedError ? 'failed' : `unexpected ${String(error)}`,
        ),
      ),
    );
    const acked = results.filter((r) => r === 'acked').length;
    const failed = results.filter((r) => r === 'failed').length;
    expect(acked + failed).toBe(total);
    expect(acked).toBeGreaterThanOrEqual(1);
    expect(failed).toBeGreaterThan(0);
    expect(confirmations.length).toBe(total);
    expect(confirmations.every((c, i) => c.seq === i + 1)).toBe(true);
    expect(confirmations.filter((c) => c.status === 'failed').length).toBe(failed);
  }, 60_000);

  it('commits and rolls back transactional publishes', async () => {
    const ch = (await session.openChannel()).channel;
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.txSelect());
    await lastValueFrom(merge(ch.publish('', queue, 'one'), ch.publish('', queue, 'two')));
    expect(await readyCount(queue)).toBe(0);
    await lastValueFrom(ch.txCommit());
    expect(await readyCount(queue)).toBe(2);
    await lastValueFrom(ch.publish('', queue, 'three'));
    await lastValueFrom(ch.txRollback());
    expect(await readyCount(queue)).toBe(2);
  });
});
