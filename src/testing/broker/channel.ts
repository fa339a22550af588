/**
 * The server side of one AMQP channel: dispatches the client's methods to the virtual host, and runs
 * publishing (validation, confirms, mandatory returns, transactions, direct reply-to); consumers,
 * deliveries and settling are its {@link Deliveries}. Refusals are thrown as {@link BrokerFault}s
 * for the connection to turn into channel.close or connection.close.
 *
 * @module
 * @internal
 */
import type { BasicProperties, Method, MethodInit, MethodOf } from '../../protocol/generated.js';
import type { ChannelHost } from './channel-host.js';
import { ConfirmBuffer } from './confirms.js';
import type { Pending } from './consumer.js';
import { Deliveries, type Settle } from './deliveries.js';
import { BrokerFault, notFound, precondition, refused, resource } from './faults.js';
import type { Content } from './message.js';
import type { VirtualHost } from './vhost.js';

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
export class ServerChannel {
  private readonly deliveries: Deliveries;
  private lastQueue: string | undefined;
  private confirm = false;
  private publishSeq = 0;
  /** Confirms waiting for the flush. */
  private readonly confirms = new ConfirmBuffer();
  private tx: { held: (HeldPublish | HeldSettle)[] } | undefined;
  /** The consumer tag of this channel's direct reply-to consumer. */
  private replyTag: string | undefined;
  /** The routing key replies to this channel's requests are published with. */
  private replyKey: string | undefined;

  constructor(
    readonly id: number,
    private readonly host: ChannelHost,
    /** The connection, as owner of its exclusive queues. */
    private readonly owner: object,
  ) {
    this.deliveries = new Deliveries(id, host);
  }

  /** False once released (closing or closed). */
  get open(): boolean {
    return this.deliveries.open;
  }

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
        if (m.prefetchSize !== 0) throw new BrokerFault(540, `prefetch_size!=0 (${m.prefetchSize})`);
        this.deliveries.qos(m.prefetchCount, m.global);
        this.reply({ name: 'basic.qos-ok' });
        this.deliveries.dispatchAll();
        return;
      case 'basic.consume':
        this.consume(m);
        return;
      case 'basic.cancel':
        this.cancel(m.consumerTag);
        if (!m.nowait) this.reply({ name: 'basic.cancel-ok', consumerTag: m.consumerTag });
        return;
      case 'basic.get':
        this.deliveries.get(this.vhost.queue(this.queueName(m.queue), this.owner), m.noAck);
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
        this.deliveries.requeueAll();
        if (m.name === 'basic.recover') this.reply({ name: 'basic.recover-ok' });
        return;
      case 'confirm.select':
        if (this.tx !== undefined) throw precondition('cannot switch from tx to confirm mode');
        this.confirm = true;
        if (!m.nowait) this.reply({ name: 'confirm.select-ok' });
        return;
      case 'tx.select':
        if (this.confirm) throw precondition('cannot switch from confirm to tx mode');
        this.tx ??= { held: [] };
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
      this.tx.held.push({ method: m, properties: props, body });
      return;
    }
    this.route(m, props, body);
  }

  private route(m: MethodOf<'basic.publish'>, properties: BasicProperties, body: Uint8Array): void {
    const exchange = this.vhost.exchanges.get(m.exchange);
    let seq = 0;
    if (this.confirm) {
      seq = ++this.publishSeq;
      if (
        this.host.nacking &&
        this.host.nackRequested({ exchange: m.exchange, routingKey: m.routingKey, properties, body })
      ) {
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

  /**
   * Writes the confirms collected since the last flush (see {@link ConfirmBuffer}), then the
   * consumer-cancel notifications.
   */
  flushConfirms(): void {
    this.confirms.flush(this.confirmWriter);
    this.deliveries.flushCancels();
  }

  private readonly confirmWriter = (method: MethodInit): void => this.reply(method);

  private endTransaction(commit: boolean): void {
    const tx = this.tx;
    if (tx === undefined) throw precondition('channel is not transactional');
    const held = tx.held;
    tx.held = [];
    if (commit) {
      for (const h of held) {
        if ('method' in h) this.route(h.method, h.properties, h.body);
        else this.deliveries.apply(h.kind, h.pending, h.requeue);
      }
      this.reply({ name: 'tx.commit-ok' });
      return;
    }
    // Rollback: publishes are dropped, settled deliveries are unacked again.
    const restored: Pending[] = [];
    for (const h of held) if (!('method' in h)) restored.push(...h.pending);
    this.deliveries.restore(restored);
    this.reply({ name: 'tx.rollback-ok' });
  }

  // ---- consumers ------------------------------------------------------------------------------

  private consume(m: MethodOf<'basic.consume'>): void {
    if (m.queue === REPLY_TO) {
      this.consumeReplies(m);
      return;
    }
    const q = this.vhost.queue(this.queueName(m.queue), this.owner);
    const tag = m.consumerTag === '' ? this.host.names.name('amq.ctag-') : m.consumerTag;
    if (this.deliveries.consumers.has(tag) || tag === this.replyTag) {
      throw new BrokerFault(530, `attempt to reuse consumer tag '${tag}'`);
    }
    this.deliveries.consume(q, tag, m);
  }

  private cancel(tag: string): void {
    if (tag === this.replyTag) this.stopReplies();
    else this.deliveries.cancel(tag);
  }

  private settle(kind: Settle, tag: number, multiple: boolean, requeue: boolean): void {
    const pending = this.deliveries.take(tag, multiple);
    if (this.tx !== undefined) this.tx.held.push({ kind, requeue, pending });
    else this.deliveries.apply(kind, pending, requeue);
  }

  // ---- direct reply-to ------------------------------------------------------------------------

  private consumeReplies(m: MethodOf<'basic.consume'>): void {
    if (!m.noAck) throw precondition('reply consumer cannot acknowledge');
    const tag = m.consumerTag === '' ? this.host.names.name('amq.ctag-') : m.consumerTag;
    if (this.deliveries.consumers.has(tag) || this.replyTag !== undefined) {
      throw new BrokerFault(530, `attempt to reuse consumer tag '${tag}'`);
    }
    this.replyTag = tag;
    this.replyKey = `${REPLY_TO}.${this.host.names.name('')}`;
    this.vhost.replyTargets.set(this.replyKey, this.deliverReply);
    if (!m.nowait) this.reply({ name: 'basic.consume-ok', consumerTag: tag });
  }

  /** A reply published to this channel's reply key. */
  private readonly deliverReply = (content: Content): void => {
    if (this.replyTag !== undefined) this.deliveries.deliverReply(this.replyTag, content);
  };

  private stopReplies(): void {
    if (this.replyKey !== undefined) this.vhost.replyTargets.delete(this.replyKey);
    this.replyKey = undefined;
    this.replyTag = undefined;
  }

  /**
   * The channel ends (closed by either side, or with its connection): its consumers go (an
   * auto-delete queue may go with them), then its unsettled deliveries are requeued, in order.
   */
  release(): void {
    if (this.deliveries.released) return;
    this.confirms.clear();
    this.tx = undefined;
    this.stopReplies();
    this.deliveries.release();
  }

  /** Takes no more deliveries (its connection is about to release it). */
  stop(): void {
    this.deliveries.stop();
  }

  /** For inspection. */
  get consumerCount(): number {
    return this.deliveries.consumers.size;
  }

  get unackedCount(): number {
    return this.deliveries.unackedCount;
  }

  /** RabbitMQ 4.3's consumer timeout: see `Deliveries.timeOutConsumers`. */
  timeOutConsumers(now: number, timeoutMs: number): boolean {
    return this.deliveries.timeOutConsumers(now, timeoutMs);
  }

  /** When its oldest unsettled delivery was made (for the consumer timeout), or undefined. */
  get oldestDelivery(): number | undefined {
    return this.deliveries.oldestDelivery;
  }
}
