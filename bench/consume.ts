/**
 * `consume`: consuming a prefilled queue from the real broker with manual acks (256-byte bodies,
 * prefetch 1000, an ack per delivery): the client CPU per 1,000 deliveries, the figure issue 4 sets a
 * target for (≤ 4 ms; the best peers need about 15 ms here).
 *
 * Each round first fills the queue (not part of the figures below), then consumes it. The runner's own
 * rate includes the filling; the `consume ...` metrics measure only the consuming.
 */
import { count, lastValueFrom, merge, take, tap } from 'rxjs';
import { type Channel, type Connection, openConnection } from '../src/index.js';
import type { RoundResult, Scenario, Workload } from './lib/types.js';

const QUEUE = 'rxamqp-bench-consume';
const BODY = Buffer.alloc(256, 0x61);

async function fill(ch: Channel, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push(ch.publish('', QUEUE, BODY));
    await lastValueFrom(merge(...batch), { defaultValue: undefined });
  }
  for (let i = 0; i < 400; i++) {
    if ((await lastValueFrom(ch.queueDeclare(QUEUE, { passive: true }))).messageCount >= n) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the queue never reached ${n} messages`);
}

const scenario: Scenario = {
  name: 'consume',
  description:
    'consume a prefilled queue from the real broker, prefetch 1000, ack each (client CPU per 1,000)',
  workloads(ctx): Workload[] {
    const url = ctx.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    let conn: Connection | undefined;
    let ch: Channel | undefined;
    return [
      {
        name: 'consume + ack each',
        unit: 'message',
        opsPerRound: ctx.quick ? 10_000 : 50_000,
        warmupBatches: ctx.quick ? 1 : 3,
        params: { bodySize: BODY.length, prefetch: 1000, target: '≤ 4 ms client CPU per 1,000' },
        async setup() {
          conn = await openConnection(url, { name: 'rxamqp bench consume' });
          ch = await conn.openChannel();
          await lastValueFrom(ch.queueDeclare(QUEUE, { durable: false, autoDelete: false }));
          await lastValueFrom(ch.queuePurge(QUEUE));
        },
        async run(n): Promise<RoundResult> {
          const channel = ch!;
          await fill(channel, n);
          const started = performance.now();
          const cpu = process.cpuUsage();
          await lastValueFrom(
            channel.consume(QUEUE, { prefetch: 1000 }).pipe(
              tap((d) => d.ack()),
              take(n),
              count(),
            ),
          );
          const used = process.cpuUsage(cpu);
          const ms = performance.now() - started;
          return {
            ops: n,
            metrics: {
              'consume msg/s': Math.round((n / ms) * 1000),
              'consume cpu ms/1k': (used.user + used.system) / 1000 / (n / 1000),
            },
          };
        },
        async teardown() {
          if (ch !== undefined) await lastValueFrom(ch.queueDelete(QUEUE)).catch(() => undefined);
          if (conn !== undefined) await lastValueFrom(conn.close());
        },
      },
    ];
  },
};

export default scenario;
