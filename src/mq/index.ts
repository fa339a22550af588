/**
 * `rxamqp/mq`: one queue interface over AMQP 0-9-1 and MQTT, after the model of the general-mq crate.
 * An application picks its broker by URL; each queue is a sender or a receiver, unicast or
 * broadcast, reliable or best effort; sends are Observables of their outcome and receivers hot
 * streams of messages that the operators of `rxamqp/operators` settle. The MQTT backend runs on
 * mqtt.js, an optional peer dependency loaded only for MQTT URLs. See docs/mq.md.
 *
 * @example
 * ```ts
 * import { connectMq } from 'rxamqp/mq';
 * import { ackOnSuccess } from 'rxamqp/operators';
 *
 * const mq = connectMq(process.env.MQ_URL ?? 'amqp://localhost');
 * mq.queue({ name: 'jobs', role: 'receiver' }).messages$.pipe(ackOnSuccess((m) => handle(m.text()))).subscribe();
 * mq.queue({ name: 'jobs', role: 'sender' }).send('hello').subscribe();
 * ```
 *
 * @module
 */
import { connect } from '../node.js';
import { createAmqpBackend } from './amqp.js';
import { connectWith, type MqConnection } from './connection.js';
import { createMqttBackend } from './mqtt.js';
import type { MqConnectOptions } from './types.js';

export { MqError, type MqErrorCode } from '../errors.js';
export { backendOf, MqConnection, MqQueue, sendEach } from './connection.js';
export type {
  MqBackendKind,
  MqConnectOptions,
  MqMessage,
  MqPayload,
  MqQueueOptions,
  MqSendOptions,
  MqStatus,
  MqttBackendOptions,
  MqttTlsOptions,
} from './types.js';

const FACTORIES = {
  amqp: (url: string, options: MqConnectOptions) => createAmqpBackend(url, options, connect),
  mqtt: createMqttBackend,
};

/**
 * Opens an mq connection to `url` and returns it at once (it connects in the background, and
 * reconnects by rxamqp's retry policies until `close()`): `amqp://` or `amqps://` (rxamqp itself),
 * `mqtt://`, `mqtts://`, `ws://` or `wss://` (mqtt.js: `npm install mqtt`). Throws a
 * `ConfigurationError` for another scheme or an invalid option; the password never appears in it.
 *
 * @example
 * ```ts
 * const mq = connectMq('mqtt://localhost:1883', { name: 'worker' });
 * mq.status$.subscribe((s) => console.log('mq', s)); // connecting, connected, ...
 * ```
 */
export function connectMq(url: string, options: MqConnectOptions = {}): MqConnection {
  return connectWith(FACTORIES, url, options);
}
