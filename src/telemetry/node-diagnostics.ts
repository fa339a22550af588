/**
 * The lifecycle events of `diagnostics$` on Node's `node:diagnostics_channel`, for tools that listen
 * there (APMs, `diagnostics_channel.subscribe` in your own code): one channel per kind of event, and
 * nothing published while a channel has no subscriber.
 *
 * @module
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { DiagnosticEvent, DiagnosticSink } from './diagnostics.js';

/**
 * The names of the `node:diagnostics_channel` channels rxamqp publishes its lifecycle events on (the
 * events of `diagnostics$`): `connection.*` events on `rxamqp:connection`, `channel.*` on
 * `rxamqp:channel`, `consumer.*` on `rxamqp:consumer`.
 *
 * @example
 * ```ts
 * import diagnosticsChannel from 'node:diagnostics_channel';
 * diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.connection, (event) => console.log(event));
 * ```
 */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  connection: 'rxamqp:connection',
  channel: 'rxamqp:channel',
  consumer: 'rxamqp:consumer',
} as const);

const channels = {
  connection: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.connection),
  channel: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.channel),
  consumer: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.consumer),
};

/** @internal Set as the diagnostics sink by the Node entry. */
export const nodeDiagnosticSink: DiagnosticSink = {
  active: () =>
    channels.connection.hasSubscribers || channels.channel.hasSubscribers || channels.consumer.hasSubscribers,
  write: (event: DiagnosticEvent) => {
    const kind = event.type.slice(0, event.type.indexOf('.')) as keyof typeof channels;
    const channel = channels[kind];
    if (channel.hasSubscribers) channel.publish(event);
  },
};
