/**
 * Credentials providers and `updateSecret` against the real RabbitMQ and its internal backend (the
 * OAuth 2 backend has its own suite, oauth2.test.ts): the provider's user name and password log in, a
 * wrong one is refused once and not retried, the provider is asked again when `rabbitmqctl
 * close_connection` forces a reconnect (a password rotated in between), and what RabbitMQ 3.10 does with
 * connection.update-secret on this backend: it accepts ANY new secret without checking it (the internal
 * backend's state cannot expire, so rabbit_access_control:update_state keeps it as it is), and the
 * client then logs in with that secret on its next reconnect.
 *
 * Needs the local broker and `rabbitmqctl` (root): a user of its own is created and deleted.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { lastValueFrom, type Observable } from 'rxjs';
import {
  AuthenticationError,
  type Connection,
  type ConnectOptions,
  type CredentialsProvider,
  connect,
} from '../../src/node.js';
import { type BrokerEndpoint, brokerEndpoint } from '../support/broker.js';
import { closeConnectionsNamed, rabbitmqctl } from '../support/rabbitmqctl.js';
import { type WatchedConnections, watchConnections } from '../support/watch-connections.js';

const FAST = { initial: { delays: [50], maxAttempts: 3 }, reconnect: { delays: [50, 100], maxAttempts: 5 } };

let endpoint: BrokerEndpoint;
const user = `rxamqp-test-credentials-${process.pid}`;
const firstPassword = `First-${randomUUID()}`;
const subscriptions: { unsubscribe(): void }[] = [];

beforeAll(async () => {
  endpoint = await brokerEndpoint();
  await rabbitmqctl('add_user', user, firstPassword);
  await rabbitmqctl('set_permissions', '-p', endpoint.vhost, user, '.*', '.*', '.*');
});

afterAll(async () => {
  await rabbitmqctl('delete_user', user);
});

afterEach(() => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
});

function uniqueName(what: string): string {
  return `rxamqp-test-credentials-${what}-${randomUUID().slice(0, 8)}`;
}

/** The broker's host and vhost, with a password that is not the user's (the provider gives that). */
function options(extra: ConnectOptions): ConnectOptions {
  return {
    hostname: endpoint.host,
    port: endpoint.port,
    vhost: endpoint.vhost,
    username: user,
    password: 'not-the-password',
    ...extra,
  };
}

function watch(source: Observable<Connection>): WatchedConnections {
  return watchConnections(source, subscriptions);
}

/** The user name the broker gives the connection called `name`. */
async function brokerUserOf(name: string): Promise<string | undefined> {
  const list = await rabbitmqctl('list_connections', '-q', 'user', 'client_properties');
  const line = list.split('\n').find((l) => l.includes(`"${name}"`));
  return line?.split('\t')[0];
}

/** Proves the connection works: a channel and a server-named exclusive queue. */
async function usable(conn: Connection): Promise<void> {
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
  await lastValueFrom(ch.close());
}

describe('a credentials provider (internal backend)', () => {
  it("logs in with the provider's user name and password (not the options' password)", async () => {
    const name = uniqueName('login');
    const provider = jest.fn<ReturnType<CredentialsProvider>, []>(() =>
      Promise.resolve({ username: user, password: firstPassword }),
    );
    const conn = await watch(connect(options({ name, username: 'someone-else', credentials: provider }))).nth(
      1,
    );
    expect(await brokerUserOf(name)).toBe(user);
    await usable(conn);
    await lastValueFrom(conn.close());
    expect(provider).toHaveBeenCalledTimes(1);
  });

  it('a wrong password from the provider is an AuthenticationError, not retried by recovery', async () => {
    let calls = 0;
    const error = await watch(
      connect(
        options({
          name: uniqueName('refused'),
          recovery: FAST,
          credentials: () => {
            calls++;
            return { password: 'Wr0ng-Pr0vided' };
          },
        }),
      ),
    ).failure();
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ replyCode: 403, mechanism: 'PLAIN' });
    expect(calls).toBe(1);
    for (const text of [String(error), (error as Error).stack ?? '', inspect(error, { depth: 5 })]) {
      expect(text).not.toContain('Wr0ng-Pr0vided');
    }
  });

  it('is asked again when rabbitmqctl close_connection forces a reconnect: a rotated password logs in', async () => {
    const name = uniqueName('rotate');
    let password = firstPassword;
    let calls = 0;
    const w = watch(
      connect(
        options({
          name,
          recovery: FAST,
          credentials: () => {
            calls++;
            return { password };
          },
        }),
      ),
    );
    const first = await w.nth(1);
    await usable(first);
    const rotated = `Rotated-${randomUUID()}`;
    await rabbitmqctl('change_password', user, rotated);
    try {
      password = rotated;
      expect(await closeConnectionsNamed(name, 'credentials test')).toBe(1);
      const second = await w.nth(2);
      expect(second).not.toBe(first);
      await usable(second);
      expect(calls).toBe(2);
    } finally {
      await rabbitmqctl('change_password', user, firstPassword);
    }
  });
});

describe('connection.update-secret on the internal backend (RabbitMQ 3.10)', () => {
  it('accepts the new password of a rotated user; the next reconnect logs in with it', async () => {
    const name = uniqueName('update');
    const w = watch(connect(options({ name, password: firstPassword, recovery: FAST })));
    const first = await w.nth(1);
    const rotated = `Rotated-${randomUUID()}`;
    await rabbitmqctl('change_password', user, rotated);
    try {
      await expect(lastValueFrom(first.updateSecret(rotated, 'password rotated'))).resolves.toBeUndefined();
      expect(first.isOpen).toBe(true);
      await usable(first);
      await closeConnectionsNamed(name, 'credentials test');
      const second = await w.nth(2);
      await usable(second);
    } finally {
      await rabbitmqctl('change_password', user, firstPassword);
    }
  });

  it('accepts ANY secret without checking it, so a wrong one only shows on the next reconnect (refused, not retried)', async () => {
    // rabbit_access_control:update_state/2 (3.10.8) asks only backends whose state can expire; the
    // internal backend's cannot, so it is kept as it is and update-secret-ok comes back for anything.
    const name = uniqueName('unchecked');
    const w = watch(connect(options({ name, password: firstPassword, recovery: FAST })));
    const first = await w.nth(1);
    await expect(lastValueFrom(first.updateSecret('Not-The-Pa55word'))).resolves.toBeUndefined();
    expect(first.isOpen).toBe(true);
    await usable(first);
    await closeConnectionsNamed(name, 'credentials test');
    const error = await w.failure();
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(String(error)).not.toContain('Not-The-Pa55word');
  });
});
