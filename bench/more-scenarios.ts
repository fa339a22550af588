/**
 * Scenarios listed in `scenarios.ts` after the peer suite's: request/reply, idle resources and the mq
 * layer (`rxamqp/mq`), each a module of its own (loaded lazily, like the others).
 *
 * @module
 */
import type { ScenarioEntry } from './scenarios.js';

export const MORE_SCENARIOS: readonly ScenarioEntry[] = [
  {
    name: 'rpc',
    description:
      'request/reply over direct reply-to, one at a time and 100 in flight; rxamqp and peers, both brokers',
    load: async () => (await import('./rpc.js')).default,
  },
  {
    name: 'idle',
    description:
      'memory per idle channel (1,000) and consumer (10,000 on 100 channels); rxamqp and peers, both brokers',
    load: async () => (await import('./idle.js')).default,
  },
  {
    name: 'mq',
    description:
      'rxamqp/mq vs its client (rxamqp, mqtt.js): reliable unicast, 256 B, sender and receiver in one process',
    load: async () => (await import('./mq.js')).default,
  },
  {
    name: 'relay',
    description: 'WebSocket relay (rxamqp-relay) vs direct TCP: confirmed publish + consume, 256 B messages',
    load: async () => (await import('./relay.js')).default,
  },
];
