/**
 * The `rpc` scenario's responder for the real broker, in a process of its own so that its CPU is not
 * the measured client's: it consumes the request queue and sends each request's body back to its
 * reply-to with its correlation id (through the default exchange: direct reply-to's contract).
 *
 * ```sh
 * node dist/bench/bench/rpc-responder.js <amqp-url> <queue>
 * ```
 *
 * amqplib, prefetch 1,000 so that the broker never waits for the responder's acks, one `multiple` ack
 * per 100 requests (a tenth of the prefetch). Sends `{ ready: true }` over IPC once consuming; exits
 * on SIGTERM / SIGINT and when its parent goes (IPC disconnect), and with status 1 on any error.
 *
 * @module
 */
import amqplib from 'amqplib';

const PREFETCH = 1000;
const ACK_EVERY = 100;

async function main(): Promise<void> {
  const [url, queue] = process.argv.slice(2);
  if (url === undefined || queue === undefined) throw new Error('usage: rpc-responder.js <amqp-url> <queue>');
  const conn = await amqplib.connect(url);
  const die = (e: unknown): void => {
    process.stderr.write(`rpc responder: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  };
  conn.on('error', die);
  const ch = await conn.createChannel();
  ch.on('error', die);
  await ch.prefetch(PREFETCH);
  let unacked = 0;
  await ch.consume(
    queue,
    (msg) => {
      if (msg === null) return die(new Error(`the consumer of ${queue} was cancelled`));
      const { replyTo, correlationId } = msg.properties as { replyTo?: string; correlationId?: string };
      if (replyTo !== undefined) {
        ch.sendToQueue(replyTo, msg.content, correlationId === undefined ? {} : { correlationId });
      }
      if (++unacked === ACK_EVERY) {
        unacked = 0;
        ch.ack(msg, true);
      }
    },
    { noAck: false },
  );
  const stop = (): void => {
    conn.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
  process.send?.({ ready: true });
}

main().catch((e: unknown) => {
  process.stderr.write(`rpc responder: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
