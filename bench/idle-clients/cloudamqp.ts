/**
 * @cloudamqp/amqp-client's idle resources, through the low-level API the other bench clients use:
 *
 * - channels: `await conn.channel()` N times;
 * - consumers: per queue `await conn.channel()`, `ch.basicQos(prefetch)`, then
 *   `ch.basicConsume(queue, { noAck: false }, () => {})` per consumer (its `noAck` default is true:
 *   manual acks are asked for, as for the other clients), all the channel's consumes awaited together
 *   (each resolves with its consume-ok).
 *
 * @module
 */
import { type AMQPChannel, AMQPClient, type AMQPConsumer } from '@cloudamqp/amqp-client';
import type { IdleClientFactory } from './types.js';

export const openIdleClient: IdleClientFactory = async (url) => {
  const amqp = new AMQPClient(url);
  const conn = await amqp.connect();
  let failure: Error | undefined;
  conn.onerror = (e) => {
    failure ??= e;
  };
  const channels: AMQPChannel[] = [];
  const consumers: AMQPConsumer[] = [];
  const open = async (): Promise<AMQPChannel> => {
    if (failure !== undefined) throw failure;
    const ch = await conn.channel();
    channels.push(ch);
    return ch;
  };
  return {
    async openChannels(n) {
      for (let i = 0; i < n; i++) await open();
    },
    async startConsumers(queues, perQueue, prefetch) {
      const started: Promise<unknown>[] = [];
      for (const queue of queues) {
        const ch = await open();
        started.push(ch.basicQos(prefetch));
        for (let i = 0; i < perQueue; i++) {
          started.push(ch.basicConsume(queue, { noAck: false }, () => {}).then((c) => consumers.push(c)));
        }
      }
      await Promise.all(started);
      if (failure !== undefined) throw failure;
    },
    async close() {
      await conn.close();
    },
  };
};
