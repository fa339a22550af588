/**
 * Publishing in a transaction: `txSelect()`, three publishes, `txCommit()`; then one more publish
 * undone by `txRollback()`. A passive `queueDeclare` reports the queue's message count at each step:
 * nothing before the commit, the three committed messages after it, and still three after the
 * rollback. The messages are then read back and the queue deleted.
 *
 * Written with async/await (`openConnection`, `lastValueFrom`); each step is one channel method.
 *
 * Run: npx tsx examples/tx-publish.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import { type Channel, openConnection } from 'rxamqp';
import { firstValueFrom, forkJoin, lastValueFrom } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** How many messages are ready in the queue, from a passive declare (which changes nothing). */
async function readyCount(ch: Channel, queue: string): Promise<number> {
  const { messageCount } = await lastValueFrom(ch.queueDeclare(queue, { passive: true }));
  return messageCount;
}

async function main(): Promise<void> {
  const conn = await openConnection(url, { name: 'tx publish example' });
  try {
    const ch = await conn.openChannel();
    // Server-named and exclusive: no other connection can see it, and it goes when this one closes.
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));

    await lastValueFrom(ch.txSelect());
    console.log(' [ ] channel in transaction mode');

    // In a transaction a publish emits `sent` once it is on the socket; the broker keeps the message
    // with the transaction until the commit.
    const bodies = ['order 1', 'order 2', 'order 3'];
    await lastValueFrom(forkJoin(bodies.map((body) => ch.publish('', queue, body, { deliveryMode: 2 }))));
    console.log(
      ` [x] published ${bodies.length} messages; in the queue before the commit: ${await readyCount(ch, queue)}`,
    );

    await lastValueFrom(ch.txCommit());
    console.log(` [x] committed; in the queue: ${await readyCount(ch, queue)}`);

    await lastValueFrom(ch.publish('', queue, 'order 4 (to be rolled back)', { deliveryMode: 2 }));
    await lastValueFrom(ch.txRollback());
    console.log(` [x] published one more and rolled it back; in the queue: ${await readyCount(ch, queue)}`);

    // What is there: basic.get with noAck, so that there are no acks to commit.
    for (;;) {
      const delivery = await firstValueFrom(ch.get(queue, { noAck: true }), { defaultValue: undefined });
      if (delivery === undefined) break;
      console.log(` [ ] got '${delivery.text()}'`);
    }

    const { messageCount } = await lastValueFrom(ch.queueDelete(queue));
    console.log(` [ ] deleted the queue (${messageCount} messages left in it)`);
    await lastValueFrom(ch.close());
  } finally {
    await lastValueFrom(conn.close());
  }
}

main().catch((e: unknown) => {
  console.error(`tx example failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
