/**
 * OAuth 2 tokens against the real RabbitMQ and its OAuth 2 backend (test/support/oauth2.ts configures
 * it with a symmetric key and restores the broker afterwards): a token from a credentials provider logs
 * in, `updateSecret` hands the broker a new one, tokens are refreshed before they expire and a fresh
 * one is asked for on every reconnect.
 *
 * What RabbitMQ 3.10.8 does, pinned here:
 * - login: the token is the password; the user name is the token's `sub` (the client's user name is
 *   ignored); an expired or forged token is refused like a wrong password (403 ACCESS_REFUSED);
 * - update-secret: a valid token is accepted (update-secret-ok), even one for another `sub` or one that
 *   has already expired (the backend checks the signature, audience and scopes, not `exp`); garbage
 *   closes the connection with 530 NOT_ALLOWED "New secret was refused by one of the backends"
 *   (class 10, method 70);
 * - expiry: the broker does NOT close a connection whose token expired; from then on every access
 *   check (queue.declare, ...) closes its channel with 403 ACCESS_REFUSED "Provided JWT token has
 *   expired", until update-secret hands it a valid token. Only a refresh keeps the connection useful.
 *
 * Needs the local broker and `rabbitmqctl` / `rabbitmq-plugins` (root). The expiry tests wait for real
 * tokens to expire (about 7 s, run concurrently).
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { BehaviorSubject, lastValueFrom, type Observable } from 'rxjs';
import {
  AuthenticationError,
  ChannelClosedError,
  type Connection,
  ConnectionClosedError,
  type ConnectOptions,
  type CredentialsProvider,
  connect,
  openConnection,
  type ProvidedCredentials,
} from '../../src/node.js';
import { type BrokerEndpoint, brokerEndpoint } from '../support/broker.js';
import {
  currentAuthBackends,
  enableOAuth2,
  type MintedToken,
  type OAuth2Backend,
} from '../support/oauth2.js';
import { closeConnectionsNamed, rabbitmqctl } from '../support/rabbitmqctl.js';
import { type WatchedConnections, watchConnections } from '../support/watch-connections.js';

const FAST = { initial: { delays: [50], maxAttempts: 3 }, reconnect: { delays: [50, 100], maxAttempts: 5 } };

let endpoint: BrokerEndpoint;
let oauth: OAuth2Backend;
const subscriptions: { unsubscribe(): void }[] = [];

beforeAll(async () => {
  endpoint = await brokerEndpoint();
  oauth = await enableOAuth2();
}, 60_000);

afterAll(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  // Always: the broker goes back to its previous auth_backends even when a test failed.
  await oauth?.restore();
  expect(await currentAuthBackends()).toBe(`{ok,${oauth.previousAuthBackends}}`);
}, 60_000);

function uniqueName(what: string): string {
  return `rxamqp-test-oauth2-${what}-${randomUUID().slice(0, 8)}`;
}

/** A token for `sub` valid `seconds` (whole seconds: JWT `exp` has no finer grain). */
function token(sub: string, seconds = 3600): MintedToken {
  return oauth.mint({ sub, expiresIn: seconds, extra: { jti: randomUUID() } });
}

function options(extra: ConnectOptions): ConnectOptions {
  // The OAuth 2 backend takes the user name from the token: the client's is left empty.
  return { hostname: endpoint.host, port: endpoint.port, vhost: endpoint.vhost, username: '', ...extra };
}

function watch(source: Observable<Connection>): WatchedConnections {
  return watchConnections(source, subscriptions);
}

/** The user name the broker gives the connection called `name`. */
async function brokerUserOf(name: string): Promise<string | undefined> {
  const list = await rabbitmqctl('list_connections', '-q', 'user', 'client_properties');
  return list
    .split('\n')
    .find((l) => l.includes(`"${name}"`))
    ?.split('\t')[0];
}

/**
 * An access check on a fresh channel (no permission cache): a server-named exclusive queue. Gives
 * 'ok', or the channel error's reply code and text.
 */
async function accessCheck(
  conn: Connection,
): Promise<'ok' | { replyCode: number | undefined; replyText: string | undefined }> {
  const ch = await conn.openChannel();
  try {
    await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    await lastValueFrom(ch.close());
    return 'ok';
  } catch (e) {
    if (!(e instanceof ChannelClosedError)) throw e;
    return { replyCode: e.replyCode, replyText: e.replyText };
  }
}

/** Resolves once `at` (ms since the epoch) has passed, plus a margin for the broker's clock check. */
function pastExpiry(at: number, marginMs = 600): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, at - Date.now()) + marginMs));
}

describe('login with a token (RabbitMQ 3.10 OAuth 2 backend)', () => {
  it("logs in with the provider's token as the password; the broker's user is the token's sub", async () => {
    const name = uniqueName('login');
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const provider = jest.fn(() => Promise.resolve({ password: token(sub).token }));
    const conn = await watch(connect(options({ name, credentials: provider }))).nth(1);
    expect(await brokerUserOf(name)).toBe(sub);
    expect(await accessCheck(conn)).toBe('ok');
    // guest/guest (the internal backend, after OAuth 2 in auth_backends) works all along.
    const guest = await openConnection(endpoint.url);
    await lastValueFrom(guest.close());
    await lastValueFrom(conn.close());
    expect(provider).toHaveBeenCalledTimes(1);
  });

  it.each<[string, () => string]>([
    ['an expired token', () => oauth.mint({ sub: 'late', exp: Math.floor(Date.now() / 1000) - 30 }).token],
    ['a token signed with another key', () => oauth.mintForged({ sub: 'forger' }).token],
    ['a token for another audience', () => oauth.mint({ sub: 'elsewhere', aud: 'another_server' }).token],
  ])(
    'refuses %s at login: AuthenticationError, not retried, the token in no message',
    async (_what, mint) => {
      const refused = mint();
      let calls = 0;
      const error = await watch(
        connect(
          options({
            name: uniqueName('refused'),
            recovery: FAST,
            credentials: () => {
              calls++;
              return { password: refused };
            },
          }),
        ),
      ).failure();
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error).toMatchObject({ replyCode: 403 });
      expect(calls).toBe(1);
      const signature = refused.split('.')[2]!;
      for (const text of [String(error), (error as Error).stack ?? '', inspect(error, { depth: 5 })]) {
        expect(text).not.toContain(signature);
      }
    },
  );
});

describe('updateSecret (RabbitMQ 3.10 OAuth 2 backend)', () => {
  it('accepts a new token for the same sub; the connection keeps working', async () => {
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const conn = await watch(
      connect(options({ name: uniqueName('update'), password: token(sub).token })),
    ).nth(1);
    await expect(
      lastValueFrom(conn.updateSecret(token(sub).token, 'token refreshed')),
    ).resolves.toBeUndefined();
    expect(conn.isOpen).toBe(true);
    expect(await accessCheck(conn)).toBe('ok');
    await lastValueFrom(conn.close());
  });

  it('refuses garbage: the broker closes the connection with 530 NOT_ALLOWED, the Observable errors with it', async () => {
    const w = watch(connect(options({ name: uniqueName('garbage'), password: token('svc').token })));
    const conn = await w.nth(1);
    let error: unknown;
    try {
      await lastValueFrom(conn.updateSecret('Garbage-N0t-A-JWT'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({
      code: 'SERVER_CLOSED',
      initiator: 'server',
      replyCode: 530,
      replyText: 'NOT_ALLOWED - New secret was refused by one of the backends',
      classId: 10,
      methodId: 70,
    });
    expect(`${String(error)} ${(error as Error).stack}`).not.toContain('Garbage-N0t-A-JWT');
    expect(await w.failure()).toBe(error);
    expect(conn.isOpen).toBe(false);
  });

  it('a refused secret with recovery: the connection comes back with a fresh token from the provider', async () => {
    // Connection.updateSecret's documentation: "A broker that refuses the secret closes the connection:
    // the Observable errors with that ConnectionClosedError (recovery, if on, reconnects)".
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    let calls = 0;
    const w = watch(
      connect(
        options({
          name: uniqueName('refused-recover'),
          recovery: FAST,
          credentials: () => {
            calls++;
            return { password: token(sub).token };
          },
        }),
      ),
    );
    const first = await w.nth(1);
    const refused = await lastValueFrom(first.updateSecret('Garbage-N0t-A-JWT')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ replyCode: 530 });
    const outcome = await w.nth(2).then(
      () => 'reconnected',
      (e: unknown) => `connect() ended: ${String(e)}`,
    );
    expect(outcome).toBe('reconnected');
    expect(calls).toBe(2);
  });

  it('also accepts a token for another sub, and one that has already expired (3.10 does not check exp then)', async () => {
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const conn = await watch(
      connect(options({ name: uniqueName('lenient'), password: token(sub).token })),
    ).nth(1);
    await expect(lastValueFrom(conn.updateSecret(token('someone-else').token))).resolves.toBeUndefined();
    expect(await accessCheck(conn)).toBe('ok');
    const expired = oauth.mint({ sub, exp: Math.floor(Date.now() / 1000) - 30 }).token;
    await expect(lastValueFrom(conn.updateSecret(expired))).resolves.toBeUndefined();
    // ...after which every access check is refused, on its channel only.
    const refused = await accessCheck(conn);
    expect(refused).toMatchObject({ replyCode: 403 });
    expect((refused as { replyText: string }).replyText).toMatch(
      /ACCESS_REFUSED .*Provided JWT token has expired/,
    );
    expect(conn.isOpen).toBe(true);
    // A valid token makes it useful again.
    await lastValueFrom(conn.updateSecret(token(sub).token));
    expect(await accessCheck(conn)).toBe('ok');
    await lastValueFrom(conn.close());
  });
});

describe('tokens that expire (real expiry: these tests run concurrently)', () => {
  /** Tokens that live 6 to 7 s: more than 5 s, so the refresh comes 1 to 2 s after each one. */
  const LIFETIME = 7;

  it.concurrent('without a refresh, the broker keeps the connection open past expiry but refuses every access check (403)', async () => {
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const first = token(sub, LIFETIME);
    const conn = await watch(connect(options({ name: uniqueName('expires'), password: first.token }))).nth(1);
    expect(await accessCheck(conn)).toBe('ok');
    await pastExpiry(first.expiresAt);
    const refused = await accessCheck(conn);
    expect(refused).toMatchObject({ replyCode: 403 });
    expect((refused as { replyText: string }).replyText).toMatch(/Provided JWT token has expired/);
    expect(conn.isOpen).toBe(true);
    await lastValueFrom(conn.close());
  });

  it.concurrent("with expiresAt, the provider is asked ahead of each expiry and the connection stays usable past the first token's", async () => {
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const tokens: MintedToken[] = [];
    const provider: CredentialsProvider = () => {
      const t = token(sub, LIFETIME);
      tokens.push(t);
      return { password: t.token, expiresAt: t.expiresAt };
    };
    const name = uniqueName('refreshed');
    const conn = await watch(connect(options({ name, credentials: provider }))).nth(1);
    await pastExpiry(tokens[0]!.expiresAt);
    expect(conn.isOpen).toBe(true);
    expect(await accessCheck(conn)).toBe('ok');
    // Each refresh came before the token it replaced expired (the broker took each: still open).
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(tokens.length).toBeLessThanOrEqual(8);
    expect(await brokerUserOf(name)).toBe(sub);
    await lastValueFrom(conn.close());
  });

  it.concurrent('a refresh that fails once is tried again, so the connection stays usable past expiry', async () => {
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const first = token(sub, LIFETIME);
    let calls = 0;
    const provider: CredentialsProvider = () => {
      calls++;
      if (calls === 1) return { password: first.token, expiresAt: first.expiresAt };
      if (calls === 2) return Promise.reject(new Error('identity provider hiccup'));
      const t = token(sub, 3600);
      return { password: t.token, expiresAt: t.expiresAt };
    };
    const lines: string[] = [];
    const conn = await watch(
      connect(options({ name: uniqueName('retried'), credentials: provider, debug: (l) => lines.push(l) })),
    ).nth(1);
    await pastExpiry(first.expiresAt);
    const access = await accessCheck(conn);
    await lastValueFrom(conn.close());
    expect({ access, calls: Math.min(calls, 3) }).toEqual({ access: 'ok', calls: 3 });
    expect(lines).toContain(
      'rxamqp: secret refresh failed: the credentials provider failed: identity provider hiccup',
    );
  });

  it.concurrent('a reconnect after close_connection asks the provider (an Observable of tokens) for a fresh token, after the first expired', async () => {
    const sub = `svc-${randomUUID().slice(0, 8)}`;
    const short = token(sub, 3);
    const tokens$ = new BehaviorSubject<ProvidedCredentials>({ password: short.token });
    let calls = 0;
    const name = uniqueName('reconnect');
    const w = watch(
      connect(
        options({
          name,
          recovery: FAST,
          credentials: () => {
            calls++;
            return tokens$;
          },
        }),
      ),
    );
    const first = await w.nth(1);
    expect(await accessCheck(first)).toBe('ok');
    // The identity provider hands out a new token; the first one expires.
    tokens$.next({ password: token(sub).token });
    await pastExpiry(short.expiresAt);
    expect(await closeConnectionsNamed(name, 'oauth2 test')).toBe(1);
    const second = await w.nth(2);
    expect(second).not.toBe(first);
    expect(await accessCheck(second)).toBe('ok');
    expect(calls).toBe(2);
    expect(tokens$.observed).toBe(false);
    expect(await brokerUserOf(name)).toBe(sub);
    w.stop();
  });
});
