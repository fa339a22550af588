/**
 * The benchmark clients by name, each loaded on demand (a dynamic import), so that a peer client that
 * is not installed breaks only its own workloads.
 *
 * @module
 */
import type { BenchClientFactory, ClientName } from '../lib/clients.js';

export const CLIENT_FACTORIES: Record<ClientName, () => Promise<BenchClientFactory>> = {
  rxamqp: async () => (await import('./rxamqp.js')).connectClient,
  amqplib: async () => (await import('./amqplib.js')).connectClient,
  'rabbitmq-client': async () => (await import('./rabbitmq-client.js')).connectClient,
  '@cloudamqp/amqp-client': async () => (await import('./cloudamqp.js')).connectClient,
  raw: async () => (await import('./raw.js')).connectClient,
};
