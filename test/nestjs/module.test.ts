/**
 * `rxamqp/nestjs`, the module against RabbitMQ: a Nest application context built with
 * `@nestjs/testing`, its handlers found by decorator, their parameters, guards, interceptors and pipes
 * in the path, the failure policies, request/reply, recovery through forced closes and the drain on
 * shutdown.
 */
import 'reflect-metadata';
import {
  BadRequestException,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  ParseIntPipe,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { REQUEST } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import { EMPTY, lastValueFrom, map, type Observable, of, timer } from 'rxjs';
import {
  AmqpDelivery,
  AmqpHeaders,
  AmqpPayload,
  CONTEXT_TYPE,
  Consume,
  getConnectionToken,
  InjectPublisher,
  RPC_ERROR_HEADER,
  Rpc,
  RxAmqpConnection,
  RxAmqpModule,
} from '../../src/nestjs/index.js';
import type { Publisher } from '../../src/node.js';
import { type Delivery, openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { until } from './support.js';

const PREFIX = `nest.${process.pid}.${Date.now().toString(36)}`;
const Q = {
  empty: `${PREFIX}.empty`,
  controller: `${PREFIX}.controller`,
  streamed: `${PREFIX}.streamed`,
  scoped: `${PREFIX}.scoped`,
  filtered: `${PREFIX}.filtered`,
  plain: `${PREFIX}.plain`,
  guarded: `${PREFIX}.guarded`,
  bound: `${PREFIX}.bound`,
  rpc: `${PREFIX}.rpc`,
};
const EXCHANGE = `${PREFIX}.x`;

@Injectable()
class OnlyGold implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const delivery = context.getArgByIndex<Delivery>(0);
    return context.getType<string>() === CONTEXT_TYPE && delivery.properties.headers?.tier === 'gold';
  }
}

@Injectable()
class Doubling implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((v) => (typeof v === 'number' ? v * 2 : v)));
  }
}

@Injectable()
class Handlers {
  readonly plain: { payload: unknown; header: unknown; routingKey: string }[] = [];
  readonly guarded: unknown[] = [];
  readonly bound: string[] = [];
  empties = 0;

  constructor(@InjectPublisher() readonly publisher: Publisher) {}

  @Consume({ queue: Q.plain, concurrency: 2 })
  onPlain(
    @AmqpPayload() payload: unknown,
    @AmqpHeaders('x-tag') header: unknown,
    @AmqpDelivery() delivery: Delivery,
  ): void {
    this.plain.push({ payload, header, routingKey: delivery.fields.routingKey });
  }

  @Consume({ queue: Q.guarded })
  @UseGuards(OnlyGold)
  onGuarded(@AmqpPayload('n', ParseIntPipe) n: number): void {
    this.guarded.push(n);
  }

  @Consume({ queue: Q.bound, exchange: { name: EXCHANGE, type: 'topic' }, routingKeys: ['order.*'] })
  onBound(@AmqpDelivery() delivery: Delivery): void {
    this.bound.push(delivery.fields.routingKey);
  }

  @Rpc({ queue: Q.rpc })
  @UseInterceptors(Doubling)
  add(@AmqpPayload() { a, b }: { a: number; b: number }): number {
    if (a < 0) throw new BadRequestException('negative numbers are not welcome');
    if (b < 0) throw new Error('the database at db.internal refused user app');
    return a + b;
  }

  /** An Observable that completes without a value: a success with nothing to say (acked). */
  @Consume({ queue: Q.empty })
  onEmpty(): Observable<never> {
    this.empties++;
    return EMPTY;
  }
}

/** Request-scoped: a new instance for each delivery, which gets the delivery as its REQUEST. */
@Injectable({ scope: Scope.REQUEST })
class PerDelivery {
  static readonly seen: { instance: number; tag: unknown }[] = [];
  static instances = 0;
  private readonly instance = ++PerDelivery.instances;

  constructor(@Inject(REQUEST) private readonly request: Delivery) {}

  @Consume({ queue: Q.scoped })
  handle(): void {
    PerDelivery.seen.push({ instance: this.instance, tag: this.request.properties.headers?.['x-tag'] });
  }
}

/** An exception filter that takes the error in hand: the delivery counts as handled (acked). */
@Catch()
class Swallow implements ExceptionFilter {
  static readonly caught: string[] = [];
  catch(error: Error): string {
    Swallow.caught.push(error.message);
    // Nest 12: a filter that returns nothing has not handled the exception.
    return 'handled';
  }
}

@Injectable()
class Filtered {
  static attempts = 0;

  @Consume({ queue: Q.filtered })
  @UseFilters(Swallow)
  handle(): void {
    Filtered.attempts++;
    throw new Error('taken in hand by the filter');
  }
}

/** A controller hosts handlers too; one returns an Observable (its last value is the reply). */
@Controller()
class OnController {
  static readonly seen: string[] = [];

  @Consume({ queue: Q.controller })
  handle(@AmqpPayload() body: string): Observable<void> {
    return timer(5).pipe(map(() => void OnController.seen.push(body)));
  }

  @Rpc({ queue: Q.streamed })
  countdown(@AmqpPayload() from: number): Observable<string> {
    return of(from, from - 1, from - 2).pipe(map((n) => `t-${n}`));
  }
}

let app: TestingModule;
let handlers: Handlers;

beforeAll(async () => {
  const url = await brokerUrl();
  app = await Test.createTestingModule({
    imports: [RxAmqpModule.forRoot({ url })],
    controllers: [OnController],
    providers: [Handlers, OnlyGold, Doubling, PerDelivery, Filtered],
  }).compile();
  await app.init();
  handlers = app.get(Handlers);
});

afterAll(async () => {
  await app?.close();
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  for (const q of Object.values(Q)) await lastValueFrom(ch.queueDelete(q));
  await lastValueFrom(ch.exchangeDelete(EXCHANGE));
  await lastValueFrom(conn.close());
});

function publish(exchange: string, routingKey: string, body: string, properties = {}): Promise<unknown> {
  return lastValueFrom(handlers.publisher.publish(exchange, routingKey, body, properties));
}

describe('RxAmqpModule handlers', () => {
  it('@Consume: the payload (JSON), a header and the delivery reach the handler, which acks', async () => {
    await publish('', Q.plain, JSON.stringify({ id: 1 }), {
      contentType: 'application/json',
      headers: { 'x-tag': 'one' },
    });
    await publish('', Q.plain, 'not json at all');
    await until(() => handlers.plain.length === 2, 5000, 'two messages');
    expect(handlers.plain).toEqual([
      { payload: { id: 1 }, header: 'one', routingKey: Q.plain },
      { payload: 'not json at all', header: undefined, routingKey: Q.plain },
    ]);
  });

  it('guards and pipes apply: a refused delivery is not handled; a pipe converts the payload', async () => {
    await publish('', Q.guarded, JSON.stringify({ n: '7' }), { headers: { tier: 'gold' } });
    await publish('', Q.guarded, JSON.stringify({ n: '8' }), { headers: { tier: 'tin' } });
    await until(() => handlers.guarded.length === 1, 5000, 'the gold one');
    expect(handlers.guarded).toEqual([7]);
  });

  it('the queue is bound to the exchange with the routing keys (a topic wildcard)', async () => {
    await publish(EXCHANGE, 'order.created', '{}');
    await publish(EXCHANGE, 'invoice.created', '{}');
    await publish(EXCHANGE, 'order.paid', '{}');
    await until(() => handlers.bound.length === 2, 5000, 'two orders');
    expect(handlers.bound).toEqual(['order.created', 'order.paid']);
  });

  it('@Rpc: the result (through an interceptor) is the reply; a failure is an error reply', async () => {
    const conn = await openConnection(await brokerUrl());
    try {
      const ch = await conn.openChannel();
      const ask = (a: number, b: number) =>
        lastValueFrom(
          ch.request(
            '',
            Q.rpc,
            JSON.stringify({ a, b }),
            { contentType: 'application/json' },
            { timeoutMs: 5000 },
          ),
        );
      const reply = await ask(2, 3);
      expect(reply.json()).toBe(10);
      expect(reply.properties.headers?.[RPC_ERROR_HEADER]).toBeUndefined();
      // A client's mistake (an HTTP exception below 500): its message and status go back.
      const failure = await ask(-1, 3);
      expect(failure.properties.headers?.[RPC_ERROR_HEADER]).toBe(true);
      expect(failure.json()).toEqual({
        error: { name: 'BadRequestException', message: 'negative numbers are not welcome', status: 400 },
      });
      // Any other error: only that it failed (its message may name a host or a user).
      const internal = await ask(1, -3);
      expect(internal.properties.headers?.[RPC_ERROR_HEADER]).toBe(true);
      expect(internal.json()).toEqual({ error: { name: 'Error', message: 'Internal server error' } });
      expect(internal.text()).not.toContain('db.internal');
    } finally {
      await lastValueFrom(conn.close());
    }
  });

  it('the connection is injectable by token, with its state', () => {
    const connection = app.get<RxAmqpConnection>(getConnectionToken());
    expect(connection).toBeInstanceOf(RxAmqpConnection);
    expect(connection.name).toBe('default');
  });

  it('a request-scoped host: an instance for each delivery, with the delivery as its REQUEST', async () => {
    await publish('', Q.scoped, '{}', { headers: { 'x-tag': 'a' } });
    await publish('', Q.scoped, '{}', { headers: { 'x-tag': 'b' } });
    await until(() => PerDelivery.seen.length === 2, 5000, 'two deliveries');
    expect(PerDelivery.seen.map((s) => s.tag)).toEqual(['a', 'b']);
    expect(new Set(PerDelivery.seen.map((s) => s.instance)).size).toBe(2);
  });

  it('an exception filter that takes the error in hand: the delivery is acked, not retried', async () => {
    await publish('', Q.filtered, '{}');
    await until(() => Swallow.caught.length === 1, 5000, 'the filter');
    await new Promise((r) => setTimeout(r, 300));
    expect(Filtered.attempts).toBe(1);
    expect(Swallow.caught).toEqual(['taken in hand by the filter']);
  });

  it('a controller hosts handlers; an Observable result: its last value (the reply of an @Rpc)', async () => {
    await publish('', Q.controller, 'from a controller', { contentType: 'text/plain' });
    await until(() => OnController.seen.length === 1, 5000, 'the controller handler');
    expect(OnController.seen).toEqual(['from a controller']);
    const conn = await openConnection(await brokerUrl());
    try {
      const ch = await conn.openChannel();
      const reply = await lastValueFrom(ch.request('', Q.streamed, '3', {}, { timeoutMs: 5000 }));
      expect(reply.text()).toBe('t-1');
    } finally {
      await lastValueFrom(conn.close());
    }
  });

  it('a handler whose Observable completes without a value succeeds: acked once, not retried', async () => {
    await publish('', Q.empty, '{}');
    await until(() => handlers.empties === 1, 5000, 'the empty handler');
    await new Promise((r) => setTimeout(r, 300));
    expect(handlers.empties).toBe(1);
  });
});
