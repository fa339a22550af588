/**
 * The hello-world round trip for async/await code: `openConnection` and `openChannel` resolve with a
 * connection or channel that stays open until you close it, and every channel method is an Observable
 * that `lastValueFrom` turns into a promise.
 *
 *   npx tsx examples/async-await.ts
 *
 * The broker is AMQP_URL, or amqp://guest:guest@127.0.0.1:5672.
 *
 * Why not `await firstValueFrom(connect(url))`? `connect()` is cold: the connection lives exactly as
 * long as the subscription. `firstValueFrom` subscribes, resolves with the first value and then
 * unsubscribes, so the connection it hands you is already closing. `openConnection` (and
 * `connection.openChannel()` for channels) subscribe for good instead; you end them with `close()`.
 */

import { ChannelClosedError, openConnection } from 'rxamqp';
import { firstValueFrom, lastValueFrom, timeout } from 'rxjs';

const url = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'hello';

async function main(): Promise<void> {
  const conn = await openConnection(url, { name: 'rxamqp async/await example', connectionTimeout: 10_000 });
  try {
    const ch = await conn.openChannel();

    await lastValueFrom(ch.queueDeclare(queue));
    await lastValueFrom(ch.publish('', queue, 'Hello World!'));
    console.log(" [x] Sent 'Hello World!'");

    // A consumer, awaited for its first message: firstValueFrom unsubscribes after it, which cancels
    // the consumer (the channel stays open). timeout() bounds the wait.
    const delivery = await firstValueFrom(ch.consume(queue, { noAck: true }).pipe(timeout(5_000)));
    console.log(` [x] Received '${delivery.text()}'`);

    // A broker error closes only the channel it happened on: the promise rejects with a
    // ChannelClosedError, the channel is gone, and the connection and its other channels carry on.
    const other = await conn.openChannel();
    try {
      await lastValueFrom(other.queueDeclare('no-such-queue-here', { passive: true }));
    } catch (e) {
      if (!(e instanceof ChannelClosedError)) throw e;
      console.log(` [!] ${e.replyCode} on channel ${e.channel}; that channel is open: ${other.isOpen}`);
    }
    console.log(` [ ] the connection is open: ${conn.isOpen}, the first channel too: ${ch.isOpen}`);

    await lastValueFrom(ch.close());
  } finally {
    await lastValueFrom(conn.close()); // resolves once the broker answered connection.close
  }
}

main().catch((e: unknown) => {
  console.error(`async/await example failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
