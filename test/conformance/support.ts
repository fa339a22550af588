/**
 * What the conformance cases share: {@link useBroker} starts a backend for a suite, hands each case
 * its connections, channels and unique names, and cleans up after it; the helpers collect deliveries,
 * capture an error's class, code and reply, publish with confirms, poll a queue's counts and normalise
 * `x-death` headers. Nothing here depends on the backend: everything goes through rxamqp's public
 * API.
 *
 * @module
 */
import { firstValueFrom, lastValueFrom, type Observable, type Subscription, timeout } from 'rxjs';
import {
  AmqpError,
  type BasicProperties,
  type Channel,
  type Connection,
  type ConnectOptions,
  type Delivery,
  type FieldTable,
  type FieldValue,
  type PublishOutcome,
} from '../../src/node.js';
import type { ConformanceBackend, RunningBroker } from './backends.js';

/** How long any one wait of a case may take before it fails. */
export const WAIT_MS = 5000;

/** Options of every connection a case opens: acks go out at once, reads are not batched. */
const CONNECTION_DEFAULTS: ConnectOptions = { ackDelay: 0, readBatching: false };

/** What a case gets from {@link useBroker}. */
export interface BrokerScope {
  /** The vhost of the backend's connections (reply texts name it). */
  readonly vhost: string;
  /** The user the backend's connections log in as. */
  readonly username: string;
  /** Opens a connection that is closed after the case. */
  connect(options?: ConnectOptions): Promise<Connection>;
  /** The case's own connection, opened on first use and closed after the case. */
  connection(): Promise<Connection>;
  /** Opens a channel on `connection` (default: the case's own connection). */
  channel(connection?: Connection): Promise<Channel>;
  /** Opens a channel in confirm mode on `connection` (default: the case's own connection). */
  confirmChannel(connection?: Connection): Promise<Channel>;
  /** A name unique to this run, not cleaned up. */
  name(prefix: string): string;
  /** A unique queue name; the queue is deleted after the case. */
  queue(prefix: string): string;
  /** A unique exchange name; the exchange is deleted after the case. */
  exchange(prefix: string): string;
  /** Deletes this queue after the case too (a server-named one, say). */
  cleanupQueue(queue: string): void;
}

/**
 * Starts `backend` for the enclosing `describe` and returns the scope its cases use. After each case
 * its connections are closed and the queues and exchanges it named are deleted (through a connection
 * of the suite's own), so that no case sees another's state.
 */
export function useBroker(backend: ConformanceBackend): BrokerScope {
  let broker: RunningBroker | undefined;
  let admin: Connection | undefined;
  let connections: Connection[] = [];
  let own: Promise<Connection> | undefined;
  let queues: string[] = [];
  let exchanges: string[] = [];

  beforeAll(async () => {
    broker = await backend.start();
    admin = await broker.connect({
      ...CONNECTION_DEFAULTS,
      name: `rxamqp conformance admin (${backend.name})`,
    });
  });

  afterEach(async () => {
    const closing = connections;
    connections = [];
    own = undefined;
    await Promise.all(closing.map((c) => closeQuietly(c)));
    const doomedQueues = queues;
    const doomedExchanges = exchanges;
    queues = [];
    exchanges = [];
    if (admin === undefined) return;
    for (const q of doomedQueues) await quietly(admin, (ch) => ch.queueDelete(q));
    for (const x of doomedExchanges) await quietly(admin, (ch) => ch.exchangeDelete(x));
  });

  afterAll(async () => {
    if (admin !== undefined) await closeQuietly(admin);
    admin = undefined;
    await broker?.stop();
    broker = undefined;
  });

  const running = (): RunningBroker => {
    if (broker === undefined) throw new Error(`backend ${backend.name} is not started`);
    return broker;
  };

  const scope: BrokerScope = {
    get vhost() {
      return running().vhost;
    },
    get username() {
      return running().username;
    },
    async connect(options = {}) {
      const connection = await running().connect({
        ...CONNECTION_DEFAULTS,
        name: `rxamqp conformance (${backend.name})`,
        ...options,
      });
      connections.push(connection);
      return connection;
    },
    connection() {
      own ??= scope.connect();
      return own;
    },
    async channel(connection) {
      return (connection ?? (await scope.connection())).openChannel();
    },
    async confirmChannel(connection) {
      const ch = await scope.channel(connection);
      await lastValueFrom(ch.confirmSelect());
      return ch;
    },
    name: uniqueName,
    queue(prefix) {
      const q = uniqueName(prefix);
      queues.push(q);
      return q;
    },
    exchange(prefix) {
      const x = uniqueName(prefix);
      exchanges.push(x);
      return x;
    },
    cleanupQueue(queue) {
      queues.push(queue);
    },
  };
  return scope;
}

/** A name unique to this run: `conformance-<prefix>-<random>`. */
export function uniqueName(prefix: string): string {
  return `conformance-${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

async function closeQuietly(connection: Connection): Promise<void> {
  if (!connection.isOpen) return;
  try {
    await lastValueFrom(connection.close().pipe(timeout(WAIT_MS)), { defaultValue: undefined });
  } catch {
    // Already closed by the broker, or closing failed: nothing left to release.
  }
}

/** Runs a cleanup operation on the admin connection's cached channel; failures are ignored. */
async function quietly(admin: Connection, op: (ch: Channel) => Observable<unknown>): Promise<void> {
  try {
    const ch = await firstValueFrom(admin.cachedChannel());
    await lastValueFrom(op(ch).pipe(timeout(WAIT_MS)), { defaultValue: undefined });
  } catch {
    // A case may have left the thing half made, or already deleted: the cleanup is best effort.
  }
}

// ---- errors -------------------------------------------------------------------------------------

/**
 * What a case asserts of an error: its class, its `code`, and the broker's reply (code, text, and
 * the class and method of the offending method) when there was one.
 */
export interface ErrorShape {
  readonly name: string;
  readonly code: string | undefined;
  readonly replyCode?: number | undefined;
  readonly replyText?: string | undefined;
  readonly classId?: number | undefined;
  readonly methodId?: number | undefined;
}

/** The {@link ErrorShape} of an error (the reply fields only when the error has them). */
export function shapeOf(error: unknown): ErrorShape {
  if (!(error instanceof Error)) throw new Error(`not an Error: ${String(error)}`);
  const e = error as Error & Partial<Record<'replyCode' | 'replyText' | 'classId' | 'methodId', unknown>>;
  const shape: Record<string, unknown> = {
    name: e.constructor.name,
    code: error instanceof AmqpError ? error.code : undefined,
  };
  for (const key of ['replyCode', 'replyText', 'classId', 'methodId'] as const) {
    if (e[key] !== undefined) shape[key] = e[key];
  }
  return shape as unknown as ErrorShape;
}

/**
 * Subscribes to `source` (or awaits it) and returns the shape of the error it fails with; fails the
 * case when it succeeds instead, or does not settle within {@link WAIT_MS}.
 */
export async function errorOf(source: Observable<unknown> | Promise<unknown>): Promise<ErrorShape> {
  const settled = 'subscribe' in source ? lastValueFrom(source, { defaultValue: undefined }) : source;
  let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await withTimeout(settled, 'the operation to fail') };
  } catch (e) {
    outcome = { ok: false, error: e };
  }
  if (outcome.ok) throw new Error(`expected an error, got ${JSON.stringify(outcome.value)}`);
  if (outcome.error instanceof Error && outcome.error.message.startsWith('timed out waiting')) {
    throw outcome.error;
  }
  return shapeOf(outcome.error);
}

/**
 * A reply text as it travels: reply-text is a short string (at most 255 bytes), and RabbitMQ cuts a
 * longer one to its first 252 bytes and `...`. (The texts here are ASCII: bytes are characters.)
 */
export function shortstr(text: string): string {
  return text.length <= 255 ? text : `${text.slice(0, 252)}...`;
}

/** The error of a broker's channel.close as it reaches the operation that provoked it. */
export function channelError(replyCode: number, replyText: string, classId: number, methodId: number) {
  return {
    name: 'ChannelClosedError',
    code: 'SERVER_CLOSED',
    replyCode,
    replyText: shortstr(replyText),
    classId,
    methodId,
  };
}

/**
 * The error of a broker's connection.close as the channel operation that provoked it (and every
 * operation pending on the connection's channels) sees it: the channel closed with its connection,
 * with the connection's reply.
 */
export function connectionErrorOnChannel(
  replyCode: number,
  replyText: string,
  classId: number,
  methodId: number,
) {
  return {
    name: 'ChannelClosedError',
    code: 'CONNECTION_CLOSED',
    replyCode,
    replyText: shortstr(replyText),
    classId,
    methodId,
  };
}

/** The error of a broker's connection.close, as the connection reports it. */
export function connectionError(replyCode: number, replyText: string, classId: number, methodId: number) {
  return {
    name: 'ConnectionClosedError',
    code: 'SERVER_CLOSED',
    replyCode,
    replyText: shortstr(replyText),
    classId,
    methodId,
  };
}

/** Fails with a clear message when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

// ---- deliveries ---------------------------------------------------------------------------------

/**
 * A subscription to a delivery stream that buffers what arrives, so that a case can take the next n
 * deliveries, check that nothing more came, and see how the stream ended.
 */
export class Collector {
  readonly received: Delivery[] = [];
  private taken = 0;
  private ended: { error?: unknown } | undefined;
  /** Whoever waits for more (a take, an end), checked on every event. */
  private readonly waiters = new Set<() => void>();
  private readonly subscription: Subscription;

  constructor(source: Observable<Delivery>) {
    this.subscription = source.subscribe({
      next: (d) => {
        this.received.push(d);
        this.wakeAll();
      },
      error: (error: unknown) => {
        this.ended = { error };
        this.wakeAll();
      },
      complete: () => {
        this.ended = {};
        this.wakeAll();
      },
    });
  }

  /** The next `n` deliveries; fails when the stream ends first or they do not come in time. */
  async take(n: number, ms = WAIT_MS): Promise<Delivery[]> {
    await this.until(
      () => this.received.length - this.taken >= n || this.ended !== undefined,
      `${n} deliveries`,
      ms,
    );
    if (this.received.length - this.taken < n) {
      throw new Error(`the stream ended after ${this.received.length - this.taken} of ${n} deliveries`, {
        cause: this.ended?.error,
      });
    }
    const out = this.received.slice(this.taken, this.taken + n);
    this.taken += n;
    return out;
  }

  /** How many deliveries arrived that were not taken yet. */
  get waiting(): number {
    return this.received.length - this.taken;
  }

  /** The error the stream ended with (fails when it does not end with one in time). */
  async error(ms = WAIT_MS): Promise<unknown> {
    await this.until(() => this.ended !== undefined, 'the stream to end', ms);
    if (this.ended?.error === undefined) throw new Error('the stream completed without an error');
    return this.ended.error;
  }

  /** How the stream ended: `'complete'`, or its error (fails when it does not end in time). */
  async end(ms = WAIT_MS): Promise<unknown> {
    await this.until(() => this.ended !== undefined, 'the stream to end', ms);
    return this.ended?.error ?? 'complete';
  }

  /** True once the stream has ended (completed or errored). */
  get isEnded(): boolean {
    return this.ended !== undefined;
  }

  /** Unsubscribes (cancelling the consumer). */
  stop(): void {
    this.subscription.unsubscribe();
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private until(done: () => boolean, what: string, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out waiting for ${what} (got ${this.received.length - this.taken})`));
      }, ms);
      this.waiters.add(wake);
    });
  }
}

/** Starts consuming and returns the {@link Collector} of its deliveries. */
export function collect(source: Observable<Delivery>): Collector {
  return new Collector(source);
}

/** The bodies of deliveries, as text. */
export function texts(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((d) => d.text());
}

/** The redelivered flags of deliveries. */
export function redelivered(deliveries: readonly Delivery[]): boolean[] {
  return deliveries.map((d) => d.fields.redelivered);
}

/** basic.get once: the delivery, or undefined for get-empty. */
export function getOne(
  ch: Channel,
  queue: string,
  options: { noAck?: boolean } = {},
): Promise<Delivery | undefined> {
  return withTimeout(
    firstValueFrom(ch.get(queue, options), { defaultValue: undefined }),
    `basic.get on ${queue}`,
  );
}

/** Gets (noAck) until the queue is empty; returns the bodies in order. */
export async function drain(ch: Channel, queue: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const d = await getOne(ch, queue, { noAck: true });
    if (d === undefined) return out;
    out.push(d.text());
  }
}

// ---- publishing and counts ----------------------------------------------------------------------

/** Publishes one message and resolves with its outcome (the broker's answer on a confirm channel). */
export function publish(
  ch: Channel,
  exchange: string,
  routingKey: string,
  body: string,
  properties: BasicProperties = {},
  options: { mandatory?: boolean } = {},
): Promise<PublishOutcome> {
  return withTimeout(
    lastValueFrom(ch.publish(exchange, routingKey, body, properties, options)),
    `the publish of ${body} to '${exchange}'/'${routingKey}'`,
  );
}

/**
 * Publishes each body to the queue through the default exchange on a confirm channel and waits until
 * all are acked, so that the queue holds them when it resolves.
 */
export async function publishAll(
  ch: Channel,
  queue: string,
  bodies: readonly string[],
  properties: BasicProperties = {},
): Promise<void> {
  const outcomes = await Promise.all(bodies.map((b) => publish(ch, '', queue, b, properties)));
  for (const o of outcomes) if (o.status !== 'acked') throw new Error(`publish ${o.status}, not acked`);
}

/** The queue's counts from a passive declare. */
export async function countsOf(
  ch: Channel,
  queue: string,
): Promise<{ messageCount: number; consumerCount: number }> {
  const ok = await withTimeout(
    lastValueFrom(ch.queueDeclare(queue, { passive: true })),
    `counts of ${queue}`,
  );
  return { messageCount: ok.messageCount, consumerCount: ok.consumerCount };
}

/** Polls `read` until `accept` holds, failing after {@link WAIT_MS}; returns the accepted value. */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  what: string,
): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let last: T;
  for (;;) {
    last = await read();
    if (accept(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(10);
  }
}

/** Waits `ms` milliseconds: only to let something that should NOT happen have its chance to. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A copy of a field value with every timestamp replaced by the string `'<timestamp>'`, for exact comparisons. */
export function normalise(value: FieldValue | undefined): unknown {
  if (value instanceof Date) return '<timestamp>';
  if (Array.isArray(value)) return value.map((v) => normalise(v));
  if (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Uint8Array) &&
    value.constructor === Object
  ) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as FieldTable)) out[k] = normalise(v);
    return out;
  }
  return value;
}

/**
 * A dead-lettered message's headers, with timestamps normalised. RabbitMQ 3.13 added
 * `x-last-death-reason`, `-queue` and `-exchange`; the cases pin 3.10's headers (`x-death` and the
 * three `x-first-death-*`), so the `x-last-death-*` headers are left out of the comparison.
 */
export function deathHeaders(d: Delivery): unknown {
  const headers = { ...(d.properties.headers ?? {}) };
  for (const key of Object.keys(headers)) if (key.startsWith('x-last-death-')) delete headers[key];
  return normalise(headers);
}
