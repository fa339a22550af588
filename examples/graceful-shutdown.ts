/**
 * Graceful shutdown on SIGTERM: a worker consumes a queue through `ackOnSuccess` (10 handlers at a
 * time, prefetch 20) and publishes a result for each message through a publisher on the same
 * recovering connection. On SIGTERM (or SIGINT) it drains the connection: the consumer is cancelled
 * at once (nothing more is pulled from the queue), the running handlers finish and are acked (their
 * result publishes still go out and are confirmed), the acks held are sent, and the connection
 * closes; then the publisher is drained and the process exits: 0 after a clean drain, 1 if the
 * timeout cut it short (the broker then requeued what was unsettled).
 *
 * As a demo it publishes 100 jobs, sends itself SIGTERM after one second, and prints what was done
 * and what is left in the queue. With `--serve` it waits for a real SIGTERM (`kill <pid>`, or
 * Kubernetes stopping the pod) instead.
 *
 * Run: npx tsx examples/graceful-shutdown.ts [--serve]
 * Needs RabbitMQ on 127.0.0.1:5672 (or AMQP_URL).
 */
import { connect, createPublisher, type Delivery, openConnection } from 'rxamqp';
import { ackOnSuccess } from 'rxamqp/operators';
import { lastValueFrom, switchMap, tap } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'rxamqp-example-graceful-shutdown';
const results = `${queue}.results`;
const serve = process.argv.includes('--serve');

const connection$ = connect(url, { recovery: true, name: 'graceful-shutdown-example' });
const publisher = createPublisher(connection$);
let done = 0;

/** One job: some work, then a result published (and confirmed) before the delivery is acked. */
async function handle(delivery: Delivery): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
  await lastValueFrom(publisher.publish('', results, `done ${delivery.text()}`));
  done++;
}

const worker = connection$
  .pipe(
    switchMap((conn) => conn.channel()),
    switchMap((ch) =>
      ch.queueDeclare(queue).pipe(
        switchMap(() => ch.queueDeclare(results)),
        switchMap(() => ch.consume(queue, { prefetch: 20 })),
      ),
    ),
    ackOnSuccess(handle, { concurrency: 10, onError: 'requeue', requeueRedelivered: false }),
  )
  .subscribe({
    // The drain completes the consumer stream: ackOnSuccess completes once its handlers are done.
    complete: () => console.log('worker: consumer stream completed'),
    error: (e: unknown) => console.error('worker failed:', e),
  });

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: draining`);
  // The connection first (the handlers finishing still publish through the publisher, whose channel
  // is on this connection), then the publisher (for what it might hold while disconnected).
  // `connection$.drain()` drains the connection open now and ends the recovering lifetime: a loss
  // during the drain is not reconnected, and during an outage nothing is reopened.
  connection$
    .drain({ timeout: 20_000 })
    .pipe(
      tap((p) =>
        console.log(
          `  ${p.phase} after ${p.elapsed} ms: ${p.unsettled} unsettled, ${p.unconfirmed} unconfirmed${p.timedOut ? ' (timed out)' : ''}`,
        ),
      ),
    )
    .subscribe({
      complete: async () => {
        const report = await lastValueFrom(publisher.drain({ timeout: 5_000 }));
        worker.unsubscribe();
        console.log(`drained: ${done} jobs done; publisher dropped ${report.dropped}`);
        if (!serve) await printReport();
        process.exit(report.timedOut ? 1 : 0);
      },
      error: (e: unknown) => {
        console.error('drain failed (the connection was lost):', e);
        process.exit(1);
      },
    });
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));

/** Demo: jobs to do, then SIGTERM a second later. */
async function demo(): Promise<void> {
  const conn = await openConnection(url);
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDeclare(queue));
  await lastValueFrom(ch.queuePurge(queue));
  await lastValueFrom(ch.queueDeclare(results));
  await lastValueFrom(ch.queuePurge(results));
  await lastValueFrom(ch.confirmSelect());
  for (let i = 1; i <= 100; i++) await lastValueFrom(ch.publish('', queue, `job ${i}`));
  await lastValueFrom(conn.close());
  setTimeout(() => process.kill(process.pid, 'SIGTERM'), 1000);
}

/** Demo: what the drain left behind. */
async function printReport(): Promise<void> {
  const conn = await openConnection(url);
  const ch = await conn.openChannel();
  const left = await lastValueFrom(ch.queueDeclare(queue));
  const out = await lastValueFrom(ch.queueDeclare(results));
  console.log(`left in ${queue}: ${left.messageCount}; results published: ${out.messageCount}`);
  console.log(`every job is either done or still queued: ${left.messageCount + done === 100}`);
  await lastValueFrom(ch.queueDelete(queue));
  await lastValueFrom(ch.queueDelete(results));
  await lastValueFrom(conn.close());
}

if (!serve) {
  demo().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  console.log(`serving; stop with: kill ${process.pid}`);
}
