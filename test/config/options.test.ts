import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  type ConnectOptions,
  DEFAULT_CHANNEL_MAX,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_CONNECTION_TIMEOUT,
  DEFAULT_FRAME_MAX,
  DEFAULT_HEARTBEAT,
  DEFAULT_WRITE_HIGH_WATER_MARK,
  type ResolvedOptions,
  type SaslMechanism,
} from '../../src/config/options.js';
import { resolveOptions as resolveWith } from '../../src/config/resolve-options.js';
import { Secret } from '../../src/config/secret.js';
import { ConfigurationError } from '../../src/errors.js';
import { type FieldTable, field, fieldTypesOf, rememberFieldType } from '../../src/protocol/field-table.js';
import { nodePlatform } from '../../src/transport/node.js';
import type { TransportConnector } from '../../src/transport/transport.js';
import { VERSION } from '../../src/version.js';

/** These tests run on Node: resolve with Node's platform (TCP/TLS, fs). */
function resolveOptions(input: string | ConnectOptions, overrides?: ConnectOptions): ResolvedOptions {
  return resolveWith(input, overrides, nodePlatform);
}

function configError(run: () => unknown): ConfigurationError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return e as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

function resolveError(input: string | ConnectOptions, overrides?: ConnectOptions): ConfigurationError {
  return configError(() => resolveOptions(input, overrides));
}

function everyFormOf(error: Error): string {
  return [
    error.message,
    String(error),
    error.stack ?? '',
    inspect(error, { depth: 10, showHidden: true }),
    JSON.stringify(error),
  ].join('\n');
}

const CAPABILITIES = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  'connection.blocked': true,
  authentication_failure_close: true,
  per_consumer_qos: true,
};

describe('resolveOptions: defaults', () => {
  it.each<[string, string | ConnectOptions]>([
    ['an empty object', {}],
    ['a bare amqp:// URL', 'amqp://'],
  ])('from %s', (_, input) => {
    const r = resolveOptions(input);
    expect(r.hostname).toBe('localhost');
    expect(r.port).toBe(5672);
    expect(r.vhost).toBe('/');
    expect(r.credentials.username).toBe('guest');
    expect(r.credentials.password).toBeInstanceOf(Secret);
    expect(r.credentials.password.reveal()).toBe('guest');
    expect(r.tls).toBeUndefined();
    expect(r.heartbeat).toBe(DEFAULT_HEARTBEAT);
    expect(r.frameMax).toBe(DEFAULT_FRAME_MAX);
    expect(r.channelMax).toBe(DEFAULT_CHANNEL_MAX);
    expect(r.connectionTimeout).toBe(DEFAULT_CONNECTION_TIMEOUT);
    expect(r.closeTimeout).toBe(DEFAULT_CLOSE_TIMEOUT);
    expect(r.locale).toBe('en_US');
    expect(r.name).toBeUndefined();
    expect(r.socket).toEqual({ noDelay: true, keepAlive: false, localAddress: undefined, family: 0 });
    expect(r.maxBodySize).toBe(128 * 1024 * 1024);
    expect(r.writeHighWaterMark).toBe(DEFAULT_WRITE_HIGH_WATER_MARK);
    expect(r.ackDelay).toBe(1);
    expect(r.readBatching).toEqual({ minMessages: 4, delayMs: 1 });
    // The platform's connector (Node: TCP/TLS) when no transport is given.
    expect(r.transport).toBe(nodePlatform.connector);
    expect(r.scheme).toBe('amqp');
    expect(r.url).toBe('amqp://localhost:5672/%2F');
    expect(r.mechanisms.map((m) => m.name)).toEqual(['PLAIN']);
    expect(r.displayUrl).toBe('amqp://guest@localhost:5672/%2F');
  });

  it('the defaults have the values the brief names', () => {
    expect([DEFAULT_HEARTBEAT, DEFAULT_FRAME_MAX, DEFAULT_CHANNEL_MAX]).toEqual([60, 131072, 2047]);
  });

  it('port 5671 with TLS (amqps:// or tls: true or a tls object)', () => {
    expect(resolveOptions('amqps://host').port).toBe(5671);
    expect(resolveOptions({ tls: true }).port).toBe(5671);
    expect(resolveOptions({ tls: {} }).port).toBe(5671);
    expect(resolveOptions({ tls: false }).port).toBe(5672);
    expect(resolveOptions('amqps://host:5999').port).toBe(5999);
  });

  it('the empty vhost of amqp://host/ stays empty; amqp://host gets /', () => {
    expect(resolveOptions('amqp://host/').vhost).toBe('');
    expect(resolveOptions('amqp://host').vhost).toBe('/');
  });

  it('the URL spec examples resolve with defaults for what they leave out', () => {
    const r = resolveOptions('amqp://:@/');
    expect(r.credentials.username).toBe('');
    expect(r.credentials.password.reveal()).toBe('');
    expect(r.hostname).toBe('localhost');
    expect(r.vhost).toBe('');
    const s = resolveOptions('amqp://user%61:%61pass@ho%61st:10000/v%2fhost');
    expect([s.credentials.username, s.credentials.password.reveal(), s.hostname, s.port, s.vhost]).toEqual([
      'usera',
      'apass',
      'hoast',
      10000,
      'v/host',
    ]);
  });

  it('takes every option from an object', () => {
    const transport: TransportConnector = async () => {
      throw new Error('unused');
    };
    const r = resolveOptions({
      hostname: 'mq',
      port: 1234,
      vhost: 'v',
      username: 'u',
      password: 'p',
      heartbeat: 0,
      frameMax: 0,
      channelMax: 0,
      connectionTimeout: 1000,
      closeTimeout: 250.5,
      locale: 'de_DE',
      name: 'svc',
      socket: { noDelay: false, keepAlive: 10_000, localAddress: '127.0.0.1', family: 4 },
      maxBodySize: 1024,
      writeHighWaterMark: 0,
      transport,
    });
    expect(r).toMatchObject({
      hostname: 'mq',
      port: 1234,
      vhost: 'v',
      heartbeat: 0,
      frameMax: 0,
      channelMax: 0,
      connectionTimeout: 1000,
      closeTimeout: 250.5,
      locale: 'de_DE',
      name: 'svc',
      socket: { noDelay: false, keepAlive: 10_000, localAddress: '127.0.0.1', family: 4 },
      maxBodySize: 1024,
      writeHighWaterMark: 0,
      transport,
    });
    expect(r.credentials.username).toBe('u');
    expect(r.credentials.password.reveal()).toBe('p');
  });

  it('keeps a Secret password as it is', () => {
    const password = new Secret('x');
    expect(resolveOptions({ password }).credentials.password).toBe(password);
  });

  it('takes the values of the URL query', () => {
    const r = resolveOptions('amqp://h?heartbeat=5&frame_max=8192&channel_max=10&connection_timeout=1500');
    expect([r.heartbeat, r.frameMax, r.channelMax, r.connectionTimeout]).toEqual([5, 8192, 10, 1500]);
  });

  it('strips the brackets of an IPv6 host given in an object', () => {
    expect(resolveOptions({ hostname: '[::1]' }).hostname).toBe('::1');
  });

  it('freezes the result', () => {
    const r = resolveOptions('amqps://h');
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.socket)).toBe(true);
    expect(Object.isFrozen(r.tls)).toBe(true);
    expect(Object.isFrozen(r.credentials)).toBe(true);
    expect(Object.isFrozen(r.mechanisms)).toBe(true);
  });
});

describe('resolveOptions: validation', () => {
  it.each<[string, ConnectOptions, RegExp]>([
    ['heartbeat -1', { heartbeat: -1 }, /heartbeat must be an integer from 0 to 65535 \(seconds\), got -1/],
    ['heartbeat 65536', { heartbeat: 65536 }, /heartbeat must be an integer from 0 to 65535/],
    ['heartbeat 1.5', { heartbeat: 1.5 }, /heartbeat must be/],
    ['heartbeat NaN', { heartbeat: Number.NaN }, /heartbeat must be .*got NaN/],
    ['heartbeat "60"', { heartbeat: '60' as unknown as number }, /heartbeat must be .*got "60"/],
    ['frameMax 1', { frameMax: 1 }, /frameMax must be 0 \(no limit\) or an integer from 4096 to 4294967295/],
    ['frameMax 4095', { frameMax: 4095 }, /frameMax must be/],
    ['frameMax 2^32', { frameMax: 2 ** 32 }, /frameMax must be/],
    ['frameMax 4096.5', { frameMax: 4096.5 }, /frameMax must be/],
    ['channelMax -1', { channelMax: -1 }, /channelMax must be an integer from 0 to 65535/],
    ['channelMax 65536', { channelMax: 65536 }, /channelMax must be/],
    ['connectionTimeout 0', { connectionTimeout: 0 }, /connectionTimeout must be a positive number/],
    ['connectionTimeout -5', { connectionTimeout: -5 }, /connectionTimeout must be/],
    [
      'connectionTimeout Infinity',
      { connectionTimeout: Number.POSITIVE_INFINITY },
      /connectionTimeout must be/,
    ],
    ['connectionTimeout NaN', { connectionTimeout: Number.NaN }, /connectionTimeout must be/],
    [
      'connectionTimeout 2^31',
      { connectionTimeout: 2 ** 31 },
      /connectionTimeout must be .* up to 2147483647/,
    ],
    ['closeTimeout 0', { closeTimeout: 0 }, /closeTimeout must be a positive number/],
    ['closeTimeout Infinity', { closeTimeout: Number.POSITIVE_INFINITY }, /closeTimeout must be/],
    ['port 0', { port: 0 }, /port must be an integer from 1 to 65535, got 0/],
    ['port 65536', { port: 65536 }, /port must be/],
    ['port 56.72', { port: 56.72 }, /port must be/],
    ['port "5672"', { port: '5672' as unknown as number }, /port must be/],
    ['hostname ""', { hostname: '' }, /hostname must be a host name or address/],
    ['hostname 42', { hostname: 42 as unknown as string }, /hostname must be/],
    ['vhost 256 bytes', { vhost: 'é'.repeat(128) }, /vhost must be at most 255 bytes in UTF-8, got 256/],
    ['vhost not a string', { vhost: 1 as unknown as string }, /vhost must be a string/],
    ['name 256 bytes', { name: 'n'.repeat(256) }, /name must be at most 255 bytes/],
    ['locale 256 bytes', { locale: 'l'.repeat(256) }, /locale must be at most 255 bytes/],
    ['username not a string', { username: 7 as unknown as string }, /username must be a string/],
    ['username with NUL', { username: 'a\0b' }, /username must not contain a NUL character/],
    ['maxBodySize 0', { maxBodySize: 0 }, /maxBodySize must be an integer from 1/],
    ['maxBodySize 1.5', { maxBodySize: 1.5 }, /maxBodySize must be/],
    ['writeHighWaterMark -1', { writeHighWaterMark: -1 }, /writeHighWaterMark must be an integer from 0/],
    [
      'transport not a function',
      { transport: {} as unknown as TransportConnector },
      /transport must be a function/,
    ],
    ['socket not an object', { socket: true as never }, /socket must be an object/],
    ['socket.noDelay', { socket: { noDelay: 1 as unknown as boolean } }, /socket.noDelay must be a boolean/],
    [
      'socket.keepAlive',
      { socket: { keepAlive: -1 } },
      /socket.keepAlive must be a boolean or a non-negative/,
    ],
    ['socket.family', { socket: { family: 5 as 4 } }, /socket.family must be 0, 4 or 6, got 5/],
    ['socket.localAddress', { socket: { localAddress: '' } }, /socket.localAddress must be an address/],
    ['tls not a boolean/object', { tls: 'yes' as never }, /tls must be a boolean or an object, got "yes"/],
    ['clientProperties array', { clientProperties: [] as never }, /clientProperties must be a field table/],
  ])('rejects %s', (_, options, message) => {
    const e = resolveError(options);
    expect(e.message).toMatch(message);
    expect(e.code).toBe('INVALID_CONFIGURATION');
  });

  it('accepts the limits', () => {
    const r = resolveOptions({
      heartbeat: 65535,
      frameMax: 2 ** 32 - 1,
      channelMax: 65535,
      port: 65535,
      vhost: `${'é'.repeat(127)}a`,
      name: 'n'.repeat(255),
      connectionTimeout: 2 ** 31 - 1,
    });
    expect(r.frameMax).toBe(2 ** 32 - 1);
    expect(Buffer.byteLength(r.vhost)).toBe(255);
    expect(resolveOptions({ frameMax: 4096, port: 1 }).frameMax).toBe(4096);
  });

  it('does not limit the user name to 255 bytes (it travels in a long string)', () => {
    expect(resolveOptions({ username: 'u'.repeat(1000) }).credentials.username).toHaveLength(1000);
  });

  it('rejects a password with a NUL character without showing it', () => {
    const e = resolveError({ password: 'Sup3r\0S3cret' });
    expect(e.message).toMatch(/password must not contain a NUL character/);
    expect(everyFormOf(e)).not.toMatch(/Sup3r|S3cret/);
  });

  it('rejects a password of another type without showing it', () => {
    const e = resolveError({ password: 12345678 as unknown as string });
    expect(e.message).toBe('password must be a string or a Secret, got number');
    expect(everyFormOf(e)).not.toContain('12345678');
  });

  it('rejects input that is neither a URL nor an object', () => {
    expect(resolveError(42 as unknown as string).message).toMatch(
      /takes an AMQP URL or an options object, got 42/,
    );
    expect(resolveError(null as unknown as string).message).toMatch(/got null/);
    expect(resolveError('amqp://h', 'x' as never).message).toMatch(/the options must be an object/);
  });

  it('rejects unknown options and lists the accepted ones', () => {
    const e = resolveError({ heartBeat: 10 } as ConnectOptions);
    expect(e.message).toMatch(
      /unknown option "heartBeat"; the accepted ones are hostname, port, .*heartbeat/,
    );
    expect(resolveError('amqp://h', { vHost: 'x' } as ConnectOptions).message).toMatch(
      /unknown option "vHost"/,
    );
    expect(resolveError({ tls: { ca_file: 'x' } as never }).message).toMatch(
      /unknown tls option "ca_file".*caFile/,
    );
    expect(resolveError({ socket: { nodelay: true } as never }).message).toMatch(
      /unknown socket option "nodelay".*noDelay/,
    );
  });

  it('ignores options set to undefined', () => {
    const options = { heartbeat: undefined, port: undefined } as unknown as ConnectOptions;
    const r = resolveOptions(options);
    expect(r.heartbeat).toBe(DEFAULT_HEARTBEAT);
    expect(r.port).toBe(5672);
  });
});

describe('resolveOptions: SASL mechanisms', () => {
  it('builds the built-ins named by authMechanism, in order, whatever their case', () => {
    expect(resolveOptions({ authMechanism: 'external' }).mechanisms.map((m) => m.name)).toEqual(['EXTERNAL']);
    expect(
      resolveOptions({ authMechanism: ['AMQPlain', 'plain', 'PLAIN', 'External'] }).mechanisms.map(
        (m) => m.name,
      ),
    ).toEqual(['AMQPLAIN', 'PLAIN', 'EXTERNAL']);
  });

  it('takes auth_mechanism from the URL', () => {
    expect(
      resolveOptions('amqps://h?auth_mechanism=external&auth_mechanism=plain').mechanisms.map((m) => m.name),
    ).toEqual(['EXTERNAL', 'PLAIN']);
  });

  it('rejects an unknown name, listing the built-ins and pointing at sasl', () => {
    const e = resolveError('amqp://h?auth_mechanism=scram-sha-256');
    expect(e.message).toMatch(/unknown authMechanism "SCRAM-SHA-256"/);
    expect(e.message).toContain('PLAIN, AMQPLAIN, EXTERNAL');
    expect(e.message).toMatch(/pass a custom mechanism in the sasl option/);
    expect(resolveError({ authMechanism: 'toString' }).message).toMatch(/unknown authMechanism "toString"/);
    expect(resolveError({ authMechanism: [1 as unknown as string] }).message).toMatch(
      /unknown authMechanism 1/,
    );
  });

  it('rejects an empty list', () => {
    expect(resolveError({ authMechanism: [] }).message).toMatch(
      /authMechanism must be a mechanism name or a non-empty/,
    );
  });

  it('uses sasl instead of authMechanism when given', () => {
    const token: SaslMechanism = { name: 'X-TOKEN', response: () => Buffer.from('t') };
    const r = resolveOptions('amqp://h?auth_mechanism=scram-sha-1', { sasl: [token] });
    expect(r.mechanisms).toEqual([token]);
    expect(r.mechanisms[0]).toBe(token);
  });

  it('rejects an invalid sasl list', () => {
    expect(resolveError({ sasl: [] }).message).toMatch(/sasl must be a non-empty array/);
    expect(resolveError({ sasl: [{ name: 'X' } as SaslMechanism] }).message).toMatch(
      /each sasl mechanism must be an object with a name and a response/,
    );
    expect(resolveError({ sasl: [null as unknown as SaslMechanism] }).message).toMatch(/each sasl mechanism/);
    expect(resolveError({ sasl: 'PLAIN' as never }).message).toMatch(/sasl must be a non-empty array/);
  });
});

describe('resolveOptions: URL and overrides', () => {
  it('overrides win field by field', () => {
    const r = resolveOptions('amqp://u:p@h:1000/v?heartbeat=5&channel_max=7', {
      heartbeat: 10,
      password: 'other',
      vhost: 'w',
    });
    expect(r.heartbeat).toBe(10);
    expect(r.channelMax).toBe(7);
    expect(r.vhost).toBe('w');
    expect(r.hostname).toBe('h');
    expect(r.port).toBe(1000);
    expect(r.credentials.username).toBe('u');
    expect(r.credentials.password.reveal()).toBe('other');
  });

  it('override values left undefined do not clear the URL', () => {
    const r = resolveOptions('amqp://h:1000', { port: undefined } as unknown as ConnectOptions);
    expect(r.port).toBe(1000);
  });

  it('a tls object merges over the URL TLS settings', () => {
    const r = resolveOptions('amqps://h?verify=verify_none&server_name_indication=sni.example', {
      tls: { servername: 'other.example', minVersion: 'TLSv1.3' },
    });
    expect(r.tls).toMatchObject({
      rejectUnauthorized: false,
      servername: 'other.example',
      minVersion: 'TLSv1.3',
    });
  });

  it('tls: true keeps the URL TLS settings', () => {
    expect(resolveOptions('amqps://h?verify=verify_none', { tls: true }).tls?.rejectUnauthorized).toBe(false);
  });

  it('tls: true or a tls object turns TLS on for an amqp:// URL', () => {
    expect(resolveOptions('amqp://h', { tls: true }).port).toBe(5671);
    const r = resolveOptions('amqp://h:5000', { tls: { rejectUnauthorized: false } });
    expect(r.tls?.rejectUnauthorized).toBe(false);
    expect(r.port).toBe(5000);
    expect(r.displayUrl).toBe('amqps://guest@h:5000/%2F');
  });

  it('tls: false is accepted for an amqp:// URL and refused for an amqps:// one', () => {
    expect(resolveOptions('amqp://h', { tls: false }).tls).toBeUndefined();
    expect(resolveError('amqps://u:Sup3rS3cret@h', { tls: false }).message).toMatch(
      /tls: false contradicts the amqps:\/\/ URL/,
    );
  });

  it('tls: false in the overrides turns off the TLS of an options object', () => {
    expect(resolveOptions({ tls: { rejectUnauthorized: false } }, { tls: false }).tls).toBeUndefined();
  });

  it('socket and clientProperties objects merge over those of the first options object', () => {
    const r = resolveOptions(
      { socket: { keepAlive: true, family: 6 }, clientProperties: { a: 1, b: 2 } },
      { socket: { family: 4 }, clientProperties: { b: 3 } },
    );
    expect(r.socket).toEqual({ noDelay: true, keepAlive: true, localAddress: undefined, family: 4 });
    expect(r.clientProperties).toMatchObject({ a: 1, b: 3 });
  });
});

describe('resolveOptions: TLS', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rxamqp-options-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA-CERT');
    writeFileSync(join(dir, 'client.pem'), 'CLIENT-CERT');
    writeFileSync(join(dir, 'client.key'), 'PRIVATE-KEY-CONTENTS');
    mkdirSync(join(dir, 'a-directory'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tls: true gives the defaults: verification on, SNI from the host name', () => {
    expect(resolveOptions({ hostname: 'mq.example.com', tls: true }).tls).toEqual({
      ca: undefined,
      cert: undefined,
      key: undefined,
      passphrase: undefined,
      pfx: undefined,
      rejectUnauthorized: true,
      servername: 'mq.example.com',
      minVersion: undefined,
      checkServerIdentity: undefined,
    });
  });

  it('reads caFile, certFile and keyFile from the URL now', () => {
    const url =
      `amqps://h?cacertfile=${encodeURIComponent(join(dir, 'ca.pem'))}` +
      `&certfile=${encodeURIComponent(join(dir, 'client.pem'))}&keyfile=${encodeURIComponent(join(dir, 'client.key'))}`;
    const tls = resolveOptions(url).tls!;
    expect(tls.ca).toEqual([Buffer.from('CA-CERT')]);
    expect(tls.cert).toEqual(Buffer.from('CLIENT-CERT'));
    expect(tls.key).toEqual(Buffer.from('PRIVATE-KEY-CONTENTS'));
  });

  it('adds caFile to the ca given inline', () => {
    const tls = resolveOptions({ tls: { ca: ['A', Buffer.from('B')], caFile: join(dir, 'ca.pem') } }).tls!;
    expect(tls.ca).toEqual(['A', Buffer.from('B'), Buffer.from('CA-CERT')]);
    expect(resolveOptions({ tls: { ca: 'PEM' } }).tls?.ca).toEqual(['PEM']);
  });

  it('takes inline cert, key and pfx', () => {
    const pfx = Buffer.from([1, 2, 3]);
    const tls = resolveOptions({ tls: { cert: 'C', key: Buffer.from('K') } }).tls!;
    expect(tls.cert).toBe('C');
    expect(tls.key).toEqual(Buffer.from('K'));
    expect(resolveOptions({ tls: { pfx } }).tls?.pfx).toBe(pfx);
  });

  it('names the path and the error code of a file it cannot read, never the contents', () => {
    const missing = join(dir, 'missing.pem');
    const e = resolveError(`amqps://u:Sup3rS3cret@h?cacertfile=${encodeURIComponent(missing)}`);
    expect(e.message).toBe(`cannot read tls.caFile ${JSON.stringify(missing)}: ENOENT`);
    expect(everyFormOf(e)).not.toMatch(/Sup3rS3cret/);

    const isDir = resolveError({ tls: { keyFile: join(dir, 'a-directory') } });
    expect(isDir.message).toMatch(/cannot read tls.keyFile ".*a-directory": EISDIR/);
    expect(resolveError({ tls: { certFile: '' } }).message).toMatch(/tls.certFile must be a file path/);
  });

  it('never shows a file it read in a later error', () => {
    const e = resolveError({ tls: { keyFile: join(dir, 'client.key') }, heartbeat: -1 });
    expect(everyFormOf(e)).not.toContain('PRIVATE-KEY-CONTENTS');
  });

  it('rejects a cert or key given both inline and as a file', () => {
    expect(resolveError({ tls: { cert: 'C', certFile: join(dir, 'client.pem') } }).message).toMatch(
      /give tls.cert or tls.certFile, not both/,
    );
    expect(resolveError({ tls: { key: 'K', keyFile: join(dir, 'client.key') } }).message).toMatch(
      /give tls.key or tls.keyFile, not both/,
    );
  });

  it('rejects values of the wrong type without showing them', () => {
    expect(resolveError({ tls: { key: 12345 as never } }).message).toBe(
      'tls.key must be a string or a Buffer (PEM), got number',
    );
    expect(resolveError({ tls: { ca: [{}] as never } }).message).toMatch(
      /tls.ca must be a string or a Buffer/,
    );
    expect(resolveError({ tls: { pfx: 'x' as never } }).message).toMatch(
      /tls.pfx must be a Buffer, got string/,
    );
    expect(resolveError({ tls: { rejectUnauthorized: 'no' as never } }).message).toMatch(
      /tls.rejectUnauthorized must be a boolean/,
    );
    expect(resolveError({ tls: { minVersion: 'TLSv1.1' as never } }).message).toMatch(
      /tls.minVersion must be/,
    );
    expect(resolveError({ tls: { checkServerIdentity: 'x' as never } }).message).toMatch(
      /tls.checkServerIdentity must be a function/,
    );
  });

  it('rejectUnauthorized follows verify in the URL', () => {
    expect(resolveOptions('amqps://h?verify=verify_none').tls?.rejectUnauthorized).toBe(false);
    expect(resolveOptions('amqps://h?verify=verify_peer').tls?.rejectUnauthorized).toBe(true);
    expect(resolveOptions('amqps://h').tls?.rejectUnauthorized).toBe(true);
  });

  it.each([
    ['a host name: the host name', 'amqps://mq.example.com', 'mq.example.com'],
    ['an IPv4 address: none', 'amqps://10.1.2.3', undefined],
    ['an IPv6 address: none', 'amqps://[::1]', undefined],
    [
      'server_name_indication: that name',
      'amqps://10.1.2.3?server_name_indication=mq.internal',
      'mq.internal',
    ],
    [
      'server_name_indication=disable: none',
      'amqps://mq.example.com?server_name_indication=disable',
      undefined,
    ],
  ])('servername for %s', (_, url, servername) => {
    expect(resolveOptions(url).tls?.servername).toBe(servername);
  });

  it('servername false sends no SNI; an IP address as servername is refused', () => {
    expect(resolveOptions({ hostname: 'h', tls: { servername: false } }).tls?.servername).toBeUndefined();
    expect(resolveError({ tls: { servername: '10.0.0.1' } }).message).toMatch(
      /tls.servername cannot be an IP address \(10.0.0.1\): SNI carries host names only/,
    );
    expect(resolveError({ tls: { servername: '' } }).message).toMatch(
      /tls.servername must be a host name or false/,
    );
  });

  it('holds the passphrase as a Secret', () => {
    const tls = resolveOptions({ tls: { passphrase: 'Pa55phrase' } }).tls!;
    expect(tls.passphrase).toBeInstanceOf(Secret);
    expect(tls.passphrase?.reveal()).toBe('Pa55phrase');
    const secret = new Secret('s');
    expect(resolveOptions({ tls: { passphrase: secret } }).tls?.passphrase).toBe(secret);
    const e = resolveError({ tls: { passphrase: 987654321 as never } });
    expect(e.message).toBe('tls.passphrase must be a string or a Secret, got number');
  });

  it('passes checkServerIdentity through', () => {
    const check = () => undefined;
    expect(resolveOptions({ tls: { checkServerIdentity: check } }).tls?.checkServerIdentity).toBe(check);
  });
});

describe('resolveOptions: client properties', () => {
  it("are rxamqp's own by default", () => {
    expect(resolveOptions({}).clientProperties).toEqual({
      product: 'rxamqp',
      version: VERSION,
      platform: `Node.js ${process.version}`,
      information: 'https://www.npmjs.com/package/rxamqp',
      capabilities: CAPABILITIES,
    });
  });

  it('carry connection_name when name is set', () => {
    expect(resolveOptions({ name: 'orders-api' }).clientProperties.connection_name).toBe('orders-api');
    expect('connection_name' in resolveOptions({}).clientProperties).toBe(false);
  });

  it('merge the user properties over the top level', () => {
    const props = resolveOptions({
      name: 'n',
      clientProperties: { product: 'my-app', region: 'eu', weight: field.uint8(3) },
    }).clientProperties;
    expect(props.product).toBe('my-app');
    expect(props.region).toBe('eu');
    expect(props.weight).toEqual(field.uint8(3));
    expect(props.version).toBe(VERSION);
    expect(props.connection_name).toBe('n');
    expect(props.capabilities).toEqual(CAPABILITIES);
  });

  it('merge a user capabilities table into ours rather than replacing it', () => {
    const props = resolveOptions({
      clientProperties: { capabilities: { per_consumer_qos: false, custom_capability: true } },
    }).clientProperties;
    expect(props.capabilities).toEqual({ ...CAPABILITIES, per_consumer_qos: false, custom_capability: true });
  });

  it('do not share the capabilities table between resolutions', () => {
    const a = resolveOptions({ clientProperties: { capabilities: { x: true } } }).clientProperties;
    const b = resolveOptions({}).clientProperties;
    expect(a.capabilities).not.toBe(b.capabilities);
    expect(b.capabilities).toEqual(CAPABILITIES);
  });

  it('keep the wire tags a decoded table remembers', () => {
    const user: FieldTable = { weight: 3, capabilities: { level: 2 } };
    rememberFieldType(user, 'weight', 'B');
    rememberFieldType(user.capabilities as FieldTable, 'level', 's');
    const props = resolveOptions({ clientProperties: user }).clientProperties;
    expect(fieldTypesOf(props)).toEqual({ weight: 'B' });
    expect(fieldTypesOf(props.capabilities as FieldTable)).toEqual({ level: 's' });
    expect(props.weight).toBe(3);
  });

  it('reject capabilities that are not a table', () => {
    expect(resolveError({ clientProperties: { capabilities: 'all' } }).message).toMatch(
      /clientProperties.capabilities must be a field table/,
    );
    expect(resolveError({ clientProperties: { capabilities: [true] } }).message).toMatch(
      /must be a field table/,
    );
  });
});

describe('resolveOptions: displayUrl', () => {
  it.each<[string | ConnectOptions, string]>([
    ['amqp://u:Sup3rS3cret@mq.example.com/orders', 'amqp://u@mq.example.com:5672/orders'],
    ['amqps://u:Sup3rS3cret@mq.example.com:5999', 'amqps://u@mq.example.com:5999/%2F'],
    ['amqp://host/', 'amqp://guest@host:5672/'],
    ['amqp://a%40b:Sup3rS3cret@[::1]/v%2Fw', 'amqp://a%40b@[::1]:5672/v%2Fw'],
    ['amqp://[fe80::1%25eth0]', 'amqp://guest@[fe80::1%25eth0]:5672/%2F'],
    ['amqp://:Sup3rS3cret@h', 'amqp://h:5672/%2F'],
    [
      { hostname: '10.0.0.1', vhost: 'café', password: 'Sup3rS3cret' },
      'amqp://guest@10.0.0.1:5672/caf%C3%A9',
    ],
  ])('%j -> %s', (input, expected) => {
    const r = resolveOptions(input);
    expect(r.displayUrl).toBe(expected);
    expect(r.displayUrl).not.toContain('Sup3rS3cret');
  });
});

describe('resolveOptions: no secret in inspect or JSON', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rxamqp-secret-'));
    writeFileSync(join(dir, 'client.key'), 'PRIVATE-KEY-CONTENTS');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hides the password, the passphrase and the private key', () => {
    const r = resolveOptions(
      `amqps://app:Sup3rS3cret@mq.example.com/v?keyfile=${encodeURIComponent(join(dir, 'client.key'))}`,
      {
        tls: { passphrase: 'Pa55phrase', pfx: Buffer.from('PFX-BUNDLE-CONTENTS') },
      },
    );
    const text = [
      inspect(r, { depth: 20 }),
      inspect(r, { depth: 20, showHidden: true }),
      JSON.stringify(r),
      inspect(r.tls),
      JSON.stringify(r.tls),
      String(r.credentials.password),
      `${r.credentials.password}`,
    ].join('\n');
    expect(text).not.toContain('Sup3rS3cret');
    expect(text).not.toContain('Pa55phrase');
    expect(text).not.toContain('PRIVATE-KEY-CONTENTS');
    expect(text).not.toContain(Buffer.from('PRIVATE-KEY-CONTENTS').toString('hex').slice(0, 16));
    expect(text).not.toContain('PFX-BUNDLE');
    expect(JSON.parse(JSON.stringify(r)).credentials.password).toBe('***');
    expect(JSON.parse(JSON.stringify(r)).tls).toMatchObject({ key: '***', pfx: '***', passphrase: '***' });
    expect(inspect(r.tls)).toMatch(/key: '\*\*\*'/);
    // The values themselves are still there for the transport.
    expect(r.tls?.key).toEqual(Buffer.from('PRIVATE-KEY-CONTENTS'));
    expect(r.credentials.password.reveal()).toBe('Sup3rS3cret');
  });

  it('an error raised after the URL is parsed does not show its password', () => {
    const e = resolveError('amqp://app:Sup3rS3cret@h', { heartbeat: -1 });
    expect(everyFormOf(e)).not.toContain('Sup3rS3cret');
  });
});

describe('consume tuning options', () => {
  it('takes ackDelay from 0 to 1000 ms', () => {
    expect(resolveOptions({ ackDelay: 0 }).ackDelay).toBe(0);
    expect(resolveOptions({ ackDelay: 1000 }).ackDelay).toBe(1000);
    for (const bad of [-1, 1001, 0.5, Number.NaN, '1']) {
      expect(resolveError({ ackDelay: bad as number }).message).toMatch(
        /^ackDelay must be an integer from 0 to 1000/,
      );
    }
  });

  it('takes readBatching as false or a partial object, filling in the defaults', () => {
    expect(resolveOptions({ readBatching: false }).readBatching).toBeUndefined();
    expect(resolveOptions({ readBatching: { minMessages: 16 } }).readBatching).toEqual({
      minMessages: 16,
      delayMs: 1,
    });
    expect(resolveOptions({ readBatching: { delayMs: 5 } }).readBatching).toEqual({
      minMessages: 4,
      delayMs: 5,
    });
  });

  it('rejects a readBatching that is not false or an object of known, valid fields', () => {
    expect(resolveError({ readBatching: 'on' as unknown as false }).message).toMatch(
      /^readBatching must be false/,
    );
    expect(resolveError({ readBatching: null as unknown as false }).message).toMatch(
      /^readBatching must be false/,
    );
    expect(resolveError({ readBatching: { minMessage: 3 } as never }).message).toMatch(
      /^unknown readBatching option "minMessage"; the accepted ones are minMessages, delayMs/,
    );
    expect(resolveError({ readBatching: { minMessages: 0 } }).message).toMatch(
      /^readBatching.minMessages must be/,
    );
    expect(resolveError({ readBatching: { delayMs: 0 } }).message).toMatch(/^readBatching.delayMs must be/);
    expect(resolveError({ readBatching: { delayMs: 1001 } }).message).toMatch(
      /^readBatching.delayMs must be/,
    );
  });
});

describe('resolveOptions: hosts, recovery and blocked publishing', () => {
  it('takes hosts as host, host:port, [IPv6]:port, a bare IPv6 address or { hostname, port }', () => {
    const o = resolveOptions('amqp://u:p@first:5673/v', {
      hosts: ['a', 'b:5700', '[::1]:5701', '::1', { hostname: 'c' }, { hostname: '[fe80::1]', port: 5702 }],
    });
    expect(o.endpoints.map((e) => [e.hostname, e.port])).toEqual([
      ['a', 5673],
      ['b', 5700],
      ['::1', 5701],
      ['::1', 5673],
      ['c', 5673],
      ['fe80::1', 5702],
    ]);
    expect([o.hostname, o.port]).toEqual(['a', 5673]);
    expect(o.endpoints[1]!.displayUrl).toBe('amqp://u@b:5700/v');
    expect(o.endpoints.every((e) => !e.displayUrl.includes(':p@'))).toBe(true);
  });

  it('verifies each TLS host under its own name', () => {
    const o = resolveOptions('amqps://mq-1', { hosts: ['mq-1', 'mq-2', '10.0.0.3'] });
    expect(o.endpoints.map((e) => e.tls?.servername)).toEqual(['mq-1', 'mq-2', undefined]);
  });

  it('refuses bad hosts without echoing anything that may hold a password', () => {
    for (const bad of ['amqp://app:s3cret-pw@rabbit-1:5672', 'app:s3cret-pw@rabbit-1', 'user@host']) {
      const e = resolveError('amqp://localhost', { hosts: [bad] });
      expect(e.message).toContain('hosts[0]');
      expect(everyFormOf(e)).not.toContain('s3cret');
      expect(everyFormOf(e)).not.toContain(bad);
    }
    expect(resolveError('amqp://localhost', { hosts: [] }).message).toContain('non-empty');
    expect(resolveError('amqp://localhost', { hosts: ['h:0'] }).message).toContain('port');
    expect(resolveError('amqp://localhost', { hosts: [{ hostname: 'h', port: 70000 }] }).message).toContain(
      'port',
    );
    expect(resolveError('amqp://localhost', { hosts: [{ hostname: '' }] }).message).toContain('hostname');
  });

  it('defaults: no recovery, cold, whenBlocked wait, blockedTimeout 60 s; recovery makes it shared', () => {
    const plain = resolveOptions('amqp://localhost');
    expect([plain.recovery, plain.shared, plain.whenBlocked, plain.blockedTimeout]).toEqual([
      undefined,
      false,
      'wait',
      60_000,
    ]);
    const recovering = resolveOptions('amqp://localhost', { recovery: true });
    expect(recovering.shared).toBe(true);
    expect(recovering.recovery?.hostOrder).toBe('in-order');
    expect(recovering.recovery?.initial).toBeDefined();
    expect(resolveOptions('amqp://localhost', { recovery: true, shared: false }).shared).toBe(false);
    expect(
      resolveOptions('amqp://localhost', { recovery: { initial: false } }).recovery?.initial,
    ).toBeUndefined();
  });

  it('builds the retry policies: explicit delays, and the defaults (first connect limited, reconnects not)', () => {
    const o = resolveOptions('amqp://localhost', { recovery: { reconnect: { delays: [5, 10] } } });
    expect([1, 2, 3, 100].map((n) => o.recovery!.reconnect.delayFor(n, new Error('x')))).toEqual([
      5, 10, 10, 10,
    ]);
    const d = resolveOptions('amqp://localhost', { recovery: true }).recovery!;
    expect(d.initial!.delayFor(6, new Error('x'))).toBeUndefined();
    expect(d.initial!.delayFor(5, new Error('x'))).toBeDefined();
    expect(d.reconnect.delayFor(1000, new Error('x'))).toBeLessThanOrEqual(30_000);
  });

  it('refuses bad recovery and blocked-publishing options, naming them', () => {
    expect(resolveError('amqp://h', { recovery: 'yes' as unknown as boolean }).message).toContain('recovery');
    expect(resolveError('amqp://h', { recovery: { hostOrder: 'random' as 'in-order' } }).message).toContain(
      'hostOrder',
    );
    expect(resolveError('amqp://h', { recovery: { reconnect: { delays: [-1] } } }).message).toContain(
      'recovery.reconnect',
    );
    expect(resolveError('amqp://h', { recovery: { initial: 3 as unknown as false } }).message).toContain(
      'recovery.initial',
    );
    expect(resolveError('amqp://h', { recovery: { retries: 3 } as never }).message).toContain('retries');
    expect(resolveError('amqp://h', { whenBlocked: 'drop' as 'fail' }).message).toContain('whenBlocked');
    expect(resolveError('amqp://h', { blockedTimeout: 0 }).message).toContain('blockedTimeout');
    expect(resolveError('amqp://h', { shared: 1 as unknown as boolean }).message).toContain('shared');
  });
});
