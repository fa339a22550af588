/**
 * `rxamqp/angular` on the embedded broker of `rxamqp/testing`: the providers, the service's streams
 * (consume, watch, publish, request, withChannel, withConnection), the signals, the credentials
 * provider run in the injection context, and the teardown with the injector. No RabbitMQ: the relay
 * and the real browser are tested in relay.test.ts and test/browser/.
 */
import {
  type EnvironmentInjector,
  InjectionToken,
  inject,
  PLATFORM_ID,
  runInInjectionContext,
} from '@angular/core';
import { firstValueFrom, lastValueFrom, map, take, toArray } from 'rxjs';
import { messagesSignal, provideRxAmqp, RxAmqp, type RxAmqpConfig } from '../../src/angular/index.js';
import type { ConnectionState, Delivery } from '../../src/index.js';
import { EmbeddedBroker } from '../../src/testing/index.js';
import { environment, until } from './support.js';

const URL = 'amqp://guest:guest@embedded';

let broker: EmbeddedBroker;
const injectors: EnvironmentInjector[] = [];

beforeEach(() => {
  broker = new EmbeddedBroker();
});

afterEach(() => {
  for (const injector of injectors.splice(0)) if (!injector.destroyed) injector.destroy();
  broker.close();
});

function app(config: RxAmqpConfig | (() => RxAmqpConfig | Promise<RxAmqpConfig>), extra: never[] = []) {
  const env = environment([...extra, provideRxAmqp(config)]);
  injectors.push(env.injector);
  return env;
}

const embedded = (more: Partial<RxAmqpConfig> = {}): RxAmqpConfig => ({
  url: URL,
  transport: broker.connector,
  recovery: { reconnect: { delays: [20] } },
  ...more,
});

function dropAll(): void {
  for (const c of broker.connections()) broker.dropConnection(c);
}

function statuses(service: RxAmqp): string[] {
  const seen: string[] = [];
  service.state$.subscribe((s) => seen.push(s.status));
  return seen;
}

describe('provideRxAmqp', () => {
  it('connects while the application starts, and the state signal and state$ follow', async () => {
    const { injector } = app(embedded({ name: 'ui' }));
    // The environment initializer created the service: the broker already sees the attempt.
    await until(() => broker.connections().some((c) => c.state === 'open'), 2000, 'the connection');
    const amqp = injector.get(RxAmqp);
    expect(amqp.state().status).toBe('CONNECTED');
    expect(broker.connections().map((c) => c.name)).toEqual(['ui']);
    const state = await firstValueFrom(amqp.state$);
    expect(state.status).toBe('CONNECTED');
    expect(JSON.parse(JSON.stringify(amqp))).toEqual({ status: 'CONNECTED', host: expect.any(String) });
  });

  it("connects on first use with connectOn: 'first-use'", async () => {
    const { injector } = app(embedded({ connectOn: 'first-use' }));
    const amqp = injector.get(RxAmqp);
    await new Promise((r) => setTimeout(r, 30));
    expect(broker.connections()).toEqual([]);
    expect(amqp.state().status).toBe('INITIAL');
    const conn = await firstValueFrom(amqp.connection$);
    expect(conn.isOpen).toBe(true);
    expect(amqp.state().status).toBe('CONNECTED');
    // The service holds the connection now, not only the subscriber that asked for it.
    await new Promise((r) => setTimeout(r, 30));
    expect(broker.connections()).toHaveLength(1);
  });

  it('takes a factory run in an injection context, returning the configuration or a Promise of it', async () => {
    const RELAY_URL = new InjectionToken<string>('relay url');
    const { injector } = app(
      () => ({ ...embedded(), url: inject(RELAY_URL) }),
      [{ provide: RELAY_URL, useValue: URL } as never],
    );
    await until(() => injector.get(RxAmqp).state().status === 'CONNECTED', 2000, 'CONNECTED');

    const later = app(async () => {
      await new Promise((r) => setTimeout(r, 20));
      return embedded({ name: 'async' });
    });
    const amqp = later.injector.get(RxAmqp);
    expect(amqp.state().status).toBe('INITIAL');
    // What is used before the configuration resolves waits for it.
    const published = lastValueFrom(amqp.publish('', 'nowhere', 'early'));
    await until(() => amqp.state().status === 'CONNECTED', 2000, 'CONNECTED');
    await expect(published).resolves.toEqual(expect.objectContaining({ status: 'acked' }));
    expect(broker.connections().map((c) => c.name)).toContain('async');
  });

  it('asks the credentials provider in the injection context before every connection attempt', async () => {
    class Auth {
      tokens = 0;
      token(): string {
        this.tokens += 1;
        return 'guest';
      }
    }
    const { injector } = app(
      embedded({ credentials: () => ({ username: 'guest', password: inject(Auth).token() }) }),
      [{ provide: Auth, useFactory: () => new Auth() } as never],
    );
    const amqp = injector.get(RxAmqp);
    await until(() => amqp.state().status === 'CONNECTED', 2000, 'CONNECTED');
    const auth = injector.get(Auth);
    expect(auth.tokens).toBe(1);
    dropAll();
    await until(() => amqp.state().status === 'RECONNECTING', 2000, 'RECONNECTING');
    await until(() => amqp.state().status === 'CONNECTED', 2000, 'CONNECTED again');
    expect(auth.tokens).toBe(2);
  });
});

describe('server-side rendering', () => {
  it('never connects on the server (nor runs the factory); its streams end with the injector', async () => {
    let ran = false;
    const env = environment(
      [
        provideRxAmqp(() => {
          ran = true;
          return embedded();
        }),
      ],
      [{ provide: PLATFORM_ID, useValue: 'server' }],
    );
    injectors.push(env.injector);
    const amqp = env.injector.get(RxAmqp);
    let completed = false;
    amqp.consume('anything', { autoAck: true }).subscribe({ complete: () => (completed = true) });
    await new Promise((r) => setTimeout(r, 50));
    expect(ran).toBe(false);
    expect(broker.connections()).toEqual([]);
    expect(amqp.state().status).toBe('INITIAL');
    env.injector.destroy();
    expect(completed).toBe(true);
  });
});

describe('RxAmqp', () => {
  it('consume: a hot, shared consumer that consumes again after a reconnect, in order', async () => {
    broker.publish('amq.direct', 'nowhere', 'declare the queue first'); // the exchange exists
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    const got: string[] = [];
    const also: string[] = [];
    const inbox = amqp.consume({ name: 'inbox' }, { autoAck: true, prefetch: 5 });
    const a = inbox.subscribe((d) => got.push(d.text()));
    const b = inbox.subscribe((d) => also.push(d.text()));
    await until(() => broker.queue('inbox')?.consumerCount === 1, 2000, 'one consumer');
    for (let i = 0; i < 20; i++) broker.publish('', 'inbox', `m${i}`);
    await until(() => got.length === 20, 2000, '20 deliveries');
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(also).toEqual(got);
    expect(broker.queue('inbox')).toEqual(expect.objectContaining({ messageCount: 0, unackedCount: 0 }));

    dropAll();
    await until(() => amqp.state().status === 'RECONNECTING', 2000, 'RECONNECTING');
    await until(() => broker.queue('inbox')?.consumerCount === 1, 2000, 'the consumer back');
    broker.publish('', 'inbox', 'after');
    await until(() => got.length === 21, 2000, 'the delivery after the reconnect');
    expect(got[20]).toBe('after');

    a.unsubscribe();
    expect(broker.queue('inbox')?.consumerCount).toBe(1);
    b.unsubscribe();
    await until(() => broker.queue('inbox')?.consumerCount === 0, 2000, 'basic.cancel');
  });

  it('consume: a connection lost while the queue is declared is no failure, the next one consumes', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    await until(() => amqp.state().status === 'CONNECTED', 2000, 'CONNECTED');
    const got: string[] = [];
    let failed: unknown;
    amqp.consume({ name: 'cut', durable: true }, { autoAck: true }).subscribe({
      next: (d) => got.push(d.text()),
      error: (e) => (failed = e),
    });
    // The declaration is under way (its channel opening): the connection goes.
    dropAll();
    await until(() => broker.queue('cut')?.consumerCount === 1, 2000, 'the consumer on the next connection');
    broker.publish('', 'cut', 'made it');
    await until(() => got.length === 1, 2000, 'the delivery');
    expect(failed).toBeUndefined();
  });

  it('consume without autoAck leaves settling to the application', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    await firstValueFrom(amqp.withChannel((ch) => ch.queueDeclare('work')));
    broker.publish('', 'work', 'a');
    broker.publish('', 'work', 'b');
    const two = await firstValueFrom(amqp.consume('work', { prefetch: 10 }).pipe(take(2), toArray()));
    expect(broker.queue('work')?.unackedCount).toBe(2);
    for (const d of two) d.ack();
    await until(() => broker.queue('work')?.unackedCount === 0, 2000, 'the acks');
  });

  it('watch: a temporary queue bound to an exchange, acked as handed over', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    const seen: string[] = [];
    const sub = amqp
      .watch({ name: 'prices', type: 'topic' }, ['eur.*', 'usd.spot'])
      .subscribe((d) => seen.push(`${d.fields.routingKey}=${d.text()}`));
    await until(
      () => broker.bindings().filter((b) => b.source === 'prices').length === 2,
      2000,
      'the bindings',
    );
    const temporary = broker.queues().find((q) => q.exclusive);
    expect(temporary).toEqual(expect.objectContaining({ exclusive: true, autoDelete: true }));
    broker.publish('prices', 'eur.spot', '1.08');
    broker.publish('prices', 'gbp.spot', 'not bound');
    broker.publish('prices', 'usd.spot', '1');
    await until(() => seen.length === 2, 2000, 'two prices');
    expect(seen).toEqual(['eur.spot=1.08', 'usd.spot=1']);
    expect(broker.queue(temporary!.name)?.unackedCount).toBe(0);
    sub.unsubscribe();
  });

  it('publish: sent at once (without a subscriber), the outcome replayed; publishJson', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    await firstValueFrom(amqp.withChannel((ch) => ch.queueDeclare('out')));
    const outcome = amqp.publish('', 'out', 'hello', { messageId: '1' });
    amqp.publishJson('', 'out', { n: 2 }, { messageId: '2' });
    await until(() => broker.queue('out')?.messageCount === 2, 2000, 'two messages');
    await expect(lastValueFrom(outcome)).resolves.toEqual(expect.objectContaining({ status: 'acked' }));
    const got = await firstValueFrom(amqp.consume('out', { autoAck: true }).pipe(take(2), toArray()));
    expect(got.map((d) => [d.text(), d.properties.contentType])).toEqual([
      ['hello', undefined],
      ['{"n":2}', 'application/json'],
    ]);
  });

  it('publish while reconnecting: held, then sent on the next connection', async () => {
    const { injector } = app(embedded({ recovery: { reconnect: { delays: [200] } } }));
    const amqp = injector.get(RxAmqp);
    await firstValueFrom(amqp.withChannel((ch) => ch.queueDeclare('held')));
    dropAll();
    await until(() => amqp.state().status === 'RECONNECTING', 2000, 'RECONNECTING');
    const outcome = lastValueFrom(amqp.publish('', 'held', 'while away'));
    expect(broker.queue('held')?.messageCount).toBe(0);
    await expect(outcome).resolves.toEqual(expect.objectContaining({ status: 'acked' }));
    expect(broker.queue('held')?.messageCount).toBe(1);
  });

  it('request: RPC over direct reply-to', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    const serve = amqp
      .withChannel((ch) => ch.queueDeclare('rpc.double'))
      .subscribe(() => {
        amqp.consume('rpc.double', { autoAck: true }).subscribe((request: Delivery) => {
          const n = request.json<number>();
          amqp.publish('', request.properties.replyTo ?? '', JSON.stringify(n * 2), {
            correlationId: request.properties.correlationId ?? '',
          });
        });
      });
    await until(() => broker.queue('rpc.double')?.consumerCount === 1, 2000, 'the responder');
    const reply = await firstValueFrom(amqp.request('', 'rpc.double', '21', {}, { timeoutMs: 2000 }));
    expect(reply.json()).toBe(42);
    serve.unsubscribe();
  });

  it('messagesSignal: the last messages as a signal, ended with the injection context', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    const texts = runInInjectionContext(injector, () =>
      messagesSignal(amqp.consume({ name: 'feed' }, { autoAck: true }).pipe(map((d) => d.text())), {
        keep: 3,
      }),
    );
    expect(texts()).toEqual([]);
    await until(() => broker.queue('feed')?.consumerCount === 1, 2000, 'the consumer');
    for (const t of ['a', 'b', 'c', 'd', 'e']) broker.publish('', 'feed', t);
    await until(() => texts().length === 3 && texts()[2] === 'e', 2000, 'the last three');
    expect(texts()).toEqual(['c', 'd', 'e']);
    expect(() => messagesSignal(amqp.state$)).toThrow(/injection context/);
  });

  it('an unknown connect option fails the bootstrap with a ConfigurationError', () => {
    expect(() =>
      environment([provideRxAmqp({ ...embedded(), heartbeet: 5 } as unknown as RxAmqpConfig)]),
    ).toThrow(
      expect.objectContaining({ name: 'ConfigurationError', message: expect.stringMatching(/heartbeet/) }),
    );
  });
});

describe('teardown with the injector', () => {
  it('fails a publish made while an async configuration is pending when the injector is destroyed first', async () => {
    const { injector } = environment([provideRxAmqp(() => new Promise<RxAmqpConfig>(() => {}))]);
    const amqp = injector.get(RxAmqp);
    const outcome = lastValueFrom(amqp.publish('', 'q', 'never sent'));
    injector.destroy();
    await expect(outcome).rejects.toMatchObject({
      name: 'PublisherError',
      code: 'PUBLISHER_CLOSED',
      message: 'the RxAmqp service was destroyed before the message was sent',
    });
  });

  it('cancels the consumers, completes their streams, fails held publishes and closes the connection', async () => {
    const { injector } = app(embedded({ recovery: { reconnect: { delays: [60_000] } } }));
    const amqp = injector.get(RxAmqp);
    const seen = statuses(amqp);
    const ended: string[] = [];
    amqp.consume({ name: 'q1' }).subscribe({ complete: () => ended.push('consume') });
    amqp.watch('amq.topic', '#').subscribe({ complete: () => ended.push('watch') });
    amqp.connection$.subscribe({ complete: () => ended.push('connection$') });
    await until(() => broker.queue('q1')?.consumerCount === 1, 2000, 'the consumers');
    expect(broker.connections()).toHaveLength(1);

    dropAll();
    await until(() => amqp.state().status === 'RECONNECTING', 2000, 'RECONNECTING');
    const held = lastValueFrom(amqp.publish('', 'q1', 'never sent'));

    injector.destroy();
    expect(ended.sort()).toEqual(['connection$', 'consume', 'watch']);
    await expect(held).rejects.toEqual(
      expect.objectContaining({ name: 'PublisherError', code: 'PUBLISHER_CLOSED' }),
    );
    await until(() => amqp.state().status === 'CLOSED', 2000, 'CLOSED');
    expect(seen.at(-1)).toBe('CLOSED');
    expect(broker.connections()).toEqual([]);
    // Used after the end: nothing opens again.
    const late: string[] = [];
    amqp.connection$.subscribe({ complete: () => late.push('complete') });
    expect(late).toEqual(['complete']);
  });

  it('closes an open connection with its consumers cancelled first', async () => {
    const { injector } = app(embedded());
    const amqp = injector.get(RxAmqp);
    let completed = false;
    amqp.consume({ name: 'q2' }).subscribe({ complete: () => (completed = true) });
    await until(() => broker.queue('q2')?.consumerCount === 1, 2000, 'the consumer');
    const states: ConnectionState[] = [];
    amqp.state$.subscribe((s) => states.push(s));
    injector.destroy();
    expect(completed).toBe(true);
    await until(() => broker.connections().length === 0, 2000, 'the connection closed');
    expect(broker.queue('q2')?.consumerCount ?? 0).toBe(0);
    expect(states.map((s) => s.status)).toEqual(['CONNECTED', 'CLOSING', 'CLOSED']);
    expect(states.at(-1)?.cause).toBeUndefined();
  });
});
