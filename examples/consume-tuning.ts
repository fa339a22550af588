/**
 * Consuming fast, and consuming with the lowest latency: the two connection options that shape the
 * consume path, and the counters that show what they do.
 *
 * - A throughput consumer keeps the defaults: acks held for up to `ackDelay` (1 ms) go out merged into
 *   `multiple` acks, and reads of a dense stream are batched (`readBatching`).
 * - A latency-sensitive consumer turns read batching off and sends its acks at the end of each turn.
 *
 * Run: npx tsx examples/consume-tuning.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import { type ConnectOptions, openConnection } from 'rxamqp';
import { count, lastValueFrom, merge, take, tap } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const messages = 50_000;

async function consumeWith(label: string, options: ConnectOptions): Promise<void> {
  const conn = await openConnection(url, { ...options, name: `consume-tuning: ${label}` });
  const ch = await conn.openChannel();
  const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));

  // Twice: the first pass warms the JIT up, the second is measured.
  for (const pass of ['warm-up', 'measured']) {
    for (let i = 0; i < messages; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => ch.publish('', queue, `message ${i + j}`));
      await lastValueFrom(merge(...batch));
    }
    const before = conn.counters;
    const started = performance.now();
    const cpu = process.cpuUsage();
    await lastValueFrom(
      ch.consume(queue, { prefetch: 1000 }).pipe(
        tap((delivery) => delivery.ack()),
        take(messages),
        count(),
      ),
    );
    const used = process.cpuUsage(cpu);
    const ms = performance.now() - started;
    const after = conn.counters;
    if (pass === 'warm-up') continue;
    console.log(
      `${label.padEnd(10)} ${Math.round((messages / ms) * 1000)} msg/s, ` +
        `${((used.user + used.system) / 1000 / (messages / 1000)).toFixed(1)} ms CPU per 1,000, ` +
        `${after.chunksReceived - before.chunksReceived} reads, ` +
        `${after.framesSent - before.framesSent} frames sent for ${messages} acks`,
    );
  }
  await lastValueFrom(conn.close());
}

// The defaults: acks merged, reads of dense streams batched.
await consumeWith('defaults', {});
// Lowest latency: every read at once, acks at the end of each turn (still merged within the turn).
await consumeWith('latency', { readBatching: false, ackDelay: 0 });
