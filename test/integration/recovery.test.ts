/**
 * Recovery against the real broker: a connection force-closed by `rabbitmqctl close_connection` comes
 * back by itself, `state$` tells the story, pipelines built with `switchMap` re-declare their topology
 * and resume consuming, stale deliveries never reach the new channel, errors that cannot be fixed by
 * retrying are not retried, several hosts are tried in turn, and a shared connection is one socket.
 */
import { randomUUID } from 'node:crypto';
import {
  BehaviorSubject,
  filter,
  firstValueFrom,
  lastValueFrom,
  map,
  type Subscription,
  switchMap,
  take,
  tap,
} from 'rxjs';
import {
  AuthenticationError,
  applyTopology,
  binding,
  type Channel,
  ChannelClosedError,
  ConfigurationError,
  type Connection,
  type ConnectionState,
  connect,
  consumer,
  consumeSpec,
  type Delivery,
  defineTopology,
  exchange,
  openConnection,
  queue,
} from '../../src/node.js';
import { brokerEndpoint, brokerUrl } from '../support/broker.js';
import { closeConnectionsNamed, connectionPids, eventually } from '../support/rabbitmqctl.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const FAST = { reconnect: { delays: [50, 100, 200] } } as const;

function uniqueName(what: string): string {
  return `rxamqp-test-recovery-${what}-${randomUUID().slice(0, 8)}`;
}

async function deleteQueue(queue: string): Promise<void> {
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDelete(queue));
  await lastValueFrom(conn.close());
}

async function publishTo(queue: string, bodies: string[]): Promise<void> {
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  await lastValueFrom(ch.confirmSelect());
  for (const body of bodies) await lastValueFrom(ch.publish('', queue, body));
  await lastValueFrom(conn.close());
}

describe('recovery (real broker)', () => {
  let url: string;
  beforeAll(async () => {
    url = await brokerUrl();
  });

  it('reconnects after close_connection, reports it on state$, and the switchMap pipeline resumes consuming', async () => {
    const name = uniqueName('consumer');
    const queue = uniqueName('q');
    const connection$ = connect(url, { name, recovery: FAST });
    const states: ConnectionState[] = [];
    const stateSub = connection$.state$.subscribe((s) => states.push(s));
    const received: string[] = [];
    const connections: Connection[] = [];
    const errors: unknown[] = [];
    const sub = connection$
      .pipe(
        tap((c) => connections.push(c)),
        switchMap((conn) => conn.channel()),
        // The topology is declared again on every new channel.
        switchMap((ch) => ch.queueDeclare(queue, { durable: true }).pipe(switchMap(() => ch.consume(queue)))),
      )
      .subscribe({
        next: (d) => {
          received.push(d.body.toString());
          d.ack();
        },
        error: (e) => errors.push(e),
      });
    try {
      expect(await eventually(() => connections.length === 1)).toBe(true);
      await eventually(() => states.at(-1)?.status === 'CONNECTED');
      await publishTo(queue, ['before']);
      expect(await eventually(() => received.includes('before'))).toBe(true);

      expect(await closeConnectionsNamed(name, 'recovery test')).toBe(1);
      expect(await eventually(() => connections.length === 2)).toBe(true);
      expect(connections[0]!.isOpen).toBe(false);
      expect(connections[1]!.isOpen).toBe(true);
      // What is asked of the lost connection completes without a value (the new one serves instead).
      expect(await lastValueFrom(connections[0]!.channel(), { defaultValue: 'none' })).toBe('none');
      expect(await lastValueFrom(connections[0]!.cachedChannel(), { defaultValue: 'none' })).toBe('none');

      await publishTo(queue, ['after']);
      expect(await eventually(() => received.includes('after'))).toBe(true);
      expect(errors).toEqual([]);

      const statuses = states.map((s) => s.status);
      expect(statuses.slice(0, 3)).toEqual(['INITIAL', 'CONNECTING', 'CONNECTED']);
      const lost = states.findIndex((s) => s.status === 'RECONNECTING');
      expect(lost).toBeGreaterThan(2);
      expect(states[lost]!.cause?.message).toContain('recovery test');
      expect(states[lost]!.delay).toBe(50);
      expect(states[lost]!.attempt).toBe(1);
      expect(statuses.slice(lost)).toEqual(['RECONNECTING', 'CONNECTING', 'CONNECTED']);
      expect(states.at(-1)!.host).toBe(connections[1]!.host);
    } finally {
      sub.unsubscribe();
      await deleteQueue(queue);
    }
    expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
    stateSub.unsubscribe();
    expect(states.at(-2)?.status).toBe('CLOSING');
    expect(await connectionPids(name)).toEqual([]);
  }, 60_000);

  it('server-named queues get their new names after a reconnect, and consumers follow them', async () => {
    const name = uniqueName('server-named');
    const exchange = uniqueName('fanout');
    const connection$ = connect(url, { name, recovery: FAST });
    const queues: string[] = [];
    const received: string[] = [];
    const sub = connection$
      .pipe(
        switchMap((conn) => conn.channel()),
        switchMap((ch) =>
          ch.exchangeDeclare(exchange, 'fanout', { autoDelete: true }).pipe(
            switchMap(() => ch.queueDeclare('', { exclusive: true })),
            tap(({ queue }) => queues.push(queue)),
            switchMap(({ queue }) =>
              ch.queueBind(queue, exchange, '').pipe(switchMap(() => ch.consume(queue, { noAck: true }))),
            ),
          ),
        ),
      )
      .subscribe((d) => received.push(d.body.toString()));
    const publisher = await openConnection(url);
    const pch = await publisher.openChannel();
    try {
      expect(await eventually(() => queues.length === 1)).toBe(true);
      // The consumer is registered once the queue is bound and basic.consume went out: publish until it arrives.
      await eventually(() => {
        pch.publish(exchange, '', 'one').subscribe();
        return received.includes('one');
      });
      await closeConnectionsNamed(name);
      expect(await eventually(() => queues.length === 2)).toBe(true);
      expect(queues[1]).not.toBe(queues[0]);
      expect(
        await eventually(() => {
          pch.publish(exchange, '', 'two').subscribe();
          return received.includes('two');
        }),
      ).toBe(true);
    } finally {
      sub.unsubscribe();
      await lastValueFrom(publisher.close());
    }
  }, 60_000);

  it('restores a spec topology after a reconnect: exchanges, queues (new server names), bindings, qos, consumers', async () => {
    const name = uniqueName('topology');
    const ex = exchange({ name: uniqueName('topic'), type: 'topic', autoDelete: true });
    const durable = queue({ name: uniqueName('durable'), autoDelete: true });
    const mine = queue({ name: '', exclusive: true });
    const worker = consumer({ queue: mine, prefetch: 1 });
    const topology = defineTopology({
      exchanges: [ex],
      queues: [durable, mine],
      bindings: [
        binding({ exchange: ex, queue: mine, routingKey: 'job.*' }),
        binding({ exchange: ex, queue: durable, routingKey: '#' }),
      ],
      consumers: [worker],
    });
    const connection$ = connect(url, { name, recovery: FAST });
    const names: string[] = [];
    const received: Delivery[] = [];
    const sub = connection$
      .pipe(
        switchMap((conn) =>
          applyTopology(conn, topology).pipe(
            tap((applied) => names.push(applied.queueName(mine))),
            switchMap((applied) => conn.channel().pipe(switchMap((ch) => consumeSpec(ch, worker, applied)))),
          ),
        ),
      )
      .subscribe((d) => received.push(d));
    const publisher = await openConnection(url);
    const pch = await publisher.openChannel();
    try {
      for (const round of [1, 2]) {
        expect(await eventually(() => names.length === round)).toBe(true);
        const before = received.length;
        // prefetch 1: of two messages only one is delivered until it is acked.
        expect(
          await eventually(() => {
            if (received.length === before) pch.publish(ex.name, 'job.a', `r${round}-1`).subscribe();
            return received.length === before + 1;
          }),
        ).toBe(true);
        pch.publish(ex.name, 'job.b', `r${round}-2`).subscribe();
        await eventually(() => false, 150);
        expect(received.length).toBe(before + 1);
        received.at(-1)!.ack();
        expect(await eventually(() => received.length === before + 2)).toBe(true);
        received.at(-1)!.ack();
        if (round === 1) await closeConnectionsNamed(name);
      }
      expect(names[1]).not.toBe(names[0]);
      expect(names.every((n) => n.startsWith('amq.gen-'))).toBe(true);
    } finally {
      sub.unsubscribe();
      await lastValueFrom(pch.queueDelete(durable.name));
      await lastValueFrom(publisher.close());
    }
  }, 60_000);

  it('a stale ack after a reconnect is a reported no-op and does not close the new channel', async () => {
    const name = uniqueName('stale');
    const queue = uniqueName('q');
    await publishTo(queue, []).catch(() => undefined);
    const connection$ = connect(url, { name, recovery: FAST });
    const channels: Channel[] = [];
    const deliveries: Delivery[] = [];
    const sub: Subscription = connection$
      .pipe(
        switchMap((conn) => conn.channel()),
        tap((ch) => channels.push(ch)),
        switchMap((ch) => ch.queueDeclare(queue).pipe(switchMap(() => ch.consume(queue, { prefetch: 1 })))),
      )
      .subscribe((d) => deliveries.push(d));
    try {
      expect(await eventually(() => channels.length === 1)).toBe(true);
      await publishTo(queue, ['m']);
      expect(await eventually(() => deliveries.length === 1)).toBe(true);
      const stale = deliveries[0]!;
      await closeConnectionsNamed(name);
      // The unacked message is redelivered on the new connection's channel.
      expect(await eventually(() => deliveries.length === 2)).toBe(true);
      const fresh = deliveries[1]!;
      expect(fresh.fields.redelivered).toBe(true);
      expect(fresh.fields.deliveryTag).toBe(stale.fields.deliveryTag); // same tag number, another channel
      expect(stale.ack()).toBe(false); // reported: nothing was sent
      // The new channel is still open and works: its own ack goes through and a declare succeeds.
      expect(fresh.ack()).toBe(true);
      const ok = await lastValueFrom(channels[1]!.queueDeclare(queue));
      expect(ok.messageCount).toBe(0);
      expect(channels[1]!.isOpen).toBe(true);
    } finally {
      sub.unsubscribe();
      await deleteQueue(queue);
    }
  }, 60_000);

  it('an operation in flight when the connection is lost completes instead of erroring, so the pipeline waits for the next connection', async () => {
    const endpoint = await brokerEndpoint();
    const proxy = await startTcpProxy(endpoint);
    const queue = uniqueName('in-flight');
    const go = new BehaviorSubject(false);
    const connection$ = connect(proxy.url(url), { recovery: FAST });
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    const channels: Channel[] = [];
    const received: string[] = [];
    const errors: unknown[] = [];
    const publishErrors: unknown[] = [];
    const sub = connection$
      .pipe(
        switchMap((conn) => conn.channel()),
        switchMap((ch) => ch.confirmSelect().pipe(map(() => ch))),
        tap((ch) => channels.push(ch)),
        switchMap((ch) =>
          go.pipe(
            filter(Boolean),
            take(1),
            tap(() => {
              // A publish on the channel, not confirmed yet when the connection goes: it errors, typed.
              ch.publish('', queue, 'in flight').subscribe({ error: (e) => publishErrors.push(e) });
            }),
            switchMap(() => ch.queueDeclare(queue)),
            switchMap(() => ch.consume(queue, { noAck: true })),
          ),
        ),
      )
      .subscribe({ next: (d) => received.push(d.body.toString()), error: (e) => errors.push(e) });
    try {
      expect(await eventually(() => channels.length === 1)).toBe(true);
      proxy.blackhole(); // what the client sends now stays unanswered
      go.next(true);
      await eventually(() => false, 100);
      proxy.reset();
      proxy.unblackhole();
      expect(await eventually(() => channels.length === 2, 10_000)).toBe(true);
      expect(errors).toEqual([]);
      expect(await eventually(() => publishErrors.length === 1)).toBe(true);
      expect(publishErrors[0]).toBeInstanceOf(ChannelClosedError);
      expect((publishErrors[0] as ChannelClosedError).code).toBe('CONNECTION_CLOSED');
      await publishTo(queue, ['after']);
      expect(await eventually(() => received.includes('after'))).toBe(true);
      expect(errors).toEqual([]);
      expect(states.filter((s) => s.status === 'CONNECTED')).toHaveLength(2);
    } finally {
      sub.unsubscribe();
      await deleteQueue(queue);
      await proxy.close();
    }
  }, 60_000);

  it('openConnection refuses recovery (its promise can hold one Connection only); a bad option is CLOSED on state$', async () => {
    await expect(openConnection(url, { recovery: true })).rejects.toBeInstanceOf(ConfigurationError);
    const connection$ = connect(url, { recovery: { hostOrder: 'sideways' as 'in-order' } });
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    await expect(firstValueFrom(connection$)).rejects.toBeInstanceOf(ConfigurationError);
    expect(states.map((s) => s.status)).toEqual(['INITIAL', 'CLOSED']);
    expect(states[1]!.cause).toBeInstanceOf(ConfigurationError);
  });

  it('does not retry a refused login: it errors with AuthenticationError at once', async () => {
    const endpoint = await brokerEndpoint();
    const connection$ = connect(
      {
        hostname: endpoint.host,
        port: endpoint.port,
        username: endpoint.username,
        password: 'wrong-password',
      },
      { recovery: { initial: { delays: [10] }, reconnect: { delays: [10] } } },
    );
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    await expect(firstValueFrom(connection$)).rejects.toBeInstanceOf(AuthenticationError);
    expect(states.map((s) => s.status)).toEqual(['INITIAL', 'CONNECTING', 'CLOSED']);
    expect(states.at(-1)!.cause).toBeInstanceOf(AuthenticationError);
    expect(String(states.at(-1)!.cause)).not.toContain('wrong-password');
  });

  it('tries the hosts in order: a dead host first, then the broker', async () => {
    const endpoint = await brokerEndpoint();
    const name = uniqueName('hosts');
    const connection$ = connect(url, {
      name,
      hosts: ['127.0.0.1:1', `${endpoint.host}:${endpoint.port}`],
      recovery: { initial: { delays: [20] }, reconnect: { delays: [20] } },
    });
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    const conns: Connection[] = [];
    const sub = connection$.subscribe((c) => conns.push(c));
    try {
      expect(await eventually(() => conns.length === 1)).toBe(true);
      expect(conns[0]!.host).toBe(`${endpoint.host}:${endpoint.port}`);
      expect(states.map((s) => [s.status, s.host])).toEqual([
        ['INITIAL', undefined],
        ['CONNECTING', '127.0.0.1:1'],
        ['RECONNECTING', `${endpoint.host}:${endpoint.port}`],
        ['CONNECTING', `${endpoint.host}:${endpoint.port}`],
        ['CONNECTED', `${endpoint.host}:${endpoint.port}`],
      ]);
      expect(states[2]!.cause?.message).toContain('127.0.0.1:1');
      // In order: after a loss, recovery starts again at the first host (dead), then the second.
      await closeConnectionsNamed(name);
      expect(await eventually(() => conns.length === 2)).toBe(true);
      const afterLoss = states.slice(5).map((s) => [s.status, s.host]);
      expect(afterLoss).toEqual([
        ['RECONNECTING', '127.0.0.1:1'],
        ['CONNECTING', '127.0.0.1:1'],
        ['RECONNECTING', `${endpoint.host}:${endpoint.port}`],
        ['CONNECTING', `${endpoint.host}:${endpoint.port}`],
        ['CONNECTED', `${endpoint.host}:${endpoint.port}`],
      ]);
    } finally {
      sub.unsubscribe();
    }
  }, 60_000);

  it('round robin starts a recovery at the host after the one last used', async () => {
    const endpoint = await brokerEndpoint();
    const name = uniqueName('round-robin');
    const live = `${endpoint.host}:${endpoint.port}`;
    const connection$ = connect(url, {
      name,
      hosts: [live, '127.0.0.1:1'],
      recovery: { reconnect: { delays: [20] }, hostOrder: 'round-robin' },
    });
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    const conns: Connection[] = [];
    const sub = connection$.subscribe((c) => conns.push(c));
    try {
      expect(await eventually(() => conns.length === 1)).toBe(true);
      await closeConnectionsNamed(name);
      expect(await eventually(() => conns.length === 2)).toBe(true);
      const afterLoss = states.slice(3).map((s) => [s.status, s.host]);
      expect(afterLoss).toEqual([
        ['RECONNECTING', '127.0.0.1:1'],
        ['CONNECTING', '127.0.0.1:1'],
        ['RECONNECTING', live],
        ['CONNECTING', live],
        ['CONNECTED', live],
      ]);
    } finally {
      sub.unsubscribe();
    }
  }, 60_000);

  it('gives up after maxAttempts and errors with the last cause', async () => {
    const connection$ = connect(
      { hostname: '127.0.0.1', port: 1 },
      { recovery: { initial: { delays: [10], maxAttempts: 2 } } },
    );
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    await expect(firstValueFrom(connection$)).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(states.map((s) => s.status)).toEqual([
      'INITIAL',
      'CONNECTING',
      'RECONNECTING',
      'CONNECTING',
      'RECONNECTING',
      'CONNECTING',
      'CLOSED',
    ]);
    expect(states.filter((s) => s.status === 'RECONNECTING').map((s) => s.attempt)).toEqual([1, 2]);
  });

  it('shares one socket among subscribers and closes it after the last one leaves', async () => {
    const name = uniqueName('shared');
    const connection$ = connect(url, { name, recovery: true });
    const a: Connection[] = [];
    const b: Connection[] = [];
    const subA = connection$.subscribe((c) => a.push(c));
    expect(await eventually(() => a.length === 1)).toBe(true);
    const subB = connection$.subscribe((c) => b.push(c));
    expect(b).toEqual(a); // the open connection, at once
    expect(await connectionPids(name)).toHaveLength(1);
    subA.unsubscribe();
    expect(a[0]!.isOpen).toBe(true);
    subB.unsubscribe();
    expect(await eventually(() => !a[0]!.isOpen)).toBe(true);
    expect(await eventually(() => false, 200)).toBe(false);
    expect(await connectionPids(name)).toEqual([]);
    // A new subscriber starts a new connection.
    const c: Connection[] = [];
    const subC = connection$.subscribe((conn) => c.push(conn));
    expect(await eventually(() => c.length === 1)).toBe(true);
    expect(c[0]).not.toBe(a[0]);
    subC.unsubscribe();
  }, 30_000);

  it('a shared connection re-subscribed while the previous one closes: state$ ends CONNECTED, not CLOSED', async () => {
    const connection$ = connect(url, { recovery: true, closeTimeout: 2000 });
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    const first = connection$.subscribe();
    expect(await eventually(() => states.at(-1)?.status === 'CONNECTED')).toBe(true);
    first.unsubscribe(); // CLOSING: the close handshake is under way
    const conns: Connection[] = [];
    const second = connection$.subscribe((c) => conns.push(c));
    expect(await eventually(() => conns.length === 1)).toBe(true);
    await eventually(() => false, 300); // the first connection's close-ok has come meanwhile
    expect(states.at(-1)?.status).toBe('CONNECTED');
    const afterSecond = states.slice(states.findIndex((s, i) => i > 2 && s.status === 'CONNECTING'));
    expect(afterSecond.map((s) => s.status)).toEqual(['CONNECTING', 'CONNECTED']);
    second.unsubscribe();
    expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
  });

  it('conn.close() ends a recovering connection for good: the Observable completes', async () => {
    const connection$ = connect(url, { recovery: FAST });
    const states: ConnectionState[] = [];
    connection$.state$.subscribe((s) => states.push(s));
    let completed = false;
    const conns: Connection[] = [];
    connection$.subscribe({ next: (c) => conns.push(c), complete: () => (completed = true) });
    expect(await eventually(() => conns.length === 1)).toBe(true);
    await lastValueFrom(conns[0]!.close());
    expect(await eventually(() => completed)).toBe(true);
    expect(states.slice(-2).map((s) => s.status)).toEqual(['CLOSING', 'CLOSED']);
  });
});
