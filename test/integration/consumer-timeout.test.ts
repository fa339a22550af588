/**
 * RabbitMQ's delivery acknowledgement timeout against the real broker. The shared broker's
 * `consumer_timeout` (and `channel_tick_interval`, which paces the check on 3.x: the channels opened
 * after the change check every 250 ms) are lowered at run time with `rabbitmqctl eval`, after reading
 * the old values, and always restored in `afterAll`. Run under `flock /tmp/rabbit.lock`: other suites
 * share this broker.
 */
import { finalize, firstValueFrom, lastValueFrom, NEVER, of, switchMap, take, tap, timeout } from 'rxjs';
import { ackOnSuccess, resumeOnConsumerTimeout } from '../../operators/index.js';
import { type Channel, ChannelClosedError, connect, isConsumerTimeout } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { rabbitmqctl } from '../support/rabbitmqctl.js';
import { openSession, type Session, uniqueName } from '../support/session.js';

const TIMEOUT_MS = 1_500;

/** A `rabbit` application setting as `application:get_env` prints it (`undefined` when unset). */
async function getEnv(key: string): Promise<string> {
  const out = (await rabbitmqctl('eval', `application:get_env(rabbit, ${key}).`)).trim();
  const m = /^\{ok,(.*)\}$/s.exec(out);
  return m === null ? 'undefined' : m[1]!;
}

async function setEnv(key: string, value: string): Promise<void> {
  if (value === 'undefined') await rabbitmqctl('eval', `application:unset_env(rabbit, ${key}).`);
  else await rabbitmqctl('eval', `application:set_env(rabbit, ${key}, ${value}).`);
}

let session: Session;
let saved: { timeout: string; tick: string } | undefined;

beforeAll(async () => {
  saved = { timeout: await getEnv('consumer_timeout'), tick: await getEnv('channel_tick_interval') };
  await setEnv('consumer_timeout', String(TIMEOUT_MS));
  await setEnv('channel_tick_interval', '250');
  session = await openSession({ name: 'rxamqp consumer-timeout tests' });
});

afterAll(async () => {
  try {
    if (saved !== undefined) {
      await setEnv('consumer_timeout', saved.timeout);
      await setEnv('channel_tick_interval', saved.tick);
    }
  } finally {
    session?.close();
  }
});

async function declareWithMessage(body: string): Promise<string> {
  const queue = uniqueName('ctimeout');
  await lastValueFrom(session.channel.queueDeclare(queue, { autoDelete: false, durable: false }));
  await lastValueFrom(session.channel.publish('', queue, body));
  return queue;
}

describe('consumer timeout (real broker)', () => {
  it('ends the consumer with an error that isConsumerTimeout recognises (3.x: a 406 channel close)', async () => {
    const queue = await declareWithMessage('slow');
    try {
      const { channel, events } = await session.openChannel();
      const error = await new Promise<unknown>((resolve) => {
        channel.consume(queue, { prefetch: 1 }).subscribe({
          next: () => {}, // never settled
          error: resolve,
        });
      });
      expect(isConsumerTimeout(error)).toBe(true);
      expect(error).toBeInstanceOf(ChannelClosedError);
      expect((error as ChannelClosedError).replyCode).toBe(406);
      expect((error as ChannelClosedError).replyText).toMatch(
        /delivery acknowledgement on channel \d+ timed out/,
      );
      // The channel's own stream says the same; the connection stays open.
      const channelEnd = await firstValueFrom(events);
      expect(isConsumerTimeout(channelEnd)).toBe(true);
      expect(session.connection.isOpen).toBe(true);
      // The message went back to the queue.
      const ok = await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }));
      expect(ok.messageCount).toBe(1);
    } finally {
      await lastValueFrom(session.channel.queueDelete(queue));
    }
  });

  it('without recovery, resumeOnConsumerTimeout brings the consumer back and the message is redelivered', async () => {
    const queue = await declareWithMessage('job-1');
    const resumes: unknown[] = [];
    const seen: { body: string; redelivered: boolean }[] = [];
    const url = await brokerUrl();
    const connection$ = connect(url, { name: 'rxamqp consumer-timeout resume' });
    try {
      const results = lastValueFrom(
        connection$.pipe(
          switchMap((conn) =>
            conn.channel().pipe(
              switchMap((ch) => ch.consume(queue, { prefetch: 1 })),
              ackOnSuccess((d) => {
                seen.push({ body: d.text(), redelivered: d.fields.redelivered });
                // The first delivery hangs past the timeout; the redelivered one succeeds.
                return d.fields.redelivered ? of(d.text()) : NEVER;
              }),
              resumeOnConsumerTimeout({ onResume: (e) => resumes.push(e) }),
            ),
          ),
          take(1),
          timeout(20_000),
        ),
      );
      expect(await results).toBe('job-1');
      expect(seen).toEqual([
        { body: 'job-1', redelivered: false },
        { body: 'job-1', redelivered: true },
      ]);
      expect(resumes).toHaveLength(1);
      expect(isConsumerTimeout(resumes[0])).toBe(true);
      // Acked: the queue is empty once the ack has gone out.
      let left = 1;
      for (let i = 0; i < 50 && left > 0; i++) {
        left = (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount;
        if (left > 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(left).toBe(0);
    } finally {
      await lastValueFrom(session.channel.queueDelete(queue));
    }
  });

  it('on a recovering connection the consumer comes back by itself: a fresh channel, the hung handler let go, the message redelivered', async () => {
    const queue = await declareWithMessage('job-1');
    const channels: Channel[] = [];
    const seen: { body: string; redelivered: boolean }[] = [];
    let hungUnsubscribed = false;
    const url = await brokerUrl();
    const connection$ = connect(url, { name: 'rxamqp consumer-timeout recovery', recovery: true });
    try {
      const result = await lastValueFrom(
        connection$.pipe(
          switchMap((conn) => conn.channel()),
          tap((ch) => channels.push(ch)),
          switchMap((ch) => ch.consume(queue, { prefetch: 1 })),
          // Concurrency 1: the redelivery only runs because the hung handler's place was freed.
          ackOnSuccess((d) => {
            seen.push({ body: d.text(), redelivered: d.fields.redelivered });
            if (d.fields.redelivered) return of(d.text());
            return NEVER.pipe(finalize(() => (hungUnsubscribed = true)));
          }),
          take(1),
          timeout(20_000),
        ),
      );
      expect(result).toBe('job-1');
      expect(seen).toEqual([
        { body: 'job-1', redelivered: false },
        { body: 'job-1', redelivered: true },
      ]);
      expect(hungUnsubscribed).toBe(true);
      expect(channels).toHaveLength(2);
      expect(isConsumerTimeout(channels[0]!.error)).toBe(true);
      expect(channels[1]!.reopenedAfter).toBe(channels[0]!.error);
      let left = 1;
      for (let i = 0; i < 50 && left > 0; i++) {
        left = (await lastValueFrom(session.channel.queueDeclare(queue, { passive: true }))).messageCount;
        if (left > 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(left).toBe(0);
    } finally {
      await lastValueFrom(session.channel.queueDelete(queue));
    }
  });
});
