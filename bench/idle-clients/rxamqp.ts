/**
 * rxamqp's idle resources, through its public API:
 *
 * - channels: `await conn.openChannel()` N times;
 * - consumers: per queue `await conn.openChannel()`, then `ch.consume(queue, { prefetch }).subscribe(() =>
 *   {})` per consumer (each `consume()` call is a consumer of its own; with `prefetch` rxamqp sends a
 *   `basic.qos` before each `basic.consume`). `consume` is lazy and has no "started" signal of its own,
 *   so the consumers count as started when a passive `queueDeclare` of the queue on the same channel
 *   (answered after the consumes sent before it: a channel's methods are handled in order) reports
 *   them all; it asks again, briefly later, if not.
 *
 * @module
 */
import { lastValueFrom, type Subscription } from 'rxjs';
import { type Channel, openConnection } from '../../src/node.js';
import type { IdleClientFactory } from './types.js';

export const openIdleClient: IdleClientFactory = async (url) => {
  const conn = await openConnection(url);
  const channels: Channel[] = [];
  const consumers: Subscription[] = [];
  return {
    async openChannels(n) {
      for (let i = 0; i < n; i++) channels.push(await conn.openChannel());
    },
    async startConsumers(queues, perQueue, prefetch) {
      const opened: { ch: Channel; queue: string }[] = [];
      for (const queue of queues) {
        const ch = await conn.openChannel();
        channels.push(ch);
        for (let i = 0; i < perQueue; i++)
          consumers.push(ch.consume(queue, { prefetch }).subscribe(() => {}));
        opened.push({ ch, queue });
      }
      for (const { ch, queue } of opened) {
        for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
          const ok = await lastValueFrom(ch.queueDeclare(queue, { passive: true }));
          if (ok.consumerCount >= perQueue) break;
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    },
    async close() {
      await lastValueFrom(conn.close(), { defaultValue: undefined });
    },
  };
};
