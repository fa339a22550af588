/**
 * No error of the configuration ever carries a password: hostile inputs (a password in the wrong
 * option, a URL missing its "@host", user information pasted as a host name...) holding a canary
 * password go through parseUrl and resolveOptions, and the canary must appear nowhere in what the
 * error shows: its message, String(), util.inspect() and the JSON of its cause chain.
 */
import { inspect } from 'node:util';
import { firstValueFrom, take, toArray } from 'rxjs';
import type { ConnectOptions } from '../../src/config/options.js';
import type { Platform } from '../../src/config/platform.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import { parseUrl } from '../../src/config/url.js';
import { ConfigurationError } from '../../src/errors.js';
import { connect } from '../../src/node.js';
import type { TransportConnector } from '../../src/transport/transport.js';

const CANARY = 'Canary-S3cret';

const connector: TransportConnector = () => Promise.reject(new Error('not used'));
/** A platform whose file reads fail the way Node's do: the path in the message and in the error. */
const platform: Platform = {
  connector,
  readFile: (path) => {
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {
      code: 'ENOENT',
      path,
    });
  },
};

/** Every text an error shows when it is logged, printed or serialised. */
function renderings(error: unknown): string[] {
  const chain: unknown[] = [];
  for (let e: unknown = error; e !== undefined && e !== null && chain.length < 10; ) {
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  const e = error as Error;
  return [
    e.message,
    String(e),
    inspect(e, { depth: 5 }),
    JSON.stringify(
      chain.map((c) =>
        c instanceof Error ? { ...c, name: c.name, message: c.message, stack: c.stack } : { value: c },
      ),
    ),
  ];
}

function expectNoCanary(run: () => unknown): ConfigurationError {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigurationError);
  for (const text of renderings(error)) expect(text).not.toContain(CANARY);
  return error as ConfigurationError;
}

const HOSTILE_URLS = [
  `amqp://user:${CANARY}`,
  `amqp://user:${CANARY}/vhost`,
  `amqp://user:${CANARY}?heartbeat=1`,
  `amqp://user:${CANARY}#x`,
  `amqps://user:${CANARY}`,
  `amqp://host:5672:${CANARY}`,
  `amqp://[user:${CANARY}]`,
  `amqp://[user:${CANARY}]@host`,
  `amqp://user:${CANARY}@host:abc`,
  `amqp://user:${CANARY}@host/a/b`,
  `amqp://user:${CANARY} @host`,
  `amqp://user:${CANARY}%ZZ@host`,
  `amqp://user:pa/${CANARY}@host`,
  `amqp://user:pa?${CANARY}@host`,
  `amqp://user:pa#${CANARY}@host`,
  `amqp:/user:${CANARY}@host`,
  `amqp//user:${CANARY}@host`,
  `amqp:user:${CANARY}@host`,
  `http://user:${CANARY}@host`,
  `amqp://user:${CANARY}@host?password=x&bad`,
  `amqp://host?password=${CANARY}`,
  `amqp://host?heartbeat=1&x_pass=${CANARY}`,
  `amqp://user:${CANARY}@host#fragment`,
  `amqp://user:${CANARY}@ho st`,
  ` amqp://user:${CANARY}@[::1`,
];

describe('no error shows a password', () => {
  it.each(HOSTILE_URLS)('parseUrl(%j)', (url) => {
    expectNoCanary(() => parseUrl(url));
  });

  it.each(HOSTILE_URLS)('resolveOptions(%j)', (url) => {
    expectNoCanary(() => resolveOptions(url, undefined, platform));
  });

  it.each([
    `ws://user:${CANARY}@host/ws`, // no transport
    `ws://user:${CANARY}`,
    `wss://user:${CANARY}/ws`,
    `memory://user:${CANARY}@broker`, // no port
    `memory:user:${CANARY}@broker#x`,
    `ws://user:${CANARY}@host?cacertfile=/ca.pem`,
  ])('resolveOptions(%j) with a custom connector', (url) => {
    const overrides = url.startsWith('ws://user:Canary-S3cret@host/ws') ? {} : { transport: connector };
    expectNoCanary(() => resolveOptions(url, overrides, platform));
  });

  it.each<[string, ConnectOptions]>([
    ['user information as hostname', { hostname: `user:${CANARY}@host` }],
    ['a URL as hostname', { hostname: `amqp://user:${CANARY}@host` }],
    ['user:password as hostname', { hostname: `user:${CANARY}` }],
    ['a password as hostname, with a space', { hostname: `host ${CANARY}` }],
    ['a path as hostname', { hostname: `host/${CANARY}` }],
    ['brackets around user information', { hostname: `[user:${CANARY}]` }],
    ['user information in hosts', { hosts: [`user:${CANARY}@host`] }],
    ['a URL in hosts', { hosts: [`amqp://user:${CANARY}@host:5672`] }],
    ['user:password in hosts', { hosts: [`user:${CANARY}`] }],
    ['user information in hosts[].hostname', { hosts: [{ hostname: `user:${CANARY}@host` }] }],
    ['a URL in hosts[].hostname', { hosts: [{ hostname: `amqp://user:${CANARY}@host` }] }],
    ['user:password in hosts[].hostname', { hosts: [{ hostname: `user:${CANARY}` }] }],
    ['a URL as servername', { tls: { servername: `amqp://user:${CANARY}@host` } }],
    ['a URL as a TLS file path', { tls: { caFile: `amqp://user:${CANARY}@host` } }],
    ['a URL as tls', { tls: `amqp://user:${CANARY}@host` as never }],
    ['a URL as authMechanism', { authMechanism: `amqp://user:${CANARY}@host` }],
    ['a password of the wrong type', { password: [CANARY] as never }],
    ['a passphrase of the wrong type', { tls: { passphrase: [CANARY] as never } }],
    ['a key of the wrong type', { tls: { key: { pem: CANARY } as never } }],
    ['a URL as an option name', { [`amqp://user:${CANARY}@host`]: true } as never],
    ['a password as an option name', { [`user:${CANARY}`]: true } as never],
    ['a URL as the port', { port: `amqp://user:${CANARY}@host` as never }],
    ['a URL as whenBlocked', { whenBlocked: `amqp://user:${CANARY}@host` as never }],
  ])('resolveOptions with %s', (_, options) => {
    expectNoCanary(() => resolveOptions(options, undefined, platform));
  });

  it('an override with user information as hostname', () => {
    expectNoCanary(() => resolveOptions('amqp://localhost', { hostname: `user:${CANARY}@host` }, platform));
  });

  it('a URL that does not parse still says what is wrong, with the user name and without the password', () => {
    const error = expectNoCanary(() => parseUrl(`amqp://app:${CANARY}`));
    expect(error.message).toBe(
      'invalid AMQP URL "amqp://app:***": the port must be an integer from 1 to 65535 (what follows ":" is not ' +
        'shown: if it is a password, the "@host" part is missing)',
    );
  });

  it('a hostname with user information says why, and where the credentials go', () => {
    const error = expectNoCanary(() => resolveOptions({ hostname: `app:${CANARY}@mq` }, undefined, platform));
    expect(error.message).toMatch(/^hostname is not a host name or IP address: it holds "@"/);
    expect(error.message).toMatch(/give the host alone, and the credentials in username and password/);
  });

  it('an unreadable TLS file still shows an ordinary path and keeps the error as cause', () => {
    const error = expectNoCanary(() =>
      resolveOptions({ tls: { caFile: '/etc/ssl/missing.pem' } }, undefined, platform),
    );
    expect(error.message).toBe('cannot read tls.caFile "/etc/ssl/missing.pem": ENOENT');
    expect((error.cause as { code?: string }).code).toBe('ENOENT');
  });

  it.each<[string, ConnectOptions]>([
    ['user information as hostname', { hostname: `user:${CANARY}@127.0.0.1` }],
    ['a URL in hosts[].hostname', { hosts: [{ hostname: `amqp://user:${CANARY}@127.0.0.1` }] }],
  ])(
    'connect() with %s fails before any DNS lookup, and its state does not show the password',
    async (_, o) => {
      const connection$ = connect({ ...o, recovery: { initial: false } });
      const states = firstValueFrom(connection$.state$.pipe(take(2), toArray()));
      const error = await firstValueFrom(connection$).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      for (const text of renderings(error)) expect(text).not.toContain(CANARY);
      expect(inspect(await states, { depth: 8 })).not.toContain(CANARY);
    },
  );
});
