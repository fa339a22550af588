/**
 * `rxamqp/nestjs` across a connection's life, against RabbitMQ: 5,000 messages handled while the
 * broker force-closes the module's connection three times (every message handled at least once), and
 * a shutdown (`app.close()`, what `enableShutdownHooks` runs on SIGTERM) with 50 handlers in flight:
 * each finishes and is acknowledged, the rest stay in the queue, nothing is handled twice.
 */
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import { AmqpPayload, Consume, RxAmqpModule } from '../../src/nestjs/index.js';
import { openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { closeConnectionsNamed } from '../support/rabbitmqctl.js';
import { until } from './support.js';

const P = `nest-life.${process.pid}.${Date.now().toString(36)}`;
const RUN_QUEUE = `${P}.run`;
const DRAIN_QUEUE = `${P}.drain`;
const CONNECTION_NAME = `${P}.module`;

/**
 * Publishes `n` numbered JSON messages to `queue` (and a last one numbered -1) on a connection of the
 * test's own, confirmed, `perTick` every 20 ms: a run that lasts long enough for cuts to fall in it.
 */
async function fill(queue: string, n: number, perTick = n): Promise<void> {
  const conn = await openConnection(await brokerUrl());
  try {
    const ch = await conn.openChannel();
    await lastValueFrom(ch.confirmSelect());
    await lastValueFrom(ch.queueDeclare(queue, { durable: true }));
    for (let i = 0; i < n; i++) {
      ch.publish('', queue, JSON.stringify({ i }), { contentType: 'application/json' }).subscribe();
      if ((i + 1) % perTick === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await lastValueFrom(
      ch.publish('', queue, JSON.stringify({ i: -1 }), { contentType: 'application/json' }),
    );
  } finally {
    await lastValueFrom(conn.close());
  }
}

async function messageCount(queue: string): Promise<number> {
  const conn = await openConnection(await brokerUrl());
  try {
    const ch = await conn.openChannel();
    const ok = await lastValueFrom(ch.queueDeclare(queue, { passive: true }));
    return ok.messageCount;
  } finally {
    await lastValueFrom(conn.close());
  }
}

async function deleteQueues(...queues: string[]): Promise<void> {
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  for (const q of queues) await lastValueFrom(ch.queueDelete(q));
  await lastValueFrom(conn.close());
}

afterAll(() => deleteQueues(RUN_QUEUE, DRAIN_QUEUE));

describe('recovery', () => {
  it('5,000 messages through 3 forced closes of the connection: every one handled at least once', async () => {
    const seen = new Set<number>();
    let handled = 0;

    @Injectable()
    class Counter {
      @Consume({ queue: RUN_QUEUE, concurrency: 20 })
      async count(@AmqpPayload('i') i: number): Promise<void> {
        // Slower than the publisher (20 at once, 20 ms each: 1,000 a second against 1,250): a backlog,
        // so that each cut finds deliveries in flight.
        await new Promise((r) => setTimeout(r, 20));
        handled++;
        seen.add(i);
      }
    }

    const app = await Test.createTestingModule({
      imports: [
        RxAmqpModule.forRoot({
          url: await brokerUrl(),
          connection: { name: CONNECTION_NAME, recovery: { reconnect: { delays: [100] } } },
        }),
      ],
      providers: [Counter],
    }).compile();
    await app.init();
    try {
      // About 4 s of publishing (25 every 20 ms); a cut each time another 1,200 were handled.
      const filling = fill(RUN_QUEUE, 5000, 25);
      for (let cut = 1; cut <= 3; cut++) {
        await until(() => seen.size >= cut * 1200, 30_000, `progress before cut ${cut}`);
        expect(await closeConnectionsNamed(CONNECTION_NAME, `test cut ${cut}`)).toBe(1);
      }
      await filling;
      await until(() => seen.size === 5001, 60_000, 'all 5,001 messages');
      console.log(
        `nestjs recovery: 5,001 distinct, ${handled} handled (${handled - 5001} again after the cuts)`,
      );
      expect(await messageCount(RUN_QUEUE)).toBe(0);
    } finally {
      await app.close();
    }
  }, 120_000);
});

describe('shutdown', () => {
  it('with 50 handlers in flight: each finishes and is acked, the rest stay queued, none handled twice', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });

    @Injectable()
    class Slow {
      @Consume({ queue: DRAIN_QUEUE, concurrency: 50, prefetch: 50 })
      async work(@AmqpPayload('i') i: number): Promise<void> {
        started.push(i);
        await released;
        await new Promise((r) => setTimeout(r, 10));
        finished.push(i);
      }
    }

    await fill(DRAIN_QUEUE, 299); // 300 with the last one
    const app: TestingModule = await Test.createTestingModule({
      imports: [RxAmqpModule.forRoot({ url: await brokerUrl(), shutdown: { timeout: 10_000 } })],
      providers: [Slow],
    }).compile();
    await app.init();
    await until(() => started.length === 50, 10_000, '50 handlers in flight');
    const closing = app.close();
    // The drain has cancelled the consumer: let the handlers finish now.
    await new Promise((r) => setTimeout(r, 200));
    release();
    await closing;
    expect(started.length).toBe(50);
    expect([...finished].sort((a, b) => a - b)).toEqual([...started].sort((a, b) => a - b));
    expect(new Set(started).size).toBe(50);
    // The 50 were acked: 250 remain, none of them handled.
    expect(await messageCount(DRAIN_QUEUE)).toBe(250);
  }, 60_000);
});
