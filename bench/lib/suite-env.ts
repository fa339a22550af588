/**
 * What the runner and the peer suite share without the runner loading the suite (and its clients):
 * the environment variables that carry the null brokers' URLs and the chosen targets to the workload
 * processes, and which scenarios need the null brokers.
 *
 * @module
 */

/** The null broker's URL, set by the runner for the workload processes. */
export const NULL_BROKER_ENV = 'RXAMQP_BENCH_NULL_URL';
/** The URL of the null broker that blocks connections (the memory scenario). */
export const BLOCKED_BROKER_ENV = 'RXAMQP_BENCH_BLOCKED_URL';
/** Which targets to run (`--target`), comma-separated; default `real,null`. */
export const TARGETS_ENV = 'RXAMQP_BENCH_TARGETS';
/** Publishes the memory scenario attempts, and how many the blocking broker takes first. */
export const MEMORY_MESSAGES = 1_000_000;
export const MEMORY_BLOCK_AFTER = 10_000;
/** The scenarios of the peer suite (each runs against the null broker too). */
export const SUITE_SCENARIO_NAMES: readonly string[] = [
  'publish',
  'confirm',
  'consume',
  'latency',
  'large',
  'memory',
  'natural-publish',
  'natural-confirm',
  'natural-consume',
  'cold',
];

/** True for the scenarios that need the null brokers running. */
export function needsNullBroker(scenario: string): boolean {
  return SUITE_SCENARIO_NAMES.includes(scenario) || scenario === 'rpc' || scenario === 'idle';
}
