/**
 * The server side of one AMQP channel: dispatches the client's methods to the virtual host, runs
 * publishing (confirms, mandatory returns, transactions), consumers and their prefetch (per consumer
 * with basic.qos global=false, shared by the channel with global=true, as RabbitMQ 3.10 does), and
 * the settling of deliveries. Refusals are thrown as {@link BrokerFault}s for the connection to turn
 * into channel.close or connection.close.
 *
 * @module
 * @internal
 */
import type { BasicProperties, Method, MethodInit, MethodOf } from '../../protocol/generated.js';
import { ConfirmBuffer } from './confirms.js';
import { Consumer, type ConsumerHost, Pending } from './consumer.js';
import { BrokerFault, notFound, precondition, refused, resource } from './faults.js';
import { type Content, deliveryProperties, type Entry } from './message.js';
import type { NameGenerator } from './names.js';
import type { Queue } from './queue.js';
import type { VirtualHost } from './vhost.js';

/** @internal What a publish looks like to a nack rule. */
export interface PublishInfo {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

/** @internal What a channel needs from its connection. */
export interface ChannelHost {
  readonly vhost: VirtualHost;
  readonly user: string;
  readonly names: NameGenerator;
  /** The client said it understands basic.cancel from the server. */
  readonly cancelNotify: boolean;
  now(): number;
  writeMethod(channel: number, method: MethodInit): void;
  writeContent(channel: number, method: MethodInit, properties: BasicProperties, body: Uint8Array): void;
  /** True when a broker hook says to nack this confirmed publish. */
  nackRequested(publish: PublishInfo): boolean;
}

type Settle = 'ack' | 'nack' | 'reject';

/** RabbitMQ's direct reply-to pseudo-queue. */
const REPLY_TO = 'amq.rabbitmq.reply-to';

interface HeldPublish {
  readonly method: MethodOf<'basic.publish'>;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

interface HeldSettle {
  readonly kind: Settle;
  readonly requeue: boolean;
  readonly pending: Pending[];
}

/** @internal */
export class ServerChannel implements ConsumerHost {
  open = true;
  private readonly consumers = new Map<string, Consumer>();
  /** Deliveries awaiting a settlement, in delivery-tag order. */
  private unacked = new Map<number, Pending>();
  private deliveryTag = 0;
  /** Consumer deliveries not yet settled (what global prefetch limits). */
  private consumerUnacked = 0;
  private consumerPrefetch = 0;
  private globalPrefetch = 0;
  private lastQueue: string | undefined;
  private confirm = false;
  private publishSeq = 0;
  /** Confirms waiting for the flush. */
  private readonly confirms = new ConfirmBuffer();
  private tx: { publishes: (HeldPublish | HeldSettle)[] } | undefined;
  /** Reused for every delivery. */
  private readonly deliverMethod = {
    name: 'basic.deliver' as const,
    consumerTag: '',
    deliveryTag: 0,
    redelivered: false,
    exchange: '',
    routingKey: '',
  };

  constructor(
    readonly id: number,
    private readonly host: ChannelHost,
    /** The connection, as owner of its exclusive queues. */
    private readonly owner: object,
  ) {}

  private get vhost(): VirtualHost {
    return this.host.vhost;
  }

  private reply(method: MethodInit): void {
    this.host.writeMethod(this.id, method);
  }

  /** The queue named, or the channel's last declared queue for an empty name. */
  private queueName(name: string): string {
    if (name !== '') return name;
    if (this.lastQueue === undefined) throw new BrokerFault(404, 'no previously declared queue');
    return this.lastQueue;
  }

  // ---- dispatch -------------------------------------------------------------------------------

  /** Handles one method (not channel.open / channel.close, which the connection handles). */
  handle(m: Method): void {
    const v = this.vhost;
    switch (m.name) {
      case 'exchange.declare':
        v.declareExchange(m);
        if (!m.nowait) this.reply({ name: 'exchange.declare-ok' });
        return;
      case 'exchange.delete':
        v.deleteExchange(m.exchange, m.ifUnused);
        if (!m.nowait) this.reply({ name: 'exchange.delete-ok' });
        return;
      case 'exchange.bind':
      case 'exchange.unbind': {
        if (m.destination === '' || m.source === '')
          throw refused('operation not permitted on the default exchange');
        if (m.name === 'exchange.bind') {
          // RabbitMQ reports a missing source before a missing destination.
          v.exchange(m.source);
          v.bind(v.exchange(m.destination), m.source, m.routingKey, m.arguments);
        } else {
          const destination = v.exchanges.get(m.destination);
          if (destination !== undefined) v.unbind(destination, m.source, m.routingKey, m.arguments);
        }
        if (!m.nowait)
          this.reply({ name: m.name === 'exchange.bind' ? 'exchange.bind-ok' : 'exchange.unbind-ok' });
        return;
      }
      case 'queue.declare': {
        const q = v.declareQueue(m, this.owner);
        this.lastQueue = q.name;
        if (!m.nowait) {
          this.reply({
            name: 'queue.declare-ok',
            queue: q.name,
            messageCount: q.messageCount,
            consumerCount: q.consumers.length,
          });
        }
        return;
      }
      case 'queue.bind': {
        const name = this.queueName(m.queue);
        if (m.exchange === '') throw refused('operation not permitted on the default exchange');
        // As RabbitMQ: a missing exchange first, then a missing queue, then exclusivity.
        v.exchange(m.exchange);
        if (!v.queues.has(name)) throw notFound('queue', name, v.name);
        v.bind(v.queue(name, this.owner), m.exchange, m.routingKey, m.arguments);
        if (!m.nowait) this.reply({ name: 'queue.bind-ok' });
        return;
      }
      case 'queue.unbind': {
        if (m.exchange === '') throw refused('operation not permitted on the default exchange');
        const q = v.queues.get(this.queueName(m.queue));
        if (q !== undefined) v.unbind(q, m.exchange, m.routingKey, m.arguments);
        this.reply({ name: 'queue.unbind-ok' });
        return;
      }
      case 'queue.purge': {
        const n = v.queue(this.queueName(m.queue), this.owner).purge();
        if (!m.nowait) this.reply({ name: 'queue.purge-ok', messageCount: n });
        return;
      }
      case 'queue.delete': {
        const n = v.deleteQueue(this.queueName(m.queue), m.ifUnused, m.ifEmpty, this.owner);
        if (!m.nowait) this.reply({ name: 'queue.delete-ok', messageCount: n });
        return;
      }
      case 'basic.qos':
        this.qos(m);
        return;
      case 'basic.consume':
        this.consume(m);
        return;
      case 'basic.cancel':
        this.cancel(m.consumerTag);
        if (!m.nowait) this.reply({ name: 'basic.cancel-ok', consumerTag: m.consumerTag });
        return;
      case 'basic.get':
        this.get(m);
        return;
      case 'basic.ack':
        this.settle('ack', m.deliveryTag, m.multiple, false);
        return;
      case 'basic.nack':
        this.settle('nack', m.deliveryTag, m.multiple, m.requeue);
        return;
      case 'basic.reject':
        this.settle('reject', m.deliveryTag, false, m.requeue);
        return;
      case 'basic.recover':
      case 'basic.recover-async':
        if (!m.requeue) throw new BrokerFault(540, 'requeue=false');
        this.requeueAll();
        if (m.name === 'basic.recover') this.reply({ name: 'basic.recover-ok' });
        return;
      case 'confirm.select':
        if (this.tx !== undefined) throw precondition('cannot switch from tx to confirm mode');
        this.confirm = true;
        if (!m.nowait) this.reply({ name: 'confirm.select-ok' });
        return;
      case 'tx.select':
        if (this.confirm) throw precondition('cannot switch from confirm to tx mode');
        this.tx ??= { publishes: [] };
        this.reply({ name: 'tx.select-ok' });
        return;
      case 'tx.commit':
      case 'tx.rollback':
        this.endTransaction(m.name === 'tx.commit');
        return;
      case 'channel.flow':
        if (!m.active) throw new BrokerFault(540, 'active=false');
        this.reply({ name: 'channel.flow-ok', active: true });
        return;
      case 'access.request':
        this.reply({ name: 'access.request-ok', ticket: 1 });
        return;
      default:
        throw new BrokerFault(503, 'unimplemented method');
    }
  }

  // ---- publishing -----------------------------------------------------------------------------

  /** basic.publish with its content. */
  publish(m: MethodOf<'basic.publish'>, properties: BasicProperties, body: Uint8Array): void {
    if (m.immediate) throw new BrokerFault(540, 'immediate=true');
    const exchange = this.vhost.exchange(m.exchange);
    if (exchange.internal) {
      throw refused(`cannot publish to internal ${resource('exchange', m.exchange, this.vhost.name)}`);
    }
    const expiration = properties.expiration;
    if (expiration !== undefined && !/^\d+$/.test(expiration)) {
      const why = /^-\d+$/.test(expiration) ? `{value_negative,${expiration}}` : 'no_integer';
      throw precondition(`invalid expiration '${expiration}': ${why}`);
    }
    if (properties.userId !== undefined && properties.userId !== this.host.user) {
      throw precondition(
        `user_id property set to '${properties.userId}' but authenticated user was '${this.host.user}'`,
      );
    }
    let props = properties;
    if (properties.replyTo === REPLY_TO) {
      if (this.replyKey === undefined) throw precondition('fast reply consumer does not exist');
      props = { ...properties, replyTo: this.replyKey };
    }
    if (this.tx !== undefined) {
      this.tx.publishes.push({ method: m, properties: props, body });
      return;
    }
    this.route(m, props, body);
  }

  private route(m: MethodOf<'basic.publish'>, properties: BasicProperties, body: Uint8Array): void {
    const exchange = this.vhost.exchanges.get(m.exchange);
    let seq = 0;
    if (this.confirm) {
      seq = ++this.publishSeq;
      if (this.host.nackRequested({ exchange: m.exchange, routingKey: m.routingKey, properties, body })) {
        this.confirms.nack(seq);
        return;
      }
    }
    if (exchange === undefined) {
      // Deleted between the publish and a transaction's commit: unroutable.
      if (this.confirm) this.confirms.ack(seq);
      return;
    }
    let result: { routed: number; rejected: boolean };
    if (m.exchange === '' && m.routingKey.startsWith(`${REPLY_TO}.`)) {
      // A reply: straight to the requester's channel. RabbitMQ 3.10 returns it as unroutable when
      // mandatory even though it delivers it: so does this broker.
      this.vhost.replyTargets.get(m.routingKey)?.({
        exchange: '',
        routingKey: m.routingKey,
        properties,
        body,
      });
      result = { routed: 0, rejected: false };
    } else result = this.vhost.publish(exchange, m.routingKey, properties, body);
    if (result.routed === 0 && !result.rejected && m.mandatory) {
      this.host.writeContent(
        this.id,
        {
          name: 'basic.return',
          replyCode: 312,
          replyText: 'NO_ROUTE',
          exchange: m.exchange,
          routingKey: m.routingKey,
        },
        properties,
        body,
      );
    }
    if (this.confirm) {
      if (result.rejected) this.confirms.nack(seq);
      else this.confirms.ack(seq);
    }
  }

  /** Writes the confirms collected since the last flush (see {@link ConfirmBuffer}). */
  flushConfirms(): void {
    this.confirms.flush(this.confirmWriter);
    if (this.cancels.length > 0) {
      const tags = this.cancels;
      this.cancels = [];
      if (this.open)
        for (const tag of tags) this.reply({ name: 'basic.cancel', consumerTag: tag, nowait: true });
    }
  }

  /** Consumers the broker cancelled (their queue was deleted), to tell the client at the flush. */
  private cancels: string[] = [];

  private readonly confirmWriter = (method: MethodInit): void => this.reply(method);

  private endTransaction(commit: boolean): void {
    const tx = this.tx;
    if (tx === undefined) throw precondition('channel is not transactional');
    const held = tx.publishes;
    tx.publishes = [];
    if (commit) {
      for (const h of held) {
        if ('method' in h) this.route(h.method, h.properties, h.body);
        else this.apply(h.kind, h.pending, h.requeue);
      }
      this.reply({ name: 'tx.commit-ok' });
      return;
    }
    // Rollback: publishes are dropped, settled deliveries are unacked again.
    let restored = false;
    for (const h of held) {
      if ('method' in h) continue;
      for (const p of h.pending) {
        this.unacked.set(p.tag, p);
        restored = true;
      }
    }
    if (restored) this.unacked = new Map([...this.unacked.entries()].sort((a, b) => a[0] - b[0]));
    this.reply({ name: 'tx.rollback-ok' });
  }

  // ---- consumers ------------------------------------------------------------------------------

  private qos(m: MethodOf<'basic.qos'>): void {
    if (m.prefetchSize !== 0) throw new BrokerFault(540, `prefetch_size!=0 (${m.prefetchSize})`);
    if (m.global) this.globalPrefetch = m.prefetchCount;
    else {
      // RabbitMQ 3.10 lifts the channel's global limit with every basic.qos global=false.
      this.consumerPrefetch = m.prefetchCount;
      this.globalPrefetch = 0;
    }
    this.reply({ name: 'basic.qos-ok' });
    this.dispatchAll();
  }

  private consume(m: MethodOf<'basic.consume'>): void {
    if (m.queue === REPLY_TO) {
      this.consumeReplies(m);
      return;
    }
    const q = this.vhost.queue(this.queueName(m.queue), this.owner);
    const tag = m.consumerTag === '' ? this.host.names.name('amq.ctag-') : m.consumerTag;
    if (this.consumers.has(tag) || tag === this.replyTag) {
      throw new BrokerFault(530, `attempt to reuse consumer tag '${tag}'`);
    }
    if (q.exclusivelyConsumed || (m.exclusive && q.consumers.length > 0)) {
      throw refused(`${resource('queue', q.name, this.vhost.name)} in exclusive use`);
    }
    const priority = m.arguments['x-priority'];
    const consumer = new Consumer(
      this,
      tag,
      q,
      m.noAck,
      m.exclusive,
      this.consumerPrefetch,
      typeof priority === 'number' ? priority : 0,
    );
    this.consumers.set(tag, consumer);
    if (!m.nowait) this.reply({ name: 'basic.consume-ok', consumerTag: tag });
    q.addConsumer(consumer, this.host.now());
  }

  // ---- direct reply-to -------------------------------------------------------------------------

  /** The consumer tag of this channel's direct reply-to consumer. */
  private replyTag: string | undefined;
  /** The routing key replies to this channel's requests are published with. */
  private replyKey: string | undefined;

  private consumeReplies(m: MethodOf<'basic.consume'>): void {
    if (!m.noAck) throw precondition('reply consumer cannot acknowledge');
    const tag = m.consumerTag === '' ? this.host.names.name('amq.ctag-') : m.consumerTag;
    if (this.consumers.has(tag) || this.replyTag !== undefined) {
      throw new BrokerFault(530, `attempt to reuse consumer tag '${tag}'`);
    }
    this.replyTag = tag;
    this.replyKey = `${REPLY_TO}.${this.host.names.name('')}`;
    this.vhost.replyTargets.set(this.replyKey, this.deliverReply);
    if (!m.nowait) this.reply({ name: 'basic.consume-ok', consumerTag: tag });
  }

  /** A reply published to this channel's reply key: delivered at once, no ack. */
  private readonly deliverReply = (content: Content): void => {
    if (!this.open || this.replyTag === undefined) return;
    const m = this.deliverMethod;
    m.consumerTag = this.replyTag;
    m.deliveryTag = ++this.deliveryTag;
    m.redelivered = false;
    m.exchange = content.exchange;
    m.routingKey = content.routingKey;
    this.host.writeContent(this.id, m, content.properties, content.body);
  };

  private stopReplies(): void {
    if (this.replyKey !== undefined) this.vhost.replyTargets.delete(this.replyKey);
    this.replyKey = undefined;
    this.replyTag = undefined;
  }

  private cancel(tag: string): void {
    if (tag === this.replyTag) {
      this.stopReplies();
      return;
    }
    const consumer = this.consumers.get(tag);
    if (consumer === undefined) return;
    this.consumers.delete(tag);
    this.vhost.consumerGone(consumer.queue, consumer);
  }

  canDeliver(consumer: Consumer): boolean {
    if (!this.open) return false;
    if (consumer.noAck) return true;
    if (consumer.prefetch !== 0 && consumer.unacked >= consumer.prefetch) return false;
    return this.globalPrefetch === 0 || this.consumerUnacked < this.globalPrefetch;
  }

  deliver(consumer: Consumer, queue: Queue, entry: Entry): void {
    const tag = ++this.deliveryTag;
    if (!consumer.noAck) {
      this.unacked.set(tag, new Pending(tag, entry, queue, consumer));
      consumer.unacked++;
      this.consumerUnacked++;
    }
    const m = this.deliverMethod;
    const content = entry.content;
    m.consumerTag = consumer.tag;
    m.deliveryTag = tag;
    m.redelivered = entry.redelivered;
    m.exchange = content.exchange;
    m.routingKey = content.routingKey;
    this.host.writeContent(
      this.id,
      m,
      deliveryProperties(entry, queue.settings.type === 'quorum'),
      content.body,
    );
  }

  /** The queue of `consumer` was deleted: the client hears of it if it said it understands. */
  consumerCancelled(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    // Written at the flush: after the reply to the method that deleted the queue, as RabbitMQ does.
    if (this.open && this.host.cancelNotify) this.cancels.push(consumer.tag);
  }

  private get(m: MethodOf<'basic.get'>): void {
    const q = this.vhost.queue(this.queueName(m.queue), this.owner);
    const entry = q.take(this.host.now(), m.noAck);
    if (entry === undefined) {
      this.reply({ name: 'basic.get-empty' });
      return;
    }
    const tag = ++this.deliveryTag;
    if (!m.noAck) this.unacked.set(tag, new Pending(tag, entry, q, undefined));
    const content = entry.content;
    this.host.writeContent(
      this.id,
      {
        name: 'basic.get-ok',
        deliveryTag: tag,
        redelivered: entry.redelivered,
        exchange: content.exchange,
        routingKey: content.routingKey,
        messageCount: q.messageCount,
      },
      deliveryProperties(entry, q.settings.type === 'quorum'),
      content.body,
    );
  }

  // ---- settling -------------------------------------------------------------------------------

  private settle(kind: Settle, tag: number, multiple: boolean, requeue: boolean): void {
    let pending: Pending[];
    if (multiple && tag === 0) {
      pending = [...this.unacked.values()];
      this.unacked.clear();
    } else {
      const one = this.unacked.get(tag);
      if (one === undefined) throw precondition(`unknown delivery tag ${tag}`);
      if (multiple) {
        pending = [];
        for (const p of this.unacked.values()) {
          if (p.tag > tag) break;
          pending.push(p);
        }
        for (const p of pending) this.unacked.delete(p.tag);
      } else {
        this.unacked.delete(tag);
        pending = [one];
      }
    }
    if (this.tx !== undefined) {
      this.tx.publishes.push({ kind, requeue, pending });
      return;
    }
    this.apply(kind, pending, requeue);
  }

  /** Settles deliveries with their queues, then lets the queues deliver into the freed prefetch. */
  private apply(kind: Settle, pending: readonly Pending[], requeue: boolean): void {
    const now = this.host.now();
    const queues: Queue[] = [];
    const back = new Map<Queue, Entry[]>();
    for (const p of pending) {
      const c = p.consumer;
      if (c !== undefined) {
        c.unacked--;
        this.consumerUnacked--;
      }
      if (!queues.includes(p.queue)) queues.push(p.queue);
      if (kind === 'ack') p.queue.ack();
      else if (requeue) {
        const list = back.get(p.queue);
        if (list === undefined) back.set(p.queue, [p.entry]);
        else list.push(p.entry);
      } else p.queue.discard(p.entry);
    }
    for (const [q, entries] of back) q.requeue(entries, now);
    if (this.globalPrefetch !== 0) this.dispatchAll();
    else for (const q of queues) q.dispatch(now);
  }

  /** basic.recover and channel close: every unsettled delivery goes back to its queue. */
  private requeueAll(): void {
    const pending = [...this.unacked.values()];
    this.unacked.clear();
    if (pending.length > 0) this.apply('nack', pending, true);
  }

  private dispatchAll(): void {
    const now = this.host.now();
    const seen = new Set<Queue>();
    for (const c of this.consumers.values()) {
      if (seen.has(c.queue)) continue;
      seen.add(c.queue);
      c.queue.dispatch(now);
    }
  }

  /**
   * The channel ends (closed by either side, or with its connection): its consumers go (an
   * auto-delete queue may go with them), then its unsettled deliveries are requeued, in order.
   */
  release(): void {
    if (!this.open) return;
    this.open = false;
    this.confirms.clear();
    this.tx = undefined;
    this.stopReplies();
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    for (const c of consumers) this.vhost.consumerGone(c.queue, c);
    const pending = [...this.unacked.values()];
    this.unacked.clear();
    if (pending.length > 0) this.apply('nack', pending, true);
  }

  /** For inspection. */
  get consumerCount(): number {
    return this.consumers.size;
  }

  get unackedCount(): number {
    return this.unacked.size;
  }
}
