/**
 * The credentials of each connection attempt (src/config/credentials.ts), without a broker: what a
 * provider may answer (a value, a Promise, an Observable or any Subscribable), what it may not (each
 * junk answer becomes a `ConnectionClosedError` `CREDENTIALS_UNAVAILABLE`), when a secret that expires
 * is refreshed (`refreshDelay`), how `resolveOptions` checks the option, and that a provider's secret
 * shows in no message and no `inspect` output.
 */
import { inspect } from 'node:util';
import {
  BehaviorSubject,
  concat,
  defer,
  EMPTY,
  NEVER,
  Observable,
  of,
  ReplaySubject,
  Subject,
  throwError,
} from 'rxjs';
import {
  type CredentialsProvider,
  CredentialsSource,
  type ProvidedCredentials,
  refreshDelay,
} from '../../src/config/credentials.js';
import type { ConnectOptions, Credentials, ResolvedOptions } from '../../src/config/options.js';
import { resolveOptions as resolveWith } from '../../src/config/resolve-options.js';
import { Secret } from '../../src/config/secret.js';
import { ConfigurationError, ConnectionClosedError } from '../../src/errors.js';
import { isRetryableError } from '../../src/recovery/retry-policy.js';
import { nodePlatform } from '../../src/transport/node.js';

const FIXED: Credentials = Object.freeze({ username: 'app', password: new Secret('fixed-Pa55') });
const TOKEN = 'eyJ.Sup3rS3cretToken.sig';

function source(provider?: CredentialsProvider): CredentialsSource {
  return new CredentialsSource(FIXED, provider);
}

function resolveOptions(input: string | ConnectOptions, overrides?: ConnectOptions): ResolvedOptions {
  return resolveWith(input, overrides, nodePlatform);
}

/** What fetch() rejects with; fails the test when it resolves. */
async function failure(fetching: Promise<unknown>): Promise<ConnectionClosedError> {
  const outcome = await fetching.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${inspect(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ConnectionClosedError);
  const error = outcome.error as ConnectionClosedError;
  expect(error.code).toBe('CREDENTIALS_UNAVAILABLE');
  expect(error.initiator).toBe('client');
  return error;
}

/** An Observable that counts its subscriptions and teardowns. */
function counted<T>(body: (subscriber: import('rxjs').Subscriber<T>) => void): {
  source: Observable<T>;
  subscribed: () => number;
  tornDown: () => number;
} {
  let subscribed = 0;
  let tornDown = 0;
  const observable = new Observable<T>((subscriber) => {
    subscribed++;
    body(subscriber);
    return () => {
      tornDown++;
    };
  });
  return { source: observable, subscribed: () => subscribed, tornDown: () => tornDown };
}

describe('CredentialsSource without a provider', () => {
  it('gives the fixed credentials, never expiring, and says it is not provided', async () => {
    const s = source();
    expect(s.provided).toBe(false);
    expect(s.current).toBe(FIXED);
    await expect(s.fetch()).resolves.toEqual({ credentials: FIXED, expiresAt: undefined });
  });

  it('gives the secret the broker accepted (updated) to later attempts, with the same user name', async () => {
    const s = source();
    const rotated = new Secret('rotated-Pa55');
    s.updated(rotated);
    expect(s.current).toEqual({ username: 'app', password: rotated });
    expect(Object.isFrozen(s.current)).toBe(true);
    const { credentials } = await s.fetch();
    expect(credentials.username).toBe('app');
    expect(credentials.password.reveal()).toBe('rotated-Pa55');
  });
});

describe('CredentialsSource.fetch: what a provider may answer', () => {
  it('takes a plain value (password as a string), defaulting the user name to the options one', async () => {
    let calls = 0;
    const s = source(() => {
      calls++;
      return { password: TOKEN };
    });
    expect(s.provided).toBe(true);
    const { credentials, expiresAt } = await s.fetch();
    expect(calls).toBe(1);
    expect(credentials.username).toBe('app');
    expect(credentials.password).toBeInstanceOf(Secret);
    expect(credentials.password.reveal()).toBe(TOKEN);
    expect(expiresAt).toBeUndefined();
    expect(Object.isFrozen(credentials)).toBe(true);
  });

  it('asks the provider on every fetch (one call each, nothing cached)', async () => {
    let calls = 0;
    const s = source(() => ({ password: `token-${++calls}` }));
    const first = await s.fetch();
    const second = await s.fetch();
    expect(calls).toBe(2);
    expect(first.credentials.password.reveal()).toBe('token-1');
    expect(second.credentials.password.reveal()).toBe('token-2');
    // A provider's answer is not what "current" (the fixed credentials) is.
    expect(s.current).toBe(FIXED);
  });

  it('takes the user name, a Secret password as it is, and expiresAt as a Date or milliseconds', async () => {
    const secret = new Secret(TOKEN);
    const at = new Date('2030-01-02T03:04:05.678Z');
    const fromDate = await source(() => ({ username: 'svc', password: secret, expiresAt: at })).fetch();
    expect(fromDate.credentials.username).toBe('svc');
    expect(fromDate.credentials.password).toBe(secret);
    expect(fromDate.expiresAt).toBe(at.getTime());
    const fromNumber = await source(() => ({ password: 'p', expiresAt: 1_700_000_000_123 })).fetch();
    expect(fromNumber.expiresAt).toBe(1_700_000_000_123);
    // An empty user name is a user name (the OAuth 2 backend takes it from the token).
    expect((await source(() => ({ username: '', password: 'p' })).fetch()).credentials.username).toBe('');
  });

  it('takes an expiresAt already in the past (the refresh then runs at once)', async () => {
    const { expiresAt } = await source(() => ({ password: 'p', expiresAt: 0 })).fetch();
    expect(expiresAt).toBe(0);
  });

  it('waits for a Promise, and for any PromiseLike (a thenable)', async () => {
    const s = source(
      () => new Promise<ProvidedCredentials>((r) => setTimeout(() => r({ password: 'late' }), 5)),
    );
    expect((await s.fetch()).credentials.password.reveal()).toBe('late');
    const thenable: PromiseLike<ProvidedCredentials> = {
      // biome-ignore lint/suspicious/noThenProperty: a hand-made PromiseLike is the point of this test
      then: (resolve) => {
        setTimeout(() => resolve?.({ password: 'thenable' }), 1);
        return undefined as never;
      },
    };
    expect((await source(() => thenable).fetch()).credentials.password.reveal()).toBe('thenable');
  });

  it('takes the first value of an asynchronous Observable, then unsubscribes', async () => {
    const values = new Subject<ProvidedCredentials>();
    const probe = counted<ProvidedCredentials>((subscriber) => values.subscribe(subscriber));
    const s = source(() => probe.source);
    const fetching = s.fetch();
    expect(probe.subscribed()).toBe(1);
    expect(values.observed).toBe(true);
    values.next({ password: 'first' });
    values.next({ password: 'second' });
    const { credentials } = await fetching;
    expect(credentials.password.reveal()).toBe('first');
    expect(probe.tornDown()).toBe(1);
    expect(values.observed).toBe(false);
  });

  it('takes the first value of an Observable that emits synchronously (of, BehaviorSubject, ReplaySubject), and unsubscribes', async () => {
    const many = counted<ProvidedCredentials>((subscriber) => {
      subscriber.next({ password: 'one' });
      subscriber.next({ password: 'two' });
    });
    expect((await source(() => many.source).fetch()).credentials.password.reveal()).toBe('one');
    expect(many.tornDown()).toBe(1);

    expect(
      (await source(() => of({ password: 'a' }, { password: 'b' })).fetch()).credentials.password.reveal(),
    ).toBe('a');

    const current = new BehaviorSubject<ProvidedCredentials>({ password: 'cached-token' });
    expect((await source(() => current).fetch()).credentials.password.reveal()).toBe('cached-token');
    expect(current.observed).toBe(false);

    const replay = new ReplaySubject<ProvidedCredentials>(2);
    replay.next({ password: 'old' });
    replay.next({ password: 'new' });
    expect((await source(() => replay).fetch()).credentials.password.reveal()).toBe('old');
    expect(replay.observed).toBe(false);
  });

  it('stops a synchronous Observable at its first value: what would follow it is never subscribed', async () => {
    // concat(cached$, refreshed$) or startWith(cached): the first value is there at once; subscribing
    // to what follows it starts work (a token request) that is thrown away. RxJS's firstValueFrom
    // unsubscribes inside next, so the rest is never subscribed; fetch should do the same.
    let refreshRequests = 0;
    const provider = () =>
      concat(
        of({ password: 'cached' }),
        defer(() => {
          refreshRequests++;
          return NEVER;
        }),
      );
    expect((await source(provider).fetch()).credentials.password.reveal()).toBe('cached');
    expect(refreshRequests).toBe(0);
  });

  it('reads a Subscribable that is not an RxJS Observable (subscribe with an observer object)', async () => {
    let unsubscribed = 0;
    const subscribable = {
      subscribe(observer: { next: (v: ProvidedCredentials) => void }) {
        const timer = setTimeout(() => observer.next({ password: 'foreign' }), 1);
        return {
          unsubscribe: () => {
            unsubscribed++;
            clearTimeout(timer);
          },
        };
      },
    };
    const s = source(() => subscribable as never);
    expect((await s.fetch()).credentials.password.reveal()).toBe('foreign');
    expect(unsubscribed).toBe(1);
  });

  it('prefers then() when an answer is both thenable and subscribable', async () => {
    const both = {
      // biome-ignore lint/suspicious/noThenProperty: an answer that is both on purpose
      then: (resolve: (v: ProvidedCredentials) => void) => resolve({ password: 'from-then' }),
      subscribe: () => {
        throw new Error('subscribe must not be called');
      },
    };
    expect((await source(() => both as never).fetch()).credentials.password.reveal()).toBe('from-then');
  });
});

describe('CredentialsSource.fetch: a failing provider is CREDENTIALS_UNAVAILABLE, retryable', () => {
  it.each<[string, CredentialsProvider, RegExp]>([
    [
      'throws',
      () => {
        throw new Error('token endpoint unreachable');
      },
      /the credentials provider failed: token endpoint unreachable/,
    ],
    [
      'rejects',
      () => Promise.reject(new Error('HTTP 503 from the IdP')),
      /the credentials provider failed: HTTP 503 from the IdP/,
    ],
    [
      'rejects with a string',
      () => Promise.reject('no session'),
      /the credentials provider failed: no session/,
    ],
    [
      'errors (an Observable)',
      () => throwError(() => new Error('refresh token revoked')),
      /the credentials provider failed: refresh token revoked/,
    ],
    [
      'completes empty (an Observable)',
      () => EMPTY,
      /the credentials provider failed: the credentials Observable completed without a value/,
    ],
  ])('when it %s', async (_what, provider, message) => {
    const error = await failure(source(provider).fetch());
    expect(error.message).toMatch(message);
    expect(error.cause).toBeDefined();
    expect(isRetryableError(error)).toBe(true);
  });

  it('keeps what the provider threw as the cause', async () => {
    const thrown = new Error('boom');
    const error = await failure(
      source(() => {
        throw thrown;
      }).fetch(),
    );
    expect(error.cause).toBe(thrown);
  });

  it('takes the value of an Observable that emits and then errors (the error comes too late to matter)', async () => {
    const provider = () =>
      concat(
        of({ password: 'ok' }),
        throwError(() => new Error('late')),
      );
    expect((await source(provider).fetch()).credentials.password.reveal()).toBe('ok');
  });

  it('waits for an Observable that has not emitted yet, however long (the connect timeout bounds the attempt)', async () => {
    const values = new Subject<ProvidedCredentials>();
    const settled = jest.fn();
    const fetching = source(() => values).fetch();
    fetching.then(settled, settled);
    await new Promise((r) => setImmediate(r));
    expect(settled).not.toHaveBeenCalled();
    values.next({ password: 'eventually' });
    expect((await fetching).credentials.password.reveal()).toBe('eventually');
  });
});

describe('CredentialsSource.fetch: junk answers', () => {
  const junk: [string, unknown, RegExp][] = [
    ['null', null, /an object with a password, got object/],
    ['undefined', undefined, /an object with a password, got undefined/],
    ['a string', TOKEN, /an object with a password, got string/],
    ['a number', 42, /an object with a password, got number/],
    ['no password', { username: 'u' }, /a password \(a string or a Secret\)/],
    ['a numeric password', { password: 1234 }, /a password \(a string or a Secret\)/],
    ['a Buffer password', { password: Buffer.from(TOKEN) }, /a password \(a string or a Secret\)/],
    ['a password with NUL', { password: `a\0${TOKEN}` }, /without NUL characters/],
    ['a Secret with NUL', { password: new Secret(`${TOKEN}\0`) }, /without NUL characters/],
    [
      'a user name with NUL',
      { username: 'a\0b', password: TOKEN },
      /a username that is a string without NUL/,
    ],
    ['a numeric user name', { username: 7, password: TOKEN }, /a username that is a string without NUL/],
    ['an expiresAt string', { password: TOKEN, expiresAt: '2030-01-01' }, /an expiresAt that is a Date/],
    ['an invalid Date', { password: TOKEN, expiresAt: new Date('nonsense') }, /an expiresAt that is a Date/],
    ['a NaN expiresAt', { password: TOKEN, expiresAt: Number.NaN }, /an expiresAt that is a Date/],
    ['an infinite expiresAt', { password: TOKEN, expiresAt: Number.POSITIVE_INFINITY }, /an expiresAt/],
  ];

  it.each(junk)('refuses %s, without quoting the secret', async (_what, answer, message) => {
    for (const provider of [
      () => answer as ProvidedCredentials,
      () => Promise.resolve(answer as ProvidedCredentials),
      () => of(answer as ProvidedCredentials),
    ]) {
      const error = await failure(source(provider).fetch());
      expect(error.message).toMatch(/^the credentials provider must give /);
      expect(error.message).toMatch(message);
      const shown = [error.message, error.stack ?? '', inspect(error, { depth: 10, showHidden: true })].join(
        '\n',
      );
      expect(shown).not.toContain('Sup3rS3cretToken');
      expect(isRetryableError(error)).toBe(true);
    }
  });
});

describe('refreshDelay', () => {
  const now = 1_700_000_000_000;
  it.each<[string, number, number]>([
    ['80% of a long lifetime', 100_000, 80_000],
    ['80% of an hour', 3_600_000, 2_880_000],
    ['25 s: 80% and 5 s before expiry coincide', 25_000, 20_000],
    ['10 s: 5 s before expiry comes first', 10_000, 5_000],
    ['6 s: 5 s before expiry', 6_000, 1_000],
    ['5.001 s: 1 ms', 5_001, 1],
    ['exactly 5 s: at once', 5_000, 0],
    ['1 s: at once', 1_000, 0],
    ['expiring now: at once', 0, 0],
    ['expired a minute ago: at once', -60_000, 0],
  ])('%s', (_what, left, delay) => {
    expect(refreshDelay(now + left, now)).toBe(delay);
  });

  it('is a whole number of milliseconds, never negative, and before the expiry', () => {
    for (let left = -10_000; left <= 200_000; left += 777) {
      const d = refreshDelay(now + left, now);
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      if (left > 5_000) {
        expect(d).toBeGreaterThan(0);
        expect(now + d).toBeLessThanOrEqual(now + left - 5_000);
      }
    }
  });

  it('can exceed the longest timer for a far expiry (the connection caps it)', () => {
    expect(refreshDelay(now + 365 * 24 * 3600_000, now)).toBeGreaterThan(0x7fffffff);
  });
});

describe('resolveOptions: credentials', () => {
  it.each<[string, unknown]>([
    ['a string', 'token'],
    ['an object', { password: 'token' }],
    ['a Promise', Promise.resolve({ password: 'token' })],
    ['null', null],
    ['a number', 1],
  ])('refuses %s with a ConfigurationError that does not quote it', (_what, value) => {
    let thrown: unknown;
    try {
      resolveOptions('amqp://u:Sup3rS3cret@h', { credentials: value as CredentialsProvider });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect((thrown as Error).message).toMatch(/credentials must be a function \(a CredentialsProvider\)/);
    expect((thrown as Error).message).not.toContain('Sup3rS3cret');
    if (value !== null) (value as Promise<unknown>).catch?.(() => {});
  });

  it('without a provider: the URL or options credentials, not provided', () => {
    const r = resolveOptions('amqp://u:Sup3rS3cret@h');
    expect(r.credentialsSource.provided).toBe(false);
    expect(r.credentialsSource.current).toBe(r.credentials);
  });

  it('with a provider: the user name of the URL (or options) is the default for its answers', async () => {
    const r = resolveOptions('amqp://url-user@h', { credentials: () => ({ password: TOKEN }) });
    expect(r.credentialsSource.provided).toBe(true);
    expect((await r.credentialsSource.fetch()).credentials.username).toBe('url-user');
    const o = resolveOptions({
      hostname: 'h',
      username: 'opt-user',
      credentials: () => ({ password: TOKEN }),
    });
    expect((await o.credentialsSource.fetch()).credentials.username).toBe('opt-user');
    const d = resolveOptions({ hostname: 'h', credentials: () => ({ password: TOKEN }) });
    expect((await d.credentialsSource.fetch()).credentials.username).toBe('guest');
  });

  it('does not call the provider while resolving (only an attempt asks it)', () => {
    const provider = jest.fn(() => ({ password: TOKEN }));
    resolveOptions('amqp://h', { credentials: provider });
    expect(provider).not.toHaveBeenCalled();
  });
});

describe('no secret in inspect or JSON', () => {
  it("shows neither the fixed password nor a provider's or an updated secret", async () => {
    const r = resolveOptions('amqp://u:Sup3rS3cret@h', {
      credentials: () => ({ password: 'Pr0viderT0ken', expiresAt: Date.now() + 60_000 }),
    });
    const fetched = await r.credentialsSource.fetch();
    r.credentialsSource.updated(new Secret('Upd4tedS3cret'));
    const text = [
      inspect(r, { depth: 20 }),
      inspect(r, { depth: 20, showHidden: true }),
      JSON.stringify(r),
      inspect(r.credentialsSource, { depth: 20, showHidden: true }),
      inspect(fetched, { depth: 20, showHidden: true }),
      JSON.stringify(fetched),
      `${fetched.credentials.password}`,
    ].join('\n');
    expect(text).not.toContain('Sup3rS3cret');
    expect(text).not.toContain('Pr0viderT0ken');
    expect(text).not.toContain('Upd4tedS3cret');
    expect(fetched.credentials.password.reveal()).toBe('Pr0viderT0ken');
  });
});
