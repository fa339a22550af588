/**
 * The MQTT backend of `rxamqp/mq` (src/mq/mqtt.ts) against a real Mosquitto on 127.0.0.1:1883
 * (MQTT_PORT to change it), with a TCP proxy between client and broker to lose connections.
 */
import { randomBytes } from 'node:crypto';
import {
  filter,
  firstValueFrom,
  lastValueFrom,
  type Observable,
  type Subscription,
  take,
  timeout,
  toArray,
} from 'rxjs';
import { MqError } from '../../src/errors.js';
import type { MqBackend, ResolvedQueue } from '../../src/mq/backend.js';
import { createMqttBackend } from '../../src/mq/mqtt.js';
import type { MqConnectOptions, MqMessage, MqStatus } from '../../src/mq/types.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { MQTT_HOST, MQTT_PORT, mqttUrl } from './support.js';

const HOST = MQTT_HOST;
const PORT = MQTT_PORT;
const URL_ = `mqtt://${HOST}:${PORT}`;

/** Fails (never skips) with instructions when Mosquitto is not there. */
async function requireBroker(): Promise<void> {
  await mqttUrl();
}

const backends: MqBackend[] = [];
const proxies: TcpProxy[] = [];
const subscriptions: Subscription[] = [];

function backend(url = URL_, options: MqConnectOptions = {}): MqBackend {
  const b = createMqttBackend(url, { name: 'mqtt-backend-test', ...options });
  backends.push(b);
  return b;
}

/** A backend whose connection goes through a proxy, retrying after 50 ms. */
async function proxied(options: MqConnectOptions = {}): Promise<{ b: MqBackend; proxy: TcpProxy }> {
  const proxy = await startTcpProxy({ host: HOST, port: PORT });
  proxies.push(proxy);
  const b = backend(`mqtt://${HOST}:${proxy.port}`, {
    recovery: { initial: { delays: [50] }, reconnect: { delays: [50] } },
    ...options,
  });
  return { b, proxy };
}

function topic(): string {
  return `test.${randomBytes(6).toString('hex')}`;
}

function queue(name: string, overrides: Partial<ResolvedQueue> = {}): ResolvedQueue {
  return {
    name,
    role: 'receiver',
    pattern: 'unicast',
    reliable: true,
    prefetch: 100,
    persistent: true,
    qos: 1,
    group: 'rxamqp',
    ...overrides,
  };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function statusOf(b: MqBackend, wanted: MqStatus, ms = 5000): Promise<MqStatus> {
  return firstValueFrom(
    b.status$.pipe(
      filter((s) => s === wanted),
      timeout(ms),
    ),
  );
}

/** Collects what `source` emits, kept alive until afterEach. */
function collect(source: Observable<MqMessage>): MqMessage[] {
  const got: MqMessage[] = [];
  subscriptions.push(source.subscribe({ next: (m) => got.push(m), error: () => {} }));
  return got;
}

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** A subscription is made after CONNACK: wait for it, and a moment for the SUBACK. */
async function subscribed(...bs: MqBackend[]): Promise<void> {
  await Promise.all(bs.map((b) => statusOf(b, 'connected')));
  await delay(200);
}

function send(b: MqBackend, q: ResolvedQueue, body: string, contentType?: string): Promise<void> {
  return lastValueFrom(b.send({ ...q, role: 'sender' }, bytes(body), contentType).pipe(timeout(5000)), {
    defaultValue: undefined,
  });
}

beforeAll(requireBroker);

afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  await Promise.all(
    backends
      .splice(0)
      .map((b) => lastValueFrom(b.close().pipe(timeout(10_000)), { defaultValue: undefined })),
  );
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

describe('mqtt backend: sending and receiving', () => {
  it('completes a reliable send after the PUBACK; the receiver gets the payload and the content type', async () => {
    const q = queue(topic());
    const receiver = backend();
    const got = collect(receiver.receive(q));
    const { b: sender, proxy } = await proxied();
    await subscribed(receiver, sender);

    await send(sender, q, '{"n":1}', 'application/json');
    await until(() => got.length === 1, 5000, 'the message');
    const [m] = got as [MqMessage];
    expect(m.text()).toBe('{"n":1}');
    expect(m.json()).toEqual({ n: 1 });
    expect(m.properties.contentType).toBe('application/json');
    expect(m.fields).toMatchObject({ redelivered: false, exchange: '', routingKey: q.name });
    expect(m.fields.deliveryTag).toBeGreaterThan(0);
    expect(m.settled).toBe(false);
    expect(JSON.stringify(m)).not.toContain('"n"');
    expect(m.ack()).toBe(true);
    expect(m.settled).toBe(true);
    expect(m.ack()).toBe(false);

    // Without the PUBACK (the path to the broker held), the send does not complete.
    proxy.blackhole();
    let done = false;
    const pending = send(sender, q, 'held').then(() => {
      done = true;
    });
    await delay(300);
    expect(done).toBe(false);
    proxy.unblackhole();
    await pending;
    expect(done).toBe(true);
    await until(() => got.length === 2, 5000, 'the second message');
    got[1]?.ack();
  });

  it('sends and receives at QoS 0: messages come settled', async () => {
    const q = queue(topic(), { reliable: false, qos: 0 });
    const receiver = backend();
    const got = collect(receiver.receive(q));
    const sender = backend();
    await subscribed(receiver, sender);
    await send(sender, q, 'best effort', 'text/plain');
    await until(() => got.length === 1, 5000, 'the message');
    const [m] = got as [MqMessage];
    expect(m.text()).toBe('best effort');
    expect(m.properties.contentType).toBe('text/plain');
    expect(m.settled).toBe(true);
    expect(m.fields.deliveryTag).toBe(0);
    expect(m.ack()).toBe(false);
    expect(m.watchSettlement?.({ settlementLost: () => {} })).toBe(true);
  });

  it('unicast: a shared group over 3 connections receives each of 30 messages once, spread over all 3', async () => {
    const q = queue(topic());
    const receivers = [backend(), backend(), backend()];
    const got = receivers.map((r) => {
      const list: MqMessage[] = [];
      subscriptions.push(
        r.receive(q).subscribe((m) => {
          list.push(m);
          m.ack();
        }),
      );
      return list;
    });
    const sender = backend();
    await subscribed(...receivers, sender);
    for (let i = 0; i < 30; i++) await send(sender, q, `m${i}`);
    await until(() => got.reduce((n, l) => n + l.length, 0) >= 30, 5000, '30 messages');
    await delay(200);
    const texts = got.flat().map((m) => m.text());
    expect(texts.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`).sort());
    for (const list of got) expect(list.length).toBeGreaterThan(0);
  });

  it('unicast: local receivers of one connection share the subscription, round robin', async () => {
    const q = queue(topic());
    const receiver = backend();
    const a = collect(receiver.receive(q));
    const b = collect(receiver.receive(q));
    const sender = backend();
    await subscribed(receiver, sender);
    for (let i = 0; i < 6; i++) await send(sender, q, `m${i}`);
    await until(() => a.length + b.length === 6, 5000, '6 messages');
    expect(a.length).toBe(3);
    expect(b.length).toBe(3);
    for (const m of [...a, ...b]) expect(m.ack()).toBe(true);
  });

  it('broadcast: each of 2 connections gets every message', async () => {
    const q = queue(topic(), { pattern: 'broadcast' });
    const r1 = backend();
    const r2 = backend();
    const got1 = collect(r1.receive(q));
    const got2 = collect(r2.receive(q));
    const sender = backend();
    await subscribed(r1, r2, sender);
    for (let i = 0; i < 10; i++) await send(sender, q, `b${i}`);
    await until(() => got1.length === 10 && got2.length === 10, 5000, '10 messages each');
    expect(got1.map((m) => m.text())).toEqual(got2.map((m) => m.text()));
    for (const m of [...got1, ...got2]) m.ack();
  });

  it('unsubscribing the last receiver unsubscribes the topic', async () => {
    const q = queue(topic(), { pattern: 'broadcast', qos: 0, reliable: false });
    const receiver = backend();
    const got: MqMessage[] = [];
    const s = receiver.receive(q).subscribe((m) => got.push(m));
    const sender = backend();
    await subscribed(receiver, sender);
    await send(sender, q, 'one');
    await until(() => got.length === 1, 5000, 'the message');
    s.unsubscribe();
    await delay(200);
    await send(sender, q, 'two');
    await delay(300);
    expect(got.length).toBe(1);
    // Subscribing again works.
    const again = collect(receiver.receive(q));
    await delay(200);
    await send(sender, q, 'three');
    await until(() => again.length === 1, 5000, 'the message after subscribing again');
    expect(again[0]?.text()).toBe('three');
  });
});

describe('mqtt backend: acknowledgements and reconnection', () => {
  it('sends the PUBACK only on ack: unacknowledged messages come again (DUP) after a reconnect', async () => {
    const q = queue(topic());
    const { b: receiver, proxy } = await proxied();
    const got = collect(receiver.receive(q));
    const sender = backend();
    await subscribed(receiver, sender);
    for (const body of ['acked', 'dropped', 'held', 'requeued']) await send(sender, q, body);
    await until(() => got.length === 4, 5000, '4 messages');
    const [acked, dropped, held, requeued] = got as [MqMessage, MqMessage, MqMessage, MqMessage];
    expect(acked.ack()).toBe(true);
    expect(dropped.nack({ requeue: false })).toBe(true);
    expect(requeued.nack()).toBe(true);
    let lost = 0;
    expect(held.watchSettlement?.({ settlementLost: () => lost++ })).toBe(true);
    // Let the PUBACKs reach the broker before the connection is cut.
    await delay(200);

    proxy.reset();
    await statusOf(receiver, 'disconnected');
    expect(lost).toBe(1);
    expect(held.ack()).toBe(false);
    await statusOf(receiver, 'connected');
    await until(() => got.length >= 6, 5000, 'the 2 messages again');
    await delay(200);
    const again = got.slice(4);
    expect(again.map((m) => m.text()).sort()).toEqual(['held', 'requeued']);
    for (const m of again) {
      expect(m.fields.redelivered).toBe(true);
      expect(m.ack()).toBe(true);
    }
    expect(got.length).toBe(6);
  });

  it('settled while delivered (a synchronous handler): ack and nack without requeue are answered, nack with requeue comes again', async () => {
    const q = queue(topic());
    const { b: receiver, proxy } = await proxied();
    const got: string[] = [];
    const outcomes: boolean[] = [];
    subscriptions.push(
      receiver.receive(q).subscribe((m) => {
        const body = m.text();
        got.push(m.fields.redelivered ? `${body} (again)` : body);
        if (m.fields.redelivered) outcomes.push(m.ack());
        else if (body.startsWith('ack')) outcomes.push(m.ack());
        else if (body === 'drop') outcomes.push(m.nack({ requeue: false }));
        else outcomes.push(m.nack());
        // Settled once: a second settlement is refused.
        expect(m.ack()).toBe(false);
      }),
    );
    const sender = backend();
    await subscribed(receiver, sender);
    for (const body of ['ack 1', 'drop', 'requeue', 'ack 2']) await send(sender, q, body);
    await until(() => got.length === 4, 5000, '4 messages');
    await delay(200);

    proxy.reset();
    await statusOf(receiver, 'disconnected');
    await statusOf(receiver, 'connected');
    await until(() => got.length >= 5, 5000, 'the requeued message again');
    await delay(300);
    expect(got).toEqual(['ack 1', 'drop', 'requeue', 'ack 2', 'requeue (again)']);
    expect(outcomes).toEqual([true, true, true, true, true]);
  });

  it('status$ goes connecting, connected, disconnected, connecting, connected across a loss, then closing, closed', async () => {
    const { b, proxy } = await proxied();
    const seen: MqStatus[] = [];
    b.status$.subscribe((s) => seen.push(s));
    const errors: Error[] = [];
    b.errors$.subscribe((e) => errors.push(e));
    await statusOf(b, 'connected');
    proxy.reset();
    await statusOf(b, 'disconnected');
    await statusOf(b, 'connected');
    await lastValueFrom(b.close());
    expect(seen).toEqual([
      'connecting',
      'connected',
      'disconnected',
      'connecting',
      'connected',
      'closing',
      'closed',
    ]);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toBeInstanceOf(MqError);
    expect((errors[0] as MqError).code).toBe('MQ_CONNECTION');
  });

  it('retries the first connection by the initial policy until the broker is there', async () => {
    const proxy = await startTcpProxy({ host: HOST, port: PORT });
    proxies.push(proxy);
    proxy.refuse(true);
    const b = backend(`mqtt://${HOST}:${proxy.port}`, {
      recovery: { initial: { delays: [100], maxAttempts: 50 } },
    });
    const seen: MqStatus[] = [];
    b.status$.subscribe((s) => seen.push(s));
    await delay(350);
    expect(seen.filter((s) => s === 'disconnected').length).toBeGreaterThanOrEqual(2);
    proxy.refuse(false);
    await statusOf(b, 'connected');
  });

  it('with recovery: false, the first loss ends the backend: closed, receivers error', async () => {
    const { b, proxy } = await proxied({ recovery: false });
    const seen: MqStatus[] = [];
    b.status$.subscribe((s) => seen.push(s));
    let receiverError: unknown;
    b.receive(queue(topic())).subscribe({ error: (e) => (receiverError = e) });
    await statusOf(b, 'connected');
    proxy.reset();
    await statusOf(b, 'closed');
    expect(seen).toEqual(['connecting', 'connected', 'closed']);
    expect(receiverError).toBeInstanceOf(MqError);
    expect((receiverError as MqError).code).toBe('MQ_CONNECTION');
    await expect(send(b, queue(topic()), 'x')).rejects.toMatchObject({ code: 'MQ_CLOSED' });
  });

  it('with recovery: false, a refused first connection closes at once, without the password in any error', async () => {
    const proxy = await startTcpProxy({ host: HOST, port: PORT });
    proxies.push(proxy);
    proxy.refuse(true);
    const b = backend(`mqtt://someone:s3cr3t-pw@${HOST}:${proxy.port}`, {
      recovery: false,
      mqtt: { password: 'other-s3cr3t' },
    });
    const errors: Error[] = [];
    b.errors$.subscribe((e) => errors.push(e));
    await statusOf(b, 'closed');
    expect(errors.length).toBeGreaterThan(0);
    const text = errors.map((e) => `${e.message} ${String((e as { cause?: unknown }).cause)}`).join('\n');
    expect(text).not.toContain('s3cr3t');
  });

  it('errors sends and receivers with MQ_CLOSED after close(); close() emits once and completes', async () => {
    const b = backend();
    const q = queue(topic());
    let completed = false;
    b.receive(q).subscribe({ complete: () => (completed = true) });
    await statusOf(b, 'connected');
    const emitted = await lastValueFrom(b.close().pipe(toArray()));
    expect(emitted).toEqual([undefined]);
    expect(completed).toBe(true);
    await expect(send(b, q, 'late')).rejects.toMatchObject({ code: 'MQ_CLOSED' });
    await expect(firstValueFrom(b.receive(q))).rejects.toMatchObject({ code: 'MQ_CLOSED' });
    expect(await lastValueFrom(b.close().pipe(toArray()))).toEqual([undefined]);
  });

  it('close() right after creation, before mqtt.js loaded, closes', async () => {
    const b = backend();
    await lastValueFrom(b.close());
    await expect(firstValueFrom(b.status$.pipe(toArray()))).resolves.toEqual(['closed']);
  });

  it('a receiver resumes after a reconnect (session kept)', async () => {
    const q = queue(topic(), { pattern: 'broadcast' });
    const { b: receiver, proxy } = await proxied();
    const got = collect(receiver.receive(q));
    const sender = backend();
    await subscribed(receiver, sender);
    proxy.reset();
    await statusOf(receiver, 'disconnected');
    // Sent while the receiver is away: the persistent session keeps it.
    await send(sender, q, 'while away');
    await statusOf(receiver, 'connected');
    await send(sender, q, 'after');
    await until(() => got.length === 2, 5000, 'both messages');
    expect(got.map((m) => m.text())).toEqual(['while away', 'after']);
    for (const m of got) expect(m.ack()).toBe(true);
  });

  it('a receiver resumes after a reconnect that did not find the session (resubscribes)', async () => {
    const q = queue(topic());
    const { b: receiver, proxy } = await proxied({ mqtt: { sessionExpiry: 0 } });
    const got = collect(receiver.receive(q));
    const sender = backend();
    await subscribed(receiver, sender);
    proxy.reset();
    await statusOf(receiver, 'disconnected');
    await statusOf(receiver, 'connected');
    await delay(200);
    await send(sender, q, 'after');
    await until(() => got.length === 1, 5000, 'the message');
    expect(got[0]?.ack()).toBe(true);
  });

  it('keeps QoS 1 messages sent while disconnected and sends them after the reconnect', async () => {
    const q = queue(topic());
    const receiver = backend();
    const got = collect(receiver.receive(q));
    const { b: sender, proxy } = await proxied({
      recovery: { reconnect: { delays: [100], maxAttempts: 100 } },
    });
    await subscribed(receiver, sender);
    proxy.refuse(true);
    proxy.reset();
    await statusOf(sender, 'disconnected');
    let done = 0;
    const sends = ['offline 1', 'offline 2'].map((body) =>
      send(sender, q, body).then(() => {
        done++;
      }),
    );
    await delay(300);
    expect(done).toBe(0);
    expect(got.length).toBe(0);
    proxy.refuse(false);
    await Promise.all(sends);
    await until(() => got.length === 2, 5000, 'the messages sent while disconnected');
    expect(got.map((m) => m.text()).sort()).toEqual(['offline 1', 'offline 2']);
    for (const m of got) m.ack();
  });

  it('fails a send still waiting when the backend closes', async () => {
    const q = queue(topic());
    const { b: sender, proxy } = await proxied({
      recovery: { reconnect: { delays: [100], maxAttempts: 100 } },
    });
    await statusOf(sender, 'connected');
    proxy.refuse(true);
    proxy.reset();
    await statusOf(sender, 'disconnected');
    const pending = send(sender, q, 'never');
    await delay(50);
    await lastValueFrom(sender.close());
    await expect(pending).rejects.toMatchObject({ code: 'MQ_SEND_FAILED' });
  });
});

describe('mqtt backend: without the mqtt package', () => {
  it('closes with MQ_BACKEND_MISSING: errors$, sends and receivers', async () => {
    let create: typeof createMqttBackend | undefined;
    jest.isolateModules(() => {
      jest.doMock('mqtt', () => {
        throw new Error("Cannot find module 'mqtt'");
      });
      create = (require('../../src/mq/mqtt.js') as { createMqttBackend: typeof createMqttBackend })
        .createMqttBackend;
    });
    const b = create!(URL_, {});
    const errors: Error[] = [];
    b.errors$.subscribe((e) => errors.push(e));
    const q = queue(topic());
    const sendResult = send(b, q, 'x');
    let receiveError: unknown;
    b.receive(q).subscribe({ error: (e) => (receiveError = e) });
    await expect(lastValueFrom(b.status$.pipe(take(10), toArray(), timeout(5000)))).resolves.toEqual([
      'connecting',
      'closed',
    ]);
    await expect(sendResult).rejects.toMatchObject({ code: 'MQ_BACKEND_MISSING' });
    expect(receiveError).toMatchObject({ code: 'MQ_BACKEND_MISSING' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'MQ_BACKEND_MISSING',
      message: 'the mqtt package is not installed: npm install mqtt',
    });
    await expect(send(b, q, 'y')).rejects.toMatchObject({ code: 'MQ_BACKEND_MISSING' });
    jest.dontMock('mqtt');
  });
});
