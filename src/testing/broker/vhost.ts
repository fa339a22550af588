/**
 * A virtual host of the model: its exchanges (the default one and the `amq.*` ones built in), its
 * queues and the bindings between them, with RabbitMQ's rules and refusals for declaring, binding,
 * deleting and purging, the routing of a published message (exchange-to-exchange bindings, alternate
 * exchanges, `CC`/`BCC`), dead-lettering, and the expiry of messages and queues. No protocol: the
 * server layer calls it with plain arguments and turns the {@link BrokerFault}s it throws into
 * channel or connection errors.
 *
 * @module
 * @internal
 */
import type { FieldTable } from '../../protocol/field-table.js';
import type { BasicProperties } from '../../protocol/generated.js';
import {
  assertArgsEquivalent,
  EXCHANGE_ARGS,
  inequivalentField,
  QUEUE_ARGS,
  queueSettings,
} from './arguments.js';
import { Binding, Exchange, isExchangeType } from './exchange.js';
import {
  BrokerFault,
  defaultExchangeRefused,
  locked,
  notFound,
  precondition,
  refused,
  resource,
} from './faults.js';
import {
  type Content,
  copyTable,
  type DeathReason,
  deadLetterProperties,
  diedIn,
  type Entry,
} from './message.js';
import type { NameGenerator } from './names.js';
import { type DeadLetterSink, Queue, type QueueConsumer } from './queue.js';
import { headersMatchMode } from './routing.js';

/** @internal What a virtual host needs from the broker around it. */
export interface VhostEnvironment {
  now(): number;
  readonly names: NameGenerator;
}

/** @internal The outcome of a publish, for confirms and returns. */
export interface PublishResult {
  /** Queues that took the message. */
  routed: number;
  /** A queue refused it (x-overflow reject-publish): nack under confirms. */
  rejected: boolean;
}

/** @internal The options of queue.declare. */
export interface QueueDeclareArgs {
  readonly queue: string;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
}

/** @internal The options of exchange.declare. */
export interface ExchangeDeclareArgs {
  readonly exchange: string;
  readonly type: string;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

/** @internal */
export class VirtualHost implements DeadLetterSink {
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  /** Direct reply-to: the channels waiting for replies, by the routing key replies carry. */
  readonly replyTargets = new Map<string, (content: Content) => void>();
  private routeEpoch = 0;
  /** Scratch list of the queues one publish routes to. */
  private readonly routed: Queue[] = [];
  private readonly visit = (destination: Queue | Exchange): void => {
    if (destination instanceof Queue) {
      if (destination.routeMark !== this.routeEpoch) {
        destination.routeMark = this.routeEpoch;
        this.routed.push(destination);
      }
    } else this.routeThrough(destination);
  };
  private currentKey = '';
  private currentHeaders: FieldTable | undefined;

  constructor(
    readonly name: string,
    private readonly env: VhostEnvironment,
  ) {
    this.reset();
  }

  /** Back to a fresh virtual host: only the built-in exchanges. */
  reset(): void {
    for (const q of this.queues.values()) this.deleteQueueNow(q);
    this.exchanges.clear();
    this.queues.clear();
    const builtIn: [string, 'direct' | 'fanout' | 'topic' | 'headers'][] = [
      ['', 'direct'],
      ['amq.direct', 'direct'],
      ['amq.fanout', 'fanout'],
      ['amq.topic', 'topic'],
      ['amq.headers', 'headers'],
      ['amq.match', 'headers'],
    ];
    for (const [n, t] of builtIn) this.exchanges.set(n, new Exchange(n, t, true, false, false, {}));
  }

  private where(kind: 'queue' | 'exchange', name: string): string {
    return resource(kind, name, this.name);
  }

  // ---- exchanges ------------------------------------------------------------------------------

  /** The exchange called `name`, or 404. */
  exchange(name: string): Exchange {
    const e = this.exchanges.get(name);
    if (e === undefined) throw notFound('exchange', name, this.name);
    return e;
  }

  declareExchange(m: ExchangeDeclareArgs): void {
    if (m.exchange === '') throw defaultExchangeRefused();
    if (m.passive) {
      this.exchange(m.exchange);
      return;
    }
    if (!isExchangeType(m.type)) throw unknownExchangeType(m.type);
    const existing = this.exchanges.get(m.exchange);
    if (existing !== undefined) {
      const where = this.where('exchange', m.exchange);
      if (existing.type !== m.type) throw inequivalentField(where, 'type', m.type, existing.type);
      if (existing.durable !== m.durable)
        throw inequivalentField(where, 'durable', m.durable, existing.durable);
      if (existing.autoDelete !== m.autoDelete)
        throw inequivalentField(where, 'auto_delete', m.autoDelete, existing.autoDelete);
      if (existing.internal !== m.internal)
        throw inequivalentField(where, 'internal', m.internal, existing.internal);
      assertArgsEquivalent(where, EXCHANGE_ARGS, existing.args, m.arguments);
      return;
    }
    if (m.exchange.startsWith('amq.')) {
      throw refused(`exchange name '${m.exchange}' contains reserved prefix 'amq.*'`);
    }
    this.exchanges.set(
      m.exchange,
      new Exchange(m.exchange, m.type, m.durable, m.autoDelete, m.internal, copyTable(m.arguments)),
    );
  }

  deleteExchange(name: string, ifUnused: boolean): void {
    if (name === '') throw defaultExchangeRefused();
    if (name.startsWith('amq.') && this.exchanges.has(name)) {
      throw refused(`deletion of system exchange '${name}' in vhost '${this.name}' not allowed`);
    }
    const e = this.exchanges.get(name);
    if (e === undefined) return;
    if (ifUnused && e.bindings.length > 0) throw precondition(`${this.where('exchange', name)} in use`);
    this.removeExchange(e);
  }

  private removeExchange(e: Exchange): void {
    e.deleted = true;
    this.exchanges.delete(e.name);
    for (const b of e.bindings.slice()) this.removeBinding(b);
    for (const b of e.incoming.slice()) this.removeBinding(b);
  }

  // ---- bindings -------------------------------------------------------------------------------

  /** queue.bind / exchange.bind. */
  bind(destination: Queue | Exchange, source: string, routingKey: string, args: FieldTable): void {
    if (source === '') throw defaultExchangeRefused();
    const from = this.exchange(source);
    if (from.type === 'headers' && headersMatchMode(args) === undefined) {
      throw precondition(
        `Invalid x-match field value <<${JSON.stringify(String(args['x-match']))}>>; expected all, any, all-with-x, or any-with-x`,
      );
    }
    const binding = new Binding(from, destination, routingKey, copyTable(args));
    if (!from.add(binding)) return;
    if (destination instanceof Exchange) destination.incoming.push(binding);
    else this.queueBindings(destination).add(binding);
  }

  /** queue.unbind / exchange.unbind: a binding that does not exist is not an error. */
  unbind(destination: Queue | Exchange, source: string, routingKey: string, args: FieldTable): void {
    if (source === '') throw defaultExchangeRefused();
    const from = this.exchanges.get(source);
    const b = from?.find(destination, routingKey, args);
    if (b !== undefined) this.removeBinding(b);
  }

  private readonly bindingsTo = new WeakMap<Queue, Set<Binding>>();

  private queueBindings(q: Queue): Set<Binding> {
    let set = this.bindingsTo.get(q);
    if (set === undefined) {
      set = new Set();
      this.bindingsTo.set(q, set);
    }
    return set;
  }

  private removeBinding(b: Binding): void {
    const source = b.source;
    source.remove(b);
    if (b.destination instanceof Exchange) {
      const i = b.destination.incoming.indexOf(b);
      if (i >= 0) b.destination.incoming.splice(i, 1);
    } else this.bindingsTo.get(b.destination)?.delete(b);
    // An auto-delete exchange goes with its last binding.
    if (source.autoDelete && !source.deleted && source.bindings.length === 0) this.removeExchange(source);
  }

  /** Every binding, in declaration order of their sources (the default exchange's implicit ones excluded). */
  allBindings(): Binding[] {
    const out: Binding[] = [];
    for (const e of this.exchanges.values()) out.push(...e.bindings);
    return out;
  }

  // ---- queues ---------------------------------------------------------------------------------

  /**
   * The queue `name` for an operation of connection `owner`: 404 when missing, 405 when another
   * connection's exclusive queue.
   */
  queue(name: string, owner: object | undefined): Queue {
    const q = this.queues.get(name);
    if (q === undefined) throw notFound('queue', name, this.name);
    if (q.owner !== undefined && q.owner !== owner) throw locked(name, this.name);
    return q;
  }

  declareQueue(m: QueueDeclareArgs, owner: object): Queue {
    const now = this.env.now();
    let name = m.queue;
    if (m.passive) {
      const q = this.queue(name, owner);
      q.lastUsed = now;
      return q;
    }
    if (name === '') name = this.env.names.name('amq.gen-');
    else if (name.startsWith('amq.')) throw refused(`queue name '${name}' contains reserved prefix 'amq.*'`);
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      const where = this.where('queue', name);
      if (existing.durable !== m.durable)
        throw inequivalentField(where, 'durable', m.durable, existing.durable);
      if (existing.autoDelete !== m.autoDelete)
        throw inequivalentField(where, 'auto_delete', m.autoDelete, existing.autoDelete);
      assertArgsEquivalent(where, QUEUE_ARGS, existing.args, m.arguments, { 'x-queue-type': 'classic' });
      if (existing.owner !== (m.exclusive ? owner : undefined)) throw locked(name, this.name);
      existing.lastUsed = now;
      return existing;
    }
    const settings = queueSettings(name, this.name, m.arguments, m);
    const q = new Queue(
      name,
      this.name,
      m.durable,
      m.exclusive ? owner : undefined,
      m.autoDelete,
      copyTable(m.arguments),
      settings,
      this,
      now,
    );
    this.queues.set(name, q);
    return q;
  }

  /** queue.delete: the number of ready messages it had; a missing queue counts 0. */
  deleteQueue(name: string, ifUnused: boolean, ifEmpty: boolean, owner: object | undefined): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0;
    this.queue(name, owner);
    if (ifUnused && q.consumers.length > 0) throw precondition(`${this.where('queue', name)} in use`);
    if (ifEmpty && q.messageCount > 0) throw precondition(`${this.where('queue', name)} not empty`);
    const n = q.messageCount;
    this.deleteQueueNow(q);
    return n;
  }

  /** Deletes a queue: its bindings go, its consumers are told (basic.cancel), its messages dropped. */
  deleteQueueNow(q: Queue): void {
    if (q.deleted) return;
    q.deleted = true;
    this.queues.delete(q.name);
    const bindings = this.bindingsTo.get(q);
    if (bindings !== undefined) for (const b of [...bindings]) this.removeBinding(b);
    q.purge();
    const consumers = q.consumers.splice(0);
    for (const c of consumers) c.cancelled?.();
  }

  /** A consumer left: an auto-delete queue goes with its last consumer. */
  consumerGone(q: Queue, consumer: QueueConsumer): void {
    q.removeConsumer(consumer, this.env.now());
    if (q.autoDelete && q.hadConsumers && q.consumers.length === 0) this.deleteQueueNow(q);
  }

  /** The queues an exclusive owner leaves behind when its connection closes. */
  deleteOwnedBy(owner: object): void {
    for (const q of [...this.queues.values()]) if (q.owner === owner) this.deleteQueueNow(q);
  }

  // ---- routing --------------------------------------------------------------------------------

  /**
   * Routes and enqueues a message published to `exchange` (already checked to exist and not to be
   * internal). The default exchange routes to the queue of that name.
   */
  publish(
    exchange: Exchange,
    routingKey: string,
    properties: BasicProperties,
    body: Uint8Array,
  ): PublishResult {
    const now = this.env.now();
    let props = properties;
    const headers = properties.headers;
    this.routeEpoch++;
    const routed = this.routed;
    routed.length = 0;
    if (exchange.name === '') {
      const q = this.queues.get(routingKey);
      if (q !== undefined) routed.push(q);
      if (headers !== undefined && (headers.CC !== undefined || headers.BCC !== undefined)) {
        for (const k of senderKeys(headers)) {
          const extra = this.queues.get(k);
          if (extra !== undefined && !routed.includes(extra)) routed.push(extra);
        }
      }
    } else {
      this.currentHeaders = headers;
      this.routeKey(exchange, routingKey);
      if (headers !== undefined && (headers.CC !== undefined || headers.BCC !== undefined)) {
        for (const k of senderKeys(headers)) this.routeKey(exchange, k);
      }
      if (routed.length === 0) this.routeAlternate(exchange, routingKey);
    }
    if (headers?.BCC !== undefined) {
      const { BCC: _bcc, ...rest } = headers;
      props = { ...properties, headers: rest };
    }
    const result: PublishResult = { routed: 0, rejected: false };
    if (routed.length === 0) return result;
    const content: Content = { exchange: exchange.name, routingKey, properties: props, body };
    // Copy: enqueueing may dead-letter, which routes again through the scratch list.
    const targets = routed.length === 1 ? [routed[0]!] : routed.slice();
    routed.length = 0;
    for (const q of targets) {
      if (q.enqueue(content, now) === 'rejected') result.rejected = true;
      else result.routed++;
    }
    return result;
  }

  private routeKey(exchange: Exchange, routingKey: string): void {
    this.currentKey = routingKey;
    this.routeThrough(exchange);
  }

  private routeThrough(exchange: Exchange): void {
    if (exchange.routeMark === this.routeEpoch) return;
    exchange.routeMark = this.routeEpoch;
    exchange.match(this.currentKey, this.currentHeaders, this.visit);
    // An exchange reached again by another key must be matched again.
    exchange.routeMark = 0;
  }

  private routeAlternate(exchange: Exchange, routingKey: string): void {
    const seen = new Set<Exchange>([exchange]);
    let ae = exchange.alternate;
    while (ae !== undefined && this.routed.length === 0) {
      const alt = this.exchanges.get(ae);
      if (alt === undefined || seen.has(alt)) return;
      seen.add(alt);
      this.routeKey(alt, routingKey);
      ae = alt.alternate;
    }
  }

  /** Dead-letters a message from `queue` (or drops it when the queue has no dead-letter exchange). */
  deadLetter(queue: Queue, entry: Entry, reason: DeathReason): void {
    const dlx = queue.settings.deadLetterExchange;
    if (dlx === undefined) return;
    const exchange = this.exchanges.get(dlx);
    if (exchange === undefined) return;
    const content = entry.content;
    const properties = deadLetterProperties(content, queue.name, reason, this.env.now());
    const keys =
      queue.settings.deadLetterRoutingKey !== undefined
        ? [queue.settings.deadLetterRoutingKey]
        : [content.routingKey, ...senderKeys(content.properties.headers ?? {})];
    // Routed afresh (the scratch list may be in use by the publish that caused this).
    const saved = this.routed.splice(0);
    const savedKey = this.currentKey;
    const savedHeaders = this.currentHeaders;
    this.routeEpoch++;
    this.currentHeaders = properties.headers;
    if (exchange.name === '') {
      for (const k of keys) {
        const q = this.queues.get(k);
        if (q !== undefined && !this.routed.includes(q)) this.routed.push(q);
      }
    } else for (const k of keys) this.routeKey(exchange, k);
    const targets = this.routed.splice(0).filter((q) => !diedIn(properties, q.name));
    this.routed.push(...saved);
    this.currentKey = savedKey;
    this.currentHeaders = savedHeaders;
    const dead: Content = { exchange: dlx, routingKey: keys[0]!, properties, body: content.body };
    const now = this.env.now();
    for (const q of targets) q.enqueue(dead, now);
  }

  // ---- time -----------------------------------------------------------------------------------

  /** Expires messages at the head of every queue, and queues unused past their `x-expires`. */
  expire(now: number): void {
    for (const q of this.queues.values()) {
      if (q.nextExpiry <= now) {
        q.expire(now);
        q.dispatch(now);
      }
      const expires = q.settings.expires;
      if (expires !== undefined && q.consumers.length === 0 && now - q.lastUsed >= expires)
        this.deleteQueueNow(q);
    }
  }

  /** The next time something expires (a message at a queue's head, an unused queue), or Infinity. */
  nextDeadline(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const q of this.queues.values()) {
      t = Math.min(t, q.nextExpiry);
      const expires = q.settings.expires;
      if (expires !== undefined && q.consumers.length === 0) t = Math.min(t, q.lastUsed + expires);
    }
    return t;
  }
}

/** The routing keys of the `CC` and `BCC` headers (sender-selected distribution). */
function senderKeys(headers: FieldTable): string[] {
  const out: string[] = [];
  for (const name of ['CC', 'BCC']) {
    const v = headers[name];
    if (Array.isArray(v)) for (const k of v) if (typeof k === 'string') out.push(k);
  }
  return out;
}

/**
 * RabbitMQ looks an exchange type up as an Erlang atom: a name that is no atom at all is "unknown",
 * one that is an atom but no exchange type (common words are atoms of the runtime) is "invalid".
 */
const ERLANG_ATOMS = new Set([
  'foo',
  'bar',
  'baz',
  'test',
  'error',
  'ok',
  'true',
  'false',
  'undefined',
  'none',
  'all',
  'any',
  'queue',
  'exchange',
  'local',
  'global',
  'default',
  'classic',
  'quorum',
  'stream',
  'random',
  'x',
]);

function unknownExchangeType(type: string): BrokerFault {
  return new BrokerFault(503, `${ERLANG_ATOMS.has(type) ? 'invalid' : 'unknown'} exchange type '${type}'`);
}
