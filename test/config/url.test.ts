import { inspect } from 'node:util';
import fc from 'fast-check';
import type { ConnectOptions } from '../../src/config/options.js';
import { Secret } from '../../src/config/secret.js';
import { parseUrl, redactUrl, URL_QUERY_KEYS } from '../../src/config/url.js';
import { ConfigurationError } from '../../src/errors.js';

/** The parse result with the password revealed, for comparisons. */
function parsed(url: string): Record<string, unknown> {
  const { password, ...rest } = parseUrl(url);
  if (password === undefined) return rest;
  expect(password).toBeInstanceOf(Secret);
  return { ...rest, password: (password as Secret).reveal() };
}

function parseError(url: string): ConfigurationError {
  try {
    parseUrl(url);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return e as ConfigurationError;
  }
  throw new Error(`parseUrl(${JSON.stringify(url)}) did not throw`);
}

/** Every textual form of an error, for asserting a secret never shows in any of them. */
function everyFormOf(error: Error): string {
  return [
    error.message,
    String(error),
    error.stack ?? '',
    inspect(error, { depth: 10, showHidden: true }),
    JSON.stringify(error),
    JSON.stringify(Object.getOwnPropertyDescriptors(error)),
  ].join('\n');
}

describe('parseUrl: the examples of the RabbitMQ URI specification', () => {
  it.each<[string, Record<string, unknown>]>([
    [
      'amqp://user:pass@host:10000/vhost',
      { username: 'user', password: 'pass', hostname: 'host', port: 10000, vhost: 'vhost' },
    ],
    [
      'amqp://user%61:%61pass@ho%61st:10000/v%2fhost',
      { username: 'usera', password: 'apass', hostname: 'hoast', port: 10000, vhost: 'v/host' },
    ],
    ['amqp://', {}],
    ['amqp://:@/', { username: '', password: '', vhost: '' }],
    ['amqp://user@', { username: 'user' }],
    ['amqp://user:pass@', { username: 'user', password: 'pass' }],
    ['amqp://host', { hostname: 'host' }],
    ['amqp://:10000', { port: 10000 }],
    ['amqp:///vhost', { vhost: 'vhost' }],
    ['amqp://host/', { hostname: 'host', vhost: '' }],
    ['amqp://host/%2f', { hostname: 'host', vhost: '/' }],
    ['amqp://[::1]', { hostname: '::1' }],
  ])('%s', (url, expected) => {
    expect(parsed(url)).toEqual(expected);
  });
});

describe('parseUrl: scheme', () => {
  it('amqp:// leaves TLS and the port out, so that the defaults (plain TCP, 5672) apply', () => {
    const options = parseUrl('amqp://host');
    expect(options.tls).toBeUndefined();
    expect('tls' in options).toBe(false);
    expect('port' in options).toBe(false);
  });

  it('amqps:// sets tls: true and leaves the port out (5671 applies)', () => {
    const options = parseUrl('amqps://host');
    expect(options.tls).toBe(true);
    expect('port' in options).toBe(false);
  });

  it('accepts the scheme in any case', () => {
    expect(parseUrl('AMQP://host').tls).toBeUndefined();
    expect(parseUrl('AmQpS://host').tls).toBe(true);
  });

  it.each(['http://host', 'amqp+ssl://host', 'ws://host', 'amqps1://host', 'localhost:5672'])(
    'rejects %s',
    (url) => {
      expect(parseError(url).message).toMatch(
        /the scheme must be amqp or amqps, not ".*" \(an AMQP URL starts with amqp:\/\/ or amqps:\/\/\)/,
      );
    },
  );

  it.each(['//host', '5672', ''])('rejects %j, which has no scheme', (url) => {
    expect(parseError(url).message).toMatch(/does not start with amqp:\/\/ or amqps:\/\//);
  });

  it('requires "//" after the scheme', () => {
    expect(parseError('amqp:host').message).toMatch(/expected "\/\/" after "amqp:"/);
  });

  it('errors have the INVALID_CONFIGURATION code', () => {
    expect(parseError('http://host').code).toBe('INVALID_CONFIGURATION');
  });

  it('rejects a value that is not a string', () => {
    expect(() => parseUrl(42 as unknown as string)).toThrow(ConfigurationError);
    expect(() => parseUrl(undefined as unknown as string)).toThrow(/must be a string, got undefined/);
  });

  it('ignores whitespace around the URL (such as a newline from a file or an environment variable)', () => {
    expect(parsed('  amqp://host/v \n')).toEqual({ hostname: 'host', vhost: 'v' });
  });
});

describe('parseUrl: user info', () => {
  it('percent-decodes the user name and password', () => {
    expect(parsed('amqp://us%40er:p%40ss%3Aw%2Fo%3Frd%23@host')).toEqual({
      username: 'us@er',
      password: 'p@ss:w/o?rd#',
      hostname: 'host',
    });
  });

  it('decodes UTF-8 escapes', () => {
    expect(parsed('amqp://J%C3%BCrgen:%E2%82%AC@host')).toMatchObject({ username: 'Jürgen', password: '€' });
  });

  it('keeps "+" as a plus sign', () => {
    expect(parsed('amqp://a+b:c+d@host')).toMatchObject({ username: 'a+b', password: 'c+d' });
  });

  it('returns the password as a Secret', () => {
    const options = parseUrl('amqp://user:s3cret@host');
    expect(options.password).toBeInstanceOf(Secret);
    expect(String(options.password)).toBe('***');
    expect(inspect(options)).not.toContain('s3cret');
    expect(JSON.stringify(options)).not.toContain('s3cret');
  });

  it('leaves user and password out when the URL has none', () => {
    const options = parseUrl('amqp://host');
    expect('username' in options).toBe(false);
    expect('password' in options).toBe(false);
  });

  it('a user without a password leaves the password out', () => {
    expect(parsed('amqp://user@host')).toEqual({ username: 'user', hostname: 'host' });
  });

  it('an empty password is the empty string', () => {
    expect(parsed('amqp://user:@host')).toEqual({ username: 'user', password: '', hostname: 'host' });
  });

  it('tolerates an unescaped ":" in the password: the first ":" ends the user name', () => {
    expect(parsed('amqp://user:a:b@host')).toMatchObject({ username: 'user', password: 'a:b' });
  });

  it('tolerates an unescaped "@" in the password: the last "@" ends the user info', () => {
    expect(parsed('amqp://user:p@ss@host/v')).toEqual({
      username: 'user',
      password: 'p@ss',
      hostname: 'host',
      vhost: 'v',
    });
  });

  it.each([
    ['a space', 'amqp://user:pa ss@host'],
    ['a stray "%"', 'amqp://user:100%@host'],
    ['a bracket', 'amqp://user:a[b@host'],
    ['a non-ASCII character', 'amqp://user:pässword@host'],
  ])('rejects %s in the password without showing it', (_, url) => {
    const e = parseError(url);
    expect(e.message).toMatch(/must be percent-encoded/);
    expect(e.message).toContain('amqp://user:***@host');
  });

  it('rejects invalid percent-encoded UTF-8', () => {
    expect(parseError('amqp://user:%ff%fe@host').message).toMatch(
      /the password is not valid percent-encoded UTF-8/,
    );
    expect(parseError('amqp://%C3@host').message).toMatch(/the user name is not valid percent-encoded UTF-8/);
  });
});

describe('parseUrl: host and port', () => {
  it('percent-decodes the host', () => {
    expect(parsed('amqp://my%2Dhost.example')).toEqual({ hostname: 'my-host.example' });
  });

  it('leaves an empty host out (localhost applies)', () => {
    expect('hostname' in parseUrl('amqp://user:pw@:5673/v')).toBe(false);
  });

  it('takes an IPv4 address as the host', () => {
    expect(parsed('amqp://10.0.0.7:5673')).toEqual({ hostname: '10.0.0.7', port: 5673 });
  });

  it.each([
    ['amqp://[::1]:5673', { hostname: '::1', port: 5673 }],
    ['amqp://u:p@[2001:db8::7]/v', { username: 'u', password: 'p', hostname: '2001:db8::7', vhost: 'v' }],
    ['amqp://[::ffff:10.0.0.1]', { hostname: '::ffff:10.0.0.1' }],
    ['amqp://[fe80::1%25eth0]:5672', { hostname: 'fe80::1%eth0', port: 5672 }],
    ['amqp://[::1]:', { hostname: '::1' }],
  ])('IPv6 in brackets: %s', (url, expected) => {
    expect(parsed(url)).toEqual(expected);
  });

  it('rejects an unclosed bracket', () => {
    expect(parseError('amqp://[::1:5672').message).toMatch(/no closing "\]"/);
  });

  it('rejects what is not an IPv6 address in brackets', () => {
    expect(parseError('amqp://[example.com]').message).toMatch(/"\[example.com\]" is not an IPv6 address/);
    expect(parseError('amqp://[v1.fe]').message).toMatch(/is not an IPv6 address/);
    expect(parseError('amqp://[1:2:3]').message).toMatch(/is not an IPv6 address/);
  });

  it('rejects text after the closing bracket other than :port', () => {
    expect(parseError('amqp://[::1]x').message).toMatch(/only ":port" may follow the IPv6 address/);
  });

  it('rejects an IPv6 address without brackets', () => {
    expect(parseError('amqp://::1').message).toMatch(/IPv6 address in brackets/);
    expect(parseError('amqp://2001:db8::1/v').message).toMatch(/IPv6 address in brackets/);
  });

  it('rejects a host with characters that must be percent-encoded', () => {
    expect(parseError('amqp://ho st/').message).toMatch(
      /the host holds a character that must be percent-encoded/,
    );
  });

  it.each([1, 5672, 65535])('accepts port %d', (port) => {
    expect(parseUrl(`amqp://host:${port}`).port).toBe(port);
  });

  it('accepts a port with leading zeros', () => {
    expect(parseUrl('amqp://host:05672').port).toBe(5672);
  });

  it('leaves an empty port out (RFC 3986 allows "host:")', () => {
    expect(parsed('amqp://host:/v')).toEqual({ hostname: 'host', vhost: 'v' });
  });

  it.each(['0', '65536', '99999', '-1', 'abc', '56 72', '5672x', '1e3', '0x10', '123456'])(
    'rejects port %j',
    (port) => {
      const e = parseError(`amqp://host:${port}/v`.replace(' ', '%20'));
      expect(e.message).toMatch(/the port must be an integer from 1 to 65535|must be percent-encoded/);
    },
  );

  it('names the rejected port', () => {
    expect(parseError('amqp://host:99999').message).toContain('not "99999"');
  });
});

describe('parseUrl: vhost', () => {
  it('leaves the vhost out without a path (the default / applies)', () => {
    expect('vhost' in parseUrl('amqp://host')).toBe(false);
    expect('vhost' in parseUrl('amqp://host?heartbeat=5')).toBe(false);
  });

  it('gives the empty vhost for a lone "/" (as the specification says)', () => {
    expect(parseUrl('amqp://host/').vhost).toBe('');
    expect(parseUrl('amqp://host/?heartbeat=5').vhost).toBe('');
  });

  it.each([
    ['%2f', '/'],
    ['%2F', '/'],
    ['%2Fprod', '/prod'],
    ['team%2Forders', 'team/orders'],
    ['a%20b', 'a b'],
    ['caf%C3%A9', 'café'],
    ['a:b@c', 'a:b@c'],
    ["x!$&'()*+,;=", "x!$&'()*+,;="],
  ])('percent-decodes %s as %j', (raw, vhost) => {
    expect(parseUrl(`amqp://host/${raw}`).vhost).toBe(vhost);
  });

  it('rejects a second unescaped "/"', () => {
    expect(parseError('amqp://host/a/b').message).toMatch(
      /single path segment: write a "\/" inside it as %2F/,
    );
    expect(parseError('amqp://host//').message).toMatch(/single path segment/);
  });

  it('rejects characters that must be percent-encoded', () => {
    expect(parseError('amqp://host/a b').message).toMatch(
      /the vhost holds a character that must be percent-encoded/,
    );
    expect(parseError('amqp://host/a%zz').message).toMatch(/must be percent-encoded/);
  });

  it('rejects invalid percent-encoded UTF-8', () => {
    expect(parseError('amqp://host/%ff').message).toMatch(/the vhost is not valid percent-encoded UTF-8/);
  });

  it('rejects a fragment', () => {
    expect(parseError('amqp://host/v#x').message).toMatch(/no fragment/);
    expect(parseError('amqp://host/v?heartbeat=5#x').message).toMatch(/no fragment/);
    expect(parseError('amqp://host#x').message).toMatch(/no fragment/);
  });
});

describe('parseUrl: query parameters', () => {
  it.each<[string, Partial<ConnectOptions>]>([
    ['heartbeat=0', { heartbeat: 0 }],
    ['heartbeat=30', { heartbeat: 30 }],
    ['heartbeat=65535', { heartbeat: 65535 }],
    ['frame_max=0', { frameMax: 0 }],
    ['frame_max=4096', { frameMax: 4096 }],
    ['frame_max=4294967295', { frameMax: 4294967295 }],
    ['channel_max=0', { channelMax: 0 }],
    ['channel_max=65535', { channelMax: 65535 }],
    ['connection_timeout=1', { connectionTimeout: 1 }],
    ['connection_timeout=10000', { connectionTimeout: 10000 }],
    ['heartbeat=5&connection_timeout=10000', { heartbeat: 5, connectionTimeout: 10000 }],
    ['auth_mechanism=plain', { authMechanism: ['PLAIN'] }],
    ['auth_mechanism=external&auth_mechanism=plain', { authMechanism: ['EXTERNAL', 'PLAIN'] }],
    ['auth_mechanism=AMQPlain&auth_mechanism=amqplain', { authMechanism: ['AMQPLAIN'] }],
    ['auth_mechanism=scram-sha-256', { authMechanism: ['SCRAM-SHA-256'] }],
  ])('%s', (query, expected) => {
    expect(parseUrl(`amqp://host?${query}`)).toEqual({ hostname: 'host', ...expected });
  });

  it.each([
    ['heartbeat', '-1', /heartbeat must be an integer from 0 to 65535 \(seconds\), not "-1"/],
    ['heartbeat', '65536', /heartbeat must be an integer from 0 to 65535/],
    ['heartbeat', '1.5', /heartbeat must be/],
    ['heartbeat', '', /heartbeat must be/],
    ['heartbeat', '0x10', /heartbeat must be/],
    ['heartbeat', ' 5', /heartbeat must be/],
    ['heartbeat', 'abc', /heartbeat must be .*not "abc"/],
    ['heartbeat', '99999999999999999999', /heartbeat must be/],
    ['frame_max', '4095', /frame_max must be 0 or an integer from 4096 to 4294967295/],
    ['frame_max', '1', /frame_max must be/],
    ['frame_max', '4294967296', /frame_max must be/],
    ['channel_max', '65536', /channel_max must be an integer from 0 to 65535/],
    ['channel_max', '-5', /channel_max must be/],
    ['connection_timeout', '0', /connection_timeout must be an integer from 1 to 2147483647/],
    ['connection_timeout', '2147483648', /connection_timeout must be/],
    ['connection_timeout', '1.5', /connection_timeout must be/],
  ])('rejects %s=%j', (key, value, message) => {
    expect(parseError(`amqp://host?${key}=${encodeURIComponent(value)}`).message).toMatch(message);
  });

  it('rejects an auth_mechanism that is not a SASL mechanism name', () => {
    expect(parseError('amqp://host?auth_mechanism=').message).toMatch(
      /auth_mechanism must be a SASL mechanism name/,
    );
    expect(parseError('amqp://host?auth_mechanism=a%20b').message).toMatch(/not "a b"/);
    expect(parseError(`amqp://host?auth_mechanism=${'X'.repeat(21)}`).message).toMatch(/SASL mechanism name/);
  });

  it('maps the TLS file parameters of an amqps:// URL to tls.caFile, certFile and keyFile', () => {
    expect(
      parseUrl(
        'amqps://myhost?cacertfile=/path/to/ca_certificate.pem&certfile=/path/to/client_certificate.pem' +
          '&keyfile=/path/to/client_key.pem',
      ),
    ).toEqual({
      hostname: 'myhost',
      tls: {
        caFile: '/path/to/ca_certificate.pem',
        certFile: '/path/to/client_certificate.pem',
        keyFile: '/path/to/client_key.pem',
      },
    });
  });

  it('percent-decodes parameter values (a path with a space)', () => {
    expect(parseUrl('amqps://h?cacertfile=%2Ftmp%2Fmy%20ca.pem').tls).toEqual({ caFile: '/tmp/my ca.pem' });
    expect(parseUrl('amqps://h?cacertfile=C:%5Ccerts%5Cca.pem').tls).toEqual({ caFile: 'C:\\certs\\ca.pem' });
  });

  it('verify=verify_peer and verify=verify_none set rejectUnauthorized', () => {
    expect(parseUrl('amqps://h?verify=verify_peer').tls).toEqual({ rejectUnauthorized: true });
    expect(parseUrl('amqps://h?verify=verify_none').tls).toEqual({ rejectUnauthorized: false });
  });

  it('rejects another verify value', () => {
    expect(parseError('amqps://h?verify=true').message).toMatch(
      /verify must be verify_peer or verify_none, not "true"/,
    );
  });

  it('server_name_indication sets the servername, or disables SNI', () => {
    expect(parseUrl('amqps://10.0.0.1?server_name_indication=mq.example.com').tls).toEqual({
      servername: 'mq.example.com',
    });
    expect(parseUrl('amqps://h?server_name_indication=disable').tls).toEqual({ servername: false });
    expect(parseError('amqps://h?server_name_indication=').message).toMatch(
      /must be a host name, or "disable"/,
    );
  });

  it('combines every TLS parameter with the others', () => {
    expect(
      parseUrl(
        'amqps://u:p@h:5671/v?cacertfile=/ca&verify=verify_none&server_name_indication=sni&heartbeat=10&auth_mechanism=external',
      ),
    ).toEqual({
      username: 'u',
      password: expect.any(Secret),
      hostname: 'h',
      port: 5671,
      vhost: 'v',
      heartbeat: 10,
      authMechanism: ['EXTERNAL'],
      tls: { caFile: '/ca', rejectUnauthorized: false, servername: 'sni' },
    });
  });

  it.each(['cacertfile', 'certfile', 'keyfile'])('rejects an empty %s', (key) => {
    expect(parseError(`amqps://h?${key}=`).message).toMatch(new RegExp(`${key} must be a file path`));
  });

  it.each([
    'cacertfile=/ca.pem',
    'certfile=/c.pem',
    'keyfile=/k.pem',
    'verify=verify_peer',
    'server_name_indication=h',
  ])('rejects the TLS parameter %s on an amqp:// URL, pointing at amqps://', (param) => {
    expect(parseError(`amqp://h?${param}`).message).toMatch(
      /is a TLS parameter: use an amqps:\/\/ URL for TLS/,
    );
  });

  it('rejects an unknown key and lists the accepted ones', () => {
    const message = parseError('amqp://host?hearbeat=5').message;
    expect(message).toMatch(/unknown query parameter "hearbeat"/);
    for (const key of URL_QUERY_KEYS) expect(message).toContain(key);
  });

  it('treats keys as case-sensitive (so that Heartbeat is reported, not ignored)', () => {
    expect(parseError('amqp://host?Heartbeat=5').message).toMatch(/unknown query parameter "Heartbeat"/);
  });

  it.each(['fail_if_no_peer_cert=true', 'depth=2', 'password=x', 'connection_name=n'])(
    'rejects %s, which this client does not support',
    (param) => {
      expect(parseError(`amqps://host?${param}`).message).toMatch(/unknown query parameter/);
    },
  );

  it('rejects a parameter without a value', () => {
    expect(parseError('amqp://host?heartbeat').message).toMatch(
      /the query parameter "heartbeat" has no value/,
    );
  });

  it('rejects a parameter given twice (other than auth_mechanism)', () => {
    expect(parseError('amqp://host?heartbeat=5&heartbeat=10').message).toMatch(
      /"heartbeat" is given more than once/,
    );
    expect(parseError('amqps://host?verify=verify_none&verify=verify_peer').message).toMatch(
      /more than once/,
    );
  });

  it('ignores empty parameters (a stray or trailing "&")', () => {
    expect(parseUrl('amqp://host?&heartbeat=5&&')).toEqual({ hostname: 'host', heartbeat: 5 });
    expect(parseUrl('amqp://host?')).toEqual({ hostname: 'host' });
  });

  it('rejects characters in the query that must be percent-encoded', () => {
    expect(parseError('amqps://h?cacertfile=/my ca.pem').message).toMatch(/the query holds a character/);
  });

  it('decodes the keys too', () => {
    expect(parseUrl('amqp://host?heart%62eat=5').heartbeat).toBe(5);
  });
});

describe('parseUrl: errors never show the password', () => {
  const PASSWORD = 'Sup3r-S3cret';
  it.each([
    `http://user:${PASSWORD}@host`,
    `amqp://user:${PASSWORD}@host:0`,
    `amqp://user:${PASSWORD}@host:99999/v`,
    `amqp://user:${PASSWORD}@host/a/b`,
    `amqp://user:${PASSWORD}@host/a b`,
    `amqp://user:${PASSWORD}@host?foo=bar`,
    `amqp://user:${PASSWORD}@host?heartbeat=x`,
    `amqp://user:${PASSWORD}@host?cacertfile=/ca.pem`,
    `amqp://user:${PASSWORD}@host#fragment`,
    `amqp://user:${PASSWORD}@[::1`,
    `amqp://user:${PASSWORD}@[nope]`,
    `amqp://user:${PASSWORD}@::1`,
    `amqp://user:${PASSWORD}%ff@host`,
    `amqp://user:${PASSWORD} @host`,
    `amqp://user:${PASSWORD}/x@host`, // an unescaped "/" in the password: the authority ends early
    `amqp://user:${PASSWORD}?x@host`,
    `amqp://user:${PASSWORD}#x@host`,
    `amqp://user:${PASSWORD}/x?heartbeat=5@host`,
    `amqp://user:abc/${PASSWORD}@host`,
    `amqp://user:a?b=${PASSWORD}@host`,
    `amqp:user:${PASSWORD}@host`,
    `user:${PASSWORD}@host`,
    `amqps://host?password=${PASSWORD}`,
  ])('%s', (url) => {
    const e = parseError(url);
    const text = everyFormOf(e);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('Sup3r');
    expect(text).not.toContain('S3cret');
    expect(e.message).toContain('***');
  });

  it('shows the URL redacted in the message', () => {
    expect(parseError(`amqp://app:${PASSWORD}@mq.example.com:0/v`).message).toBe(
      'invalid AMQP URL "amqp://app:***@mq.example.com:0/v": the port must be an integer from 1 to 65535, not "0"',
    );
  });

  it('explains an unescaped "/" in the password rather than quoting the mangled port', () => {
    expect(parseError(`amqp://app:${PASSWORD}/x@host`).message).toMatch(
      /percent-encode any "\/", "\?" or "#"/,
    );
  });

  it('fuzz: a password with raw reserved characters never appears in an error', () => {
    const raw = fc.string({
      unit: fc.constantFrom(...'ab/?#@:%[] &=.'.split('')),
      maxLength: 12,
    });
    fc.assert(
      fc.property(
        raw,
        fc.constantFrom('', '/vh', '/vh?heartbeat=5', '?heartbeat=x', ':99999'),
        (middle, tail) => {
          const password = `SeKr1t${middle}T1rKeS`;
          const url = `amqp://user:${password}@host${tail}`;
          let error: unknown;
          try {
            parseUrl(url);
          } catch (e) {
            error = e;
          }
          if (error === undefined) return;
          expect(error).toBeInstanceOf(ConfigurationError);
          const text = everyFormOf(error as Error);
          expect(text).not.toContain('SeKr1t');
          expect(text).not.toContain('T1rKeS');
        },
      ),
    );
  });
});

describe('redactUrl', () => {
  it.each([
    ['amqp://guest:guest@host:5672/', 'amqp://guest:***@host:5672/'],
    [
      'amqps://app:p%40ss@mq.example.com/orders?heartbeat=5',
      'amqps://app:***@mq.example.com/orders?heartbeat=5',
    ],
    ['amqp://user:@host', 'amqp://user:***@host'],
    ['amqp://:secret@host', 'amqp://:***@host'],
    ['amqp://user@host:5672/v', 'amqp://user@host:5672/v'],
    ['amqp://host:5672/v', 'amqp://host:5672/v'],
    ['amqp://host', 'amqp://host'],
    ['', ''],
    ['not a url', 'not a url'],
    // Unparsable or malformed: everything between "://user:" and the last "@" is masked.
    ['amqp://user:pa/ss@host/v', 'amqp://user:***@host/v'],
    ['amqp://user:pa?ss@host', 'amqp://user:***@host'],
    ['amqp://user:pa#ss@host', 'amqp://user:***@host'],
    ['amqp://user:p@ss@host', 'amqp://user:***@host'],
    ['amqp://user:pa ss@ho st', 'amqp://user:***@ho st'],
    ['http://user:secret@host', 'http://user:***@host'],
    ['user:secret@host', 'user:***@host'],
    ['amqp:user:secret@host', 'amqp:***@host'],
    // No "@" at all: what follows a ":" of the authority is masked to the end unless it is a port.
    ['amqp://user:secret', 'amqp://user:***'],
    ['amqp://user:secret/vhost?heartbeat=5', 'amqp://user:***'],
    ['amqp://host:5672:secret', 'amqp://host:***'],
    ['amqp://host:5672/v?heartbeat=5', 'amqp://host:5672/v?heartbeat=5'],
    ['amqp://host:/v', 'amqp://host:/v'],
    // Brackets that hold no IPv6 address are masked to the end; an IPv6 address is not.
    ['amqp://[user:secret]/v', 'amqp://[***'],
    ['amqp://[fe80::1%25eth0]:5672/v', 'amqp://[fe80::1%25eth0]:5672/v'],
    // Query parameters named like a password.
    ['amqps://host?password=secret&heartbeat=5', 'amqps://host?password=***&heartbeat=5'],
    ['amqps://host?heartbeat=5&key_passphrase=secret', 'amqps://host?heartbeat=5&key_passphrase=***'],
  ])('%j -> %j', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it('masks a little more than the password when a valid URL has an "@" after its authority', () => {
    expect(redactUrl('amqp://user:pw@host:5672/team@x')).toBe('amqp://user:***@x');
  });

  it('never returns the password of a URL missing its "@host", whatever the password holds', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (middle) => {
        const redacted = redactUrl(`amqp://user:SeKr1t${middle}`);
        expect(redacted).not.toContain('SeKr1t');
      }),
    );
  });

  it('never returns the password, whatever it holds', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        fc.constantFrom('', '/vh', '/v@x?heartbeat=5'),
        (middle, tail) => {
          const password = `SeKr1t${middle}T1rKeS`;
          const redacted = redactUrl(`amqp://user:${password}@host${tail}`);
          expect(redacted).not.toContain('SeKr1t');
          expect(redacted).not.toContain('T1rKeS');
        },
      ),
    );
  });
});

describe('parseUrl: round trip', () => {
  const text = fc.oneof(fc.string({ maxLength: 16 }), fc.string({ unit: 'grapheme', maxLength: 8 }));
  it('user, password, host, port and vhost formatted with encodeURIComponent come back', () => {
    fc.assert(
      fc.property(
        text,
        text,
        text.filter((h) => h !== ''),
        fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        text,
        fc.boolean(),
        (username, password, hostname, port, vhost, secure) => {
          const url =
            `${secure ? 'amqps' : 'amqp'}://${encodeURIComponent(username)}:${encodeURIComponent(password)}` +
            `@${encodeURIComponent(hostname)}${port === undefined ? '' : `:${port}`}/${encodeURIComponent(vhost)}`;
          const options = parseUrl(url);
          expect(options.username).toBe(username);
          expect((options.password as Secret).reveal()).toBe(password);
          expect(options.hostname).toBe(hostname);
          expect(options.port).toBe(port);
          expect(options.vhost).toBe(vhost);
          expect(options.tls).toBe(secure ? true : undefined);
        },
      ),
    );
  });

  it('query values formatted with encodeURIComponent come back', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.subarray(['PLAIN', 'AMQPLAIN', 'EXTERNAL'], { minLength: 1 }),
        (caFile, heartbeat, mechanisms) => {
          const query = [
            `cacertfile=${encodeURIComponent(caFile)}`,
            `heartbeat=${heartbeat}`,
            ...mechanisms.map((m) => `auth_mechanism=${m.toLowerCase()}`),
          ].join('&');
          const options = parseUrl(`amqps://host?${query}`);
          expect(options.tls).toEqual({ caFile });
          expect(options.heartbeat).toBe(heartbeat);
          expect(options.authMechanism).toEqual(mechanisms);
        },
      ),
    );
  });

  it('any input either parses or throws a ConfigurationError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (tail) => {
        for (const url of [`amqp://${tail}`, `amqps://${tail}`, tail]) {
          try {
            parseUrl(url);
          } catch (e) {
            expect(e).toBeInstanceOf(ConfigurationError);
          }
        }
      }),
    );
  });
});
