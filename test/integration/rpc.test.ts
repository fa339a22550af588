import { lastValueFrom, merge, TimeoutError, toArray } from 'rxjs';
import { ChannelClosedError } from '../../src/node.js';
import { openSession, type Session } from '../support/session.js';

let session: Session;

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp rpc tests' });
});

afterAll(() => {
  session?.close();
});

/** A server on its own channel: answers `n` with n * 2 on the request's replyTo, same correlationId. */
async function startDoubler(queue: string): Promise<() => void> {
  const { channel, close } = await session.openChannel();
  await lastValueFrom(channel.queueDeclare(queue, { exclusive: true, autoDelete: true }));
  const subscription = channel.consume(queue).subscribe((request) => {
    const n = Number(request.text());
    const replyTo = request.properties.replyTo;
    if (replyTo === undefined) {
      request.reject({ requeue: false });
      return;
    }
    channel
      .publish('', replyTo, String(n * 2), { correlationId: request.properties.correlationId })
      .subscribe({ complete: () => request.ack() });
  });
  return () => {
    subscription.unsubscribe();
    close();
  };
}

describe('RPC over direct reply-to (real broker)', () => {
  it('matches replies to requests by correlation id, many in flight', async () => {
    const queue = `rxamqp-rpc-${process.pid}`;
    const stop = await startDoubler(queue);
    try {
      const { channel } = await session.openChannel();
      const replies = await lastValueFrom(
        merge(
          ...Array.from({ length: 20 }, (_, i) =>
            channel.request('', queue, String(i), {}, { timeoutMs: 5000 }),
          ),
        ).pipe(toArray()),
      );
      expect(replies.map((r) => Number(r.text())).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i * 2),
      );
      expect(new Set(replies.map((r) => r.properties.correlationId)).size).toBe(20);
    } finally {
      stop();
    }
  });

  it('times out when nobody answers, with the request carrying that expiration', async () => {
    const { channel } = await session.openChannel();
    const { queue } = await lastValueFrom(channel.queueDeclare('', { exclusive: true }));
    const e = await lastValueFrom(channel.request('', queue, 'ping', {}, { timeoutMs: 200 })).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(TimeoutError);
    const unanswered = await lastValueFrom(channel.get(queue, { noAck: true }), { defaultValue: undefined });
    // The request either expired in the queue already or still carries its expiration.
    if (unanswered !== undefined) expect(unanswered.properties.expiration).toBe('200');
  });

  it('fails pending requests when their channel closes', async () => {
    const opened = await session.openChannel();
    const { queue } = await lastValueFrom(opened.channel.queueDeclare('', { exclusive: true }));
    const pending = lastValueFrom(opened.channel.request('', queue, 'never answered')).catch(
      (x: unknown) => x,
    );
    await new Promise((r) => setTimeout(r, 50));
    await lastValueFrom(opened.channel.close());
    expect(await pending).toBeInstanceOf(ChannelClosedError);
  });
});
