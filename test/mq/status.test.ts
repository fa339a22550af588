/**
 * `rxamqp/mq`: marble tests of the AMQP backend's status stream over the marble kit's fake connection
 * (rxamqp's connection states mapped to general-mq's), and of how a queue's options are resolved for
 * the backends.
 */
import { marbles } from 'rxjs-marbles/jest';
import { ConfigurationError } from '../../src/errors.js';
import { createAmqpBackend } from '../../src/mq/amqp.js';
import { backendOf, resolveQueue } from '../../src/mq/connection.js';
import { connectMq } from '../../src/mq/index.js';
import { marbleKit } from '../../src/testing/index.js';

describe('the AMQP backend status stream', () => {
  it(
    'connecting, connected, disconnected on a loss, connecting and connected again',
    marbles((m) => {
      const kit = marbleKit(m);
      const connection$ = kit.connection('c--x-c');
      const backend = createAmqpBackend('amqp://fake', {}, () => connection$ as never);
      // Made (and connecting) before the expectation subscribes: it sees the current status first.
      m.expect(backend.status$).toBeObservable('b--c-(de)', {
        b: 'connected',
        c: 'disconnected',
        d: 'connecting',
        e: 'connected',
      });
    }),
  );

  it(
    'closing, then closed (and complete) on close(); errors$ reports the loss',
    marbles((m) => {
      const kit = marbleKit(m);
      const connection$ = kit.connection('c-x-c');
      const backend = createAmqpBackend('amqp://fake', {}, () => connection$ as never);
      const errors: string[] = [];
      backend.errors$.subscribe((e) => errors.push(e.message));
      kit.at(9, () => backend.close().subscribe());
      m.expect(backend.status$).toBeObservable('b-c-(de)-(fg|)', {
        b: 'connected',
        c: 'disconnected',
        d: 'connecting',
        e: 'connected',
        f: 'closing',
        g: 'closed',
      });
      m.flush();
      expect(errors).toEqual(['the fake connection was lost']);
    }),
  );

  it(
    'closed with the cause on errors$ when the connection fails for good',
    marbles((m) => {
      const kit = marbleKit(m);
      const connection$ = kit.connection('c--#');
      const backend = createAmqpBackend('amqp://fake', {}, () => connection$ as never);
      const errors: unknown[] = [];
      backend.errors$.subscribe((e) => errors.push(e));
      m.expect(backend.status$).toBeObservable('b--(c|)', { b: 'connected', c: 'closed' });
      m.flush();
      expect(errors).toHaveLength(1);
    }),
  );
});

describe('the options of a queue, resolved for the backends', () => {
  it('defaults: unicast, reliable, prefetch 100, persistent, QoS 1, group rxamqp', () => {
    expect(resolveQueue({ name: 'jobs', role: 'sender' })).toEqual({
      name: 'jobs',
      role: 'sender',
      pattern: 'unicast',
      reliable: true,
      prefetch: 100,
      persistent: true,
      qos: 1,
      group: 'rxamqp',
    });
  });

  it('best effort: not persistent and QoS 0, unless overridden per backend', () => {
    expect(resolveQueue({ name: 'e', role: 'receiver', reliable: false })).toMatchObject({
      persistent: false,
      qos: 0,
    });
    expect(
      resolveQueue({
        name: 'e',
        role: 'sender',
        reliable: false,
        amqp: { persistent: true },
        mqtt: { qos: 1 },
      }),
    ).toMatchObject({ reliable: false, persistent: true, qos: 1 });
    expect(
      resolveQueue({ name: 'b.c', role: 'receiver', pattern: 'broadcast', mqtt: { group: 'g1' } }),
    ).toMatchObject({ pattern: 'broadcast', group: 'g1' });
  });

  it('refuses bad names and options with a ConfigurationError that says what is allowed', () => {
    expect(() => resolveQueue({ name: 'Jobs', role: 'sender' })).toThrow(
      /invalid name "Jobs": use segments of a-z, 0-9, '_' and '-' joined by dots/,
    );
    for (const bad of [
      { name: 'a', role: 'x' },
      { name: 'a', role: 'sender', reliable: 'yes' },
      { name: 'a', role: 'sender', amqp: { prefetch: 70_000 } },
      { name: 'a', role: 'sender', amqp: { persistent: 1 } },
      { name: 'a', role: 'sender', mqtt: { group: '' } },
      { name: 'a', role: 'sender', mqtt: { group: 'a#' } },
    ]) {
      expect(() => resolveQueue(bad as never)).toThrow(ConfigurationError);
    }
  });

  it('refuses bad connection options with a ConfigurationError that shows no password', () => {
    const url = 'mqtt://user:s3cret-pw@127.0.0.1:1';
    for (const mqtt of [
      { keepalive: -1 },
      { keepalive: 1.5 },
      { connectTimeout: 0 },
      { sessionExpiry: 'x' },
      { clientId: '' },
      { password: 42 },
      { tls: 's3cret-pw' },
      { tls: { ca: 42 } },
      { tls: { ca: ['pem', 7] } },
      { tls: { key: { s3cret: 'pw' } } },
      { tls: { passphrase: 123 } },
      { tls: { rejectUnauthorized: 'no' } },
      { tls: { servername: false } },
    ]) {
      let error: unknown;
      try {
        connectMq(url, { mqtt: mqtt as never });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(String(error)).not.toContain('s3cret');
    }
    // AMQP options are checked by rxamqp's own resolution, at once.
    expect(() => connectMq('amqp://user:s3cret-pw@127.0.0.1:1', { amqp: { heartbeat: -5 } })).toThrow(
      ConfigurationError,
    );
    expect(() => connectMq('amqp://user:s3cret-pw@127.0.0.1:1', { amqp: { heartbeat: -5 } })).not.toThrow(
      /s3cret/,
    );
  });

  it('picks the backend by the URL scheme', () => {
    expect(
      ['amqp://h', 'AMQPS://h', 'mqtt://h', 'mqtts://h', 'ws://h/mqtt', 'wss://h'].map(backendOf),
    ).toEqual(['amqp', 'amqp', 'mqtt', 'mqtt', 'mqtt', 'mqtt']);
    expect(backendOf('http://h')).toBeUndefined();
    expect(backendOf('localhost')).toBeUndefined();
  });
});
