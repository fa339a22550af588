/**
 * The NestJS transport against RabbitMQ: a Nest microservice on `RxAmqpServer` and an
 * `RxAmqpClient`, with request/reply, topic wildcards, several queues, envelopes, failure policies,
 * a connection loss and a drain on close. Every queue and exchange is unique to the run and deleted
 * after.
 */
import 'reflect-metadata';
import { Controller, type INestMicroservice, type Type } from '@nestjs/common';
import {
  ClientsModule,
  Ctx,
  EventPattern,
  MessagePattern,
  Payload,
  RpcException,
} from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, interval, lastValueFrom, map, type Observable, take, toArray } from 'rxjs';
import type { ConnectionObservable } from '../../../src/client/connect.js';
import type { Connection } from '../../../src/client/connection.js';
import { AuthenticationError } from '../../../src/errors.js';
import {
  jsonEnvelope,
  plainEnvelope,
  RxAmqpClient,
  type RxAmqpClientOptions,
  type RxAmqpContext,
  RxAmqpServer,
  type RxAmqpServerOptions,
  type RxAmqpStatus,
} from '../../../src/nestjs/transport/index.js';
import { openConnection } from '../../../src/node.js';
import { exchange, queue } from '../../../src/topology/specs.js';
import { brokerEndpoint, brokerUrl } from '../../support/broker.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';

jest.setTimeout(60_000);

const RUN = `rxamqp-nest-${process.pid}-${Date.now().toString(36)}`;
const name = (what: string): string => `${RUN}.${what}`;

let url: string;
let admin: Connection;
const queues = new Set<string>();
const exchanges = new Set<string>();
const apps: INestMicroservice[] = [];
const clients: RxAmqpClient[] = [];
const proxies: TcpProxy[] = [];

/** The process must never see an unhandled rejection from the transport. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  url = await brokerUrl();
  admin = await openConnection(url);
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
  for (const client of clients.splice(0)) await client.close().catch(() => undefined);
  for (const proxy of proxies.splice(0)) await proxy.close();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
  const ch = await admin.openChannel();
  for (const q of queues) await lastValueFrom(ch.queueDelete(q), { defaultValue: undefined });
  for (const e of exchanges) await lastValueFrom(ch.exchangeDelete(e), { defaultValue: undefined });
  await lastValueFrom(admin.close(), { defaultValue: undefined });
});

/** A queue name unique to this run, deleted after. */
function q(what: string): string {
  const n = name(what);
  queues.add(n);
  return n;
}

/** An exchange name unique to this run, deleted after. */
function x(what: string): string {
  const n = name(what);
  exchanges.add(n);
  return n;
}

async function startServer(controller: Type, options: Omit<RxAmqpServerOptions, 'url'>, at = url) {
  const server = new RxAmqpServer({ url: at, ...options });
  const moduleRef = await Test.createTestingModule({ controllers: [controller] }).compile();
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
  apps.push(app);
  await app.listen();
  return { app, server };
}

function client(options: Omit<RxAmqpClientOptions, 'url'>, at = url): RxAmqpClient {
  const c = new RxAmqpClient({ url: at, ...options } as RxAmqpClientOptions);
  clients.push(c);
  return c;
}

/**
 * `@Payload()` and `@Ctx()` on the first two parameters of `methods`, applied as calls: the linter's
 * parser refuses parameter decorators in source.
 */
function withContext(target: Type, ...methods: string[]): void {
  for (const method of methods) {
    Payload()(target.prototype, method, 0);
    Ctx()(target.prototype, method, 1);
  }
}

async function until(predicate: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function messageCount(queueName: string): Promise<number> {
  const ch = await admin.openChannel();
  try {
    return (await lastValueFrom(ch.queueDeclare(queueName, { passive: true }))).messageCount;
  } finally {
    await lastValueFrom(ch.close(), { defaultValue: undefined });
  }
}

async function publishRaw(ex: string, routingKey: string, body: string, properties = {}): Promise<void> {
  const ch = await admin.openChannel();
  await lastValueFrom(ch.confirmSelect());
  await lastValueFrom(ch.publish(ex, routingKey, body, properties));
  await lastValueFrom(ch.close(), { defaultValue: undefined });
}

const emitted = (c: RxAmqpClient, pattern: string, data: unknown): Promise<unknown> =>
  lastValueFrom(c.emit(pattern, data), { defaultValue: undefined });

describe('RxAmqpServer and RxAmqpClient over RabbitMQ', () => {
  it('answers @MessagePattern requests (values, streams, errors, no handler) over direct reply-to', async () => {
    const requests = q('rpc');

    @Controller()
    class Rpc {
      @MessagePattern('sum')
      sum(numbers: number[]): number {
        return numbers.reduce((a, b) => a + b, 0);
      }

      @MessagePattern({ cmd: 'double' })
      async double(n: number): Promise<number> {
        await new Promise((r) => setTimeout(r, 10));
        return n * 2;
      }

      @MessagePattern('count')
      count(n: number): Observable<number> {
        return interval(5).pipe(
          take(n),
          map((i) => i + 1),
        );
      }

      @MessagePattern('refuse')
      refuse(_data: unknown): never {
        throw new RpcException('refused');
      }

      @MessagePattern('crash')
      crash(_data: unknown): never {
        throw new Error('boom');
      }
    }

    await startServer(Rpc, { queue: requests });
    const c = client({ queue: requests, timeout: 5000 });
    expect(await firstValueFrom(c.send('sum', [1, 2, 3]))).toBe(6);
    expect(await firstValueFrom(c.send({ cmd: 'double' }, 21))).toBe(42);
    expect(await lastValueFrom(c.send<number>('count', 3).pipe(toArray()))).toEqual([1, 2, 3]);
    await expect(firstValueFrom(c.send('refuse', {}))).rejects.toEqual({
      status: 'error',
      message: 'refused',
    });
    await expect(firstValueFrom(c.send('crash', {}))).rejects.toEqual({
      status: 'error',
      message: 'Internal server error',
    });
    await expect(firstValueFrom(c.send('nobody', {}))).rejects.toMatch(/no matching message handler/);
    // Concurrent requests each get their own reply.
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => firstValueFrom(c.send('sum', [i, 1]))),
    );
    expect(many).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // Every request was settled: none left in the queue, none unacked.
    await until(() => true);
    expect(await messageCount(requests)).toBe(0);
  });

  it('times out a request nobody answers', async () => {
    const requests = q('rpc-silent');
    const ch = await admin.openChannel();
    await lastValueFrom(ch.queueDeclare(requests, { durable: true }));
    await lastValueFrom(ch.close(), { defaultValue: undefined });
    const c = client({ queue: requests, timeout: 300 });
    await expect(firstValueFrom(c.send('sum', [1]))).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('routes events by topic wildcards (orders.* and orders.#) through a topic exchange', async () => {
    const shop = x('shop');
    const events = q('events');
    const seen: string[] = [];

    @Controller()
    class Orders {
      @EventPattern('orders.*')
      one(data: { id: number }, context: unknown): void {
        const ctx = context as RxAmqpContext;
        seen.push(`one:${ctx.getRoutingKey()}:${data.id}`);
      }

      @EventPattern('orders.#')
      many(data: { id: number }, context: unknown): void {
        const ctx = context as RxAmqpContext;
        seen.push(`many:${ctx.getRoutingKey()}:${data.id}`);
      }

      @EventPattern('audit.exact')
      exact(data: { id: number }): void {
        seen.push(`exact:${data.id}`);
      }
    }

    withContext(Orders, 'one', 'many');
    await startServer(Orders, { exchange: shop, queue: events });
    const c = client({ exchange: shop });
    await emitted(c, 'orders.created', { id: 1 });
    await emitted(c, 'orders.eu.created', { id: 2 });
    await emitted(c, 'orders', { id: 3 });
    await emitted(c, 'audit.exact', { id: 4 });
    await emitted(c, 'invoices.created', { id: 5 }); // bound by no pattern: never delivered
    await until(() => seen.length >= 4);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.sort()).toEqual([
      'exact:4',
      'many:orders.eu.created:2',
      'many:orders:3',
      'one:orders.created:1',
    ]);
    expect(await messageCount(events)).toBe(0);
  });

  it('consumes two queues on one server, each bound with its own patterns', async () => {
    const shop = x('two');
    const qa = q('qa');
    const qb = q('qb');
    const seen: string[] = [];

    @Controller()
    class Two {
      @EventPattern('a.*')
      a(n: number, context: unknown): void {
        const ctx = context as RxAmqpContext;
        seen.push(`a:${n}:${ctx.getQueue()}`);
      }

      @EventPattern('b.#')
      b(n: number, context: unknown): void {
        const ctx = context as RxAmqpContext;
        seen.push(`b:${n}:${ctx.getQueue()}:${ctx.getMetadata()?.trace}`);
      }
    }

    withContext(Two, 'a', 'b');
    await startServer(Two, {
      exchange: shop,
      queues: [
        { name: qa, patterns: ['a.*'], prefetch: 5 },
        { name: qb, prefetch: 1 }, // the patterns no other queue lists: b.#
      ],
    });
    const c = client({ exchange: shop });
    await emitted(c, 'a.one', 1);
    // Nest 12's dispatch hook (Nest 11 has none): metadata travels in the envelope to the handler's context.
    const hooks = typeof (c as { setOnDispatchHook?: unknown }).setOnDispatchHook === 'function';
    if (hooks) {
      c.setOnDispatchHook((packet) => {
        packet.metadata = { trace: 't-1' };
      });
    }
    await emitted(c, 'b.two.deep', 2);
    await until(() => seen.length >= 2);
    expect(seen.sort()).toEqual([`a:1:${qa}`, `b:2:${qb}:${hooks ? 't-1' : 'undefined'}`]);
  });

  it('takes plain JSON bodies with the pattern from the routing key (plain and custom envelopes)', async () => {
    const ext = x('external');
    const inbox = q('plain');
    const seen: unknown[] = [];

    @Controller()
    class Plain {
      @EventPattern('sensor.*')
      reading(data: unknown): void {
        seen.push(data);
      }

      @MessagePattern('math.sum')
      sum(numbers: number[]): number {
        return numbers.reduce((a, b) => a + b, 0);
      }
    }

    await startServer(Plain, { exchange: ext, queue: inbox, envelope: plainEnvelope() });
    // A producer that is not Nest: the body is the data, even with a 'pattern' key in it.
    await publishRaw(ext, 'sensor.t1', JSON.stringify({ pattern: 'not-mine', celsius: 21 }), {
      contentType: 'application/json',
    });
    await until(() => seen.length === 1);
    expect(seen[0]).toEqual({ pattern: 'not-mine', celsius: 21 });
    // A plain request/reply with rxamqp's own request().
    const ch = await admin.openChannel();
    const reply = await firstValueFrom(ch.request(ext, 'math.sum', '[1,2,3]', {}, { timeoutMs: 5000 }));
    expect(reply.json()).toBe(6);
    await lastValueFrom(ch.close(), { defaultValue: undefined });
    // The client speaks the same envelope.
    const c = client({ exchange: ext, envelope: plainEnvelope() });
    expect(await firstValueFrom(c.send('math.sum', [4, 5]))).toBe(9);
  });

  it('takes the pattern from a message property with a custom envelope', async () => {
    const inbox = q('custom');
    const seen: unknown[] = [];

    @Controller()
    class Typed {
      @EventPattern('user.signup')
      signup(data: unknown): void {
        seen.push(data);
      }
    }

    const base = jsonEnvelope();
    await startServer(Typed, {
      queue: inbox,
      envelope: {
        ...base,
        decode: (m) => ({ pattern: m.properties.type, data: JSON.parse(new TextDecoder().decode(m.body)) }),
      },
    });
    await publishRaw('', inbox, '{"user":"ada"}', { type: 'user.signup' });
    await until(() => seen.length === 1);
    expect(seen[0]).toEqual({ user: 'ada' });
  });

  it('settles failed events by policy: dead-letter at once, retry once then dead-letter', async () => {
    const shop = x('fail');
    const dlx = exchange({ name: x('fail.dlx'), type: 'fanout', durable: true });
    const dead = queue({ name: q('fail.dead'), durable: true });
    const once = queue({ name: q('fail.once'), durable: true, deadLetterExchange: dlx });
    const retried = queue({ name: q('fail.retry'), durable: true, deadLetterExchange: dlx });
    const attempts: Record<string, number> = {};

    @Controller()
    class Failing {
      @EventPattern('once.*')
      once(id: string): void {
        attempts[id] = (attempts[id] ?? 0) + 1;
        throw new Error(`cannot handle ${id}`);
      }

      @EventPattern('retry.*')
      async retry(id: string): Promise<void> {
        attempts[id] = (attempts[id] ?? 0) + 1;
        throw new Error(`cannot handle ${id} either`);
      }

      @EventPattern('flaky.*')
      flaky(id: string): void {
        attempts[id] = (attempts[id] ?? 0) + 1;
        if (attempts[id] === 1) throw new Error('first time fails');
      }
    }

    const errors: unknown[] = [];
    const { server } = await startServer(Failing, {
      exchange: shop,
      queues: [
        { name: once, patterns: ['once.*'], onError: 'dead-letter' },
        { name: retried, patterns: ['retry.*', 'flaky.*'] }, // the default, 'retry'
      ],
      topology: { exchanges: [dlx], queues: [dead], bindings: [{ exchange: dlx, queue: dead }] },
    });
    server.on('error', (e) => errors.push(e));
    const c = client({ exchange: shop });
    await emitted(c, 'once.x', 'o1');
    await emitted(c, 'retry.x', 'r1');
    await emitted(c, 'flaky.x', 'f1');
    await until(() => (attempts.o1 ?? 0) >= 1 && (attempts.r1 ?? 0) >= 2 && (attempts.f1 ?? 0) >= 2);
    await until(() => errors.length >= 4);
    // Nothing loops: after a while the counts are the same.
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toEqual({ o1: 1, r1: 2, f1: 2 });
    const ch = await admin.openChannel();
    const deadIds: string[] = [];
    for (;;) {
      const got = await lastValueFrom(ch.get(dead.name, { noAck: true }), { defaultValue: undefined });
      if (got === undefined) break;
      deadIds.push((got.json() as { data: string }).data);
      expect(got.deaths[0]?.reason).toBe('rejected');
    }
    await lastValueFrom(ch.close(), { defaultValue: undefined });
    expect(deadIds.sort()).toEqual(['o1', 'r1']);
    expect(await messageCount(once.name)).toBe(0);
    expect(await messageCount(retried.name)).toBe(0);
  });

  it('handles events again after the connection is lost, and holds events emitted while the client is cut off', async () => {
    const endpoint = await brokerEndpoint();
    const serverPath = await startTcpProxy(endpoint);
    const clientPath = await startTcpProxy(endpoint);
    proxies.push(serverPath, clientPath);
    const shop = x('recover');
    const inbox = q('recover');
    const seen: number[] = [];

    @Controller()
    class Recovering {
      @EventPattern('tick.*')
      tick(n: number): void {
        seen.push(n);
      }
    }

    const { server } = await startServer(Recovering, { exchange: shop, queue: inbox }, serverPath.url(url));
    const statuses: RxAmqpStatus[] = [];
    server.status.subscribe((s) => statuses.push(s));
    const c = client({ exchange: shop }, clientPath.url(url));
    await emitted(c, 'tick.a', 1);
    await until(() => seen.includes(1));
    // Let its ack reach the broker first: an ack lost with the connection would (rightly) redeliver it.
    await new Promise((r) => setTimeout(r, 300));

    // The server's connection dies: it reconnects, declares again and consumes again.
    serverPath.reset();
    await until(() => statuses.includes('reconnecting'));
    await emitted(c, 'tick.a', 2);
    await until(() => seen.includes(2));
    expect(statuses.at(-1)).toBe('connected');

    // The client's connection dies and cannot come back for a while: the event is held, then sent.
    const clientStatuses: RxAmqpStatus[] = [];
    c.status.subscribe((s) => clientStatuses.push(s));
    clientPath.refuse(true);
    clientPath.reset();
    await until(() => clientStatuses.includes('reconnecting'));
    const later = emitted(c, 'tick.a', 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).not.toContain(3);
    clientPath.refuse(false);
    await later;
    await until(() => seen.includes(3));
    expect(seen.sort()).toEqual([1, 2, 3]);
  });

  it('close() lets running handlers finish and leaves the rest in the queue', async () => {
    const inbox = q('drain');
    let started = 0;
    let finished = 0;

    @Controller()
    class Slow {
      @EventPattern('job')
      async job(_data: unknown): Promise<void> {
        started++;
        await new Promise((r) => setTimeout(r, 400));
        finished++;
      }
    }

    const c = client({ queue: inbox });
    const ch = await admin.openChannel();
    await lastValueFrom(ch.queueDeclare(inbox, { durable: true }));
    await lastValueFrom(ch.close(), { defaultValue: undefined });
    for (let i = 0; i < 20; i++) await emitted(c, 'job', i);
    const { app, server } = await startServer(Slow, {
      queues: [{ name: inbox, prefetch: 10, concurrency: 5 }],
    });
    const errors: unknown[] = [];
    server.on('error', (e) => errors.push(e));
    await until(() => started === 5);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(started).toBe(5);
    expect(finished).toBe(5);
    // An ack sent twice would have closed the channel (406 PRECONDITION_FAILED), reported here.
    expect(errors).toEqual([]);
    // 5 acked; the 5 prefetched but not started went back with the 10 never sent.
    expect(await messageCount(inbox)).toBe(15);
  });

  it('close() during a request lets the handler finish and its reply go out', async () => {
    const requests = q('rpc-drain');
    let finished = 0;

    @Controller()
    class SlowRpc {
      @MessagePattern('slow')
      async slow(n: number): Promise<number> {
        await new Promise((r) => setTimeout(r, 300));
        finished++;
        return n + 1;
      }
    }

    const { app } = await startServer(SlowRpc, { queue: requests });
    const c = client({ queue: requests, timeout: 5000 });
    const answer = firstValueFrom(c.send('slow', 41));
    await new Promise((r) => setTimeout(r, 100));
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(finished).toBe(1);
    expect(await answer).toBe(42);
    expect(await messageCount(requests)).toBe(0);
  });

  it("reports its status and unwraps to rxamqp's connection Observable", async () => {
    const inbox = q('status');

    @Controller()
    class Quiet {
      @EventPattern('x')
      x(_data: unknown): void {}
    }

    const { app, server } = await startServer(Quiet, { queue: inbox });
    expect(await firstValueFrom(server.status)).toBe('connected');
    const connection$ = server.unwrap<ConnectionObservable>();
    expect(JSON.parse(JSON.stringify(connection$)).status).toBe('CONNECTED');
    const c = client({ queue: inbox });
    expect(() => c.unwrap()).toThrow(/connect/);
    await c.connect();
    expect(await firstValueFrom(c.status)).toBe('connected');
    expect(c.unwrap<ConnectionObservable>()).toBeDefined();
    const statuses: RxAmqpStatus[] = [];
    server.status.subscribe((s) => statuses.push(s));
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(statuses.at(-1)).toBe('closed');
    await c.close();
    expect(await firstValueFrom(c.status)).toBe('closed');
  });

  it('fails listen() with the typed error, and no password, when the broker refuses the login', async () => {
    const endpoint = await brokerEndpoint();
    const bad = `amqp://${endpoint.username}:Wr0ngSecretPw@${endpoint.host}:${endpoint.port}/`;
    @Controller()
    class Nobody {
      @EventPattern('x')
      x(_data: unknown): void {}
    }
    const failure = await startServer(Nobody, { queue: q('auth') }, bad).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(AuthenticationError);
    expect(String((failure as Error).message)).not.toContain('Wr0ngSecretPw');
    const c = client({ queue: q('auth') }, bad);
    const refused = await c.connect().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(AuthenticationError);
  });

  it('fails listen() when the broker refuses the topology (a queue declared with other arguments)', async () => {
    const taken = q('taken');
    const ch = await admin.openChannel();
    await lastValueFrom(ch.queueDeclare(taken, { durable: true, arguments: { 'x-max-length': 5 } }));
    await lastValueFrom(ch.close(), { defaultValue: undefined });
    @Controller()
    class Nobody {
      @EventPattern('x')
      x(_data: unknown): void {}
    }
    await expect(startServer(Nobody, { queue: taken })).rejects.toMatchObject({ replyCode: 406 });
  });

  it("with onError 'reject' drops a failed event once (no dead-letter exchange), and keeps consuming", async () => {
    const inbox = q('reject');
    const seen: number[] = [];

    @Controller()
    class Picky {
      @EventPattern('n')
      n(value: number): void {
        seen.push(value);
        if (value % 2 === 0) throw new RpcException('even');
      }
    }

    await startServer(Picky, { queue: inbox, onError: 'reject', prefetch: 1 });
    const c = client({ queue: inbox });
    for (let i = 1; i <= 6; i++) await emitted(c, 'n', i);
    await until(() => seen.length >= 6);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await messageCount(inbox)).toBe(0);
  });

  it('close() of a client still waiting for its first connection ends the wait', async () => {
    const path = await startTcpProxy(await brokerEndpoint());
    proxies.push(path);
    path.refuse(true);
    const c = client({ queue: q('never') }, path.url(url));
    const connecting = c.connect();
    await new Promise((r) => setTimeout(r, 200));
    await c.close();
    await expect(connecting).rejects.toThrow();
  });

  it("bounds 'retry' on a quorum queue by maxDeliveries (x-delivery-count), then dead-letters", async () => {
    const dlx = exchange({ name: x('quorum.dlx'), type: 'fanout', durable: true });
    const dead = queue({ name: q('quorum.dead'), durable: true });
    const work = queue({ name: q('quorum.work'), type: 'quorum', deadLetterExchange: dlx });
    let attempts = 0;

    @Controller()
    class Poison {
      @EventPattern('poison')
      poison(_data: unknown): void {
        attempts++;
        throw new Error('always fails');
      }
    }

    await startServer(Poison, {
      queues: [{ name: work }],
      maxDeliveries: 3,
      topology: { exchanges: [dlx], queues: [dead], bindings: [{ exchange: dlx, queue: dead }] },
    });
    const c = client({ queue: work.name });
    await emitted(c, 'poison', 1);
    await until(() => attempts >= 3);
    await until(async () => (await messageCount(dead.name)) === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(3);
    expect(await messageCount(work.name)).toBe(0);
  });

  it("is built by Nest's ClientsModule as a customClass", async () => {
    const requests = q('rpc-module');

    @Controller()
    class Echo {
      @MessagePattern('echo')
      echo(data: unknown): unknown {
        return data;
      }
    }

    await startServer(Echo, { queue: requests });
    const moduleRef = await Test.createTestingModule({
      imports: [
        ClientsModule.register([
          { name: 'ECHO', customClass: RxAmqpClient, options: { url, queue: requests } },
        ]),
      ],
    }).compile();
    const c = moduleRef.get<RxAmqpClient>('ECHO');
    clients.push(c);
    expect(c).toBeInstanceOf(RxAmqpClient);
    expect(await firstValueFrom(c.send('echo', { hello: 'nest' }))).toEqual({ hello: 'nest' });
    await moduleRef.close();
  });

  it("with onError 'requeue' puts a failed event back, and it is handled on its next delivery", async () => {
    const inbox = q('requeue');
    const deliveries: boolean[] = [];

    @Controller()
    class Flaky {
      @EventPattern('flaky')
      flaky(_data: unknown, context: unknown): void {
        const redelivered = (context as RxAmqpContext).getMessage().fields.redelivered;
        deliveries.push(redelivered);
        if (!redelivered) throw new Error('the first delivery fails');
      }
    }

    withContext(Flaky, 'flaky');
    await startServer(Flaky, { queue: inbox, onError: 'requeue' });
    const c = client({ queue: inbox });
    await emitted(c, 'flaky', 1);
    await until(() => deliveries.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(deliveries).toEqual([false, true]);
    expect(await messageCount(inbox)).toBe(0);
  });
});
