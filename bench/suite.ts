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
 * Issue 14's scenarios measure the code users write rather than each client's best loop: one workload
 * per client and variant (`params.variant`, also in the workload's name), the raw client left out.
 *
 * - `natural-publish`: no confirms; rxamqp `mergeMap` (concurrency 1,000), `concatMap` and `await`
 *   (`await lastValueFrom(ch.publish(...))` in a loop); each peer's `stream` (its `publish` loop) and
 *   `await` (awaiting each publish; amqplib has none, see bench/clients/amqplib.ts); until the broker
 *   holds all N;
 * - `natural-confirm`: the same variants on a channel in confirm mode (a peer's `stream` is its
 *   `publishConfirmed` with window 1,000); the one-at-a-time variants get smaller rounds (each message
 *   is a round trip);
 * - `natural-consume`: a prefilled queue, prefetch 1,000, an async handler (one microtask of "work",
 *   then the ack), at most 10 at once where the client has a knob for it;
 * - `cold`: a fresh process that connects and publishes, confirms or consumes 50,000 with no warm-up,
 *   as a CLI or a test run does (one round; the connection is part of it, `connect ms` reported).
 *
 * @module
 */
import { CLIENT_FACTORIES } from './clients/index.js';
import {
  type BenchClient,
  type BenchClientFactory,
  CLIENT_NAMES,
  type ClientName,
  naturalPublishVariants,
  type PublishVariant,
} from './lib/clients.js';
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
  /** Messages per round: full and --quick, by target (and variant, for a plan with variants). */
  readonly perRound: (target: BenchTarget, quick: boolean, variant: string | undefined) => number;
  /**
   * The variants of a client (one workload each, `params.variant`); a client with none is left out.
   * Without it, one workload per client and no variant.
   */
  readonly variants?: (client: ClientName) => readonly string[];
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
    variant: string | undefined,
  ): Promise<RoundResult>;
}

/** The client's `publishNatural`, or an error saying it has none. */
function naturalPublisher(client: BenchClient): NonNullable<BenchClient['publishNatural']> {
  if (client.publishNatural === undefined) throw new Error(`${client.name} has no publishNatural`);
  return client.publishNatural.bind(client);
}

/** Issue 14's round sizes: streaming variants, and the one-at-a-time ones of natural-confirm. */
function naturalPerRound(target: BenchTarget, quick: boolean): number {
  return quick ? 5000 : target === 'null' ? 50_000 : 20_000;
}
function oneAtATimePerRound(target: BenchTarget, quick: boolean): number {
  return quick ? 1000 : target === 'null' ? 10_000 : 2000;
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
  {
    name: 'natural-publish',
    description:
      'publish without confirms as users write it (mergeMap, concatMap, await; peers stream, await) (256 B)',
    perRound: (t, quick) => naturalPerRound(t, quick),
    warmupBatches: (quick) => (quick ? 1 : 3),
    variants: (client) => naturalPublishVariants(client, false),
    params: { bodySize: BODY.length, confirms: false },
    async round(client, queue, n, filler, _quick, variant) {
      const publish = naturalPublisher(client);
      // The depth is polled through the raw connection, as in `publish`.
      const probe = await filler();
      await client.purgeQueue(queue);
      const timing = await timed(async () => {
        await publish(queue, BODY, n, variant as PublishVariant, false);
        await untilDepth(probe, queue, n);
      });
      return { ops: n, timing };
    },
  },
  {
    name: 'natural-confirm',
    description:
      'confirmed publishing as users write it (mergeMap, concatMap, await; peers stream, await) (256 B)',
    // concatMap and await wait for each confirm before the next publish: a round trip per message.
    perRound: (t, quick, variant) =>
      variant === 'mergeMap' || variant === 'stream'
        ? naturalPerRound(t, quick)
        : oneAtATimePerRound(t, quick),
    warmupBatches: (quick) => (quick ? 1 : 3),
    variants: (client) => naturalPublishVariants(client, true),
    params: { bodySize: BODY.length, confirms: true },
    async round(client, queue, n, _filler, _quick, variant) {
      const publish = naturalPublisher(client);
      await client.purgeQueue(queue);
      const timing = await timed(() => publish(queue, BODY, n, variant as PublishVariant, true));
      return { ops: n, timing };
    },
  },
  {
    name: 'natural-consume',
    description: `consume a prefilled queue as users write it: prefetch ${PREFETCH}, an async handler, then ack (256 B; filling not measured)`,
    perRound: (t, quick) => naturalPerRound(t, quick),
    warmupBatches: (quick) => (quick ? 1 : 3),
    variants: (client) => (client === 'raw' ? [] : ['async']),
    params: { bodySize: BODY.length, prefetch: PREFETCH },
    async round(client, queue, n, filler) {
      if (client.consumeNatural === undefined) throw new Error(`${client.name} has no consumeNatural`);
      const fill = await filler();
      await fill.purgeQueue(queue);
      await fill.publish(queue, BODY, n);
      await untilDepth(fill, queue, n);
      const timing = await timed(() => client.consumeNatural!(queue, n, PREFETCH));
      return { ops: n, timing };
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
          for (const variant of plan.variants?.(name) ?? [undefined]) {
            const queue = `rxamqp-bench-${plan.name}-${slug(name)}`;
            let client: BenchClient | undefined;
            let fill: BenchClient | undefined;
            workloads.push({
              name: variant === undefined ? `${name} @${target}` : `${name} ${variant} @${target}`,
              client: name,
              unit: 'message',
              params: { ...plan.params, target, ...(variant !== undefined ? { variant } : {}) },
              opsPerRound: plan.perRound(target, ctx.quick, variant),
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
                return plan.round(client!, queue, n, filler, ctx.quick, variant);
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
      }
      return workloads;
    },
  };
}

/** Messages of the cold scenario's one round. */
const COLD_MESSAGES = 50_000;
const COLD_VARIANTS = ['publish', 'confirm', 'consume'] as const;
type ColdVariant = (typeof COLD_VARIANTS)[number];

/**
 * `cold`: what a fresh process pays, as a CLI or a test run does: one round, no warm-up (`once`), in
 * which the client connects and then publishes (its `publish`), confirms (`publishConfirmed`, window
 * 1,000) or consumes (`consume`, prefetch 1,000) N messages. The round's time runs from just before
 * the connection is opened to the end of the work (for `publish`, until the broker holds all N); the
 * close comes after. `connect ms` is the connection's share. `load ms` is the import of the client's
 * modules (the library and its bench client file), done in `setup()`: reported, but not in the round's
 * time, which compares what each client does once loaded.
 *
 * Nothing of the client under test runs before the round: the queue is declared, purged and (for
 * `consume`) filled through the raw client, which shares with rxamqp only the codec it uses for a
 * handful of handshake and reply frames (its publishes are pre-encoded once per batch). The raw client
 * takes part as the ceiling.
 */
function coldScenario(): Scenario {
  return {
    name: 'cold',
    description: `a fresh process connects and publishes, confirms or consumes ${COLD_MESSAGES.toLocaleString('en')} (256 B), no warm-up; every client, real broker and null broker`,
    workloads(ctx): Workload[] {
      const workloads: Workload[] = [];
      const n = ctx.quick ? 5000 : COLD_MESSAGES;
      for (const target of targetsOf(ctx)) {
        for (const name of CLIENT_NAMES) {
          for (const variant of COLD_VARIANTS) {
            const queue = `rxamqp-bench-cold-${slug(name)}`;
            let factory: BenchClientFactory | undefined;
            let fill: BenchClient | undefined;
            let loadMs = 0;
            workloads.push({
              name: `${name} ${variant} @${target}`,
              client: name,
              unit: 'message',
              params: { bodySize: BODY.length, window: WINDOW, prefetch: PREFETCH, target, variant },
              opsPerRound: n,
              once: true,
              async setup() {
                const t0 = performance.now();
                factory = await CLIENT_FACTORIES[name]();
                loadMs = performance.now() - t0;
                fill = await open('raw', urlOf(ctx, target));
                await fill.declareQueue(queue);
                await fill.purgeQueue(queue);
              },
              async run(count) {
                return coldRound(factory!, urlOf(ctx, target), fill!, queue, count, variant, loadMs);
              },
              async teardown() {
                if (fill !== undefined) {
                  await fill.deleteQueue(queue).catch(() => undefined);
                  await fill.close().catch(() => undefined);
                }
              },
            });
          }
        }
      }
      return workloads;
    },
  };
}

/** The cold round: connect, do the work, then (not timed) close. */
async function coldRound(
  factory: BenchClientFactory,
  url: string,
  fill: BenchClient,
  queue: string,
  n: number,
  variant: ColdVariant,
  loadMs: number,
): Promise<RoundResult> {
  if (variant === 'consume') {
    await fill.publish(queue, BODY, n);
    await untilDepth(fill, queue, n);
  }
  let client: BenchClient | undefined;
  let connectMs = 0;
  try {
    const timing = await timed(async () => {
      const t0 = performance.now();
      client = await factory(url);
      connectMs = performance.now() - t0;
      if (variant === 'publish') {
        await client.publish(queue, BODY, n);
        await untilDepth(fill, queue, n);
      } else if (variant === 'confirm') {
        await client.publishConfirmed(queue, BODY, n, WINDOW);
      } else {
        await client.consume(queue, n, PREFETCH);
      }
    });
    return { ops: n, timing, metrics: { 'connect ms': connectMs, 'load ms': loadMs } };
  } finally {
    await client?.close().catch(() => undefined);
  }
}

/** The suite's scenarios, by name. */
export const SUITE: readonly Scenario[] = [...PLANS.map(scenarioOf), coldScenario()];
