/**
 * The plain objects the broker's inspection methods return, made from the model's live objects (a
 * snapshot: later changes do not show in them).
 *
 * @module
 * @internal
 */
import type { ServerConnection } from './connection.js';
import type { Exchange } from './exchange.js';
import type { Queue } from './queue.js';
import type { ConnectionInfo, ExchangeInfo, QueueInfo } from './types.js';

/** @internal */
export function connectionInfo(c: ServerConnection): ConnectionInfo {
  return {
    id: c.id,
    name: c.name,
    user: c.user,
    vhost: c.vhostName,
    state: c.state === 'open' ? 'open' : c.state === 'closing' ? 'closing' : 'opening',
    clientProperties: c.clientProperties,
    channels: c.openChannels.length,
    blocked: c.isBlocked,
    channelMax: c.channelMax,
    frameMax: c.frameMax,
    heartbeat: c.heartbeat,
  };
}

/** @internal */
export function queueInfo(q: Queue): QueueInfo {
  return {
    name: q.name,
    vhost: q.vhost,
    type: q.settings.type,
    durable: q.durable,
    exclusive: q.exclusive,
    autoDelete: q.autoDelete,
    arguments: q.args,
    messageCount: q.messageCount,
    messageBytes: q.readyBytes,
    unackedCount: q.unacked,
    consumerCount: q.consumers.length,
    consumerTags: q.consumers.map((c) => c.tag),
    messages: q.readyEntries().map((e) => ({
      exchange: e.content.exchange,
      routingKey: e.content.routingKey,
      properties: e.content.properties,
      body: e.content.body,
      redelivered: e.redelivered,
      deliveryCount: e.deliveryCount,
      expiresAt: Number.isFinite(e.expiresAt) ? e.expiresAt : undefined,
    })),
  };
}

/** @internal */
export function exchangeInfo(e: Exchange, vhost: string): ExchangeInfo {
  return {
    name: e.name,
    vhost,
    type: e.type,
    durable: e.durable,
    autoDelete: e.autoDelete,
    internal: e.internal,
    arguments: e.args,
  };
}
