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

export interface ScenarioEntry {
  readonly name: string;
  readonly description: string;
  load(): Promise<Scenario>;
}

export const SCENARIOS: readonly ScenarioEntry[] = [
  {
    name: 'codec',
    description: 'FrameWriter/FrameDecoder throughput: publish triplets encoded, deliver triplets decoded',
    load: async () => (await import('./codec.js')).default,
  },
  {
    name: 'consume',
    description:
      'real broker: consume a prefilled queue, prefetch 1000, ack each; client CPU per 1,000 deliveries',
    load: async () => (await import('./consume.js')).default,
  },
  {
    name: 'confirm',
    description:
      'real broker: confirmed publishing with a window of 1000, rxamqp and the peer clients; CPU per 1,000',
    load: async () => (await import('./confirm.js')).default,
  },
];
