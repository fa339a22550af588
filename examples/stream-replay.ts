/**
 * Replaying a stream and resuming where the application left off: declares a stream queue (a typed
 * `QueueSpec`), publishes a few events (some with a filter value), reads part of the stream from
 * the first message storing the offset of each delivery it processed, then "restarts" and resumes
 * from the stored offset + 1, getting exactly the rest. Last, it reads only the `eu` events from the
 * start: RabbitMQ 3.13+ skips chunks without them on the broker, and on every version the client
 * post-filters what the broker sends (3.10 sends everything).
 *
 * Run: npx tsx examples/stream-replay.ts
 * Needs RabbitMQ 3.9+ (streams) on 127.0.0.1:5672, or AMQP_URL.
 */
import {
  type Channel,
  consumeStream,
  openConnection,
  queue,
  type StreamDelivery,
  toQueueDeclare,
  withStreamFilterValue,
} from 'rxamqp';
import { firstValueFrom, lastValueFrom, merge, take, toArray } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const events = queue({ name: `rxamqp-example-stream-${process.pid}`, type: 'stream', maxAge: '1D' });

/** Where a real application would keep its offset: a database row, a file, a key-value store. */
let storedOffset: number | undefined;

async function publishEvents(ch: Channel): Promise<void> {
  await lastValueFrom(ch.confirmSelect());
  const regions = ['eu', 'us', 'eu', 'apac', 'us', 'eu', 'us', 'eu', 'apac', 'us'];
  const publishes = regions.map((region, i) =>
    ch.publish('', events.name, JSON.stringify({ n: i, region }), withStreamFilterValue(region)),
  );
  publishes.push(ch.publish('', events.name, JSON.stringify({ n: 10, region: 'none' }))); // no filter value
  await lastValueFrom(merge(...publishes).pipe(toArray()));
}

function show(label: string, deliveries: StreamDelivery[]): void {
  const shown = deliveries.map((d) => `${d.json<{ n: number }>().n}@${d.streamOffset}`).join(' ');
  console.log(`${label}: ${shown}`);
}

async function main(): Promise<void> {
  const connection = await openConnection(url);
  try {
    const ch = await connection.openChannel();
    const { queue: name, options } = toQueueDeclare(events);
    await lastValueFrom(ch.queueDeclare(name, options));
    await publishEvents(ch);

    // First run: process four events from the start, storing each one's offset once processed.
    const firstRun = await firstValueFrom(
      consumeStream(ch, name, { offset: 'first', prefetch: 50 }).pipe(take(4), toArray()),
    );
    for (const d of firstRun) storedOffset = d.streamOffset;
    show('first run (offset: first)', firstRun);

    // "Restart": resume after the stored offset. Offsets rise but may skip numbers, so always
    // resume from the stored offset + 1, never from a count of messages.
    const resumeFrom = (storedOffset ?? -1) + 1;
    const rest = await firstValueFrom(
      consumeStream(ch, name, { offset: resumeFrom, prefetch: 50 }).pipe(take(7), toArray()),
    );
    show(`resumed (offset: ${resumeFrom})`, rest);

    // Only the events for 'eu', and those published without a filter value.
    const eu = await firstValueFrom(
      consumeStream(ch, name, {
        offset: 'first',
        prefetch: 10,
        filter: { values: ['eu'], matchUnfiltered: true },
      }).pipe(take(5), toArray()),
    );
    show("filtered ('eu' and unfiltered)", eu);

    await lastValueFrom(ch.queueDelete(name));
  } finally {
    await lastValueFrom(connection.close());
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
