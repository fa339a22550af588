/**
 * Consumer timeouts end to end on the embedded broker (`rxamqp/testing`), fast and beside the
 * real-broker suite (test/integration/consumer-timeout.test.ts): RabbitMQ 3.x's form (a 406 channel
 * close, which the embedded broker reproduces with its `consumerTimeout` option) and the form of
 * RabbitMQ 4.3 (basic.cancel while deliveries are held; the embedded broker sends basic.cancel when a
 * queue is deleted, which is the same frame).
 */
import { lastValueFrom, NEVER, of, switchMap, take, timeout } from 'rxjs';
import { ackOnSuccess, resumeOnConsumerTimeout } from '../../operators/index.js';
import {
  ChannelClosedError,
  ConsumerCancelledError,
  connect,
  isConsumerTimeout,
  openConnection,
} from '../../src/node.js';
import { EmbeddedBroker } from '../../src/testing/index.js';

const URL = 'amqp://guest:guest@embedded';

describe('consumer timeout (embedded broker)', () => {
  let broker: EmbeddedBroker;
  afterEach(() => broker.close());

  it('3.x form: the consumer errors with the 406 close, which isConsumerTimeout recognises', async () => {
    broker = new EmbeddedBroker({ consumerTimeout: 50, timers: true });
    const conn = await openConnection(URL, { transport: broker.connector });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('slow'));
    broker.publish('', 'slow', 'x');
    const error = await new Promise<unknown>((resolve) => {
      ch.consume('slow').subscribe({ error: resolve });
    });
    expect(error).toBeInstanceOf(ChannelClosedError);
    expect(isConsumerTimeout(error)).toBe(true);
    // A copy for later use of the closed channel still says so (through its cause).
    expect(isConsumerTimeout((error as ChannelClosedError).forLaterUse('basic.ack'))).toBe(true);
    expect(broker.queue('slow')!.messages[0]).toMatchObject({ redelivered: true });
  });

  it('with resumeOnConsumerTimeout on a recovering connection the consumer comes back and the message is redelivered', async () => {
    broker = new EmbeddedBroker({ consumerTimeout: 50, timers: true });
    const setup = await openConnection(URL, { transport: broker.connector });
    await lastValueFrom((await setup.openChannel()).queueDeclare('jobs'));
    await lastValueFrom(setup.close());
    broker.publish('', 'jobs', 'job');
    const seen: boolean[] = [];
    const resumes: unknown[] = [];
    const result = lastValueFrom(
      connect(URL, { transport: broker.connector, recovery: true }).pipe(
        switchMap((conn) =>
          conn.channel().pipe(
            switchMap((ch) => ch.consume('jobs', { prefetch: 1 })),
            ackOnSuccess((d) => {
              seen.push(d.fields.redelivered);
              return d.fields.redelivered ? of(d.text()) : NEVER; // the first attempt hangs
            }),
            resumeOnConsumerTimeout({ onResume: (e) => resumes.push(e) }),
          ),
        ),
        take(1),
        timeout(5_000),
      ),
    );
    expect(await result).toBe('job');
    expect(seen).toEqual([false, true]);
    expect(resumes).toHaveLength(1);
    expect(isConsumerTimeout(resumes[0])).toBe(true);
    expect(broker.queue('jobs')!.messageCount).toBe(0);
  });

  it('4.3 form: a broker cancel while the consumer holds unsettled deliveries is a consumer timeout', async () => {
    broker = new EmbeddedBroker();
    const conn = await openConnection(URL, { transport: broker.connector });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('held'));
    broker.publish('', 'held', 'x');
    const error = await new Promise<unknown>((resolve) => {
      ch.consume('held').subscribe({
        next: () => broker.deleteQueue('held'), // the delivery stays unsettled
        error: resolve,
      });
    });
    expect(error).toBeInstanceOf(ConsumerCancelledError);
    expect((error as ConsumerCancelledError).heldUnsettled).toBe(true);
    expect(isConsumerTimeout(error)).toBe(true);
    expect(ch.isOpen).toBe(true); // the channel stays open, as RabbitMQ 4.3 keeps it
    await lastValueFrom(conn.close());
  });

  it('a broker cancel with every delivery settled is not a timeout (a deleted queue)', async () => {
    broker = new EmbeddedBroker();
    const conn = await openConnection(URL, { transport: broker.connector });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('done'));
    broker.publish('', 'done', 'x');
    const error = await new Promise<unknown>((resolve) => {
      ch.consume('done').subscribe({
        next: (d) => {
          d.ack();
          broker.deleteQueue('done');
        },
        error: resolve,
      });
    });
    expect(error).toBeInstanceOf(ConsumerCancelledError);
    expect((error as ConsumerCancelledError).heldUnsettled).toBe(false);
    expect(isConsumerTimeout(error)).toBe(false);
    await lastValueFrom(conn.close());
  });
});
