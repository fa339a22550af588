/**
 * The relay's options are checked eagerly: each mistake is a ConfigurationError that names the option
 * and says what is wrong, and a broker URL with credentials is refused without quoting them.
 */
import { ConfigurationError } from '../../src/errors.js';
import { type RelayOptions, type StartRelayOptions, startRelay } from '../../src/relay/index.js';
import { resolveRelayOptions, resolveStartRelayOptions } from '../../src/relay/options.js';

function messageOf(options: unknown): string {
  try {
    resolveStartRelayOptions(options as StartRelayOptions);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return (e as Error).message;
  }
  throw new Error('the options were accepted');
}

describe('relay options', () => {
  it('fills in the defaults', () => {
    const { relay, listen } = resolveStartRelayOptions(undefined);
    expect(listen).toEqual({ port: 15670, host: '127.0.0.1', tls: undefined });
    expect(relay).toMatchObject({
      broker: { secure: false, host: '127.0.0.1', port: 5672, label: 'amqp://127.0.0.1:5672' },
      allowedOrigins: undefined,
      allowNoOrigin: true,
      maxConnections: 1000,
      maxBufferedBytes: 1024 * 1024,
      slowClientTimeoutMs: 10_000,
      path: undefined,
      connectTimeoutMs: 10_000,
      maxMessageBytes: 32 * 1024 * 1024,
    });
    expect(Object.isFrozen(relay)).toBe(true);
  });

  it('parses the broker URL: amqps default port, IPv6, TLS settings', () => {
    expect(resolveRelayOptions({ broker: 'amqps://mq.internal' }).broker).toMatchObject({
      secure: true,
      host: 'mq.internal',
      port: 5671,
      tls: { ca: undefined, rejectUnauthorized: true, servername: undefined },
    });
    expect(resolveRelayOptions({ broker: 'amqp://[::1]:5673/' }).broker).toMatchObject({
      host: '::1',
      port: 5673,
      label: 'amqp://[::1]:5673',
    });
    const ca = Buffer.from('pem');
    expect(
      resolveRelayOptions({ broker: 'amqps://h', brokerTls: { ca, rejectUnauthorized: false } }).broker.tls,
    ).toEqual({
      ca: [ca],
      rejectUnauthorized: false,
      servername: undefined,
    });
  });

  it('refuses a broker URL with credentials without quoting them', () => {
    const message = messageOf({ broker: 'amqp://admin:s3cret@mq.internal:5672' });
    expect(message).toBe(
      'relay option broker must not carry credentials: each browser sends its own in its AMQP login',
    );
    expect(messageOf({ broker: 'amqp://admin@mq.internal' })).toContain('must not carry credentials');
  });

  it.each<[string, unknown, RegExp]>([
    [
      'a scheme other than amqp(s)',
      { broker: 'ws://h:1' },
      /broker must be an amqp:\/\/ or amqps:\/\/ URL, got ws:\/\//,
    ],
    ['a vhost in the broker URL', { broker: 'amqp://h/%2F' }, /names only a host and a port/],
    ['a query in the broker URL', { broker: 'amqp://h?heartbeat=5' }, /names only a host and a port/],
    ['not a URL', { broker: 'amqp://host:port' }, /broker is not a URL/],
    [
      'brokerTls with amqp://',
      { broker: 'amqp://h', brokerTls: {} },
      /brokerTls is set but the broker URL is amqp:\/\//,
    ],
    [
      'a client certificate',
      { broker: 'amqps://h', brokerTls: { cert: 'x' } },
      /unknown brokerTls option 'cert' \(the relay presents no client certificate/,
    ],
    ['an empty ca list', { broker: 'amqps://h', brokerTls: { ca: [] } }, /brokerTls.ca must be PEM/],
    [
      'an origin with a path',
      { allowedOrigins: ['https://app.example.com/'] },
      /never matches what a browser sends .*use 'https:\/\/app.example.com'/,
    ],
    [
      'an origin in upper case',
      { allowedOrigins: ['https://App.example.com'] },
      /use 'https:\/\/app.example.com'/,
    ],
    ["the 'null' origin", { allowedOrigins: ['null'] }, /cannot list 'null'/],
    ['an origin that is not a URL', { allowedOrigins: ['app.example.com'] }, /is not an origin/],
    [
      'a string for allowedOrigins',
      { allowedOrigins: 'https://a.example' },
      /must be an array of origins, a function or '\*' \(any origin\)/,
    ],
    ['a zero cap', { maxConnections: 0 }, /maxConnections must be an integer from 1/],
    ['a fractional buffer', { maxBufferedBytes: 1.5 }, /maxBufferedBytes must be an integer/],
    [
      'a timer too long',
      { slowClientTimeoutMs: 2 ** 31 },
      /slowClientTimeoutMs must be an integer from 1 to 2147483647/,
    ],
    ['a path without a slash', { path: 'amqp' }, /path must start with \//],
    ['a path with a query', { path: '/amqp?x' }, /path must start with \//],
    ['a port out of range', { port: 70_000 }, /port must be an integer from 0 to 65535/],
    ['tls without a key', { tls: { cert: 'x' } }, /tls must be \{ cert, key \}/],
    ['a misspelt option', { allowedOrigin: ['https://a.example'] }, /unknown relay option 'allowedOrigin'/],
    ['a log that is not a function', { log: 'stdout' }, /log must be a function/],
    ['a string for allowNoOrigin', { allowNoOrigin: 'no' }, /allowNoOrigin must be a boolean/],
  ])('refuses %s', (_name, options, message) => {
    expect(messageOf(options)).toMatch(message);
  });

  it('startRelay rejects bad options before listening; attachRelay refuses listening options', async () => {
    await expect(startRelay({ maxConnections: -1 })).rejects.toThrow(ConfigurationError);
    expect(() => resolveRelayOptions({ host: '0.0.0.0' } as RelayOptions)).toThrow(
      "unknown relay option 'host' (only startRelay listens: an attached relay uses your server)",
    );
  });

  it('keeps a throwing logger from reaching the relay', () => {
    const { log } = resolveRelayOptions({
      log: () => {
        throw new Error('disk full');
      },
    });
    expect(() => log?.('line')).not.toThrow();
  });
});
