/**
 * Measures one workload: warm-up (which also sizes the rounds), then timed rounds with process CPU,
 * GC pauses, heap allocation and memory around each.
 *
 * @module
 */
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { bytes, fixed, si, stat } from './stats.js';
import type { RoundResult, Stat, Workload, WorkloadResult } from './types.js';

/** How long and how often to measure. */
export interface MeasureOptions {
  readonly rounds: number;
  /** Target wall time of one round, in ms (workloads without a fixed `opsPerRound`). */
  readonly roundMs: number;
  /** Warm-up time before the first round, in ms. */
  readonly warmupMs: number;
}

let gcFunction: (() => void) | undefined;

/** A full, synchronous garbage collection (exposes `gc` on first use when node runs without --expose-gc). */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) {
      gcFunction = exposed;
    } else {
      setFlagsFromString('--expose-gc');
      gcFunction = runInNewContext('gc') as () => void;
    }
  }
  gcFunction();
  gcFunction();
}

interface Sample {
  readonly ops: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly gcMs: number;
  readonly gcCount: number;
  readonly allocBytes: number;
  readonly result: RoundResult | undefined;
}

function isPromise<T>(value: unknown): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/** Runs `n` operations once, with the figures of that run. */
async function sample(workload: Workload, n: number): Promise<Sample> {
  const profiler = new GCProfiler();
  const heapBefore = getHeapStatistics().used_heap_size;
  profiler.start();
  const cpuBefore = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const pending = workload.run(n);
  const result = isPromise<RoundResult | undefined>(pending) ? await pending : pending;
  const t1 = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpuBefore);
  const gc = profiler.stop();
  const heapAfter = getHeapStatistics().used_heap_size;
  let allocBytes = 0;
  let gcMicros = 0;
  let last = heapBefore;
  for (const event of gc.statistics) {
    allocBytes += event.beforeGC.heapStatistics.usedHeapSize - last;
    last = event.afterGC.heapStatistics.usedHeapSize;
    gcMicros += event.cost;
  }
  allocBytes += heapAfter - last;
  return {
    ops: result?.ops ?? n,
    wallMs: result?.timing?.wallMs ?? Number(t1 - t0) / 1e6,
    cpuMs: result?.timing?.cpuMs ?? (cpu.user + cpu.system) / 1000,
    gcMs: gcMicros / 1000,
    gcCount: gc.statistics.length,
    allocBytes: Math.max(0, allocBytes),
    result,
  };
}

/** One progress line: the figures of a round. */
function describeRound(workload: Workload, s: Sample): string {
  const seconds = s.wallMs / 1000;
  const parts = [`${si(s.ops / seconds)} ${workload.unit}/s`];
  for (const [name, value] of Object.entries(s.result?.counters ?? {})) {
    parts.push(name === 'bytes' ? `${bytes(value / seconds)}/s` : `${si(value / seconds)} ${name}/s`);
  }
  for (const [name, value] of Object.entries(s.result?.metrics ?? {}))
    parts.push(`${name} ${fixed(value, 2)}`);
  parts.push(`cpu ${fixed((s.cpuMs / s.ops) * 1000, 3)} ms/1k`);
  parts.push(`alloc ${fixed(s.allocBytes / s.ops, 0)} B/op`);
  parts.push(`gc ${s.gcCount}× ${fixed((s.gcMs / s.wallMs) * 100, 1)}%`);
  return `${parts.join('  ')}  (${si(s.ops)} in ${fixed(s.wallMs, 0)} ms)`;
}

/** Called around the measured rounds (after warm-up), e.g. to profile only them. */
export interface MeasureHooks {
  beforeRounds?(): Promise<void> | void;
  afterRounds?(): Promise<void> | void;
}

/**
 * Warms the workload up and measures its rounds. `progress` receives one line per round.
 * Setup and teardown are the caller's.
 */
export async function measure(
  scenario: string,
  workload: Workload,
  options: MeasureOptions,
  progress: (line: string) => void,
  hooks: MeasureHooks = {},
): Promise<WorkloadResult> {
  const label = `${scenario}/${workload.name}${workload.client !== undefined ? ` [${workload.client}]` : ''}`;

  // Warm-up: batches that double until one takes a tenth of a round, for at least warmupMs. Rounds
  // are sized from the best rate seen (a late deopt or a busy machine would otherwise make them tiny).
  let n = workload.warmupOps ?? workload.opsPerRound ?? 1000;
  let rate = 0;
  const warmEnd = performance.now() + options.warmupMs;
  let batches = 0;
  if (workload.once !== true) {
    do {
      const s = await sample(workload, n);
      batches++;
      rate = Math.max(rate, s.ops / (s.wallMs / 1000));
      if (workload.opsPerRound === undefined && s.wallMs < options.roundMs / 10) n *= 2;
    } while (performance.now() < warmEnd || batches < (workload.warmupBatches ?? 1));
  }
  const opsPerRound = workload.opsPerRound ?? Math.max(1, Math.round((rate * options.roundMs) / 1000));
  progress(
    `${label}  warm-up: ${batches} batches, ~${si(rate)} ${workload.unit}/s → ${si(opsPerRound)} per round`,
  );

  collectGarbage();
  const heapStart = process.memoryUsage().heapUsed;
  const rssStart = process.memoryUsage.rss();
  let rssPeak = rssStart;
  const samples: Sample[] = [];
  await hooks.beforeRounds?.();
  const rounds = workload.once === true ? 1 : (workload.rounds ?? options.rounds);
  for (let i = 0; i < rounds; i++) {
    const s = await sample(workload, opsPerRound);
    samples.push(s);
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    progress(`${label}  round ${i + 1}/${rounds}  ${describeRound(workload, s)}`);
  }
  const rssEnd = process.memoryUsage.rss();
  await hooks.afterRounds?.();
  collectGarbage();
  const heapEnd = process.memoryUsage().heapUsed;

  const counterNames = new Set(samples.flatMap((s) => Object.keys(s.result?.counters ?? {})));
  const metricNames = new Set(samples.flatMap((s) => Object.keys(s.result?.metrics ?? {})));
  const rates: Record<string, Stat> = {};
  for (const name of counterNames) {
    rates[name] = stat(samples.map((s) => (s.result?.counters?.[name] ?? 0) / (s.wallMs / 1000)));
  }
  const metrics: Record<string, Stat> = {};
  for (const name of metricNames) {
    metrics[name] = stat(samples.flatMap((s) => s.result?.metrics?.[name] ?? []));
  }
  const opsPerSec = stat(samples.map((s) => s.ops / (s.wallMs / 1000)));
  return {
    scenario,
    workload: workload.name,
    client: workload.client ?? 'rxamqp',
    unit: workload.unit,
    params: workload.params ?? {},
    cpuBound: workload.cpuBound === true,
    rounds: samples.length,
    opsPerRound: stat(samples.map((s) => s.ops)).median,
    opsPerSec,
    rates,
    metrics,
    cpuMsPer1k: stat(samples.map((s) => (s.cpuMs / s.ops) * 1000)),
    cpuUtilization: stat(samples.map((s) => s.cpuMs / s.wallMs)),
    gcShare: stat(samples.map((s) => s.gcMs / s.wallMs)),
    allocBytesPerOp: stat(samples.map((s) => s.allocBytes / s.ops)),
    heapDelta: heapEnd - heapStart,
    rssDelta: rssEnd - rssStart,
    rssPeak,
    maxRss: process.resourceUsage().maxRSS * 1024,
    ...(workload.target !== undefined
      ? { target: workload.target, targetMet: opsPerSec.median >= workload.target.opsPerSec }
      : {}),
    samples: samples.map(({ ops, wallMs, cpuMs, gcMs, gcCount, allocBytes }) => ({
      ops,
      wallMs,
      cpuMs,
      gcMs,
      gcCount,
      allocBytes,
    })),
  };
}
