/**
 * `idle`: what an idle resource costs a client's process, rxamqp against the three peers, each opening
 * them as its documentation shows (`bench/idle-clients/`), on both targets:
 *
 * - `channels`: 1,000 channels opened on one connection, one after the other, then left idle;
 * - `consumers`: 10,000 consumers on 100 channels of one connection (100 per channel, all on that
 *   channel's own queue, which holds nothing), prefetch 10, manual acks, then left idle.
 *
 * One round (`once`), in the workload's own process: a full GC, the heap used and the resident set;
 * the resources opened (timed: the rate is resources per second); a full GC again. Metrics:
 * `heap B/resource` and `rss B/resource` (after minus before, over the number of resources), and
 * `open ms` (the time to open them all). The connection is opened before the first measurement, so
 * only the resources are counted. Queues are declared (and deleted afterwards) through a short-lived
 * rxamqp connection that is closed before anything is measured.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { IDLE_CLIENTS } from './idle-clients/index.js';
import { IDLE_CLIENT_NAMES, type IdleClient } from './idle-clients/types.js';
import { collectGarbage } from './lib/measure.js';
import { closeWithin, slug, targetsOf, urlOf, withAdmin } from './lib/targets.js';
import type { RoundResult, Scenario, Workload } from './lib/types.js';

const CHANNELS = 1000;
const CONSUMER_CHANNELS = 100;
const CONSUMERS_PER_CHANNEL = 100;
const PREFETCH = 10;

type Variant = 'channels' | 'consumers';

/** Heap used and resident set after a full GC. */
function memory(): { heap: number; rss: number } {
  collectGarbage();
  return { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage.rss() };
}

async function measureOpen(n: number, open: () => Promise<void>): Promise<RoundResult> {
  const before = memory();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await open();
  const wallMs = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  // Let what the opening left to do (timers of a turn, acks of consume-oks) run before measuring.
  await new Promise((r) => setTimeout(r, 50));
  const after = memory();
  return {
    ops: n,
    timing: { wallMs, cpuMs: (used.user + used.system) / 1000 },
    metrics: {
      'heap B/resource': (after.heap - before.heap) / n,
      'rss B/resource': (after.rss - before.rss) / n,
      'open ms': wallMs,
    },
  };
}

const scenario: Scenario = {
  name: 'idle',
  description: `memory per idle resource: ${CHANNELS} channels; ${CONSUMER_CHANNELS * CONSUMERS_PER_CHANNEL} consumers on ${CONSUMER_CHANNELS} channels; rxamqp and peers, both brokers`,
  workloads(ctx): Workload[] {
    const workloads: Workload[] = [];
    for (const target of targetsOf(ctx)) {
      for (const variant of ['channels', 'consumers'] as const satisfies readonly Variant[]) {
        for (const name of IDLE_CLIENT_NAMES) {
          const queues = Array.from(
            { length: variant === 'consumers' ? CONSUMER_CHANNELS : 0 },
            (_, i) => `rxamqp-bench-idle-${slug(name)}-${i}`,
          );
          const n = variant === 'channels' ? CHANNELS : CONSUMER_CHANNELS * CONSUMERS_PER_CHANNEL;
          let client: IdleClient | undefined;
          workloads.push({
            name: `${name} ${variant} @${target}`,
            client: name,
            unit: variant === 'channels' ? 'channel' : 'consumer',
            params: {
              target,
              variant,
              resources: n,
              ...(variant === 'consumers' ? { channels: CONSUMER_CHANNELS, prefetch: PREFETCH } : {}),
            },
            opsPerRound: n,
            once: true,
            async setup() {
              const url = urlOf(ctx, target);
              if (queues.length > 0) {
                await withAdmin(url, async (ch) => {
                  for (const queue of queues) {
                    await lastValueFrom(ch.queueDeclare(queue, { durable: false, autoDelete: false }));
                    await lastValueFrom(ch.queuePurge(queue));
                  }
                });
              }
              client = await (await IDLE_CLIENTS[name]())(url);
            },
            run(count) {
              const c = client!;
              return measureOpen(count, () =>
                variant === 'channels'
                  ? c.openChannels(count)
                  : c.startConsumers(queues, count / queues.length, PREFETCH),
              );
            },
            async teardown() {
              if (client !== undefined) await closeWithin(() => client!.close());
              if (queues.length > 0) {
                await withAdmin(urlOf(ctx, target), async (ch) => {
                  for (const queue of queues) await lastValueFrom(ch.queueDelete(queue));
                }).catch(() => undefined);
              }
            },
          });
        }
      }
    }
    return workloads;
  },
};

export default scenario;
