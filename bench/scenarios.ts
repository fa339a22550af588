/**
 * The registry of bench scenarios, in the order `npm run bench` runs them. Scenarios are loaded
 * lazily, so one whose dependencies (a peer client, a broker library) are missing does not stop the
 * others from running.
 *
 * To add one: write `bench/<name>.ts` with a default export implementing `Scenario` (see
 * `lib/types.ts`) and list it here.
 *
 * @module
 */
import type { Scenario } from './lib/types.js';
import { MORE_SCENARIOS } from './more-scenarios.js';

export interface ScenarioEntry {
  readonly name: string;
  readonly description: string;
  load(): Promise<Scenario>;
}

/** The peer suite's scenarios (see `suite.ts`): every client, real broker and null broker. */
const SUITE_SCENARIOS: readonly { name: string; description: string }[] = [
  {
    name: 'publish',
    description: 'publish without confirms until the broker holds all N; every client, both brokers',
  },
  { name: 'confirm', description: 'confirmed publishing, window 1000; every client, both brokers' },
  {
    name: 'consume',
    description: 'consume a prefilled queue, prefetch 1000, ack each; every client, both brokers',
  },
  {
    name: 'latency',
    description: 'round trips one at a time (publish, deliver, ack), p50/p99; every client, both brokers',
  },
  {
    name: 'large',
    description: '1 MiB messages, confirmed publish then consume; every client, both brokers',
  },
  { name: 'memory', description: '1,000,000 publishes of 1 KiB into a blocked (null) broker: RSS growth' },
  {
    name: 'natural-publish',
    description: 'publish without confirms as users write it (mergeMap, concatMap, await vs peer idioms)',
  },
  {
    name: 'natural-confirm',
    description: 'confirmed publishing as users write it (mergeMap, concatMap, await vs peer idioms)',
  },
  {
    name: 'natural-consume',
    description: 'consume a prefilled queue with an async handler, prefetch 1000; every client, both brokers',
  },
  {
    name: 'cold',
    description: 'a fresh process connects and publishes/confirms/consumes 50,000, no warm-up',
  },
];

export const SCENARIOS: readonly ScenarioEntry[] = [
  {
    name: 'codec',
    description: 'FrameWriter/FrameDecoder throughput: publish triplets encoded, deliver triplets decoded',
    load: async () => (await import('./codec.js')).default,
  },
  {
    name: 'embedded',
    description: 'the embedded broker (rxamqp/testing) under the real client: publish -> consume -> ack',
    load: async () => (await import('./embedded.js')).default,
  },
  {
    name: 'rxjs-floor',
    description: "RxJS alone: the natural pipelines' operators with inner Observables that cost nothing",
    load: async () => (await import('./rxjs-floor.js')).default,
  },
  ...SUITE_SCENARIOS.map(
    (entry): ScenarioEntry => ({
      ...entry,
      load: async () => {
        const { SUITE } = await import('./suite.js');
        const scenario = SUITE.find((s) => s.name === entry.name);
        if (scenario === undefined) throw new Error(`no suite scenario ${entry.name}`);
        return scenario;
      },
    }),
  ),
  ...MORE_SCENARIOS,
];
