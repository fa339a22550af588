/**
 * `rxamqp/mq` over MQTT on a `ws://` URL: mqtt.js's WebSocket transport, through a small
 * WebSocket-to-TCP bridge to Mosquitto (the machine's Mosquitto has no WebSocket listener).
 */
import { createConnection } from 'node:net';
import { lastValueFrom, take, timeout, toArray } from 'rxjs';
import { WebSocketServer } from 'ws';
import { ackOnSuccess } from '../../operators/index.js';
import { MQTT_HOST, MQTT_PORT, mqttUrl, SETTLE_MS, sleep, useMq } from './support.js';

let bridge: WebSocketServer | undefined;

afterEach(async () => {
  const server = bridge;
  bridge = undefined;
  if (server === undefined) return;
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A WebSocket server on 127.0.0.1 that carries each connection's binary frames to Mosquitto and back. */
async function startBridge(): Promise<number> {
  await mqttUrl(); // fails with instructions when Mosquitto is not there
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'mqtt' });
  bridge = server;
  server.on('connection', (ws) => {
    const tcp = createConnection({ host: MQTT_HOST, port: MQTT_PORT });
    tcp.on('data', (chunk) => ws.send(chunk));
    tcp.on('close', () => ws.close());
    tcp.on('error', () => ws.terminate());
    ws.on('message', (data) => tcp.write(data as Buffer));
    ws.on('close', () => tcp.destroy());
    ws.on('error', () => tcp.destroy());
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  return address.port;
}

describe('rxamqp/mq over MQTT on a ws:// URL', () => {
  const mq = useMq({ name: 'mqtt', url: mqttUrl });

  it('connects, sends reliably and receives through the WebSocket transport', async () => {
    const port = await startBridge();
    const url = `ws://127.0.0.1:${port}`;
    const conn = await mq.open({ name: 'ws' }, url);
    expect(conn.backend).toBe('mqtt');
    const name = mq.name('mq.ws');
    const got = lastValueFrom(
      conn.queue({ name, role: 'receiver' }).messages$.pipe(
        ackOnSuccess((m) => m.text()),
        take(3),
        toArray(),
        timeout(10_000),
      ),
    );
    await sleep(SETTLE_MS);
    const sender = conn.queue({ name, role: 'sender' });
    for (const body of ['w1', 'w2', 'w3'])
      await lastValueFrom(sender.send(body), { defaultValue: undefined });
    expect(await got).toEqual(['w1', 'w2', 'w3']);
  });
});
