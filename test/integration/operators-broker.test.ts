import {
  catchError,
  defer,
  delay,
  firstValueFrom,
  lastValueFrom,
  map,
  merge,
  mergeMap,
  of,
  type Subscription,
  take,
  throwError,
  timeout,
  toArray,
} from 'rxjs';
import { answerRequests, retryWithDelay } from '../../operators/index.js';
import { openSession, type Session, uniqueName } from '../support/session.js';

let session: Session;

beforeAll(async () => {
  session = await openSession({ name: 'rxamqp operators tests' });
});

afterAll(() => {
  session?.close();
});

describe('operators against the real broker', () => {
  it('retryWithDelay retries a failing message with counts 0, 1, 2, then dead-letters it', async () => {
    const { channel } = session;
    const work = uniqueName('retry-work');
    const dlq = uniqueName('retry-dlq');
    await lastValueFrom(channel.queueDeclare(dlq, { exclusive: true }));
    await lastValueFrom(
      channel.queueDeclare(work, {
        exclusive: true,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
      }),
    );
    const seen: number[] = [];
    const outcomes: string[] = [];
    const retry = retryWithDelay(channel, { queue: work, delays: [20, 20] });
    const consumer: Subscription = channel
      .consume(work, { prefetch: 5 })
      .pipe(
        mergeMap((d) =>
          defer(() => {
            seen.push(Number(d.properties.headers?.['x-retry-count'] ?? 0));
            return throwError(() => new Error('always fails'));
          }).pipe(catchError(() => of(d).pipe(retry))),
        ),
      )
      .subscribe((o) => outcomes.push(`${o.action}:${o.retryCount}`));
    try {
      const deadLettered = firstValueFrom(channel.consume(dlq).pipe(take(1), timeout(5000)));
      await lastValueFrom(
        channel.publish('', work, 'job', {
          contentType: 'text/plain',
          messageId: 'm-1',
          headers: { tenant: 'acme' },
        }),
      );
      const dead = await deadLettered;
      dead.ack();
      expect(seen).toEqual([0, 1, 2]);
      expect(outcomes).toEqual(['retried:0', 'retried:1', 'dead-lettered:2']);
      expect(dead.text()).toBe('job');
      expect(dead.properties.messageId).toBe('m-1');
      expect(dead.properties.contentType).toBe('text/plain');
      expect(dead.properties.headers?.['x-retry-count']).toBe(2);
      expect(dead.properties.headers?.tenant).toBe('acme');
      expect(dead.properties.headers?.['x-death']).toBeDefined();
      // Nothing left behind in the work queue.
      const left = await lastValueFrom(channel.get(work, { noAck: true }), { defaultValue: undefined });
      expect(left).toBeUndefined();
    } finally {
      consumer.unsubscribe();
    }
  });

  it('answerRequests answers Channel.request calls from another channel, many in flight', async () => {
    const server = await session.openChannel();
    const client = await session.openChannel();
    const queue = uniqueName('rpc-answer');
    await lastValueFrom(server.channel.queueDeclare(queue, { exclusive: true, autoDelete: true }));
    const answered: number[] = [];
    const subscription = server.channel
      .consume(queue, { prefetch: 10 })
      .pipe(
        answerRequests(
          server.channel,
          // Later requests finish first, so that replies come back out of order.
          (request) => {
            const { n } = request.json<{ n: number }>();
            return of({ n, doubled: n * 2 }).pipe(delay((10 - n) * 5));
          },
          { concurrency: 10 },
        ),
      )
      .subscribe((result) => answered.push(result.n));
    try {
      const replies = await lastValueFrom(
        merge(
          ...Array.from({ length: 10 }, (_, n) =>
            client.channel
              .request(
                '',
                queue,
                JSON.stringify({ n }),
                { contentType: 'application/json' },
                { timeoutMs: 5000 },
              )
              .pipe(map((reply) => ({ n, reply }))),
          ),
        ).pipe(toArray()),
      );
      expect(replies).toHaveLength(10);
      for (const { n, reply } of replies) {
        expect(reply.json()).toEqual({ n, doubled: n * 2 });
        expect(reply.properties.contentType).toBe('application/json');
        expect(reply.properties.correlationId).toBeDefined();
      }
      expect(new Set(replies.map(({ reply }) => reply.properties.correlationId)).size).toBe(10);
      // Answered out of request order: the replies were really matched by correlation id.
      expect(answered).not.toEqual([...answered].sort((a, b) => a - b));
      expect([...answered].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    } finally {
      subscription.unsubscribe();
      server.close();
      client.close();
    }
  });
});
