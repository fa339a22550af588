/**
 * rabbitmq-client's idle resources. Its recommended `createConsumer()` gives every consumer a channel
 * of its own, which cannot put 10,000 consumers on 100 channels (nor fit RabbitMQ's 2,047 channels per
 * connection), so both variants use its documented low-level `Channel`:
 *
 * - channels: `await conn.acquire()` N times;
 * - consumers: per queue `await conn.acquire()`, `ch.basicQos({ prefetchCount })`, then
 *   `ch.basicConsume({ queue }, () => {})` per consumer (manual acks: `noAck` false, its default),
 *   all the channel's consumes awaited together (each resolves with its consume-ok).
 *
 * The connection is awaited (`onConnect`); its `'error'` destroys it (no silent reconnect) and fails
 * what is pending.
 *
 * @module
 */
import { Connection } from 'rabbitmq-client';
import type { IdleClientFactory } from './types.js';

type RmqChannel = Awaited<ReturnType<Connection['acquire']>>;

export const openIdleClient: IdleClientFactory = async (url) => {
  const conn = new Connection(url);
  let failure: Error | undefined;
  conn.on('error', (e: unknown) => {
    failure ??= e instanceof Error ? e : new Error(`rabbitmq-client: ${String(e)}`);
    conn.unsafeDestroy();
  });
  await conn.onConnect(10_000);
  const channels: RmqChannel[] = [];
  const open = async (): Promise<RmqChannel> => {
    if (failure !== undefined) throw failure;
    const ch = await conn.acquire();
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
        started.push(ch.basicQos({ prefetchCount: prefetch }));
        for (let i = 0; i < perQueue; i++) started.push(ch.basicConsume({ queue }, () => {}));
      }
      await Promise.all(started);
      if (failure !== undefined) throw failure;
    },
    async close() {
      // Its close() waits for every channel to be closed (it closes none itself).
      await Promise.all(channels.map((ch) => ch.close()));
      await conn.close();
    },
  };
};
