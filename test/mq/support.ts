/**
 * What the `rxamqp/mq` suites share: the two backends (RabbitMQ on 5672 through `brokerUrl()`,
 * Mosquitto on 1883), connections closed after each case, and a way to wait for a status.
 */
import { createConnection } from 'node:net';
import { filter, firstValueFrom, lastValueFrom, timeout } from 'rxjs';
import { connectMq, type MqConnection, type MqConnectOptions } from '../../src/mq/index.js';
import { openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';

export const MQTT_HOST = '127.0.0.1';
export const MQTT_PORT = Number(process.env.MQTT_PORT ?? 1883);

/** Mosquitto's URL, after checking that it listens (failing with instructions if not). */
export async function mqttUrl(): Promise<string> {
  const up = await new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: MQTT_HOST, port: MQTT_PORT });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (!up) {
    throw new Error(
      `no MQTT broker on ${MQTT_HOST}:${MQTT_PORT}: start Mosquitto with 'mosquitto -d -c /etc/mosquitto/mosquitto.conf' (or apt-get install mosquitto), or set MQTT_PORT`,
    );
  }
  return `mqtt://${MQTT_HOST}:${MQTT_PORT}`;
}

/** A backend of the conformance suites. */
export interface MqBackendCase {
  readonly name: 'amqp' | 'mqtt';
  url(): Promise<string>;
}

export const BACKENDS: readonly MqBackendCase[] = [
  { name: 'amqp', url: brokerUrl },
  { name: 'mqtt', url: mqttUrl },
];

/** A unique queue name for a case. */
export function mqName(prefix: string): string {
  return `${prefix}.${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Opens mq connections for a describe block and closes them (and the AMQP queues made) after each case. */
export function useMq(backend: MqBackendCase) {
  const opened: MqConnection[] = [];
  const queues: string[] = [];
  const exchanges: string[] = [];
  afterEach(async () => {
    const closing = opened.splice(0);
    await Promise.all(closing.map((mq) => lastValueFrom(mq.close(), { defaultValue: undefined })));
    if (backend.name === 'amqp' && (queues.length > 0 || exchanges.length > 0)) {
      const conn = await openConnection(await brokerUrl(), { name: 'rxamqp mq cleanup' });
      const ch = await conn.openChannel();
      for (const q of queues.splice(0)) await lastValueFrom(ch.queueDelete(q));
      for (const x of exchanges.splice(0)) await lastValueFrom(ch.exchangeDelete(x));
      await lastValueFrom(conn.close());
    }
  });
  return {
    /** An open connection (waits for `connected`). */
    async open(options: MqConnectOptions = {}, url?: string): Promise<MqConnection> {
      const mq = connectMq(url ?? (await backend.url()), { name: 'rxamqp mq tests', ...options });
      opened.push(mq);
      await connected(mq);
      return mq;
    },
    /** A queue name, its AMQP queue and exchange deleted after the case. */
    name(prefix: string): string {
      const name = mqName(prefix);
      queues.push(name);
      exchanges.push(name);
      return name;
    },
  };
}

/** Resolves once the connection is `connected` (fails after `ms`). */
export function connected(mq: MqConnection, ms = 10_000): Promise<unknown> {
  return firstValueFrom(
    mq.status$.pipe(
      filter((s) => s === 'connected'),
      timeout(ms),
    ),
  );
}

/** Time for consumers and subscriptions to be in place on the broker. */
export const SETTLE_MS = 400;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
