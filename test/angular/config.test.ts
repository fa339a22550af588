/**
 * `rxamqp/angular`'s configuration is checked eagerly: an object given to `provideRxAmqp` when it is
 * called, a factory's result and every connect option when the service is created (the bootstrap
 * fails), an asynchronous configuration when it resolves (the state says why, the streams error, the
 * `ErrorHandler` hears of it). Messages never show a password.
 */
import { runInInjectionContext } from '@angular/core';
import { firstValueFrom, of } from 'rxjs';
import { splitConfig } from '../../src/angular/config.js';
import { messagesSignal, provideRxAmqp, RxAmqp, type RxAmqpConfig } from '../../src/angular/index.js';
import { ConfigurationError } from '../../src/index.js';
import { EmbeddedBroker } from '../../src/testing/index.js';
import { environment, until } from './support.js';

const broker = new EmbeddedBroker();
afterAll(() => broker.close());

const valid: RxAmqpConfig = { url: 'amqp://guest:guest@embedded', transport: broker.connector };

function configurationError(pattern: RegExp) {
  return expect.objectContaining({ name: 'ConfigurationError', message: expect.stringMatching(pattern) });
}

describe('provideRxAmqp checks its configuration', () => {
  it.each<[string, unknown, RegExp]>([
    ['nothing', undefined, /needs an object with a url/],
    ['null', null, /needs an object with a url .*got null/],
    ['a string', 'ws://localhost:15670/', /needs an object with a url .*got a string/],
    ['an array', [], /got an array/],
    ['no url', {}, /needs a url: the relay's ws:\/\/ or wss:\/\/ URL, got undefined/],
    ['an empty url', { url: ' ' }, /got an empty string/],
    ['a url that is not a string', { url: 42 }, /got number/],
    [
      'an amqp: url without a transport',
      { url: 'amqp://localhost' },
      /not a ws:\/\/ or wss:\/\/ URL.*rxamqp-relay/,
    ],
    [
      'a bad connectOn',
      { url: 'ws://localhost/', connectOn: 'later' },
      /connectOn must be 'startup' or 'first-use'/,
    ],
    ['shared', { url: 'ws://localhost/', shared: false }, /shared is not an option here/],
    [
      'a publisher that is not an object',
      { url: 'ws://localhost/', publisher: 5 },
      /publisher must be an object/,
    ],
  ])('%s', (_name, config, message) => {
    expect(() => provideRxAmqp(config as RxAmqpConfig)).toThrow(ConfigurationError);
    expect(() => provideRxAmqp(config as RxAmqpConfig)).toThrow(configurationError(message));
  });

  it('never shows a password', () => {
    let error: unknown;
    try {
      provideRxAmqp({ url: 'amqp://admin:s3cr3t@mq.example.com/' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(String((error as Error).message)).not.toContain('s3cr3t');
    expect(String((error as Error).message)).toContain('amqp://admin:***@mq.example.com/');
    // A url of the wrong type is described, not shown.
    expect(() => provideRxAmqp({ url: ['amqp://admin:s3cr3t@x'] } as never)).toThrow(/got an array/);
  });

  it('turns recovery on (the first connection too, without a limit) and shares the connection', () => {
    const page = splitConfig({ url: 'ws://localhost/' });
    expect(page.connect).toEqual({
      recovery: { initial: { backoff: { initialDelay: 200, maxDelay: 10_000 } } },
      shared: true,
    });
    expect(page.connectOn).toBe('startup');
    expect(splitConfig({ url: 'ws://localhost/', recovery: true }).connect.recovery).toEqual(
      page.connect.recovery,
    );
    expect(splitConfig({ url: 'ws://localhost/', recovery: false }).connect.recovery).toBe(false);
    const own = { reconnect: { delays: [1000] } };
    expect(splitConfig({ url: 'ws://localhost/', recovery: own }).connect.recovery).toBe(own);
    // The Angular layer's own keys do not reach connect().
    const split = splitConfig({
      url: 'ws://x/',
      connectOn: 'first-use',
      publisher: { maxBuffered: 5 },
      name: 'ui',
    });
    expect(split.connect).toEqual(expect.objectContaining({ name: 'ui' }));
    expect(Object.keys(split.connect).sort()).toEqual(['name', 'recovery', 'shared']);
    expect(split.publisher).toEqual({ maxBuffered: 5 });
  });

  it('accepts ws:, wss:, and any scheme with a transport', () => {
    expect(() => provideRxAmqp({ url: 'ws://localhost:15670/' })).not.toThrow();
    expect(() => provideRxAmqp({ url: 'WSS://mq.example.com/amqp' })).not.toThrow();
    expect(() => provideRxAmqp(valid)).not.toThrow();
  });

  it("fails the bootstrap with connect()'s own ConfigurationError for a bad connect option", () => {
    expect(() => environment([provideRxAmqp({ ...valid, heartbeat: -1 })])).toThrow(
      configurationError(/heartbeat/),
    );
    expect(() => environment([provideRxAmqp({ ...valid, publisher: { maxBuffered: 0 } })])).toThrow(
      configurationError(/maxBuffered/),
    );
  });

  it("checks a factory's configuration when the service is created", () => {
    expect(() => environment([provideRxAmqp(() => ({ url: 'tcp://x' }))])).toThrow(
      configurationError(/not a ws:\/\/ or wss:\/\/ URL/),
    );
  });

  it('reports a bad asynchronous configuration: state, streams and ErrorHandler', async () => {
    const { injector, errors } = environment([
      provideRxAmqp(() => Promise.resolve({ ...valid, frameMax: 12 } as RxAmqpConfig)),
    ]);
    const amqp = injector.get(RxAmqp);
    await until(() => amqp.state().status === 'CLOSED', 2000, 'CLOSED');
    expect(amqp.state().cause).toEqual(configurationError(/frameMax/));
    expect(errors.errors).toEqual([configurationError(/frameMax/)]);
    await expect(firstValueFrom(amqp.connection$)).rejects.toThrow(/frameMax/);
    injector.destroy();
  });

  it("reports a bad connect option on first use with connectOn: 'first-use'", async () => {
    const { injector, errors } = environment([
      provideRxAmqp({ ...valid, connectOn: 'first-use', channelMax: -5 }),
    ]);
    const amqp = injector.get(RxAmqp);
    expect(errors.errors).toEqual([]);
    await expect(firstValueFrom(amqp.connection$)).rejects.toThrow(ConfigurationError);
    expect(errors.errors).toEqual([configurationError(/channelMax/)]);
    injector.destroy();
  });

  it('checks the options of consume, watch and messagesSignal when called', () => {
    const { injector } = environment([provideRxAmqp({ ...valid, connectOn: 'first-use' })]);
    const amqp = injector.get(RxAmqp);
    expect(() => amqp.consume('q', { autoAck: true, noAck: true })).toThrow(
      configurationError(/exclude each other/),
    );
    expect(() => amqp.consume('q', { autoAck: 'yes' as never })).toThrow(
      configurationError(/autoAck must be a boolean/),
    );
    expect(() => amqp.consume(42 as never)).toThrow(configurationError(/queue name or a QueueSpec/));
    expect(() => amqp.watch('amq.topic', [])).toThrow(configurationError(/at least one/));
    expect(() => amqp.publishJson('', 'q', undefined)).toThrow(configurationError(/cannot encode undefined/));
    expect(() => runInInjectionContext(injector, () => messagesSignal(of(1), { keep: 0 }))).toThrow(
      configurationError(/keep must be a positive integer/),
    );
    injector.destroy();
  });
});
