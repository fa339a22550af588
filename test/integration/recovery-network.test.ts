/**
 * Recovery against the real broker when the network breaks (through the loopback TCP proxy of
 * test/support/tcp-proxy.ts) and when the broker itself restarts (`rabbitmqctl stop_app` / `start_app`):
 * an orderly end of the stream, resets in a row, a silent path caught by heartbeats, a port that refuses
 * connections while recovery retries, and a broker restart in the middle of a flow. Each time `state$`
 * tells the story and a consumer pipeline built with `switchMap` resumes by itself, re-declaring its
 * topology, without losing a message (duplicates are allowed: delivery is at least once).
 *
 * The broker restart runs last, and the broker is always started again (and answers AMQP again) before
 * this file ends, whatever happened.
 */
import { randomUUID } from 'node:crypto';
import { lastValueFrom, map, type Observable, type Subscription, switchMap, tap } from 'rxjs';
import {
  type Channel,
  type Connection,
  type ConnectionObservable,
  type ConnectionState,
  connect,
  type Delivery,
  openConnection,
} from '../../src/node.js';
import { brokerEndpoint, brokerUrl } from '../support/broker.js';
import { connectionPids, eventually, rabbitmqctl } from '../support/rabbitmqctl.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const FAST = { reconnect: { delays: [50, 100, 200] } } as const;

function uniqueName(what: string): string {
  return `rxamqp-test-recovery-net-${what}-${randomUUID().slice(0, 8)}`;
}

/** A state with the time it was reported. */
type TimedState = ConnectionState & { readonly at: number };

/** Records every state of `connection$` with its time. */
function recordStates(connection$: ConnectionObservable): { states: TimedState[]; sub: Subscription } {
  const states: TimedState[] = [];
  const sub = connection$.state$.subscribe((s) => states.push({ ...s, at: Date.now() }));
  return { states, sub };
}

/** The `code` of a state's cause (a ConnectionClosedError has one). */
function causeCode(state: ConnectionState | undefined): string | undefined {
  return (state?.cause as { code?: string } | undefined)?.code;
}

function count(states: readonly ConnectionState[], status: ConnectionState['status']): number {
  return states.filter((s) => s.status === status).length;
}

/** A plain connection straight to the broker (not through any proxy), with a confirm-mode channel. */
interface Admin {
  readonly conn: Connection;
  readonly ch: Channel;
  /** Publishes persistent messages one after the other and checks that the broker acked each. */
  publish(exchange: string, routingKey: string, bodies: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

async function openAdmin(url: string): Promise<Admin> {
  const conn = await openConnection(url, { connectionTimeout: 5_000 });
  const ch = await conn.openChannel();
  await lastValueFrom(ch.confirmSelect());
  return {
    conn,
    ch,
    publish: async (exchange, routingKey, bodies) => {
      for (const body of bodies) {
        const outcome = await lastValueFrom(
          ch.publish(exchange, routingKey, body, { deliveryMode: 2 }, { mandatory: true }),
        );
        expect(outcome.status).toBe('acked'); // not returned: the route exists
      }
    },
    close: async () => {
      if (conn.isOpen) await lastValueFrom(conn.close());
    },
  };
}

/** Deletes queues and exchanges on a fresh plain connection (nothing left behind, even on failure). */
async function cleanup(
  url: string,
  queues: readonly string[],
  exchanges: readonly string[] = [],
): Promise<void> {
  const conn = await openConnection(url, { connectionTimeout: 5_000 });
  const ch = await conn.openChannel();
  for (const queue of queues) await lastValueFrom(ch.queueDelete(queue));
  for (const exchange of exchanges) await lastValueFrom(ch.exchangeDelete(exchange));
  await lastValueFrom(conn.close());
}

function bodies(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

/** One delivery as the consumer saw it, with the index of the connection it came on. */
interface Seen {
  readonly body: string;
  readonly redelivered: boolean;
  readonly connection: number;
}

/**
 * A recovering consumer: `connect(url, options)`, then for each connection a channel, `declare` (the
 * topology) and `consume(queue)`. Every delivery is recorded, then handed to `settle` (default: ack).
 */
function startConsumer(
  connection$: ConnectionObservable,
  queue: string,
  declare: (ch: Channel) => Observable<unknown>,
  settle: (d: Delivery) => void = (d) => {
    d.ack();
  },
  prefetch = 10,
) {
  const connections: Connection[] = [];
  const seen: Seen[] = [];
  const errors: unknown[] = [];
  let declared = 0;
  let completed = false;
  const sub = connection$
    .pipe(
      tap((c) => connections.push(c)),
      switchMap((conn, index) =>
        conn.channel().pipe(
          switchMap((ch) =>
            declare(ch).pipe(
              tap(() => declared++),
              switchMap(() => ch.consume(queue, { prefetch })),
            ),
          ),
          map((d) => ({ d, index })),
        ),
      ),
    )
    .subscribe({
      next: ({ d, index }) => {
        seen.push({ body: d.body.toString(), redelivered: d.fields.redelivered, connection: index });
        settle(d);
      },
      error: (e: unknown) => errors.push(e),
      complete: () => (completed = true),
    });
  return {
    connections,
    seen,
    errors,
    sub,
    get declared() {
      return declared;
    },
    get completed() {
      return completed;
    },
    /** The distinct bodies received so far. */
    unique: () => new Set(seen.map((s) => s.body)),
    has: (expected: readonly string[]) => {
      const got = new Set(seen.map((s) => s.body));
      return expected.every((b) => got.has(b));
    },
  };
}

/** Waits until the broker answers AMQP (a real connection opens and closes), polling every 250 ms. */
async function waitForAmqp(url: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const conn = await openConnection(url, { connectionTimeout: 3_000 });
      await lastValueFrom(conn.close());
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error('the broker did not answer AMQP again', { cause: e });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Unsubscribes the consumer, waits until its connection has closed, and checks that the queue holds
 * no message: every delivery was acked (an unacked one would have been requeued by the close).
 */
async function stopAndCheckEmpty(
  consumer: { readonly sub: Subscription },
  states: readonly ConnectionState[],
  queue: string,
): Promise<void> {
  consumer.sub.unsubscribe();
  expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
  const conn = await openConnection(await brokerUrl(), { connectionTimeout: 5_000 });
  try {
    const ch = await conn.openChannel();
    const ok = await lastValueFrom(ch.queueDeclare(queue, { passive: true }));
    expect(ok).toMatchObject({ messageCount: 0, consumerCount: 0 });
  } finally {
    await lastValueFrom(conn.close());
  }
}

describe('recovery through network failures and a broker restart (real broker)', () => {
  let url: string;
  let proxy: TcpProxy;
  let admin: Admin;

  beforeAll(async () => {
    const endpoint = await brokerEndpoint();
    url = await brokerUrl();
    proxy = await startTcpProxy({ host: endpoint.host, port: endpoint.port });
    admin = await openAdmin(url);
  });

  afterAll(async () => {
    await proxy?.close();
    await admin?.close().catch(() => undefined);
  });

  it('cut (FIN both ways): RECONNECTING with CONNECTION_LOST, then CONNECTED; the topology is declared again and consuming resumes', async () => {
    const name = uniqueName('cut');
    const queue = uniqueName('q');
    const exchange = uniqueName('direct');
    const key = 'cut-key';
    const connection$ = connect(proxy.url(url), { name, recovery: FAST });
    const { states, sub: stateSub } = recordStates(connection$);
    const consumer = startConsumer(connection$, queue, (ch) =>
      ch.queueDeclare(queue, { durable: true }).pipe(
        switchMap(() => ch.exchangeDeclare(exchange, 'direct')),
        switchMap(() => ch.queueBind(queue, exchange, key)),
      ),
    );
    try {
      expect(await eventually(() => consumer.declared === 1)).toBe(true);
      await admin.publish(exchange, key, ['before']);
      expect(await eventually(() => consumer.has(['before']))).toBe(true);
      let oldBlockedCompleted = false;
      consumer.connections[0]!.blocked$.subscribe({ complete: () => (oldBlockedCompleted = true) });

      // Remove the exchange (and so the binding) behind the client's back: only a re-declaration on
      // the new connection can bring the route back.
      await lastValueFrom(admin.ch.exchangeDelete(exchange));
      // A message waiting in the queue across the cut.
      await admin.publish('', queue, ['queued-during-cut']);
      const connectedBefore = count(states, 'CONNECTED');
      const lostAt = states.length;
      proxy.cut();

      expect(await eventually(() => count(states, 'CONNECTED') === connectedBefore + 1)).toBe(true);
      const afterCut = states.slice(lostAt);
      expect(afterCut.map((s) => s.status)).toEqual(['RECONNECTING', 'CONNECTING', 'CONNECTED']);
      expect(causeCode(afterCut[0])).toBe('CONNECTION_LOST');
      expect(afterCut[0]!.attempt).toBe(1);
      expect(afterCut[0]!.delay).toBe(50);
      expect(afterCut[2]!.host).toBe(`127.0.0.1:${proxy.port}`);

      expect(await eventually(() => consumer.connections.length === 2 && consumer.declared === 2)).toBe(true);
      expect(consumer.connections[0]!.isOpen).toBe(false);
      expect(consumer.connections[1]!.isOpen).toBe(true);
      expect(consumer.connections[1]!.host).toBe(`127.0.0.1:${proxy.port}`);
      expect(oldBlockedCompleted).toBe(true); // the lost connection's blocked$ completed
      // The route exists again: a mandatory publish is acked, not returned, and reaches the consumer.
      await admin.publish(exchange, key, ['after']);
      expect(await eventually(() => consumer.has(['before', 'queued-during-cut', 'after']))).toBe(true);
      // The exchange and the queue are there (passive declares would close the channel otherwise).
      await lastValueFrom(admin.ch.exchangeDeclare(exchange, 'direct', { passive: true }));
      // One consumer: the new one (the broker drops the old one when it sees the FIN).
      let consumers = -1;
      for (let deadline = Date.now() + 10_000; consumers !== 1 && Date.now() < deadline; ) {
        consumers = (await lastValueFrom(admin.ch.queueDeclare(queue, { passive: true }))).consumerCount;
        if (consumers !== 1) await new Promise((r) => setTimeout(r, 50));
      }
      expect(consumers).toBe(1);
      expect(consumer.errors).toEqual([]);
      expect(consumer.completed).toBe(false);
    } finally {
      consumer.sub.unsubscribe();
      await cleanup(url, [queue], [exchange]);
    }
    expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
    stateSub.unsubscribe();
    expect(await connectionPids(name)).toEqual([]);
  }, 30_000);

  it('five resets in a row: reconnects each time, and every message published meanwhile is consumed at least once', async () => {
    const name = uniqueName('reset');
    const queue = uniqueName('q');
    const rounds = 5;
    const perRound = 20;
    const connection$ = connect(proxy.url(url), { name, recovery: FAST });
    const { states, sub: stateSub } = recordStates(connection$);
    const consumer = startConsumer(
      connection$,
      queue,
      (ch) => ch.queueDeclare(queue, { durable: true }),
      (d) => {
        d.ack();
      },
      5,
    );
    const published: string[] = [];
    try {
      for (let round = 0; round < rounds; round++) {
        expect(await eventually(() => consumer.connections.length === round + 1)).toBe(true);
        expect(await eventually(() => consumer.declared === round + 1)).toBe(true);
        // Published by the plain connection, which the resets do not touch.
        const batch = bodies(`r${round}`, perRound);
        await admin.publish('', queue, batch);
        published.push(...batch);
        // The consumer on this connection is live (it got one message of this round): reset it now,
        // with deliveries in flight and acks perhaps not yet at the broker.
        expect(
          await eventually(() =>
            consumer.seen.some((s) => s.connection === round && s.body.startsWith(`r${round}-`)),
          ),
        ).toBe(true);
        const lost = count(states, 'RECONNECTING');
        const connected = count(states, 'CONNECTED');
        proxy.reset();
        expect(await eventually(() => count(states, 'CONNECTED') === connected + 1)).toBe(true);
        const reconnecting = states.filter((s) => s.status === 'RECONNECTING');
        expect(reconnecting.length).toBe(lost + 1);
        expect(causeCode(reconnecting.at(-1))).toBe('CONNECTION_LOST');
        // The retry count starts again after every successful reconnect.
        expect(reconnecting.at(-1)!.attempt).toBe(1);
      }
      expect(await eventually(() => consumer.connections.length === rounds + 1)).toBe(true);
      const last = bodies('final', perRound);
      await admin.publish('', queue, last);
      published.push(...last);

      expect(await eventually(() => consumer.has(published), 20_000)).toBe(true);
      // None lost; duplicates (redeliveries of messages whose ack the reset swallowed) are allowed,
      // and each one is flagged as redelivered by the broker.
      const unique = consumer.unique();
      expect(unique.size).toBe(published.length);
      const firstSeen = new Set<string>();
      const duplicates: Seen[] = [];
      for (const s of consumer.seen) {
        if (firstSeen.has(s.body)) duplicates.push(s);
        else firstSeen.add(s.body);
      }
      expect(consumer.seen.length).toBe(published.length + duplicates.length);
      expect(duplicates.every((s) => s.redelivered)).toBe(true);
      expect(duplicates.length).toBeLessThanOrEqual(rounds * perRound);
      expect(consumer.errors).toEqual([]);
      expect(count(states, 'CONNECTED')).toBe(rounds + 1);
      // Everything was acked: once the consumer has left (its held acks go out before the close),
      // nothing is left in the queue to be requeued.
      await stopAndCheckEmpty(consumer, states, queue);
    } finally {
      consumer.sub.unsubscribe();
      await cleanup(url, [queue]);
    }
    expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
    stateSub.unsubscribe();
  }, 40_000);

  it('blackhole with heartbeat 1: HEARTBEAT_TIMEOUT within two intervals, the reconnect waits for the path, then consuming resumes', async () => {
    const name = uniqueName('blackhole');
    // Not exclusive: the broker keeps the old connection (and its consumer) until its own heartbeat
    // gives up on it, and an exclusive queue would be locked by it meanwhile.
    const queue = uniqueName('q');
    const connection$ = connect(proxy.url(url), {
      name,
      heartbeat: 1,
      connectionTimeout: 15_000,
      recovery: FAST,
    });
    const { states, sub: stateSub } = recordStates(connection$);
    const consumer = startConsumer(connection$, queue, (ch) => ch.queueDeclare(queue, { durable: true }));
    try {
      expect(await eventually(() => consumer.declared === 1)).toBe(true);
      expect(consumer.connections[0]!.tune.heartbeat).toBe(1);
      await admin.publish('', queue, ['before']);
      expect(await eventually(() => consumer.has(['before']))).toBe(true);

      const acceptedBefore = proxy.accepted;
      const lostAt = states.length;
      const blackholedAt = Date.now();
      proxy.blackhole();
      // Published straight to the broker while the client's path is dead: the broker may hand it to
      // the old consumer, whose bytes the blackhole holds; it comes back when that connection dies.
      await admin.publish('', queue, ['during']);

      expect(await eventually(() => states.length > lostAt, 6_000)).toBe(true);
      const lost = states[lostAt]!;
      expect(lost.status).toBe('RECONNECTING');
      expect(causeCode(lost)).toBe('HEARTBEAT_TIMEOUT');
      const detectedAfter = lost.at - blackholedAt;
      expect(detectedAfter).toBeGreaterThanOrEqual(900);
      expect(detectedAfter).toBeLessThanOrEqual(3_500);

      // The retry reaches the proxy, which accepts it but lets nothing through yet: it cannot open.
      expect(await eventually(() => proxy.accepted === acceptedBefore + 1)).toBe(true);
      expect(states.at(-1)?.status).toBe('CONNECTING');
      expect(consumer.connections.length).toBe(1);

      proxy.unblackhole();
      expect(await eventually(() => states.at(-1)?.status === 'CONNECTED')).toBe(true);
      expect(states.slice(lostAt).map((s) => s.status)).toEqual(['RECONNECTING', 'CONNECTING', 'CONNECTED']);
      expect(await eventually(() => consumer.connections.length === 2 && consumer.declared === 2)).toBe(true);
      await admin.publish('', queue, ['after']);
      expect(await eventually(() => consumer.has(['before', 'during', 'after']), 15_000)).toBe(true);
      expect(consumer.errors).toEqual([]);
    } finally {
      proxy.unblackhole();
      consumer.sub.unsubscribe();
      await cleanup(url, [queue]);
    }
    expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
    stateSub.unsubscribe();
  }, 30_000);

  it('a refusing port during recovery: RECONNECTING with growing attempts and the configured delays, then it connects', async () => {
    const name = uniqueName('refuse');
    const queue = uniqueName('q');
    const connection$ = connect(proxy.url(url), { name, recovery: FAST });
    const { states, sub: stateSub } = recordStates(connection$);
    const consumer = startConsumer(connection$, queue, (ch) => ch.queueDeclare(queue, { durable: true }));
    try {
      expect(await eventually(() => consumer.declared === 1)).toBe(true);
      const lostAt = states.length;
      proxy.refuse(true);
      proxy.reset();
      // 50 + 100 + 200 ms: the fourth retry is announced about 350 ms after the loss.
      expect(
        await eventually(() =>
          states.some((s, i) => i >= lostAt && s.status === 'RECONNECTING' && s.attempt === 4),
        ),
      ).toBe(true);
      expect(consumer.connections.length).toBe(1);
      await admin.publish('', queue, ['while-refused']);
      proxy.refuse(false);
      expect(await eventually(() => states.at(-1)?.status === 'CONNECTED')).toBe(true);

      const story = states.slice(lostAt);
      const retries = story.filter((s) => s.status === 'RECONNECTING');
      expect(retries.length).toBeGreaterThanOrEqual(4);
      expect(retries.map((s) => s.attempt)).toEqual(retries.map((_, i) => i + 1));
      expect(retries.map((s) => s.delay)).toEqual(retries.map((_, i) => [50, 100, 200][Math.min(i, 2)]));
      expect(causeCode(retries[0])).toBe('CONNECTION_LOST'); // the reset
      for (const retry of retries.slice(1)) {
        expect(causeCode(retry)).toBe('CONNECTION_LOST');
        expect(retry.cause?.message).toContain('ECONNREFUSED');
      }
      // RECONNECTING, CONNECTING alternate; each attempt waits its delay (a timer may fire 1 ms early).
      const statuses = story.map((s) => s.status);
      expect(statuses.at(-1)).toBe('CONNECTED');
      expect(statuses.slice(0, -1)).toEqual(
        story.slice(0, -1).map((_, i) => (i % 2 === 0 ? 'RECONNECTING' : 'CONNECTING')),
      );
      for (let i = 0; i + 1 < story.length; i += 2) {
        const retry = story[i]!;
        const attempt = story[i + 1]!;
        expect(attempt.attempt).toBe(retry.attempt);
        expect(attempt.at - retry.at).toBeGreaterThanOrEqual(retry.delay! - 2);
      }

      expect(
        await eventually(() => consumer.connections.length === 2 && consumer.has(['while-refused'])),
      ).toBe(true);
      // Once connected, a new loss starts counting again from the first delay.
      const again = states.length;
      proxy.reset();
      expect(await eventually(() => count(states.slice(again), 'CONNECTED') === 1)).toBe(true);
      expect(states[again]).toMatchObject({ status: 'RECONNECTING', attempt: 1, delay: 50 });
      expect(consumer.errors).toEqual([]);
    } finally {
      proxy.refuse(false);
      consumer.sub.unsubscribe();
      await cleanup(url, [queue]);
    }
    expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
    stateSub.unsubscribe();
  }, 30_000);

  describe('broker restart', () => {
    let stopped = false;

    afterAll(async () => {
      // Whatever happened, leave a running broker that answers AMQP for the files that run next.
      if (stopped) await rabbitmqctl('start_app');
      await waitForAmqp(url);
    }, 90_000);

    it('stop_app then start_app: the consuming pipeline resumes by itself and every persistent message is consumed', async () => {
      const name = uniqueName('restart');
      const queue = uniqueName('q');
      const connection$ = connect(url, {
        name,
        connectionTimeout: 5_000,
        recovery: { reconnect: { delays: [100, 250, 500] } },
      });
      const { states, sub: stateSub } = recordStates(connection$);
      // `held-*` messages are left unacked on their first delivery: they are in flight when the broker
      // stops, and must come back after it starts again.
      const consumer = startConsumer(
        connection$,
        queue,
        (ch) => ch.queueDeclare(queue, { durable: true }),
        (d) => {
          if (!d.body.toString().startsWith('held-') || d.fields.redelivered) d.ack();
        },
        20,
      );
      const before = bodies('before', 10);
      const held = bodies('held', 3);
      const after = bodies('after', 10);
      let publisher: Admin | undefined;
      try {
        expect(await eventually(() => consumer.declared === 1)).toBe(true);
        publisher = await openAdmin(url);
        await publisher.publish('', queue, before);
        expect(await eventually(() => consumer.has(before))).toBe(true);
        await publisher.publish('', queue, held);
        expect(await eventually(() => consumer.has(held))).toBe(true);

        const lostAt = states.length;
        stopped = true;
        await rabbitmqctl('stop_app');
        expect(await eventually(() => states.slice(lostAt).some((s) => s.status === 'RECONNECTING'))).toBe(
          true,
        );
        expect(consumer.connections[0]!.isOpen).toBe(false);
        expect(await eventually(() => !publisher!.conn.isOpen)).toBe(true);
        // While the broker is down, recovery keeps trying.
        expect(
          await eventually(() => states.slice(lostAt).filter((s) => s.status === 'RECONNECTING').length >= 2),
        ).toBe(true);
        expect(states.slice(lostAt).some((s) => s.status === 'CONNECTED')).toBe(false);

        await rabbitmqctl('start_app');
        stopped = false;
        expect(await eventually(() => consumer.connections.length === 2, 30_000)).toBe(true);
        expect(await eventually(() => consumer.declared === 2)).toBe(true);
        await publisher.close().catch(() => undefined);
        publisher = await openAdmin(url);
        await publisher.publish('', queue, after);

        expect(await eventually(() => consumer.has([...before, ...held, ...after]), 20_000)).toBe(true);
        // The held messages survived the restart and came back flagged as redelivered.
        for (const body of held) {
          expect(
            consumer.seen.filter((s) => s.body === body && s.connection === 1 && s.redelivered),
          ).toHaveLength(1);
        }
        expect(consumer.errors).toEqual([]);
        expect(consumer.completed).toBe(false);
        const story = states.slice(lostAt);
        expect(story[0]!.status).toBe('RECONNECTING');
        expect(story.at(-1)!.status).toBe('CONNECTED');
        await stopAndCheckEmpty(consumer, states, queue);
      } finally {
        if (stopped) {
          await rabbitmqctl('start_app');
          stopped = false;
        }
        await waitForAmqp(url);
        consumer.sub.unsubscribe();
        await publisher?.close().catch(() => undefined);
        await cleanup(url, [queue]);
      }
      expect(await eventually(() => states.at(-1)?.status === 'CLOSED')).toBe(true);
      stateSub.unsubscribe();
    }, 90_000);
  });
});
