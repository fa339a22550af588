/**
 * Poison messages and consumer timeouts, end to end. A quorum queue `x-delivery-limit: 3` with a
 * dead-letter queue; a worker on a recovering connection consumes it through `ackOnSuccess` with its
 * default failure policy (`'retry'`: basic.reject with requeue, counted by the broker toward the
 * delivery limit). A consumer timeout needs nothing more on a recovering connection: `channel()`
 * opens a fresh channel (its `reopenedAfter` says why) and the consumer starts again on it.
 * Three messages are published: `ok` is processed, `poison` always fails and ends in the dead-letter
 * queue after the first delivery and three redeliveries (its `x-death` read as `delivery.deaths`), and
 * `ok-2` also succeeds. A second worker reads the dead-letter queue.
 *
 * Run: npx tsx examples/poison-messages.ts
 * Needs RabbitMQ on 127.0.0.1:5672 (or AMQP_URL).
 */
import { randomUUID } from 'node:crypto';
import { connect, type Delivery, openConnection } from 'rxamqp';
import { ackOnSuccess } from 'rxamqp/operators';
import { filter, firstValueFrom, lastValueFrom, switchMap, take, tap, timeout } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const runId = randomUUID().slice(0, 8);
const queue = `rxamqp-example-poison-${runId}`;
const dlq = `${queue}.dlq`;

async function main(): Promise<void> {
  const admin = await openConnection(url, { name: 'rxamqp-example-poison-admin' });
  const ch = await admin.openChannel();
  try {
    await lastValueFrom(ch.queueDeclare(dlq, { durable: true }));
    await lastValueFrom(
      ch.queueDeclare(queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-delivery-limit': 3, // the broker dead-letters a message returned a 4th time
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': dlq,
        },
      }),
    );

    // The worker: fails `poison` every time, handles the rest.
    const processed: string[] = [];
    const worker = connect(url, { name: 'rxamqp-example-poison-worker', recovery: true })
      .pipe(
        switchMap((conn) => conn.channel()),
        tap((wch) => {
          if (wch.reopenedAfter !== undefined) console.warn('consumer timeout, channel reopened');
        }),
        switchMap((wch) => wch.consume(queue, { prefetch: 10 })),
        ackOnSuccess(
          (d: Delivery) => {
            const attempt = (d.deliveryCount ?? 0) + 1;
            if (d.text() === 'poison') throw new Error(`cannot handle it (attempt ${attempt})`);
            processed.push(d.text());
            return d.text();
          },
          { concurrency: 10, onFailure: (e) => console.log('failed:', (e as Error).message) },
        ),
      )
      .subscribe({ error: (e) => console.error('worker gave up:', e) });

    for (const body of ['ok', 'poison', 'ok-2']) {
      await lastValueFrom(ch.publish('', queue, body, { deliveryMode: 2 }));
    }

    // The dead-letter queue gets the poison message, with why and where it died.
    const dead = await firstValueFrom(
      ch.consume(dlq).pipe(
        filter((d) => d.ack()),
        take(1),
        timeout(10_000),
      ),
    );
    worker.unsubscribe();
    const [death] = dead.deaths;
    console.log(`processed: ${processed.join(', ')}`);
    console.log(
      `dead-lettered: ${dead.text()} from ${death?.queue} (reason ${death?.reason}, at ${death?.time?.toISOString()})`,
    );
    if (death?.reason !== 'delivery_limit')
      throw new Error('expected the broker to dead-letter it at its limit');
  } finally {
    await lastValueFrom(ch.queueDelete(queue));
    await lastValueFrom(ch.queueDelete(dlq));
    await lastValueFrom(admin.close());
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
