/**
 * The `idle` scenario's clients, loaded lazily (a peer that is not installed fails only its own
 * workloads).
 *
 * @module
 */
import type { IdleClientFactory, IdleClientName } from './types.js';

export const IDLE_CLIENTS: Readonly<Record<IdleClientName, () => Promise<IdleClientFactory>>> = {
  rxamqp: async () => (await import('./rxamqp.js')).openIdleClient,
  amqplib: async () => (await import('./amqplib.js')).openIdleClient,
  'rabbitmq-client': async () => (await import('./rabbitmq-client.js')).openIdleClient,
  '@cloudamqp/amqp-client': async () => (await import('./cloudamqp.js')).openIdleClient,
};
