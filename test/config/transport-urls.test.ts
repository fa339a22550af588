/**
 * Connector selection (the `transport` option, else the platform's, else an error) and the URLs of
 * schemes other than amqp/amqps, which only a custom connector opens: port defaults, the path that is
 * not the vhost, the `vhost` query parameter, TLS by scheme, the URL handed to the connector.
 */
import type { Platform } from '../../src/config/platform.js';
import { resolveOptions, transportTarget } from '../../src/config/resolve-options.js';
import { Secret } from '../../src/config/secret.js';
import { ConfigurationError } from '../../src/errors.js';
import type { TransportConnector } from '../../src/transport/transport.js';

const custom: TransportConnector = () => Promise.reject(new Error('not used'));
const builtIn: TransportConnector = () => Promise.reject(new Error('not used'));
const node: Platform = {
  connector: builtIn,
  readFile: () => new TextEncoder().encode('PEM'),
  name: 'Test 1.0',
};
const browser: Platform = {};
const webSocket: TransportConnector = () => Promise.reject(new Error('not used'));
const withWs: Platform = { ...node, schemes: { ws: webSocket, wss: webSocket } };

function error(run: () => unknown): ConfigurationError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return e as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('connector selection', () => {
  it('takes the transport option over the platform connector', () => {
    expect(resolveOptions('amqp://h', { transport: custom }, node).transport).toBe(custom);
    expect(resolveOptions({ transport: custom }, undefined, node).transport).toBe(custom);
  });

  it("falls back to the platform's connector for amqp and amqps", () => {
    expect(resolveOptions('amqp://h', undefined, node).transport).toBe(builtIn);
    expect(resolveOptions('amqps://h', undefined, node).transport).toBe(builtIn);
    expect(resolveOptions({}, undefined, node).transport).toBe(builtIn);
  });

  it('without either, says that this runtime has no built-in transport', () => {
    expect(error(() => resolveOptions('amqps://h', undefined, browser)).message).toBe(
      'this runtime has no built-in transport for amqps: URLs: pass a connector in the transport option ' +
        '(a WebSocket one, say; see docs/transports.md)',
    );
    expect(error(() => resolveOptions({}, undefined, browser)).message).toMatch(
      /no built-in transport for amqp:/,
    );
  });

  it('works in a runtime without files or transports when the options need neither', () => {
    const r = resolveOptions('amqps://h', { transport: custom, tls: { ca: 'PEM' } }, browser);
    expect(r.tls?.ca).toEqual(['PEM']);
    expect(r.clientProperties.platform).toBeUndefined();
  });

  it('refuses a TLS file option where the platform cannot read files, naming the option to use', () => {
    expect(
      error(() => resolveOptions('amqps://h?cacertfile=/ca.pem', { transport: custom }, browser)).message,
    ).toBe(
      'tls.caFile names a file, but this runtime cannot read files: give the contents in tls.ca instead',
    );
    expect(
      error(() => resolveOptions({ tls: { keyFile: '/k' } }, { transport: custom }, browser)).message,
    ).toMatch(/tls.keyFile names a file.* tls.key instead/);
  });

  it('reads TLS files with the platform', () => {
    const r = resolveOptions('amqps://h?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/k.pem', undefined, node);
    expect(r.tls?.ca).toEqual([new TextEncoder().encode('PEM')]);
    expect(r.tls?.cert).toEqual(new TextEncoder().encode('PEM'));
  });

  it("reports the platform's name as the platform client property", () => {
    expect(resolveOptions({}, undefined, node).clientProperties.platform).toBe('Test 1.0');
  });

  it('refuses a transport that is not a function', () => {
    expect(error(() => resolveOptions({ transport: 'tcp' as never }, undefined, node)).message).toBe(
      'transport must be a function (a TransportConnector), got "tcp"',
    );
  });

  it('treats a missing platform (a caller in plain JavaScript) as a runtime with nothing built in', () => {
    expect(error(() => resolveOptions({}, undefined, undefined as never)).message).toMatch(
      /no built-in transport/,
    );
  });
});

describe('URLs of other schemes', () => {
  it('need a transport connector where the platform has none for their scheme', () => {
    expect(error(() => resolveOptions('ws://h/ws', undefined, node)).message).toBe(
      'rxamqp opens amqp:, amqps:, ws: and wss: URLs; a ws: URL needs a connector in the transport option ' +
        '(see docs/transports.md)',
    );
    expect(error(() => resolveOptions('memory://h/x', undefined, withWs)).message).toMatch(
      /a memory: URL needs a connector in the transport option/,
    );
  });

  it("use the platform's connector for their scheme (ws, wss) unless the transport option names one", () => {
    expect(resolveOptions('ws://h/ws', undefined, withWs).transport).toBe(webSocket);
    expect(resolveOptions('wss://h/ws', undefined, withWs).transport).toBe(webSocket);
    expect(resolveOptions('ws://h/ws', { transport: custom }, withWs).transport).toBe(custom);
    // amqp: URLs keep the platform's own connector; a scheme named like an Object member is no scheme.
    expect(resolveOptions('amqp://h', undefined, withWs).transport).toBe(builtIn);
    expect(error(() => resolveOptions('constructor://h/x', undefined, withWs)).message).toMatch(
      /needs a connector in the transport option/,
    );
  });

  it('ws: port 80, no TLS, the path kept for the connector, vhost "/"', () => {
    const r = resolveOptions('ws://mq.example.com/ws', { transport: custom }, node);
    expect(r.transport).toBe(custom);
    expect(r).toMatchObject({
      scheme: 'ws',
      hostname: 'mq.example.com',
      port: 80,
      tls: undefined,
      vhost: '/',
      url: 'ws://mq.example.com:80/ws',
      displayUrl: 'ws://guest@mq.example.com:80/ws',
    });
  });

  it('wss: port 443, TLS verified against the host, credentials out of the URL handed on', () => {
    const r = resolveOptions(
      'WSS://app:s3cret@mq.example.com/ws/amqp?vhost=orders&heartbeat=10&token=abc',
      { transport: custom },
      node,
    );
    expect(r.scheme).toBe('wss');
    expect(r.port).toBe(443);
    expect(r.tls).toMatchObject({ rejectUnauthorized: true, servername: 'mq.example.com' });
    expect(r.vhost).toBe('orders');
    expect(r.heartbeat).toBe(10);
    expect(r.credentials.username).toBe('app');
    expect(r.credentials.password.reveal()).toBe('s3cret');
    expect(r.url).toBe('wss://mq.example.com:443/ws/amqp?vhost=orders&heartbeat=10&token=abc');
    expect(r.displayUrl).toBe('wss://app@mq.example.com:443/ws/amqp');
    expect(transportTarget(r)).toEqual({
      scheme: 'wss',
      url: r.url,
      hostname: 'mq.example.com',
      port: 443,
      tls: r.tls,
      socket: r.socket,
      timeoutMs: r.connectionTimeout,
      writeHighWaterMark: r.writeHighWaterMark,
    });
  });

  it('the path is never the vhost; the vhost option wins over the query parameter', () => {
    expect(resolveOptions('ws://h/orders', { transport: custom }, node).vhost).toBe('/');
    expect(resolveOptions('ws://h/x?vhost=%2Fa%2Fb', { transport: custom }, node).vhost).toBe('/a/b');
    expect(resolveOptions('ws://h/x?vhost=a', { transport: custom, vhost: 'b' }, node).vhost).toBe('b');
    expect(resolveOptions('ws://h/x?vhost=', { transport: custom }, node).vhost).toBe('');
  });

  it('an explicit port, an IPv6 host, and the hosts option', () => {
    expect(resolveOptions('ws://[::1]:8080/x', { transport: custom }, node).url).toBe('ws://[::1]:8080/x');
    const r = resolveOptions('ws://a/ws?t=1', { transport: custom, hosts: ['b', 'c:81', '[::1]'] }, node);
    expect(r.endpoints.map((e) => e.url)).toEqual([
      'ws://b:80/ws?t=1',
      'ws://c:81/ws?t=1',
      'ws://[::1]:80/ws?t=1',
    ]);
    expect(r.url).toBe('ws://b:80/ws?t=1');
  });

  it('a scheme without a default port needs one when it names a host', () => {
    expect(error(() => resolveOptions('memory://broker', { transport: custom }, node)).message).toBe(
      'the memory: scheme has no default port: give one in the URL (memory://host:port) or in the port option',
    );
    expect(resolveOptions('memory://broker:7', { transport: custom }, node).port).toBe(7);
    expect(resolveOptions('memory://broker', { transport: custom, port: 9 }, node).port).toBe(9);
  });

  it('port 0 and no host when the URL names none', () => {
    const r = resolveOptions('memory:', { transport: custom }, node);
    expect(r).toMatchObject({
      scheme: 'memory',
      hostname: '',
      port: 0,
      url: 'memory:',
      displayUrl: 'memory:',
    });
    expect(resolveOptions('memory://', { transport: custom }, node).url).toBe('memory://');
    expect(resolveOptions('memory:broker-1?vhost=v', { transport: custom }, node)).toMatchObject({
      url: 'memory:broker-1?vhost=v',
      vhost: 'v',
      port: 0,
    });
  });

  it('keeps query parameters rxamqp does not know for the connector, and still checks the ones it does', () => {
    expect(resolveOptions('ws://h/?access=x&frame_max=8192', { transport: custom }, node).frameMax).toBe(
      8192,
    );
    expect(error(() => resolveOptions('ws://h/?heartbeat=x', { transport: custom }, node)).message).toBe(
      'invalid URL "ws://h/?heartbeat=x": heartbeat must be an integer from 0 to 65535 (seconds), not "x"',
    );
  });

  it('TLS: on for wss and https, refused on ws and http, asked for by the tls option elsewhere', () => {
    expect(resolveOptions('https://h/amqp', { transport: custom }, node).tls?.servername).toBe('h');
    expect(error(() => resolveOptions('wss://h', { transport: custom, tls: false }, node)).message).toBe(
      'tls: false contradicts the wss:// URL; use a ws:// URL for a connection without TLS',
    );
    expect(error(() => resolveOptions('ws://h', { transport: custom, tls: true }, node)).message).toBe(
      'the tls option contradicts the ws:// URL; use a wss:// URL for TLS',
    );
    expect(
      error(() => resolveOptions('ws://h?cacertfile=/ca.pem', { transport: custom }, node)).message,
    ).toMatch(/cacertfile is a TLS parameter: use a wss:\/\/ URL for TLS/);
    expect(resolveOptions('memory://b:1', { transport: custom }, node).tls).toBeUndefined();
    expect(resolveOptions('memory://b:1', { transport: custom, tls: true }, node).tls?.servername).toBe('b');
    expect(resolveOptions('tcp+tls://b:1?verify=verify_none', { transport: custom }, node).tls).toMatchObject(
      {
        rejectUnauthorized: false,
      },
    );
    expect(resolveOptions('memory:', { transport: custom, tls: true }, node).tls?.servername).toBeUndefined();
  });

  it('refuses a fragment and an unescaped character in the path', () => {
    expect(error(() => resolveOptions('ws://h/x#y', { transport: custom }, node)).message).toMatch(
      /^invalid URL "ws:\/\/h\/x#y": a URL has no fragment/,
    );
    expect(error(() => resolveOptions('ws://h/a b', { transport: custom }, node)).message).toMatch(
      /the path holds a character that must be percent-encoded/,
    );
  });

  it('amqp URLs: the target URL is rebuilt without user information or query', () => {
    const r = resolveOptions('amqps://app:s3cret@mq:5999/orders?heartbeat=5', undefined, node);
    expect(r.scheme).toBe('amqps');
    expect(r.url).toBe('amqps://mq:5999/orders');
    expect(resolveOptions('amqp://h', { tls: true }, node).scheme).toBe('amqps');
    expect(resolveOptions({ password: new Secret('x') }, undefined, node).url).toBe(
      'amqp://localhost:5672/%2F',
    );
  });
});
