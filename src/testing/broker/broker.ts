/**
 * `EmbeddedBroker`: a RabbitMQ-like AMQP 0-9-1 broker inside the process, reached through an
 * in-memory transport, so that the real client runs its production path (real frames, real
 * handshake) with no network and no broker to install. It also gives tests what a real broker cannot
 * do on demand: list, close, drop and block connections, nack chosen publishes, inspect and reset
 * its state, and a clock to control time.
 *
 * @module
 */
import { ConnectionClosedError } from '../../errors.js';
import { allocBytes, utf8Encode } from '../../protocol/bytes.js';
import type { FieldTable } from '../../protocol/field-table.js';
import { FrameWriter } from '../../protocol/frame-writer.js';
import type { BasicProperties } from '../../protocol/generated.js';
import type { TransportConnector } from '../../transport/transport.js';
import { type ConnectionEnvironment, ServerConnection } from './connection.js';
import { Exchange } from './exchange.js';
import { BrokerFault, resource, truncate } from './faults.js';
import { connectionInfo, exchangeInfo, queueInfo } from './inspect.js';
import { MemoryLink } from './memory-transport.js';
import { NameGenerator } from './names.js';
import type {
  BindingInfo,
  BrokerUser,
  ConnectionInfo,
  EmbeddedBrokerOptions,
  ExchangeInfo,
  PublishedMessage,
  QueueInfo,
} from './types.js';
import { VirtualHost } from './vhost.js';

type NackRule = { remaining: number } | { readonly match: (publish: PublishedMessage) => boolean };

/**
 * Which connection a hook acts on: its id, its `connection_name`, or its info.
 *
 * @example
 * ```ts
 * broker.closeConnection('orders-api'); // by name
 * broker.dropConnection(broker.connections()[0]!); // by info
 * ```
 */
export type ConnectionSelector = number | string | ConnectionInfo;

/** RabbitMQ 3.10's default consumer_timeout: 30 minutes. */
const DEFAULT_CONSUMER_TIMEOUT = 1_800_000;

/** The largest body the broker's frame writer (and the client's decoder) accepts: 128 MiB. */
const MAX_BODY_SIZE = 128 * 1024 * 1024;
const NO_BODY = allocBytes(0);

/** Refuses option values no RabbitMQ could be configured with, naming the option. */
function checkOptions(options: EmbeddedBrokerOptions): void {
  const whole = (name: string, value: number | undefined, min: number, max: number, extra = ''): void => {
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(
        `EmbeddedBroker: ${name} must be an integer from ${min} to ${max}${extra}, not ${String(value)}`,
      );
    }
  };
  const { frameMax } = options;
  if (frameMax !== 0) whole('frameMax', frameMax, 4096, 0xffffffff, ' (or 0: no limit)');
  whole('channelMax', options.channelMax, 0, 65535);
  whole('heartbeat', options.heartbeat, 0, 65535);
  whole('consumerTimeout', options.consumerTimeout, 0, Number.MAX_SAFE_INTEGER);
  const response: unknown = options.consumerTimeoutResponse;
  if (response !== undefined && response !== 'close-channel' && response !== 'notify-consumer') {
    throw new TypeError(
      `EmbeddedBroker: consumerTimeoutResponse must be 'close-channel' or 'notify-consumer', got ${String(response)}`,
    );
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new TypeError('EmbeddedBroker: clock must be a function returning milliseconds');
  }
}

const SERVER_PROPERTIES: FieldTable = {
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': true,
    consumer_priorities: true,
    authentication_failure_close: true,
    per_consumer_qos: true,
    direct_reply_to: true,
  },
  cluster_name: 'rxamqp@embedded',
  platform: 'JavaScript',
  product: 'rxamqp embedded broker',
  version: '3.10.8',
};

/**
 * An AMQP 0-9-1 broker in the process, with RabbitMQ 3.10's behaviour as a client sees it (reply
 * codes and texts, routing, queues, consumers, confirms, TTL, dead-lettering, transactions). Connect
 * the client through {@link EmbeddedBroker.connector}; the URL's host is not used (its credentials
 * and vhost are). Deterministic: no timers unless `timers: true`, time from `clock`, bytes crossing
 * on the Promise job queue (which Jest's fake timers do not fake).
 *
 * @example
 * ```ts
 * import { openConnection } from 'rxamqp';
 * import { EmbeddedBroker } from 'rxamqp/testing';
 *
 * const broker = new EmbeddedBroker();
 * const conn = await openConnection('amqp://guest:guest@embedded', { transport: broker.connector });
 * const ch = await conn.openChannel();
 * await lastValueFrom(ch.queueDeclare('jobs'));
 * await lastValueFrom(ch.publish('', 'jobs', 'hello'));
 * expect(broker.queue('jobs')?.messageCount).toBe(1);
 * await lastValueFrom(conn.close());
 * ```
 */
export class EmbeddedBroker {
  private readonly clock: () => number;
  private readonly names: NameGenerator;
  private readonly vhosts = new Map<string, VirtualHost>();
  private readonly users: BrokerUser[];
  private readonly live = new Set<ServerConnection>();
  private nextId = 0;
  private nackRules: NackRule[] = [];
  private blockReason: string | undefined;
  private shutDown = false;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private expiryAt = Number.POSITIVE_INFINITY;
  private readonly env: ConnectionEnvironment;
  /** Encodes what a hook is given once, to refuse what no frame could carry (made on first use). */
  private checker: FrameWriter | undefined;

  constructor(private readonly options: EmbeddedBrokerOptions = {}) {
    checkOptions(options);
    // Date.now looked up at each call: fake timers installed after the broker was made drive it too.
    this.clock = options.clock ?? (() => Date.now());
    this.names = new NameGenerator(options.seed);
    this.users = [...(options.users ?? [{ username: 'guest', password: 'guest' }])];
    for (const name of options.vhosts ?? ['/']) this.addVhost(name);
    const broker = this;
    this.env = {
      channelMax: options.channelMax ?? 2047,
      frameMax: options.frameMax ?? 131072,
      heartbeat: options.heartbeat ?? 60,
      timers: options.timers ?? false,
      names: this.names,
      serverProperties: SERVER_PROPERTIES,
      now: () => this.clock(),
      authenticate: (user, password) =>
        this.users.some((u) => u.username === user && u.password === password),
      refuseVhost: (user, vhost) => {
        if (!this.vhosts.has(vhost)) return `vhost ${vhost} not found`;
        const allowed = this.users.find((u) => u.username === user)?.vhosts;
        if (allowed !== undefined && !allowed.includes(vhost)) {
          return `access to vhost '${vhost}' refused for user '${user}'`;
        }
        return undefined;
      },
      vhost: (name) => this.vhosts.get(name)!,
      tick: () => this.tick(),
      settled: () => this.schedule(),
      nackRequested: (publish) => this.nackRequested(publish),
      get nacking() {
        return broker.nackRules.length > 0;
      },
      get blockReason() {
        return broker.blockReason;
      },
      closed: (connection) => {
        this.live.delete(connection);
      },
    };
  }

  /**
   * The connector to pass as the client's `transport` option: each connection attempt opens an
   * in-memory link to this broker. Refuses (a `CONNECTION_LOST` error) once {@link close} was called.
   *
   * @example
   * ```ts
   * connect('amqp://guest:guest@embedded/orders', { transport: broker.connector, name: 'orders-api' });
   * ```
   */
  readonly connector: TransportConnector = async (target, handler, signal) => {
    if (signal.aborted) throw signal.reason;
    if (this.shutDown) {
      throw new ConnectionClosedError('CONNECTION_LOST', `the embedded broker at ${target.url} is closed`, {
        initiator: 'network',
      });
    }
    const link = new MemoryLink(
      handler,
      target.writeHighWaterMark,
      `embedded:${target.hostname || 'memory'}`,
    );
    const connection = new ServerConnection(++this.nextId, link, this.env);
    link.server = connection;
    this.live.add(connection);
    return link.transport;
  };

  // ---- configuration ----------------------------------------------------------------------------

  /**
   * Adds a virtual host (no-op if it exists).
   *
   * @example
   * ```ts
   * broker.addVhost('orders');
   * ```
   */
  addVhost(name: string): void {
    if (!this.vhosts.has(name))
      this.vhosts.set(name, new VirtualHost(name, { now: () => this.clock(), names: this.names }));
  }

  /**
   * Adds a user (or replaces the one with that name).
   *
   * @example
   * ```ts
   * broker.addUser({ username: 'app', password: 'pw', vhosts: ['orders'] });
   * ```
   */
  addUser(user: BrokerUser): void {
    const i = this.users.findIndex((u) => u.username === user.username);
    if (i >= 0) this.users[i] = user;
    else this.users.push(user);
  }

  // ---- time -------------------------------------------------------------------------------------

  /**
   * Expires what is due at the clock's current time (messages at the head of their queues, queues
   * past `x-expires`), dead-lettering as configured. The broker does this by itself whenever it
   * handles anything; call it after moving a fake clock when nothing else happens.
   *
   * @example
   * ```ts
   * now += 60_000;
   * broker.expire();
   * ```
   */
  expire(): void {
    this.tick();
    this.schedule();
  }

  private tick(): void {
    const now = this.clock();
    for (const v of this.vhosts.values()) v.expire(now);
    const timeout = this.options.consumerTimeout ?? DEFAULT_CONSUMER_TIMEOUT;
    if (timeout > 0) {
      const notify = this.options.consumerTimeoutResponse === 'notify-consumer';
      for (const c of this.live) c.expireDeliveries(now, timeout, notify);
    }
  }

  /** With timers: a timer for the next expiry. */
  private schedule(): void {
    if (this.options.timers !== true || this.shutDown) return;
    let next = Number.POSITIVE_INFINITY;
    for (const v of this.vhosts.values()) next = Math.min(next, v.nextDeadline());
    const timeout = this.options.consumerTimeout ?? DEFAULT_CONSUMER_TIMEOUT;
    if (timeout > 0) {
      for (const c of this.live) {
        const oldest = c.oldestDelivery;
        if (oldest !== undefined) next = Math.min(next, oldest + timeout);
      }
    }
    if (next === this.expiryAt) return;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, Math.min(next - this.clock(), 0x7fffffff));
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.expiryAt = Number.POSITIVE_INFINITY;
      this.expire();
      this.schedule();
    }, delay);
    (this.expiryTimer as { unref?: () => void }).unref?.();
  }

  // ---- connections ------------------------------------------------------------------------------

  /**
   * The client connections, in the order they connected.
   *
   * @example
   * ```ts
   * expect(broker.connections().map((c) => c.name)).toEqual(['orders-api']);
   * ```
   */
  connections(): ConnectionInfo[] {
    this.tick();
    return [...this.live].filter((c) => c.state !== 'closed').map(connectionInfo);
  }

  private find(which: ConnectionSelector): ServerConnection {
    const id = typeof which === 'object' && which !== null ? which.id : which;
    for (const c of this.live) if (c.id === id || (typeof id === 'string' && c.name === id)) return c;
    throw new Error(`the embedded broker has no open connection ${JSON.stringify(id)}`);
  }

  /**
   * Closes a connection as `rabbitmqctl close_connection` does: connection.close with 320
   * CONNECTION_FORCED and the reason, then the close handshake. The connection's channels, consumers
   * and exclusive queues go at once; its unacknowledged messages are requeued.
   *
   * @example
   * ```ts
   * broker.closeConnection('orders-api', 'maintenance'); // the client sees 320 CONNECTION_FORCED - maintenance
   * ```
   */
  closeConnection(which: ConnectionSelector, reason = 'Closed via the embedded broker'): void {
    this.tick();
    // Cut as RabbitMQ cuts a reply text: a long reason must not fail the close.
    this.find(which).closeWith(320, new BrokerFault(320, reason).replyText, 0, 0);
  }

  /**
   * Breaks a connection without the close handshake, as a network failure or a killed broker does:
   * the client's transport closes with an error. With `midFrame`, the client first receives the start
   * of a frame that never completes.
   *
   * @example
   * ```ts
   * broker.dropConnection(broker.connections()[0]!, { midFrame: true });
   * ```
   */
  dropConnection(which: ConnectionSelector, options: { midFrame?: boolean; error?: Error } = {}): void {
    this.tick();
    const error =
      options.error ??
      Object.assign(new Error('read ECONNRESET (connection dropped by the embedded broker)'), {
        code: 'ECONNRESET',
      });
    const partial = options.midFrame === true ? new Uint8Array([1, 0, 1, 0, 0, 0, 40, 0, 60]) : undefined;
    this.find(which).drop(error, partial);
  }

  /**
   * Raises a resource alarm, as RabbitMQ does when memory or disk runs low: a connection that
   * publishes is blocked from that publish on (it and whatever the client sends after it wait until
   * {@link unblock}), and told so with connection.blocked and the reason if it said it understands
   * it (rxamqp does). Connections that do not publish are not blocked, as with RabbitMQ.
   *
   * @example
   * ```ts
   * broker.block('low on memory');
   * // ... the client's blocked$ emits, its publishes wait ...
   * broker.unblock();
   * ```
   */
  block(reason = 'low on memory'): void {
    this.tick();
    // connection.blocked carries it in a short string: cut as the broker cuts its reply texts.
    this.blockReason = truncate(String(reason));
  }

  /**
   * Clears the alarm: connection.unblocked, and the held publishes are handled in order.
   *
   * @example
   * ```ts
   * broker.unblock();
   * ```
   */
  unblock(): void {
    this.tick();
    this.blockReason = undefined;
    for (const c of [...this.live]) c.unblock();
  }

  /** True between {@link block} and {@link unblock}. */
  get blocked(): boolean {
    return this.blockReason !== undefined;
  }

  /**
   * Makes the broker nack publishes on channels in confirm mode (the message is dropped): the next
   * `rule` ones when a number, or every one `rule` matches until removed. Returns a function that
   * removes the rule.
   *
   * @example
   * ```ts
   * broker.nackPublishes(1); // the next confirmed publish is nacked
   * const stop = broker.nackPublishes((p) => p.routingKey === 'payments');
   * stop();
   * ```
   */
  nackPublishes(rule: number | ((publish: PublishedMessage) => boolean)): () => void {
    if (typeof rule === 'number' ? !Number.isSafeInteger(rule) || rule < 0 : typeof rule !== 'function') {
      throw new TypeError(
        `nackPublishes: expected a count (a whole number, 0 or more) or a predicate, not ${String(rule)}`,
      );
    }
    const entry: NackRule = typeof rule === 'number' ? { remaining: rule } : { match: rule };
    this.nackRules.push(entry);
    return () => {
      this.nackRules = this.nackRules.filter((r) => r !== entry);
    };
  }

  private nackRequested(publish: PublishedMessage): boolean {
    const rules = this.nackRules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if ('remaining' in rule) {
        if (rule.remaining > 0) {
          // A used-up count goes: a long run of nackPublishes(1) does not pile rules up.
          if (--rule.remaining === 0) this.nackRules = rules.filter((r) => r !== rule);
          return true;
        }
      } else if (rule.match(publish)) return true;
    }
    return false;
  }

  // ---- state ------------------------------------------------------------------------------------

  private vhost(name: string): VirtualHost {
    const v = this.vhosts.get(name);
    if (v === undefined) throw new Error(`the embedded broker has no vhost ${JSON.stringify(name)}`);
    return v;
  }

  /**
   * The queues of a virtual host, with their counts and ready messages.
   *
   * @example
   * ```ts
   * expect(broker.queues().map((q) => q.name)).toContain('jobs');
   * ```
   */
  queues(vhost = '/'): QueueInfo[] {
    this.tick();
    return [...this.vhost(vhost).queues.values()].map(queueInfo);
  }

  /**
   * One queue, or undefined when it does not exist.
   *
   * @example
   * ```ts
   * expect(broker.queue('jobs')?.messages.map((m) => m.properties.messageId)).toEqual(['a', 'b']);
   * ```
   */
  queue(name: string, vhost = '/'): QueueInfo | undefined {
    this.tick();
    const q = this.vhost(vhost).queues.get(name);
    return q === undefined ? undefined : queueInfo(q);
  }

  /**
   * The exchanges of a virtual host (the default exchange is the one named `''`).
   *
   * @example
   * ```ts
   * expect(broker.exchanges().map((e) => e.name)).toContain('amq.topic');
   * ```
   */
  exchanges(vhost = '/'): ExchangeInfo[] {
    this.tick();
    return [...this.vhost(vhost).exchanges.values()].map((e) => exchangeInfo(e, vhost));
  }

  /**
   * One exchange, or undefined.
   *
   * @example
   * ```ts
   * expect(broker.exchange('logs')?.type).toBe('fanout');
   * ```
   */
  exchange(name: string, vhost = '/'): ExchangeInfo | undefined {
    this.tick();
    const e = this.vhost(vhost).exchanges.get(name);
    return e === undefined ? undefined : exchangeInfo(e, vhost);
  }

  /**
   * The bindings of a virtual host (exchange to queue and exchange to exchange).
   *
   * @example
   * ```ts
   * expect(broker.bindings()).toEqual([
   *   { source: 'logs', destination: 'audit', destinationType: 'queue', routingKey: '', arguments: {} },
   * ]);
   * ```
   */
  bindings(vhost = '/'): BindingInfo[] {
    this.tick();
    return this.vhost(vhost)
      .allBindings()
      .map((b) => ({
        source: b.source.name,
        destination: b.destination.name,
        destinationType: b.destination instanceof Exchange ? 'exchange' : 'queue',
        routingKey: b.routingKey,
        arguments: b.args,
      }));
  }

  /**
   * Publishes a message as if a client had (no confirm, no return): returns how many queues took it.
   * Throws when the exchange does not exist.
   *
   * @example
   * ```ts
   * broker.publish('', 'jobs', JSON.stringify({ id: 1 }), { contentType: 'application/json' });
   * ```
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties: BasicProperties = {},
    vhost = '/',
  ): number {
    this.tick();
    const v = this.vhost(vhost);
    const e = v.exchanges.get(exchange);
    if (e === undefined)
      throw new Error(`the embedded broker has no ${resource('exchange', exchange, vhost)}`);
    const bytes = typeof body === 'string' ? utf8Encode(body) : body.slice();
    this.checkEncodable(exchange, routingKey, properties, bytes);
    const routed = v.publish(e, routingKey, properties, bytes).routed;
    this.schedule();
    return routed;
  }

  /**
   * Throws, before anything is routed, when a message given to a hook could not be written in a
   * frame (a short string over 255 bytes, a header value no field table can carry, a body over
   * 128 MiB): stored, it would fail the connection of whichever consumer it reached.
   */
  private checkEncodable(
    exchange: string,
    routingKey: string,
    properties: BasicProperties,
    body: Uint8Array,
  ): void {
    try {
      if (body.length > MAX_BODY_SIZE) {
        throw new Error(`message body of ${body.length} bytes exceeds the maximum of ${MAX_BODY_SIZE}`);
      }
      const m = {
        name: 'basic.deliver',
        consumerTag: '',
        deliveryTag: 1,
        redelivered: false,
        exchange,
        routingKey,
      };
      this.checker ??= new FrameWriter({ chunkSize: 4096 });
      this.checker.writeContent(1, m as never, properties, NO_BODY);
    } catch (e) {
      throw new TypeError(
        `the embedded broker cannot publish this message: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    } finally {
      this.checker?.takeSegments();
    }
  }

  /**
   * Empties a queue; returns how many ready messages it had.
   *
   * @example
   * ```ts
   * broker.purgeQueue('jobs');
   * ```
   */
  purgeQueue(name: string, vhost = '/'): number {
    this.tick();
    // Any queue, exclusive ones included (an operator's command is not bound to a connection).
    const q = this.vhost(vhost).queues.get(name);
    if (q === undefined) throw new Error(`the embedded broker has no ${resource('queue', name, vhost)}`);
    const n = q.purge();
    this.schedule();
    return n;
  }

  /**
   * Deletes a queue as `rabbitmqctl delete_queue` does (its consumers are cancelled).
   *
   * @example
   * ```ts
   * broker.deleteQueue('jobs');
   * ```
   */
  deleteQueue(name: string, vhost = '/'): void {
    this.tick();
    const q = this.vhost(vhost).queues.get(name);
    if (q !== undefined) this.vhost(vhost).deleteQueueNow(q);
    this.schedule();
  }

  /**
   * Back to a fresh broker: every connection is closed (320 CONNECTION_FORCED), every queue,
   * exchange and binding is deleted, and the nack rules and the block are cleared.
   *
   * @example
   * ```ts
   * afterEach(() => broker.reset());
   * ```
   */
  reset(): void {
    for (const c of [...this.live]) c.closeWith(320, 'CONNECTION_FORCED - broker reset', 0, 0);
    for (const v of this.vhosts.values()) v.reset();
    this.nackRules = [];
    this.blockReason = undefined;
    // Generated names start again, so a test sees the same ones whatever ran before the reset.
    this.names.reset();
    this.schedule();
  }

  /**
   * Shuts the broker down: connections are closed as RabbitMQ closes them on shutdown (320
   * CONNECTION_FORCED), new ones are refused, timers stop.
   *
   * @example
   * ```ts
   * afterAll(() => broker.close());
   * ```
   */
  close(): void {
    this.shutDown = true;
    for (const c of [...this.live]) {
      c.closeWith(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", 0, 0);
    }
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }
}
