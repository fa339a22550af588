/**
 * amqplib's idle resources, as its README shows them:
 *
 * - channels: `await conn.createChannel()` N times;
 * - consumers: per queue `await conn.createChannel()`, `ch.prefetch(prefetch)` (RabbitMQ applies it to
 *   each consumer started after it), then `ch.consume(queue, () => {}, { noAck: false })` per consumer,
 *   all the channel's consumes awaited together (each promise resolves with its consume-ok).
 *
 * `'error'` listeners on the connection and channels, as amqplib requires (an unhandled `'error'`
 * event would throw); an error fails the pending open.
 *
 * @module
 */
import amqplib from 'amqplib';
import type { IdleClientFactory } from './types.js';

export const openIdleClient: IdleClientFactory = async (url) => {
  const conn = await amqplib.connect(url);
  let failure: Error | undefined;
  const onError = (e: Error): void => {
    failure ??= e;
  };
  conn.on('error', onError);
  const channels: amqplib.Channel[] = [];
  const open = async (): Promise<amqplib.Channel> => {
    if (failure !== undefined) throw failure;
    const ch = await conn.createChannel();
    ch.on('error', onError);
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
        started.push(ch.prefetch(prefetch));
        for (let i = 0; i < perQueue; i++) started.push(ch.consume(queue, () => {}, { noAck: false }));
      }
      await Promise.all(started);
      if (failure !== undefined) throw failure;
    },
    async close() {
      await conn.close();
    },
  };
};
