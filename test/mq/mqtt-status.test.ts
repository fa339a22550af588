/**
 * `rxamqp/mq`: marble tests of the MQTT backend's status stream, over a fake mqtt.js client driven in
 * virtual time (the backend's retry delays run on the test scheduler): mqtt.js's connect, close and
 * error events mapped to general-mq's states, and the retry policies deciding what follows a loss.
 * The same backend against Mosquitto is in mqtt-backend.test.ts.
 */
import { EventEmitter } from 'node:events';
import type { SchedulerLike } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { AuthenticationError, MqError } from '../../src/errors.js';
import { createMqttBackend } from '../../src/mq/mqtt.js';
import type { MqConnectOptions } from '../../src/mq/types.js';

/** The parts of an mqtt.js client the backend uses for its connection. */
class FakeClient extends EventEmitter {
  connected = false;
  reconnects = 0;
  ended = false;
  readonly incomingStore = {};
  readonly outgoingStore = {};
  handleMessage: unknown;
  readonly stream = { destroy: () => undefined };

  /** The broker accepted the connection. */
  accept(): void {
    this.connected = true;
    this.emit('connect', { sessionPresent: false });
  }

  /** The network connection ended (or the attempt failed). */
  lose(error?: Error): void {
    this.connected = false;
    if (error !== undefined) this.emit('error', error);
    this.emit('close');
  }

  reconnect(): void {
    this.reconnects++;
  }

  end(_force: boolean, _options: unknown, done: () => void): void {
    this.ended = true;
    this.connected = false;
    done();
  }
}

/** A backend over a fake client, its retry delays on `scheduler`; the client is made at once. */
function fakeBackend(scheduler: SchedulerLike, recovery: MqConnectOptions['recovery'] = {}) {
  const clients: FakeClient[] = [];
  const mqtt = {
    connect: () => {
      const client = new FakeClient();
      clients.push(client);
      return client;
    },
  };
  const backend = createMqttBackend(
    'mqtt://fake:1883',
    { recovery: recovery === false || recovery === true ? recovery : { scheduler, ...recovery } },
    () => mqtt as never,
  );
  const client = clients[0];
  if (client === undefined) throw new Error('the backend made no client');
  return { backend, client };
}

describe('the MQTT backend status stream', () => {
  it(
    'connecting, connected, disconnected on a loss, connecting after the retry delay, connected; closing, closed on close()',
    marbles((m) => {
      const { backend, client } = fakeBackend(m.scheduler, { reconnect: { delays: [2] } });
      m.scheduler.schedule(() => client.accept(), 2);
      m.scheduler.schedule(() => client.lose(), 4);
      m.scheduler.schedule(() => {
        expect(client.reconnects).toBe(1);
        client.accept();
      }, 7);
      m.scheduler.schedule(() => backend.close().subscribe(), 9);
      m.expect(backend.status$).toBeObservable('a-b-c-de-(fg|)', {
        a: 'connecting',
        b: 'connected',
        c: 'disconnected',
        d: 'connecting',
        e: 'connected',
        f: 'closing',
        g: 'closed',
      });
      m.flush();
      expect(client.ended).toBe(true);
    }),
  );

  it(
    'before the first connection the initial policy counts: closed once its attempts are used up',
    marbles((m) => {
      const { backend, client } = fakeBackend(m.scheduler, { initial: { delays: [1], maxAttempts: 2 } });
      const errors: Error[] = [];
      backend.errors$.subscribe((e) => errors.push(e));
      m.scheduler.schedule(() => client.lose(), 1);
      m.scheduler.schedule(() => client.lose(), 3);
      m.scheduler.schedule(() => client.lose(), 5);
      m.expect(backend.status$).toBeObservable('abcbc(d|)', {
        a: 'connecting',
        b: 'disconnected',
        c: 'connecting',
        d: 'closed',
      });
      m.flush();
      expect(client.reconnects).toBe(2);
      expect(errors).toHaveLength(3);
      for (const e of errors) expect(e).toMatchObject({ code: 'MQ_CONNECTION' });
    }),
  );

  it(
    'a broker refusing the credentials is not retried by the default policies: closed at once',
    marbles((m) => {
      const { backend, client } = fakeBackend(m.scheduler);
      const errors: Error[] = [];
      backend.errors$.subscribe((e) => errors.push(e));
      const refused = Object.assign(new Error('Connection refused: Not authorized'), { code: 135 });
      m.scheduler.schedule(() => client.lose(refused), 2);
      m.expect(backend.status$).toBeObservable('a-(b|)', { a: 'connecting', b: 'closed' });
      m.flush();
      expect(client.reconnects).toBe(0);
      expect(errors[0]).toBeInstanceOf(MqError);
      expect((errors[0] as MqError).cause).toBe(refused);
    }),
  );

  it(
    'a refusal of another kind is retried: disconnected, then connecting after the delay',
    marbles((m) => {
      const { backend, client } = fakeBackend(m.scheduler, { initial: { delays: [3] } });
      const unavailable = Object.assign(new Error('Connection refused: Server unavailable'), { code: 136 });
      m.scheduler.schedule(() => client.lose(unavailable), 1);
      m.scheduler.schedule(() => client.accept(), 5);
      m.expect(backend.status$).toBeObservable('ab--cd', {
        a: 'connecting',
        b: 'disconnected',
        c: 'connecting',
        d: 'connected',
      });
    }),
  );

  it(
    'with recovery: false the first loss closes it; a status subscriber after the end gets closed',
    marbles((m) => {
      const { backend, client } = fakeBackend(m.scheduler, false);
      m.scheduler.schedule(() => client.accept(), 1);
      m.scheduler.schedule(() => client.lose(), 3);
      m.expect(backend.status$).toBeObservable('ab-(c|)', { a: 'connecting', b: 'connected', c: 'closed' });
      m.expect(backend.status$, '-----^').toBeObservable('-----(c|)', { c: 'closed' });
    }),
  );

  it('the retry policy sees an auth refusal as an AuthenticationError (a custom policy may still retry)', () => {
    const seen: unknown[] = [];
    const clients: FakeClient[] = [];
    const backend = createMqttBackend(
      'mqtt://fake:1883',
      {
        recovery: {
          initial: {
            delays: [1],
            maxAttempts: 1,
            retryable: (error: unknown) => {
              seen.push(error);
              return false;
            },
          },
        },
      },
      () =>
        ({
          connect: () => {
            const c = new FakeClient();
            clients.push(c);
            return c;
          },
        }) as never,
    );
    const statuses: string[] = [];
    backend.status$.subscribe((s) => statuses.push(s));
    clients[0]?.lose(Object.assign(new Error('Connection refused: Bad username or password'), { code: 134 }));
    expect(statuses).toEqual(['connecting', 'closed']);
    expect(seen).toHaveLength(1);
    expect((seen[0] as MqError).cause).toBeInstanceOf(AuthenticationError);
  });
});
