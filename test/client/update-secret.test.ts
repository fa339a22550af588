/**
 * Credentials providers and connection.update-secret against the scripted server
 * (test/support/scripted-server.ts): the provider asked once per attempt (hosts and reconnects
 * included) and its failures, the refresh of a secret that expires (the update-secret bytes the
 * server reads), `Connection.updateSecret` (in order, refused, cut off, on a closed connection), and
 * which secret a later reconnect logs in with.
 */
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { lastValueFrom, Observable } from 'rxjs';
import type { CredentialsProvider, ProvidedCredentials } from '../../src/config/credentials.js';
import {
  ConfigurationError,
  type Connection,
  ConnectionClosedError,
  type ConnectOptions,
  connect,
  Secret,
} from '../../src/node.js';
import type { MethodOf } from '../../src/protocol/index.js';
import { isRetryableError } from '../../src/recovery/retry-policy.js';
import { type Script, type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';
import { type WatchedConnections, watchConnections } from '../support/watch-connections.js';

let server: ScriptedServer | undefined;
const subscriptions: { unsubscribe(): void }[] = [];

afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  await server?.close();
  server = undefined;
});

async function serve(scripts: Script | readonly Script[]): Promise<ScriptedServer> {
  server = await ScriptedServer.start(scripts, Array.isArray(scripts) ? {} : { maxConnections: 1 });
  return server;
}

function options(extra: ConnectOptions = {}): ConnectOptions {
  return { hostname: '127.0.0.1', port: server!.port, connectionTimeout: 3000, heartbeat: 0, ...extra };
}

/** Recovery without delays: a reconnect lands at once on the next script. */
const RECOVERY = {
  initial: { delays: [0], maxAttempts: 5 },
  reconnect: { delays: [0], maxAttempts: 5 },
} as const;

/** The PLAIN response of a start-ok, as text: `\0user\0password`. */
function plain(startOk: MethodOf<'connection.start-ok'>): string {
  return Buffer.from(startOk.response).toString('latin1');
}

/** The new secret of an update-secret, as the server read its bytes. */
function secretOf(method: MethodOf<'connection.update-secret'>): string {
  return Buffer.from(method.newSecret).toString('utf8');
}

/** The server's side of the client's close: connection.close, then close-ok. */
async function closeHandshake(peer: ScriptedPeer): Promise<void> {
  await peer.expect('connection.close');
  peer.send(0, { name: 'connection.close-ok' });
}

/** RabbitMQ's close when an operator closes the connection. */
function forceClose(peer: ScriptedPeer): Promise<boolean> {
  return peer.closeConnection(320, 'CONNECTION_FORCED - Closed via management plugin or rabbitmqctl');
}

function watch(source: Observable<Connection>): WatchedConnections {
  return watchConnections(source, subscriptions);
}

/** A promise with its resolve, for signals between a script and the test. */
function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** What an Observable ends with: its values or its error. */
async function settle<T>(source: Observable<T>): Promise<{ values: T[]; error?: unknown }> {
  const values: T[] = [];
  return new Promise((resolve) => {
    source.subscribe({
      next: (v) => values.push(v),
      error: (error: unknown) => resolve({ values, error }),
      complete: () => resolve({ values }),
    });
  });
}

/** A provider Observable that never emits and counts subscriptions and teardowns. */
function pendingObservable(): {
  source: Observable<ProvidedCredentials>;
  subscribed: Promise<void>;
  tornDown: () => number;
} {
  const started = signal();
  let tornDown = 0;
  const source = new Observable<ProvidedCredentials>(() => {
    started.resolve();
    return () => {
      tornDown++;
    };
  });
  return { source, subscribed: started.promise, tornDown: () => tornDown };
}

const macrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('a credentials provider is asked before every attempt', () => {
  it('logs in with its answer, defaulting the user name to the options one', async () => {
    const responses: string[] = [];
    await serve(async (peer) => {
      responses.push(plain((await peer.handshake()).startOk));
      await closeHandshake(peer);
    });
    const provider = jest.fn(() => Promise.resolve({ password: 'Pr0vided-token' }));
    const conn = await watch(connect(options({ username: 'opts-user', credentials: provider }))).nth(1);
    for (const text of [inspect(conn, { depth: 20, showHidden: true }), JSON.stringify(conn), String(conn)]) {
      expect(text).not.toContain('Pr0vided-token');
    }
    await lastValueFrom(conn.close());
    await server!.done();
    expect(provider).toHaveBeenCalledTimes(1);
    expect(responses).toEqual(['\0opts-user\0Pr0vided-token']);
  });

  it('asks again for each reconnect with recovery, and logs in with the new answer', async () => {
    const responses: string[] = [];
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await forceClose(peer);
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await forceClose(peer);
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await closeHandshake(peer);
      },
    ]);
    let calls = 0;
    const provider: CredentialsProvider = () => {
      calls++;
      return { username: `user-${calls}`, password: `token-${calls}` };
    };
    const w = watch(connect(options({ credentials: provider, recovery: RECOVERY })));
    const first = await w.nth(1);
    const third = await w.nth(3);
    expect(third).not.toBe(first);
    expect(calls).toBe(3);
    w.subscription.unsubscribe();
    await server!.done();
    expect(responses).toEqual(['\0user-1\0token-1', '\0user-2\0token-2', '\0user-3\0token-3']);
    expect(calls).toBe(3);
  });

  it('asks once per host tried: a refused host, then the next one', async () => {
    const responses: string[] = [];
    await serve(async (peer) => {
      responses.push(plain((await peer.handshake()).startOk));
      await closeHandshake(peer);
    });
    // A port nothing listens on: listen, note it, close.
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    let calls = 0;
    const conn = await watch(
      connect({
        hosts: [`127.0.0.1:${closedPort}`, `127.0.0.1:${server!.port}`],
        connectionTimeout: 3000,
        heartbeat: 0,
        credentials: () => ({ password: `token-${++calls}` }),
      }),
    ).nth(1);
    await lastValueFrom(conn.close());
    await server!.done();
    expect(calls).toBe(2);
    expect(responses).toEqual(['\0guest\0token-2']);
  });

  it('fails the attempt with CREDENTIALS_UNAVAILABLE when it fails, before opening a socket', async () => {
    await serve(async () => {});
    const provider = () => Promise.reject(new Error('identity provider unreachable'));
    const error = await watch(connect(options({ password: 'Fixed-Pa55', credentials: provider }))).failure();
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE', initiator: 'client' });
    expect((error as Error).message).toContain('identity provider unreachable');
    expect((error as Error).message).not.toContain('Fixed-Pa55');
    expect(isRetryableError(error)).toBe(true);
    await macrotask();
    expect(server!.connections).toBe(0);
  });

  it('is retried by recovery: two failures, then a login with its third answer', async () => {
    const responses: string[] = [];
    await serve(async (peer) => {
      responses.push(plain((await peer.handshake()).startOk));
      await closeHandshake(peer);
    });
    let calls = 0;
    const states: string[] = [];
    const provider: CredentialsProvider = () => {
      calls++;
      if (calls === 1) throw new Error('no token yet');
      if (calls === 2) return Promise.reject(new Error('HTTP 503'));
      return { password: 'third-time' };
    };
    const conn = await watch(
      connect(options({ credentials: provider, recovery: RECOVERY, debug: (l) => states.push(l) })),
    ).nth(1);
    await lastValueFrom(conn.close());
    await server!.done();
    expect(calls).toBe(3);
    expect(server!.connections).toBe(1);
    expect(responses).toEqual(['\0guest\0third-time']);
    expect(
      states.filter((l) => l.includes('CREDENTIALS_UNAVAILABLE') || l.includes('no token yet')),
    ).not.toEqual([]);
  });

  it('is bounded by the connect timeout: a late answer opens no socket', async () => {
    await serve(async () => {});
    const answer = signal<ProvidedCredentials>();
    const error = await watch(
      connect(options({ connectionTimeout: 100, credentials: () => answer.promise })),
    ).failure();
    expect(error).toMatchObject({ code: 'CONNECT_TIMEOUT' });
    answer.resolve({ password: 'too-late' });
    await macrotask();
    await macrotask();
    expect(server!.connections).toBe(0);
  });
});

/** A broker that accepts every update-secret (calling `onUpdate`) until the client closes. */
function serveUpdates(onUpdate: () => void): Promise<ScriptedServer> {
  return serve(async (peer) => {
    await peer.handshake();
    for (;;) {
      const event = await peer.next();
      if (event.kind === 'method' && event.method.name === 'connection.update-secret') {
        onUpdate();
        peer.send(0, { name: 'connection.update-secret-ok' });
        continue;
      }
      if (event.kind === 'method' && event.method.name === 'connection.close') {
        peer.send(0, { name: 'connection.close-ok' });
        return;
      }
    }
  });
}

describe('refresh before expiry', () => {
  it('asks the provider again and sends update-secret with the NEW secret, then schedules the next refresh', async () => {
    const updates: MethodOf<'connection.update-secret'>[] = [];
    const responses: string[] = [];
    const secondOk = signal();
    await serve(async (peer) => {
      responses.push(plain((await peer.handshake()).startOk));
      updates.push(await peer.expect('connection.update-secret', { channel: 0 }));
      peer.send(0, { name: 'connection.update-secret-ok' });
      updates.push(await peer.expect('connection.update-secret', { channel: 0 }));
      peer.send(0, { name: 'connection.update-secret-ok' });
      secondOk.resolve();
      await closeHandshake(peer);
    });
    const answers: ProvidedCredentials[] = [];
    const provider: CredentialsProvider = () => {
      const n = answers.length + 1;
      // 1: expires within 5 s, so the refresh runs at once; 2: 5.05 s, refreshed ~50 ms later; 3: no expiry.
      const answer: ProvidedCredentials =
        n === 1
          ? { password: 'tok-1', expiresAt: Date.now() + 1_000 }
          : n === 2
            ? { password: 'tok-2', expiresAt: new Date(Date.now() + 5_050) }
            : { password: 'tok-3' };
      answers.push(answer);
      return Promise.resolve(answer);
    };
    const w = watch(connect(options({ credentials: provider })));
    await w.nth(1);
    await secondOk.promise;
    w.subscription.unsubscribe();
    await server!.done();
    expect(responses).toEqual(['\0guest\0tok-1']);
    expect(updates.map(secretOf)).toEqual(['tok-2', 'tok-3']);
    expect(updates.map((u) => u.reason)).toEqual([
      'rxamqp: the secret was about to expire',
      'rxamqp: the secret was about to expire',
    ]);
    expect(answers).toHaveLength(3);
  });

  it('does not refresh a secret without expiresAt', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      // The next thing the client sends is the channel the test opens, not an update-secret.
      await peer.expect('channel.open', { channel: 1 });
      peer.send(1, { name: 'channel.open-ok' });
      await closeHandshake(peer);
    });
    const provider = jest.fn(() => ({ password: 'no-expiry' }));
    const conn = await watch(connect(options({ credentials: provider }))).nth(1);
    await conn.openChannel();
    await lastValueFrom(conn.close());
    await server!.done();
    expect(provider).toHaveBeenCalledTimes(1);
  });

  it('logs a failed refresh through debug and keeps the connection open (no update-secret sent)', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('channel.open', { channel: 1 });
      peer.send(1, { name: 'channel.open-ok' });
      await closeHandshake(peer);
    });
    const lines: string[] = [];
    const logged = signal();
    let calls = 0;
    const provider: CredentialsProvider = () => {
      calls++;
      if (calls === 1) return { password: 'Sup3rS3cret-1', expiresAt: Date.now() + 1_000 };
      return Promise.reject(new Error('IdP unavailable'));
    };
    const conn = await watch(
      connect(
        options({
          credentials: provider,
          debug: (line) => {
            lines.push(line);
            if (line.includes('refresh')) logged.resolve();
          },
        }),
      ),
    ).nth(1);
    await logged.promise;
    expect(lines).toContain(
      'rxamqp: secret refresh failed: the credentials provider failed: IdP unavailable',
    );
    expect(conn.isOpen).toBe(true);
    await conn.openChannel();
    await lastValueFrom(conn.close());
    await server!.done();
    expect(calls).toBe(2);
    expect(lines.join('\n')).not.toContain('Sup3rS3cret');
  });

  it('tries a failed refresh again, and hands the broker the next answer', async () => {
    // RabbitMQ keeps an AMQP 0-9-1 connection open past its token's expiry and refuses every later
    // access check with 403 (test/integration/oauth2.test.ts): nothing else would renew the secret.
    const updated = signal<string>();
    await serve(async (peer) => {
      await peer.handshake();
      updated.resolve(secretOf(await peer.expect('connection.update-secret', { timeoutMs: 8_000 })));
      peer.send(0, { name: 'connection.update-secret-ok' });
      await closeHandshake(peer);
    });
    const lines: string[] = [];
    let calls = 0;
    const provider: CredentialsProvider = () => {
      calls++;
      if (calls === 1) return { password: 'tok-1', expiresAt: Date.now() + 1_500 };
      if (calls === 2) return Promise.reject(new Error('IdP hiccup'));
      return { password: 'tok-3' };
    };
    const conn = await watch(connect(options({ credentials: provider, debug: (l) => lines.push(l) }))).nth(1);
    // The script fails (done() rejects) when no update-secret comes within its 8 s.
    expect(await Promise.race([updated.promise, server!.done().then(() => 'no update-secret')])).toBe(
      'tok-3',
    );
    await lastValueFrom(conn.close());
    await server!.done();
    expect(calls).toBe(3);
    expect(lines).toContain('rxamqp: secret refresh failed: the credentials provider failed: IdP hiccup');
  });

  it('logs a junk refresh answer the same way', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await closeHandshake(peer);
    });
    const lines: string[] = [];
    const logged = signal();
    let calls = 0;
    const provider = (() => {
      calls++;
      return calls === 1 ? { password: 'tok-1', expiresAt: Date.now() + 1_000 } : { password: 'x\0y' };
    }) as CredentialsProvider;
    const conn = await watch(
      connect(
        options({
          credentials: provider,
          debug: (line) => {
            lines.push(line);
            if (line.includes('refresh')) logged.resolve();
          },
        }),
      ),
    ).nth(1);
    await logged.promise;
    expect(lines.find((l) => l.includes('refresh'))).toMatch(
      /^rxamqp: secret refresh failed: the credentials provider must give a password .*without NUL/,
    );
    expect(conn.isOpen).toBe(true);
    await lastValueFrom(conn.close());
    await server!.done();
  });

  it('does not hammer the provider and the broker with a secret that expires within 5 s', async () => {
    // A provider that caches its token until it expires gives the same token, with the same expiry,
    // for every refresh in the last seconds of its life: each refresh then schedules the next at 0 ms.
    // So does any provider of tokens that live less than 5 s. The refreshes must stay spaced out.
    let updates = 0;
    await serveUpdates(() => {
      updates++;
    });
    const expiresAt = Date.now() + 3_000;
    let calls = 0;
    const provider: CredentialsProvider = () => {
      calls++;
      return { password: 'cached-token', expiresAt };
    };
    const conn = await watch(connect(options({ credentials: provider }))).nth(1);
    // An observation window, not a timing assertion: a correct client makes a handful of calls in it
    // at most; the loop makes hundreds.
    await new Promise((r) => setTimeout(r, 300));
    const callsInWindow = calls;
    const updatesInWindow = updates;
    await lastValueFrom(conn.close());
    await server!.done();
    expect(callsInWindow).toBeLessThanOrEqual(3);
    expect(updatesInWindow).toBeLessThanOrEqual(2);
  });
});

describe('a refresh that gives a secret already expired', () => {
  it('is asked again with a growing wait (2 s, then 4 s, up to a minute), not every second', async () => {
    let updates = 0;
    await serveUpdates(() => {
      updates++;
    });
    const waits: string[] = [];
    const second = signal();
    let calls = 0;
    const provider: CredentialsProvider = () => {
      calls++;
      // The first answer expires within 5 s (refreshed at once); every later one is already expired.
      return { password: `token-${calls}`, expiresAt: calls === 1 ? Date.now() + 1_000 : Date.now() - 1_000 };
    };
    const conn = await watch(
      connect(
        options({
          credentials: provider,
          debug: (line) => {
            const wait = /already expired; asking again in (\d+) ms$/.exec(line);
            if (wait === null) return;
            waits.push(wait[1]!);
            if (waits.length === 2) second.resolve();
          },
        }),
      ),
    ).nth(1);
    await second.promise;
    await lastValueFrom(conn.close());
    await server!.done();
    expect(waits).toEqual(['2000', '4000']);
    expect(calls).toBe(3);
    expect(updates).toBe(2); // each answer still goes to the broker: it may accept it
  }, 15_000);
});

describe('Connection.updateSecret', () => {
  it('sends update-secret (string or Secret, default or given reason) and emits once the broker answers', async () => {
    const updates: MethodOf<'connection.update-secret'>[] = [];
    await serve(async (peer) => {
      await peer.handshake();
      updates.push(await peer.expect('connection.update-secret', { channel: 0 }));
      peer.send(0, { name: 'connection.update-secret-ok' });
      updates.push(await peer.expect('connection.update-secret', { channel: 0 }));
      peer.send(0, { name: 'connection.update-secret-ok' });
      await closeHandshake(peer);
    });
    const conn = await watch(connect(options())).nth(1);
    const cold = conn.updateSecret('never-sent');
    expect(await settle(conn.updateSecret('new-séc\u00e9ret'))).toEqual({ values: [undefined] });
    expect(await settle(conn.updateSecret(new Secret('from-a-Secret'), 'token refreshed'))).toEqual({
      values: [undefined],
    });
    expect(cold).toBeDefined(); // never subscribed: nothing sent (the script would see a third update)
    await lastValueFrom(conn.close());
    await server!.done();
    expect(updates.map(secretOf)).toEqual(['new-séc\u00e9ret', 'from-a-Secret']);
    expect(updates.map((u) => u.reason)).toEqual(['rxamqp: the secret was rotated', 'token refreshed']);
  });

  it('resolves two updates in flight in order, each on its own update-secret-ok', async () => {
    const secrets: string[] = [];
    const bothSent = signal();
    const releaseFirst = signal();
    await serve(async (peer) => {
      await peer.handshake();
      secrets.push(secretOf(await peer.expect('connection.update-secret')));
      secrets.push(secretOf(await peer.expect('connection.update-secret')));
      bothSent.resolve();
      await releaseFirst.promise;
      peer.send(0, { name: 'connection.update-secret-ok' });
      await new Promise((r) => setTimeout(r, 20));
      peer.send(0, { name: 'connection.update-secret-ok' });
      await closeHandshake(peer);
    });
    const conn = await watch(connect(options())).nth(1);
    const order: string[] = [];
    const first = lastValueFrom(conn.updateSecret('s-1')).then(() => order.push('s-1'));
    const second = lastValueFrom(conn.updateSecret('s-2')).then(() => order.push('s-2'));
    await bothSent.promise;
    expect(order).toEqual([]);
    releaseFirst.resolve();
    await first;
    expect(order).toEqual(['s-1']);
    await second;
    expect(order).toEqual(['s-1', 's-2']);
    await lastValueFrom(conn.close());
    await server!.done();
    expect(secrets).toEqual(['s-1', 's-2']);
  });

  it.each<[string, () => [unknown, unknown?]]>([
    ['an empty string', () => ['']],
    ['an empty Secret', () => [new Secret('')]],
    ['a number', () => [42]],
    ['null', () => [null]],
    ['a Buffer', () => [Buffer.from('token')]],
    ['a reason that is not a string', () => ['token', 7]],
    // PLAIN cannot carry it: a reconnect with it would fail for good (the provider path refuses it too).
    ['a secret with a NUL character', () => ['tok\0en']],
    ['a Secret with a NUL character', () => [new Secret('tok\0en')]],
  ])('refuses %s with a ConfigurationError, sending nothing', async (_what, args) => {
    await serve(async (peer) => {
      await peer.handshake();
      await closeHandshake(peer); // an update-secret here would fail the script
    });
    const conn = await watch(connect(options())).nth(1);
    const [secret, reason] = args();
    const { values, error } = await settle(
      reason === undefined
        ? conn.updateSecret(secret as string)
        : conn.updateSecret(secret as string, reason as string),
    );
    expect(values).toEqual([]);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/updateSecret takes a non-empty secret/);
    await lastValueFrom(conn.close());
    await server!.done();
  });

  it('treats an update-secret-ok nobody asked for as a protocol error (503 COMMAND_INVALID)', async () => {
    let close: MethodOf<'connection.close'> | undefined;
    await serve(async (peer) => {
      await peer.handshake();
      peer.send(0, { name: 'connection.update-secret-ok' });
      close = await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
    });
    const w = watch(connect(options()));
    await w.nth(1);
    const error = await w.failure();
    await server!.done();
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', replyCode: 503 });
    expect(close).toMatchObject({ replyCode: 503 });
    expect(close!.replyText).toMatch(/unexpected connection.update-secret-ok/);
  });

  it('errors on a connection the client closed, sending nothing', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await closeHandshake(peer);
      await peer.closed;
    });
    const conn = await watch(connect(options())).nth(1);
    await lastValueFrom(conn.close());
    const { error } = await settle(conn.updateSecret('too-late'));
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'CLIENT_CLOSED' });
    expect((error as Error).message).toMatch(/update-secret needs an open connection/);
    expect((error as Error).message).not.toContain('too-late');
    await server!.done();
  });

  it('errors with the close error on a connection the broker closed', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await forceClose(peer);
    });
    const w = watch(connect(options()));
    const conn = await w.nth(1);
    const closedError = await w.failure();
    const { error } = await settle(conn.updateSecret('too-late'));
    expect(error).toBe(closedError);
    expect(error).toMatchObject({ code: 'SERVER_CLOSED', replyCode: 320 });
    await server!.done();
  });

  it('errors with the broker close when the broker refuses the secret (RabbitMQ: 530 NOT_ALLOWED)', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('connection.update-secret');
      await peer.closeConnection(530, 'NOT_ALLOWED - New secret was refused by one of the backends', 10, 70);
    });
    const w = watch(connect(options()));
    const conn = await w.nth(1);
    const { values, error } = await settle(conn.updateSecret('Refused-S3cret'));
    expect(values).toEqual([]);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({
      code: 'SERVER_CLOSED',
      replyCode: 530,
      replyText: 'NOT_ALLOWED - New secret was refused by one of the backends',
      classId: 10,
      methodId: 70,
    });
    expect(`${(error as Error).message} ${(error as Error).stack}`).not.toContain('Refused-S3cret');
    expect(await w.failure()).toBe(error);
    await server!.done();
  });

  it('with recovery, a refused secret (530 on update-secret) reconnects, asking the provider again', async () => {
    // updateSecret's documentation: "(recovery, if on, reconnects)".
    const responses: string[] = [];
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await peer.expect('connection.update-secret');
        await peer.closeConnection(
          530,
          'NOT_ALLOWED - New secret was refused by one of the backends',
          10,
          70,
        );
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await closeHandshake(peer);
      },
    ]);
    let calls = 0;
    const w = watch(
      connect(options({ recovery: RECOVERY, credentials: () => ({ password: `token-${++calls}` }) })),
    );
    const first = await w.nth(1);
    const { error } = await settle(first.updateSecret('refused'));
    expect(error).toMatchObject({ replyCode: 530, classId: 10, methodId: 70 });
    const outcome = await w.nth(2).then(
      () => 'reconnected',
      (e: unknown) => `connect() ended: ${String(e)}`,
    );
    expect(outcome).toBe('reconnected');
    w.subscription.unsubscribe();
    await server!.done();
    expect(responses).toEqual(['\0guest\0token-1', '\0guest\0token-2']);
  });

  it('errors with CLIENT_CLOSED when the client closes while waiting for update-secret-ok', async () => {
    const received = signal();
    await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('connection.update-secret');
      received.resolve();
      await closeHandshake(peer);
    });
    const conn = await watch(connect(options())).nth(1);
    const outcome = settle(conn.updateSecret('pending'));
    await received.promise;
    await lastValueFrom(conn.close());
    const { values, error } = await outcome;
    expect(values).toEqual([]);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'CLIENT_CLOSED' });
    expect((error as Error).message).toMatch(/closed before the broker accepted the new secret/);
    await server!.done();
  });

  it('errors with CONNECTION_LOST when the socket drops while waiting', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await peer.expect('connection.update-secret');
      peer.destroy();
    });
    const conn = await watch(connect(options())).nth(1);
    const { error } = await settle(conn.updateSecret('pending'));
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    await server!.done();
  });
});

describe('which secret a reconnect logs in with', () => {
  it('without a provider: the last secret the broker accepted', async () => {
    const responses: string[] = [];
    const accepted = signal();
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await peer.expect('connection.update-secret');
        peer.send(0, { name: 'connection.update-secret-ok' });
        await accepted.promise;
        await forceClose(peer);
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await closeHandshake(peer);
      },
    ]);
    const w = watch(connect(options({ username: 'u', password: 'p-0', recovery: RECOVERY })));
    const first = await w.nth(1);
    await lastValueFrom(first.updateSecret('p-1'));
    accepted.resolve();
    await w.nth(2);
    w.subscription.unsubscribe();
    await server!.done();
    expect(responses).toEqual(['\0u\0p-0', '\0u\0p-1']);
  });

  it('without a provider: not a secret the broker never accepted', async () => {
    const responses: string[] = [];
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await peer.expect('connection.update-secret');
        await forceClose(peer); // no update-secret-ok
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await closeHandshake(peer);
      },
    ]);
    const w = watch(connect(options({ username: 'u', password: 'p-0', recovery: RECOVERY })));
    const first = await w.nth(1);
    const { error } = await settle(first.updateSecret('p-1'));
    expect(error).toMatchObject({ replyCode: 320 });
    await w.nth(2);
    w.subscription.unsubscribe();
    await server!.done();
    expect(responses).toEqual(['\0u\0p-0', '\0u\0p-0']);
  });

  it('with a provider: the provider is asked, not the secret given to updateSecret', async () => {
    const responses: string[] = [];
    const accepted = signal();
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await peer.expect('connection.update-secret');
        peer.send(0, { name: 'connection.update-secret-ok' });
        await accepted.promise;
        await forceClose(peer);
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await closeHandshake(peer);
      },
    ]);
    let calls = 0;
    const w = watch(
      connect(options({ recovery: RECOVERY, credentials: () => ({ password: `provided-${++calls}` }) })),
    );
    const first = await w.nth(1);
    await lastValueFrom(first.updateSecret('manual'));
    accepted.resolve();
    await w.nth(2);
    w.subscription.unsubscribe();
    await server!.done();
    expect(responses).toEqual(['\0guest\0provided-1', '\0guest\0provided-2']);
  });

  it('a refused updateSecret call (reason over 255 bytes) leaves no trace: the next one resolves, and reconnects use it', async () => {
    const responses: string[] = [];
    const secrets: string[] = [];
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        secrets.push(secretOf(await peer.expect('connection.update-secret')));
        peer.send(0, { name: 'connection.update-secret-ok' });
        await forceClose(peer);
      },
      async (peer) => {
        responses.push(plain((await peer.handshake()).startOk));
        await closeHandshake(peer);
      },
    ]);
    const w = watch(connect(options({ username: 'u', password: 'p-0', recovery: RECOVERY })));
    const first = await w.nth(1);
    const refused = await settle(first.updateSecret('never-sent', 'x'.repeat(256)));
    const accepted = await settle(first.updateSecret('p-1'));
    await w.nth(2);
    w.subscription.unsubscribe();
    await server!.done();
    // One expectation over everything, so that a failure shows the whole story.
    expect({
      refused: { values: refused.values, configurationError: refused.error instanceof ConfigurationError },
      accepted,
      sent: secrets,
      logins: responses,
    }).toEqual({
      refused: { values: [], configurationError: true },
      accepted: { values: [undefined] },
      sent: ['p-1'],
      logins: ['\0u\0p-0', '\0u\0p-1'],
    });
  });
});

describe('a secret too large for a frame (frame_max 4096)', () => {
  const tune = { tune: { frameMax: 4096 } };
  const huge = 'J'.repeat(5000);

  it('updateSecret errors with FRAME_TOO_LARGE and leaves no trace: the next one resolves, and reconnects use it', async () => {
    const responses: string[] = [];
    const secrets: string[] = [];
    await serve([
      async (peer) => {
        responses.push(plain((await peer.handshake(tune)).startOk));
        secrets.push(secretOf(await peer.expect('connection.update-secret')));
        peer.send(0, { name: 'connection.update-secret-ok' });
        await forceClose(peer);
      },
      async (peer) => {
        responses.push(plain((await peer.handshake(tune)).startOk));
        await closeHandshake(peer);
      },
    ]);
    const w = watch(connect(options({ username: 'u', password: 'p-0', recovery: RECOVERY })));
    const first = await w.nth(1);
    const tooLarge = await settle(first.updateSecret(huge));
    const accepted = await settle(first.updateSecret('p-1'));
    const reconnect = await w.nth(2).then(
      () => 'reconnected',
      (e: unknown) => String(e),
    );
    w.subscription.unsubscribe();
    const scripts = await server!.done().then(
      () => 'done',
      (e: unknown) => String(e),
    );
    expect({
      tooLarge: { values: tooLarge.values, code: (tooLarge.error as { code?: unknown } | undefined)?.code },
      accepted,
      reconnect,
      scripts,
      sent: secrets,
      logins: responses.map((r) => (r.length > 40 ? `${r.slice(0, 10)}... (${r.length} bytes)` : r)),
    }).toEqual({
      tooLarge: { values: [], code: 'FRAME_TOO_LARGE' },
      accepted: { values: [undefined] },
      reconnect: 'reconnected',
      scripts: 'done',
      sent: ['p-1'],
      logins: ['\0u\0p-0', '\0u\0p-1'],
    });
  });

  it('a refresh that cannot be sent is logged through debug, not an unhandled rejection, and the connection stays open', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      await serve(async (peer) => {
        await peer.handshake(tune);
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        await closeHandshake(peer);
      });
      const lines: string[] = [];
      let calls = 0;
      const provider: CredentialsProvider = () =>
        ++calls === 1 ? { password: 'small', expiresAt: Date.now() + 1_000 } : { password: huge };
      const conn = await watch(connect(options({ credentials: provider, debug: (l) => lines.push(l) }))).nth(
        1,
      );
      while (calls < 2) await macrotask();
      await macrotask();
      await macrotask();
      await conn.openChannel();
      expect(conn.isOpen).toBe(true);
      await lastValueFrom(conn.close());
      await server!.done();
      expect(unhandled).toEqual([]);
      expect(lines.some((l) => /secret refresh failed: .*frame/.test(l))).toBe(true);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe("a provider's pending Observable is unsubscribed when the attempt ends", () => {
  it('on the connect timeout', async () => {
    await serve(async () => {});
    const probe = pendingObservable();
    const error = await watch(
      connect(options({ connectionTimeout: 100, credentials: () => probe.source })),
    ).failure();
    expect(error).toMatchObject({ code: 'CONNECT_TIMEOUT' });
    await macrotask();
    expect(probe.tornDown()).toBe(1);
  });

  it('when the subscriber leaves while the provider has not answered', async () => {
    await serve(async () => {});
    const probe = pendingObservable();
    const w = watch(connect(options({ credentials: () => probe.source })));
    await probe.subscribed;
    w.subscription.unsubscribe();
    await macrotask();
    expect(probe.tornDown()).toBe(1);
    expect(server!.connections).toBe(0);
  });

  it('when the connection closes during a refresh', async () => {
    await serve(async (peer) => {
      await peer.handshake();
      await closeHandshake(peer);
    });
    const probe = pendingObservable();
    let calls = 0;
    const provider: CredentialsProvider = () =>
      ++calls === 1 ? { password: 'tok-1', expiresAt: Date.now() + 1_000 } : probe.source;
    const conn = await watch(connect(options({ credentials: provider }))).nth(1);
    await probe.subscribed;
    await lastValueFrom(conn.close());
    await server!.done();
    await macrotask();
    expect(probe.tornDown()).toBe(1);
  });
});
