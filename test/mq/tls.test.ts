/**
 * `rxamqp/mq` over TLS, `amqps://` and `mqtts://`, on both backends: a TLS terminator (certificates
 * made with openssl for the occasion) in front of RabbitMQ and one in front of Mosquitto. With the CA
 * that signed the broker's certificate a reliable message goes through; with an unrelated CA the
 * connection is refused and the mq connection closes with the TLS error.
 */
import { filter, firstValueFrom, lastValueFrom, take, tap, timeout, toArray } from 'rxjs';
import type { MqConnectOptions } from '../../src/mq/index.js';
import { brokerUrl } from '../support/broker.js';
import { startTlsTerminator, type TlsTerminator } from '../support/tls-terminator.js';
import { BACKENDS, MQTT_HOST, MQTT_PORT, mqttUrl, SETTLE_MS, sleep, useMq } from './support.js';

const terminators = new Map<'amqp' | 'mqtt', TlsTerminator>();

beforeAll(async () => {
  await mqttUrl(); // fails with instructions when Mosquitto is not there
  terminators.set('amqp', await startTlsTerminator());
  terminators.set('mqtt', await startTlsTerminator({ host: MQTT_HOST, port: MQTT_PORT }));
});

afterAll(async () => {
  for (const t of terminators.values()) await t.close();
});

/** The backend's TLS URL through its terminator (host `localhost`, the name in the certificate). */
async function tlsUrl(backend: 'amqp' | 'mqtt', port: number): Promise<string> {
  if (backend === 'mqtt') return `mqtts://localhost:${port}`;
  const url = new URL(await brokerUrl());
  url.protocol = 'amqps:';
  url.hostname = 'localhost';
  url.port = String(port);
  return url.toString();
}

function withCa(backend: 'amqp' | 'mqtt', ca: string, options: MqConnectOptions = {}): MqConnectOptions {
  return backend === 'amqp' ? { ...options, amqp: { tls: { ca } } } : { ...options, mqtt: { tls: { ca } } };
}

describe.each(BACKENDS)('mq over TLS ($name)', (backend) => {
  const mq = useMq(backend);

  it('sends and receives a reliable message with the CA that signed the broker certificate', async () => {
    const terminator = terminators.get(backend.name) as TlsTerminator;
    const url = await tlsUrl(backend.name, terminator.port);
    const connection = await mq.open(withCa(backend.name, terminator.caPem), url);
    expect(connection.url.startsWith(backend.name === 'amqp' ? 'amqps://' : 'mqtts://')).toBe(true);
    const name = mq.name('mq.tls');
    let acked: boolean | undefined;
    // Acknowledged in the stream: on AMQP the consumer's channel goes when the last subscriber leaves.
    const received = firstValueFrom(
      connection.queue({ name, role: 'receiver' }).messages$.pipe(
        tap((m) => (acked = m.ack())),
        take(1),
        timeout(10_000),
      ),
    );
    await sleep(SETTLE_MS);
    await lastValueFrom(connection.queue({ name, role: 'sender' }).send('over tls').pipe(timeout(10_000)), {
      defaultValue: undefined,
    });
    const message = await received;
    expect(message.text()).toBe('over tls');
    expect(acked).toBe(true);
    expect(terminator.serverNames).toContain('localhost');
  });

  it('refuses a broker whose certificate the given CA did not sign: closed at once (not retried), with the TLS error', async () => {
    const terminator = terminators.get(backend.name) as TlsTerminator;
    const url = await tlsUrl(backend.name, terminator.port);
    const { connectMq } = await import('../../src/mq/index.js');
    // The default retry policies: a certificate that does not verify is not worth another attempt.
    const connection = connectMq(url, withCa(backend.name, terminator.otherCaPem));
    const errors: Error[] = [];
    connection.errors$.subscribe((e) => errors.push(e));
    const statuses = await lastValueFrom(connection.status$.pipe(toArray(), timeout(15_000)));
    expect(statuses[statuses.length - 1]).toBe('closed');
    expect(statuses).toEqual(['connecting', 'closed']);
    const described = errors.map((e) => `${e.message} ${String((e.cause as Error | undefined)?.message)}`);
    expect(described.join('\n')).toMatch(/certificate/i);
  });

  it('with verification off (rejectUnauthorized: false) it connects without the CA', async () => {
    const terminator = terminators.get(backend.name) as TlsTerminator;
    const url = await tlsUrl(backend.name, terminator.port);
    const options: MqConnectOptions =
      backend.name === 'amqp'
        ? { amqp: { tls: { rejectUnauthorized: false } } }
        : { mqtt: { tls: { rejectUnauthorized: false } } };
    const connection = await mq.open(options, url);
    const status = await firstValueFrom(connection.status$.pipe(filter((s) => s === 'connected')));
    expect(status).toBe('connected');
  });
});
