/**
 * What a server channel needs from its connection, and what a publish looks like to a nack rule: in
 * a module of their own so that the channel and its deliveries both use them without importing each
 * other.
 *
 * @module
 * @internal
 */
import type { BasicProperties, MethodInit } from '../../protocol/generated.js';
import type { NameGenerator } from './names.js';
import type { VirtualHost } from './vhost.js';

/** @internal What a publish looks like to a nack rule. */
export interface PublishInfo {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

/** @internal What a channel needs from its connection. */
export interface ChannelHost {
  readonly vhost: VirtualHost;
  readonly user: string;
  readonly names: NameGenerator;
  /** The client said it understands basic.cancel from the server. */
  readonly cancelNotify: boolean;
  now(): number;
  writeMethod(channel: number, method: MethodInit): void;
  writeContent(channel: number, method: MethodInit, properties: BasicProperties, body: Uint8Array): void;
  /** Writes what is pending (confirms, cancel notifications) soon, from a job of its own. */
  scheduleFlush(): void;
  /** True when a broker hook says to nack this confirmed publish. */
  nackRequested(publish: PublishInfo): boolean;
  /** True when some nack rule is in force: {@link nackRequested} is asked only then. */
  readonly nacking: boolean;
}
