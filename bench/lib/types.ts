/**
 * The shapes shared by the bench runner and its scenarios.
 *
 * A scenario (`codec`, later `publish`, `consume`, `latency`, ...) is a module whose default export is a
 * {@link Scenario}. It turns into a list of {@link Workload}s; the runner warms each one up, sizes its
 * rounds, measures them (wall time, process CPU, memory, GC) and reports the median per workload.
 *
 * @module
 */

/** What the runner hands a scenario. */
export interface ScenarioContext {
  /** Fewer, shorter rounds (`--quick`). */
  readonly quick: boolean;
  /** Prints a line to stderr, prefixed with the scenario name. */
  log(message: string): void;
  /** The environment (for later scenarios: broker URL, peer client toggles). */
  readonly env: NodeJS.ProcessEnv;
}

/** A figure to beat, shown next to the measurement. */
export interface Target {
  /** Operations per second to reach. */
  readonly opsPerSec: number;
  /** How the target is described in the table, e.g. `≥ 1M/s`. */
  readonly label?: string;
}

/** What one round returns, when the workload knows more than "n operations done". */
export interface RoundResult {
  /** Operations actually done (when the workload rounds `n`, e.g. to whole passes of a buffer). */
  readonly ops?: number;
  /**
   * Counters that become rates per second (`frames`, `bytes`, `messages`, ...): the runner divides them
   * by the round's wall time and reports their medians.
   */
  readonly counters?: Readonly<Record<string, number>>;
  /**
   * Figures taken as they are (latency percentiles in ms, queue depth, ...); the runner reports their
   * medians across rounds.
   */
  readonly metrics?: Readonly<Record<string, number>>;
  /**
   * The wall and process CPU time of the part of the round that is measured, when the round also does
   * work that is not (filling a queue before consuming it): the rate and CPU per operation then come
   * from these instead of the whole round. Allocation and GC figures still cover the whole round.
   */
  readonly timing?: { readonly wallMs: number; readonly cpuMs: number };
}

/** One measured thing: a row of the results table. */
export interface Workload {
  /** Short label, unique in its scenario, e.g. `encode publish +headers`. */
  readonly name: string;
  /** The client measured: `rxamqp`, or a peer (`amqplib`, `rabbitmq-client`, ...). Default `rxamqp`. */
  readonly client?: string;
  /** What one operation is, e.g. `triplet` or `message`. */
  readonly unit: string;
  /** Details recorded in the JSON (body size, property set, chunk size...). */
  readonly params?: Readonly<Record<string, string | number | boolean>>;
  readonly target?: Target;
  /**
   * Operations per round. Left out, the runner sizes rounds from the warm-up rate so that each takes
   * about the round duration; set it for workloads whose operations are costly to set up (a broker
   * queue to fill).
   */
  readonly opsPerRound?: number;
  /**
   * Fewest warm-up batches, whatever the warm-up time (default 1): for workloads whose one batch is
   * longer than the warm-up but not enough for the JIT to settle (a round of I/O).
   */
  readonly warmupBatches?: number;
  /**
   * True for a synchronous CPU-bound loop (no I/O): its process should keep a core busy, so CPU time
   * well under wall time means the machine was busy, and the runner says so.
   */
  readonly cpuBound?: boolean;
  /** One round and no warm-up: an observation rather than a rate (the memory scenario). */
  readonly once?: boolean;
  /** Measured rounds, instead of the runner's `--rounds` (a long round of latency samples). */
  readonly rounds?: number;
  /** Operations per warm-up batch, instead of `opsPerRound`. */
  readonly warmupOps?: number;
  /** Called once before the warm-up. */
  setup?(): Promise<void> | void;
  /**
   * Does `n` operations and returns only once they are complete (for a broker: confirmed or consumed).
   * Synchronous workloads should return synchronously, so no promise machinery is measured.
   */
  run(n: number): Promise<RoundResult | undefined> | RoundResult | undefined;
  /** Called once after the last round, also after a failure. */
  teardown?(): Promise<void> | void;
}

/** A group of workloads run by name: `npm run bench -- <name>`. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /**
   * The workloads to run, or a reason to skip the scenario (a broker or a peer client missing): a
   * skipped scenario is reported, not failed.
   */
  workloads(ctx: ScenarioContext): Promise<Workload[] | { skip: string }> | Workload[] | { skip: string };
}

/** Median, min and max of one figure across rounds. */
export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** What the runner records for a workload. */
export interface WorkloadResult {
  readonly scenario: string;
  readonly workload: string;
  readonly client: string;
  readonly unit: string;
  readonly params: Readonly<Record<string, string | number | boolean>>;
  readonly cpuBound: boolean;
  readonly rounds: number;
  /** Operations per round (median). */
  readonly opsPerRound: number;
  /** Operations per second. */
  readonly opsPerSec: Stat;
  /** Counter rates per second, by counter name. */
  readonly rates: Readonly<Record<string, Stat>>;
  /** Metrics as returned by the workload, by name. */
  readonly metrics: Readonly<Record<string, Stat>>;
  /** Process CPU time (user + system) per 1,000 operations, in ms. */
  readonly cpuMsPer1k: Stat;
  /** Process CPU time over wall time (1 = one core busy). */
  readonly cpuUtilization: Stat;
  /** GC pause time as a share of wall time, 0 to 1. */
  readonly gcShare: Stat;
  /** JS heap bytes allocated per operation (from the heap sizes around each GC of the round). */
  readonly allocBytesPerOp: Stat;
  /** Heap used after the measured rounds minus before, after a full GC on both ends, in bytes. */
  readonly heapDelta: number;
  /** RSS after the measured rounds minus before, in bytes. */
  readonly rssDelta: number;
  /** Largest RSS seen at the end of a round, in bytes. */
  readonly rssPeak: number;
  /** Largest RSS of the whole process (setup, warm-up and rounds: the OS's high-water mark), in bytes. */
  readonly maxRss: number;
  readonly target?: Target;
  /** True when the median meets the target; undefined without one. */
  readonly targetMet?: boolean;
  /** Per-round raw figures, for later analysis. */
  readonly samples: readonly {
    readonly ops: number;
    readonly wallMs: number;
    readonly cpuMs: number;
    readonly gcMs: number;
    readonly gcCount: number;
    readonly allocBytes: number;
  }[];
}
