/**
 * The peer benchmark suite: the same scenarios for rxamqp, amqplib, rabbitmq-client,
 * @cloudamqp/amqp-client and the raw client (pre-encoded frames: the ceiling), each at its defaults,
 * each workload in its own child process, against two targets:
 *
 * - `real`: the RabbitMQ broker (`AMQP_URL`, or 127.0.0.1:5672);
 * - `null`: the null broker (`bench/lib/null-broker.ts`), run by the runner in a process of its own,
 *   which answers at once and so isolates each client's own cost.
 *
 * Scenarios (256-byte bodies unless said):
 *
 * - `publish`: publish N without confirms, until the broker holds all N;
 * - `confirm`: confirmed publishing with at most 1,000 unconfirmed;
 * - `consume`: consume a prefilled queue, prefetch 1,000, an ack per message (the filling is not
 *   measured);
 * - `latency`: round trips one at a time (publish, deliver, ack), p50 and p99;
 * - `large`: 1 MiB messages, confirmed publish (window 16) then consumed;
 * - `memory`: 1,000,000 publishes of 1 KiB into a broker that blocks the connection (the null broker
 *   with `blockAfter`): the growth of the resident set while the client is stuck.
 *
 * @module
 */
import { CLIENT_FACTORIES } from './clients/index.js';
import { type BenchClient, CLIENT_NAMES, type ClientName } from './lib/clients.js';
import {
  BLOCKED_BROKER_ENV,
  MEMORY_BLOCK_AFTER,
  MEMORY_MESSAGES,
  NULL_BROKER_ENV,
  TARGETS_ENV,
} from './lib/suite-env.js';
import type { RoundResult, Scenario, ScenarioContext, Workload } from './lib/types.js';

/** The broker a workload talks to. */
export type BenchTarget = 'real' | 'null';

const BODY = Buffer.alloc(256, 0x61);
const KIB = Buffer.alloc(1024, 0x61);
const MIB = Buffer.alloc(1024 * 1024, 0x61);
const WINDOW = 1000;
const PREFETCH = 1000;

function slug(client: ClientName): string {
  return client.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
}

function realUrl(ctx: ScenarioContext): string {
  return ctx.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
}

function targetsOf(ctx: ScenarioContext): BenchTarget[] {
  const wanted = (ctx.env[TARGETS_ENV] ?? 'real,null').split(',').map((t) => t.trim());
  return (['real', 'null'] as const).filter((t) => wanted.includes(t));
}

function urlOf(ctx: ScenarioContext, target: BenchTarget): string {
  if (target === 'real') return realUrl(ctx);
  const url = ctx.env[NULL_BROKER_ENV];
  if (url === undefined) throw new Error(`the null broker is not running (${NULL_BROKER_ENV} is not set)`);
  return url;
}

async function open(name: ClientName, url: string): Promise<BenchClient> {
  const factory = await CLIENT_FACTORIES[name]();
  return factory(url);
}

/** Waits until `queue` holds at least `n` messages (publishes are written; the broker may lag). */
async function untilDepth(client: BenchClient, queue: string, n: number, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    const depth = await client.queueDepth(queue);
    if (depth >= n) return;
    if (performance.now() > deadline)
      throw new Error(`${queue} holds ${depth} of ${n} messages after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 20);
  }
}

/** Runs `work` and returns its wall and process CPU time. */
async function timed(work: () => Promise<void>): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const wallMs = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** What a scenario does in one round with a connected client. */
interface Plan {
  readonly name: string;
  readonly description: string;
  /** Messages per round: full and --quick, by target. */
  readonly perRound: (target: BenchTarget, quick: boolean) => number;
  readonly warmupBatches: (quick: boolean) => number;
  readonly params: Readonly<Record<string, string | number | boolean>>;
  /** Clients that take part (default all). */
  readonly clients?: readonly ClientName[];
  /** Targets that apply (default both). */
  readonly targets?: readonly BenchTarget[];
  /** Runs once, without warm-up (a long observation rather than a rate). */
  readonly once?: boolean;
  /** Measured rounds (default the runner's) and warm-up batch size (default a round's). */
  readonly rounds?: number;
  readonly warmupOps?: (target: BenchTarget, quick: boolean) => number;
  readonly url?: (ctx: ScenarioContext, target: BenchTarget) => string;
  round(
    client: BenchClient,
    queue: string,
    n: number,
    filler: () => Promise<BenchClient>,
    quick: boolean,
  ): Promise<RoundResult>;
}

const PLANS: readonly Plan[] = [
  {
    name: 'publish',
    description: 'publish without confirms until the broker holds all N (256 B)',
    perRound: (t, quick) => (quick ? 10_000 : t === 'null' ? 200_000 : 50_000),
    warmupBatches: (quick) => (quick ? 1 : 3),
    params: { bodySize: BODY.length, confirms: false },
    async round(client, queue, n, filler) {
      // The depth is polled through the raw connection: a peer with Nagle on would otherwise pay a
      // delayed TCP ack on every poll.
      const probe = await filler();
      await client.purgeQueue(queue);
      const timing = await timed(async () => {
        await client.publish(queue, BODY, n);
        await untilDepth(probe, queue, n);
      });
      return { ops: n, timing };
    },
  },
  {
    name: 'confirm',
    description: `confirmed publishing, window ${WINDOW} (256 B)`,
    perRound: (t, quick) => (quick ? 10_000 : t === 'null' ? 200_000 : 50_000),
    warmupBatches: (quick) => (quick ? 1 : 3),
    params: { bodySize: BODY.length, window: WINDOW },
    async round(client, queue, n) {
      await client.purgeQueue(queue);
      const timing = await timed(() => client.publishConfirmed(queue, BODY, n, WINDOW));
      return { ops: n, timing };
    },
  },
  {
    name: 'consume',
    description: `consume a prefilled queue, prefetch ${PREFETCH}, an ack per message (256 B; filling not measured)`,
    perRound: (t, quick) => (quick ? 10_000 : t === 'null' ? 200_000 : 50_000),
    warmupBatches: (quick) => (quick ? 1 : 3),
    params: { bodySize: BODY.length, prefetch: PREFETCH },
    async round(client, queue, n, filler) {
      const fill = await filler();
      await fill.purgeQueue(queue);
      await fill.publish(queue, BODY, n);
      await untilDepth(fill, queue, n);
      const timing = await timed(() => client.consume(queue, n, PREFETCH));
      return { ops: n, timing };
    },
  },
  {
    name: 'latency',
    description: 'round trips one at a time: publish, deliver, ack (256 B); p50 and p99 of one long round',
    // One round of samples (a peer with Nagle on needs ~44 ms a round trip: 1,000 take 44 s).
    perRound: (_t, quick) => (quick ? 50 : 1000),
    rounds: 1,
    warmupOps: (_t, quick) => (quick ? 10 : 50),
    warmupBatches: () => 1,
    params: { bodySize: BODY.length },
    async round(client, queue, n) {
      let latencies: number[] = [];
      const timing = await timed(async () => {
        latencies = await client.roundTrips(queue, BODY, n);
      });
      latencies.sort((a, b) => a - b);
      return {
        ops: n,
        timing,
        metrics: { 'p50 ms': percentile(latencies, 50), 'p99 ms': percentile(latencies, 99) },
      };
    },
  },
  {
    name: 'large',
    description: '1 MiB messages: confirmed publish (window 16), then consumed (prefetch 16)',
    perRound: (_t, quick) => (quick ? 10 : 100),
    warmupBatches: (quick) => (quick ? 1 : 2),
    params: { bodySize: MIB.length, window: 16, prefetch: 16 },
    async round(client, queue, n) {
      await client.purgeQueue(queue);
      const timing = await timed(async () => {
        await client.publishConfirmed(queue, MIB, n, 16);
        await client.consume(queue, n, 16);
      });
      return { ops: n, timing, counters: { bytes: 2 * n * MIB.length } };
    },
  },
  {
    name: 'memory',
    description: `${MEMORY_MESSAGES.toLocaleString('en')} publishes of 1 KiB into a blocked broker: resident set growth`,
    perRound: () => MEMORY_MESSAGES,
    warmupBatches: () => 0,
    params: { bodySize: KIB.length, blockAfter: MEMORY_BLOCK_AFTER },
    targets: ['null'],
    clients: ['rxamqp', 'amqplib', 'rabbitmq-client', '@cloudamqp/amqp-client'],
    once: true,
    url: (ctx) => {
      const url = ctx.env[BLOCKED_BROKER_ENV];
      if (url === undefined)
        throw new Error(`the blocking null broker is not running (${BLOCKED_BROKER_ENV})`);
      return url;
    },
    async round(client, queue, n, _filler, quick) {
      const observeMs = quick ? 2000 : 6000;
      const rssBefore = process.memoryUsage.rss();
      let peak = rssBefore;
      let settled: string | undefined;
      const publishing = client.publish(queue, KIB, n).then(
        () => {
          settled = 'completed';
        },
        (e: unknown) => {
          settled = `failed: ${e instanceof Error ? e.message : String(e)}`;
        },
      );
      const t0 = performance.now();
      const cpu = process.cpuUsage();
      while (performance.now() - t0 < observeMs && settled === undefined) {
        await new Promise((r) => setTimeout(r, 50));
        peak = Math.max(peak, process.memoryUsage.rss());
      }
      const used = process.cpuUsage(cpu);
      const wallMs = performance.now() - t0;
      // No close: the broker no longer reads this connection, so a close handshake would only wait
      // for its timeout. The workload's process ends after the round.
      void publishing;
      return {
        ops: n,
        timing: { wallMs, cpuMs: (used.user + used.system) / 1000 },
        metrics: { 'rss growth MiB': (peak - rssBefore) / (1024 * 1024) },
      };
    },
  },
];

function scenarioOf(plan: Plan): Scenario {
  return {
    name: plan.name,
    description: `${plan.description}; every client, real broker and null broker`,
    workloads(ctx): Workload[] {
      const workloads: Workload[] = [];
      for (const target of targetsOf(ctx)) {
        if (plan.targets !== undefined && !plan.targets.includes(target)) continue;
        for (const name of plan.clients ?? CLIENT_NAMES) {
          const queue = `rxamqp-bench-${plan.name}-${slug(name)}`;
          let client: BenchClient | undefined;
          let fill: BenchClient | undefined;
          workloads.push({
            name: `${name} @${target}`,
            client: name,
            unit: 'message',
            params: { ...plan.params, target },
            opsPerRound: plan.perRound(target, ctx.quick),
            warmupBatches: plan.warmupBatches(ctx.quick),
            ...(plan.once === true ? { once: true } : {}),
            ...(plan.rounds !== undefined ? { rounds: plan.rounds } : {}),
            ...(plan.warmupOps !== undefined ? { warmupOps: plan.warmupOps(target, ctx.quick) } : {}),
            async setup() {
              const url = plan.url?.(ctx, target) ?? urlOf(ctx, target);
              client = await open(name, url);
              await client.declareQueue(queue);
              await client.purgeQueue(queue);
            },
            async run(n) {
              const filler = async () => {
                fill ??= await open('raw', urlOf(ctx, target));
                return fill;
              };
              return plan.round(client!, queue, n, filler, ctx.quick);
            },
            async teardown() {
              if (plan.once !== true && client !== undefined) {
                await client.deleteQueue(queue).catch(() => undefined);
                await client.close().catch(() => undefined);
              }
              if (fill !== undefined) await fill.close().catch(() => undefined);
            },
          });
        }
      }
      return workloads;
    },
  };
}

/** The suite's scenarios, by name. */
export const SUITE: readonly Scenario[] = PLANS.map(scenarioOf);
