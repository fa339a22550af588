/**
 * The `rpc` scenario's clients, loaded lazily (a peer that is not installed fails only its own
 * workloads).
 *
 * @module
 */
import type { RpcClientFactory, RpcClientName } from './types.js';

export const RPC_CLIENTS: Readonly<Record<RpcClientName, () => Promise<RpcClientFactory>>> = {
  rxamqp: async () => (await import('./rxamqp.js')).openRpcClient,
  amqplib: async () => (await import('./amqplib.js')).openRpcClient,
  'rabbitmq-client': async () => (await import('./rabbitmq-client.js')).openRpcClient,
  '@cloudamqp/amqp-client': async () => (await import('./cloudamqp.js')).openRpcClient,
};
