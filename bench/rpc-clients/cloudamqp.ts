/**
 * @cloudamqp/amqp-client's request/reply, by hand through the low-level API the other bench clients
 * use (`new AMQPClient(url).connect()`, `conn.channel()`): `ch.basicConsume('amq.rabbitmq.reply-to',
 * { noAck: true }, callback)`, a `Map` from correlation id to the waiting promise, and
 * `ch.basicPublish('', queue, body, { replyTo: 'amq.rabbitmq.reply-to', correlationId })` per request
 * (its promise resolves once the frames are written). Correlation ids are a counter. (Version 4 also
 * has `AMQPSession.rpcClient()`, on its reconnecting session; the by-hand code is what works with the
 * plain client and what earlier versions' users write.)
 *
 * The connection's or channel's `onerror` fails every pending request.
 *
 * @module
 */
import { AMQPClient, type AMQPMessage } from '@cloudamqp/amqp-client';
import { DIRECT_REPLY_TO, PendingReplies, type RpcClientFactory, timedSequence, windowed } from './types.js';

export const openRpcClient: RpcClientFactory = async (url) => {
  const amqp = new AMQPClient(url);
  const conn = await amqp.connect();
  const pending = new PendingReplies<AMQPMessage>();
  let closing = false;
  conn.onerror = (e) => {
    if (!closing) pending.fail(e);
  };
  const ch = await conn.channel();
  ch.onerror = (reason) => pending.fail(new Error(`@cloudamqp/amqp-client: the channel closed: ${reason}`));
  await ch.basicConsume(DIRECT_REPLY_TO, { noAck: true }, (msg) => {
    pending.answer(msg.properties.correlationId, msg);
  });

  const request = (queue: string, body: Buffer): Promise<AMQPMessage> => {
    const correlationId = pending.nextId();
    const reply = pending.wait(correlationId);
    ch.basicPublish('', queue, body, { replyTo: DIRECT_REPLY_TO, correlationId }).catch((e: unknown) =>
      pending.fail(e instanceof Error ? e : new Error(String(e))),
    );
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
