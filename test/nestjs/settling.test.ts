/**
 * `rxamqp/nestjs`: what a failing handler's delivery becomes under each failure policy, against
 * RabbitMQ, with a dead-letter exchange to see where messages end: dead-lettered at once, retried a
 * bounded number of times (a quorum queue's delivery count, a classic queue's redelivered flag),
 * requeued once, settled by a function, and an undecodable payload rejected whatever the policy.
 */
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import { AmqpDelivery, AmqpPayload, Consume, InjectPublisher, RxAmqpModule } from '../../src/nestjs/index.js';
import { type Delivery, deathsOf, openConnection, type Publisher } from '../../src/node.js';
import type { QueueSpec } from '../../src/topology/specs.js';
import { brokerUrl } from '../support/broker.js';
import { until } from './support.js';

const P = `nest-settle.${process.pid}.${Date.now().toString(36)}`;
const DLX = `${P}.dlx`;
const DLQ = `${P}.dlq`;
const dead = (name: string, extra: Partial<QueueSpec> = {}): QueueSpec => ({
  name: `${P}.${name}`,
  durable: true,
  deadLetterExchange: DLX,
  ...extra,
});
const QUEUES = {
  deadLetter: dead('dead-letter'),
  quorum: dead('quorum', { type: 'quorum' }),
  classic: dead('classic'),
  requeue: dead('requeue'),
  custom: dead('custom'),
  badJson: dead('bad-json'),
};

const attempts = new Map<string, number>();
const count = (queue: string): void => {
  attempts.set(queue, (attempts.get(queue) ?? 0) + 1);
};

@Injectable()
class Failing {
  readonly deadLettered: { queue: string; reason: string }[] = [];
  readonly custom: string[] = [];

  constructor(@InjectPublisher() readonly publisher: Publisher) {}

  @Consume({ queue: QUEUES.deadLetter, onError: 'dead-letter' })
  deadLetter(): void {
    count(QUEUES.deadLetter.name);
    throw new Error('always');
  }

  @Consume({ queue: QUEUES.quorum, onError: 'retry', maxDeliveries: 3 })
  quorum(): void {
    count(QUEUES.quorum.name);
    throw new Error('always');
  }

  @Consume({ queue: QUEUES.classic })
  classic(): void {
    count(QUEUES.classic.name);
    throw new Error('always');
  }

  @Consume({ queue: QUEUES.requeue, onError: 'requeue' })
  requeue(): void {
    count(QUEUES.requeue.name);
    throw new Error('always');
  }

  @Consume({
    queue: QUEUES.custom,
    onError: (error: unknown, delivery: Delivery) => {
      delivery.nack({ requeue: false });
      (delivery as Delivery & { note?: string }).note = String(error);
    },
  })
  customPolicy(@AmqpDelivery() delivery: Delivery): void {
    count(QUEUES.custom.name);
    this.custom.push(delivery.text());
    throw new Error('custom');
  }

  @Consume({ queue: QUEUES.badJson, onError: 'requeue' })
  badJson(@AmqpPayload() _body: unknown): void {
    // Never reached with a payload that does not decode.
    count(QUEUES.badJson.name);
  }

  @Consume({ queue: DLQ })
  onDead(@AmqpDelivery() delivery: Delivery): void {
    const death = deathsOf(delivery.properties)[0];
    this.deadLettered.push({ queue: death?.queue ?? '?', reason: death?.reason ?? '?' });
  }
}

let app: TestingModule;
let failing: Failing;

beforeAll(async () => {
  app = await Test.createTestingModule({
    imports: [
      RxAmqpModule.forRoot({
        url: await brokerUrl(),
        topology: {
          exchanges: [{ name: DLX, type: 'fanout', durable: true }],
          queues: [{ name: DLQ, durable: true }],
          bindings: [{ exchange: DLX, queue: DLQ }],
        },
      }),
    ],
    providers: [Failing],
  }).compile();
  await app.init();
  failing = app.get(Failing);
});

afterAll(async () => {
  await app?.close();
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  for (const q of [...Object.values(QUEUES).map((q) => q.name), DLQ]) await lastValueFrom(ch.queueDelete(q));
  await lastValueFrom(ch.exchangeDelete(DLX));
  await lastValueFrom(conn.close());
});

function send(queue: QueueSpec, body: string, contentType?: string): Promise<unknown> {
  return lastValueFrom(
    failing.publisher.publish('', queue.name, body, contentType === undefined ? {} : { contentType }),
  );
}

function deadFrom(queue: QueueSpec): { queue: string; reason: string }[] {
  return failing.deadLettered.filter((d) => d.queue === queue.name);
}

describe('failure policies', () => {
  it("'dead-letter': one attempt, then the dead-letter exchange", async () => {
    await send(QUEUES.deadLetter, '"x"');
    await until(() => deadFrom(QUEUES.deadLetter).length === 1, 8000, 'the dead letter');
    expect(attempts.get(QUEUES.deadLetter.name)).toBe(1);
    expect(deadFrom(QUEUES.deadLetter)[0]?.reason).toBe('rejected');
  });

  it("'retry' on a quorum queue: maxDeliveries attempts (the delivery count), then dead-lettered", async () => {
    await send(QUEUES.quorum, '"x"');
    await until(() => deadFrom(QUEUES.quorum).length === 1, 8000, 'the dead letter');
    expect(attempts.get(QUEUES.quorum.name)).toBe(3);
  });

  it("'retry' (the default) on a classic queue: two attempts (redelivered), then dead-lettered", async () => {
    await send(QUEUES.classic, '"x"');
    await until(() => deadFrom(QUEUES.classic).length === 1, 8000, 'the dead letter');
    expect(attempts.get(QUEUES.classic.name)).toBe(2);
  });

  it("'requeue': requeued once, a redelivered failure dead-lettered: no poison loop", async () => {
    await send(QUEUES.requeue, '"x"');
    await until(() => deadFrom(QUEUES.requeue).length === 1, 8000, 'the dead letter');
    expect(attempts.get(QUEUES.requeue.name)).toBe(2);
  });

  it('a function settles the delivery itself', async () => {
    await send(QUEUES.custom, 'custom body');
    await until(() => deadFrom(QUEUES.custom).length === 1, 8000, 'the dead letter');
    expect(failing.custom).toEqual(['custom body']);
    expect(attempts.get(QUEUES.custom.name)).toBe(1);
  });

  it('a JSON payload that does not parse is rejected at once, whatever the policy, the handler not called', async () => {
    await send(QUEUES.badJson, '{ not json', 'application/json');
    await until(() => deadFrom(QUEUES.badJson).length === 1, 8000, 'the dead letter');
    expect(attempts.get(QUEUES.badJson.name)).toBeUndefined();
  });
});
