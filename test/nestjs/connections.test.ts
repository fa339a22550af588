/**
 * `rxamqp/nestjs`: several named connections (`forRoot` and `forRootAsync`), global providers, the
 * terminus health indicator (up, then down while the broker blocks publishes), and bad options
 * refused at bootstrap with clear errors that show no password.
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import {
  AmqpPayload,
  Consume,
  getConnectionToken,
  getPublisherToken,
  InjectPublisher,
  type RxAmqpConnection,
  RxAmqpHealthIndicator,
  RxAmqpModule,
} from '../../src/nestjs/index.js';
import { ConfigurationError, openConnection, type Publisher } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { currentWatermark, restoreWatermark, setMemoryWatermark } from '../support/rabbitmqctl.js';
import { until } from './support.js';

const P = `nest-conn.${process.pid}.${Date.now().toString(36)}`;
const ORDERS = `${P}.orders`;
const EVENTS = `${P}.events`;

afterAll(async () => {
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  for (const q of [ORDERS, EVENTS]) await lastValueFrom(ch.queueDelete(q));
  await lastValueFrom(conn.close());
});

describe('named connections', () => {
  it('forRoot and forRootAsync side by side: handlers and publishers by connection name, global providers', async () => {
    const got: string[] = [];

    @Injectable()
    class Handlers {
      @Consume({ queue: ORDERS })
      order(@AmqpPayload() body: string): void {
        got.push(`default: ${body}`);
      }

      @Consume({ queue: EVENTS, connection: 'events' })
      event(@AmqpPayload() body: string): void {
        got.push(`events: ${body}`);
      }
    }

    @Injectable()
    class Sender {
      constructor(
        @InjectPublisher() readonly main: Publisher,
        @InjectPublisher('events') readonly events: Publisher,
        @Inject(getConnectionToken('events')) readonly eventsConnection: RxAmqpConnection,
      ) {}
    }

    // A feature module that imports nothing: the global connections' providers reach it.
    @Module({ providers: [Sender], exports: [Sender] })
    class Feature {}

    const url = await brokerUrl();
    @Module({ providers: [{ provide: 'AMQP_URL', useValue: url }], exports: ['AMQP_URL'] })
    class Config {}

    const app = await Test.createTestingModule({
      imports: [
        RxAmqpModule.forRoot({ url, isGlobal: true }),
        RxAmqpModule.forRootAsync({
          name: 'events',
          isGlobal: true,
          imports: [Config],
          inject: ['AMQP_URL'],
          useFactory: (amqpUrl: string) => ({ url: amqpUrl, connection: { name: 'events connection' } }),
        }),
        Feature,
      ],
      providers: [Handlers],
    }).compile();
    await app.init();
    try {
      const sender = app.get(Sender);
      expect(sender.main).not.toBe(sender.events);
      expect(sender.eventsConnection.name).toBe('events');
      await lastValueFrom(sender.main.publish('', ORDERS, 'o1', { contentType: 'text/plain' }));
      await lastValueFrom(sender.events.publish('', EVENTS, 'e1', { contentType: 'text/plain' }));
      await until(() => got.length === 2, 5000, 'both messages');
      expect(got.sort()).toEqual(['default: o1', 'events: e1']);
    } finally {
      await app.close();
    }
  });
});

describe('the health indicator', () => {
  it('up while connected; down while the broker blocks publishes (memory alarm); up again', async () => {
    const app = await Test.createTestingModule({
      imports: [TerminusModule, RxAmqpModule.forRoot({ url: await brokerUrl() })],
    }).compile();
    await app.init();
    const health = app.get(HealthCheckService);
    const amqp = app.get(RxAmqpHealthIndicator);
    try {
      const ok = await health.check([() => amqp.isHealthy('rabbitmq')]);
      expect(ok.status).toBe('ok');
      expect(ok.details['rabbitmq']).toEqual({
        status: 'up',
        state: 'CONNECTED',
        blocked: false,
        connection: 'default',
      });
      const saved = await currentWatermark();
      await setMemoryWatermark(0.0000001);
      try {
        // RabbitMQ blocks (and says so to) a connection that publishes during the alarm.
        const publisher = app.get<Publisher>(getPublisherToken());
        const held = lastValueFrom(publisher.publish('', `${P}.nowhere`, 'held by the alarm'));
        await until(() => amqp.isHealthy()['rabbitmq']?.status === 'down', 10_000, 'blocked');
        await expect(health.check([() => amqp.isHealthy('rabbitmq')])).rejects.toMatchObject({
          response: { status: 'error', error: { rabbitmq: { status: 'down', blocked: true } } },
        });
        // A consumer-only service may say a blocked connection is healthy.
        expect(amqp.isHealthy('rabbitmq', { blockedIsDown: false })['rabbitmq']?.status).toBe('up');
        await restoreWatermark(saved);
        await held;
      } finally {
        await restoreWatermark(saved);
      }
      await until(() => amqp.isHealthy()['rabbitmq']?.status === 'up', 10_000, 'unblocked');
    } finally {
      await app.close();
    }
    expect(app.get(RxAmqpHealthIndicator).isHealthy()['rabbitmq']?.status).toBe('down');
  }, 30_000);
});

describe('bad options', () => {
  it('a URL that is not amqp:// fails the bootstrap with a ConfigurationError that shows no password', async () => {
    const module = Test.createTestingModule({
      imports: [RxAmqpModule.forRoot({ url: 'http://user:s3cret-pw@localhost:5672' })],
    });
    const error = await module.compile().then(
      (app) => app.init().then(() => app.close()),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(String(error)).toContain('is not an amqp:// or amqps:// URL');
    expect(String(error)).not.toContain('s3cret-pw');
  });

  it('a handler with a bad option fails the bootstrap, naming the handler', async () => {
    @Injectable()
    class Bad {
      @Consume({ queue: `${P}.bad`, concurrency: 0 })
      handle(): void {}
    }
    const app = await Test.createTestingModule({
      imports: [RxAmqpModule.forRoot({ url: await brokerUrl() })],
      providers: [Bad],
    }).compile();
    await expect(app.init()).rejects.toThrow(/Bad\.handle: concurrency must be a positive integer/);
    await app.close();
  });

  it('waitForConnection: false starts without the broker; what fails is logged, nothing crashes', async () => {
    const app = await Test.createTestingModule({
      imports: [
        RxAmqpModule.forRoot({
          url: 'amqp://guest:guest@127.0.0.1:1',
          connection: { recovery: { initial: { delays: [10], maxAttempts: 1 } } },
          waitForConnection: false,
        }),
      ],
    }).compile();
    await app.init();
    expect(app.get(RxAmqpHealthIndicator).isHealthy()['rabbitmq']?.status).toBe('down');
    await new Promise((r) => setTimeout(r, 200));
    await app.close();
  });

  it('a topology the broker refuses fails the bootstrap with its error (406)', async () => {
    const name = `${P}.refused`;
    const conn = await openConnection(await brokerUrl());
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare(name, { durable: true, arguments: { 'x-max-length': 5 } }));
    try {
      const app = await Test.createTestingModule({
        imports: [
          RxAmqpModule.forRoot({
            url: await brokerUrl(),
            connection: { recovery: { initial: false } },
            topology: { queues: [{ name, durable: true, maxLength: 10 }] },
          }),
        ],
      }).compile();
      await expect(app.init()).rejects.toMatchObject({ replyCode: 406 });
      await app.close();
    } finally {
      await lastValueFrom(ch.queueDelete(name));
      await lastValueFrom(conn.close());
    }
  });

  it('waitForConnection: false: a handler whose exchange does not exist yet starts consuming once it does', async () => {
    const exchange = `${P}.late`;
    const queue = `${P}.late-q`;
    const got: string[] = [];

    @Injectable()
    class Late {
      @Consume({ queue, exchange, routingKeys: ['k'] })
      handle(@AmqpPayload() body: string): void {
        got.push(body);
      }
    }

    const app = await Test.createTestingModule({
      imports: [RxAmqpModule.forRoot({ url: await brokerUrl(), waitForConnection: false })],
      providers: [Late],
    }).compile();
    await app.init();
    const conn = await openConnection(await brokerUrl());
    try {
      // The binding is refused (404: no exchange) and tried again after a pause.
      await new Promise((r) => setTimeout(r, 300));
      const ch = await conn.openChannel();
      await lastValueFrom(ch.exchangeDeclare(exchange, 'direct'));
      await lastValueFrom(ch.confirmSelect());
      await until(
        () => {
          ch.publish(exchange, 'k', 'late but there', { contentType: 'text/plain' }).subscribe();
          return got.length > 0;
        },
        10_000,
        'the handler on the late exchange',
      );
      expect(got[0]).toBe('late but there');
      await lastValueFrom(ch.queueDelete(queue));
      await lastValueFrom(ch.exchangeDelete(exchange));
    } finally {
      await app.close();
      await lastValueFrom(conn.close());
    }
  });
});
