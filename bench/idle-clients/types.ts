/**
 * What every client of the `idle` scenario (`bench/idle.ts`) implements: open idle resources the way
 * its documentation shows, and keep them (and the objects the application would hold) referenced.
 *
 * @module
 */

export type IdleClientName = 'rxamqp' | 'amqplib' | 'rabbitmq-client' | '@cloudamqp/amqp-client';

export const IDLE_CLIENT_NAMES: readonly IdleClientName[] = [
  'rxamqp',
  'amqplib',
  'rabbitmq-client',
  '@cloudamqp/amqp-client',
];

/** One client, connected; everything it opens stays open until `close()`. */
export interface IdleClient {
  /** Opens `n` channels one after the other, each awaited. */
  openChannels(n: number): Promise<void>;
  /**
   * For each queue, opens a channel and starts `perQueue` consumers of that queue on it (manual acks,
   * prefetch `prefetch`, a handler that does nothing), the consumers of a channel requested without
   * waiting for each other; resolves once the broker has every consumer (its consume-ok, or a queue's
   * consumer count, as the client's API allows).
   */
  startConsumers(queues: readonly string[], perQueue: number, prefetch: number): Promise<void>;
  close(): Promise<void>;
}

export type IdleClientFactory = (url: string) => Promise<IdleClient>;
