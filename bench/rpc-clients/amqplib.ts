/**
 * amqplib's request/reply, written as its users do (amqplib has no helper; this is the RabbitMQ
 * tutorial's RPC client with direct reply-to): on one channel from `conn.createChannel()`,
 * `ch.consume('amq.rabbitmq.reply-to', handler, { noAck: true })`, a `Map` from correlation id to the
 * waiting promise, and `ch.sendToQueue(queue, body, { replyTo: 'amq.rabbitmq.reply-to', correlationId })`
 * per request. Correlation ids are a counter (unique on the channel). `sendToQueue`'s `false` (its
 * buffer is full) is not waited on: the requests in flight bound what is buffered.
 *
 * The channel's or connection's `'error'` / `'close'` fails every pending request.
 *
 * @module
 */
import amqplib from 'amqplib';
import { DIRECT_REPLY_TO, PendingReplies, type RpcClientFactory, timedSequence, windowed } from './types.js';

export const openRpcClient: RpcClientFactory = async (url) => {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  const pending = new PendingReplies<amqplib.ConsumeMessage>();
  let closing = false;
  const onFailure = (e?: Error): void => {
    if (!closing) pending.fail(e ?? new Error('amqplib: the channel closed'));
  };
  conn.on('error', onFailure);
  conn.on('close', onFailure);
  ch.on('error', onFailure);
  ch.on('close', onFailure);
  await ch.consume(
    DIRECT_REPLY_TO,
    (msg) => {
      if (msg === null) onFailure(new Error('amqplib: the reply consumer was cancelled'));
      else pending.answer(msg.properties.correlationId as string | undefined, msg);
    },
    { noAck: true },
  );

  const request = (queue: string, body: Buffer): Promise<amqplib.ConsumeMessage> => {
    const correlationId = pending.nextId();
    const reply = pending.wait(correlationId);
    ch.sendToQueue(queue, body, { replyTo: DIRECT_REPLY_TO, correlationId });
    return reply;
  };

  return {
    sequential: (queue, body, n) => timedSequence(n, () => request(queue, body)),
    concurrent: (queue, body, n, inFlight) => windowed(n, inFlight, () => request(queue, body)),
    async close() {
      closing = true;
      await conn.close();
    },
  };
};
