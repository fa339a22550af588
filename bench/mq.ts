/**
 * `mq`: what `rxamqp/mq` costs over the client it runs on, on each backend. Reliable unicast, 256-byte
 * payloads, sender and receiver in this one process; a round sends N messages reliably and ends once
 * the receiver has settled all N (each acknowledged by the receiver). Four workloads:
 *
 * - `mq amqp` (`rxamqp/mq`): `connectMq(AMQP_URL)`, a receiver queue (unicast, reliable, prefetch 100,
 *   the mq default) whose `messages$` is subscribed with `(m) => { m.ack(); count++ }`, and a sender
 *   queue sending N through `sendEach(sender, { concurrency: 1000 })`.
 * - `direct amqp` (`rxamqp`): the same work with rxamqp itself, the way the mq AMQP backend does it
 *   underneath: one `connect(url, { recovery: true, shared: true })` connection, a durable queue, a
 *   channel consuming it with `consume(q, { prefetch: 100 })` and acking each delivery, and N persistent
 *   mandatory messages through `publishConfirmed(publisher, { window: 1000 })` on a
 *   `createPublisher(connection$, { confirm: true, republish: true, whileDisconnected: 'buffer' })`
 *   (the publisher the mq sender publishes on). So the difference is the mq layer alone: the facade,
 *   `sendEach`'s window over the backend's send path, and the receiver's mapping.
 * - `mq mqtt` (`rxamqp/mq`): `connectMq(MQTT_URL)` (one mqtt.js client for both queues), the same
 *   queues at QoS 1, `sendEach` with a concurrency of 20.
 * - `direct mqtt` (`mqtt.js`): one mqtt.js client with the backend's options (MQTT 5, `clean: false`,
 *   session expiry 3600 s, no automatic reconnect, ended with session expiry 0), as the mq connection
 *   is one client: subscribed at QoS 1 to `$share/rxamqp/<topic>` (mqtt.js sends the PUBACK after the
 *   message handler) and publishing N at QoS 1 with at most 20 awaiting their PUBACK.
 *
 * MQTT's window is 20 on both sides: Mosquitto advertises a receive maximum of 20 in its CONNACK (its
 * `max_inflight_messages`, which also bounds the unacknowledged messages it sends a client: MQTT's
 * prefetch), and mqtt.js does not enforce it by itself. Mosquitto also drops QoS 1 messages beyond
 * 1,000 queued for one client, and acknowledges a publish once queued: both MQTT senders stop while
 * 500 sent messages are not yet received (the same gate, `gatedPump`, in both workloads).
 *
 * RabbitMQ at `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`), Mosquitto at `MQTT_URL`
 * (default `mqtt://127.0.0.1:1883`). A backend whose broker does not answer (or, for MQTT, without the
 * `mqtt` package) has its workloads left out, with the reason logged; with neither the scenario is
 * skipped. Queue and topic names are unique per process; the AMQP queues are deleted at teardown.
 *
 * @module
 */
import { connect as tcpConnect } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import {
  filter,
  firstValueFrom,
  ignoreElements,
  lastValueFrom,
  map,
  Observable,
  range,
  type Subscription,
  take,
} from 'rxjs';
import { publishConfirmed } from '../operators/index.js';
import { connectMq, type MqConnection, sendEach } from '../src/mq/index.js';
import { type ConnectionObservable, connect, createPublisher, type Publisher } from '../src/node.js';
import { Counter } from './lib/counter.js';
import { closeWithin, withAdmin } from './lib/targets.js';
import type { Scenario, ScenarioContext, Workload } from './lib/types.js';

const BODY = new Uint8Array(256).fill(120);
/** The mq default prefetch of an AMQP receiver. */
const AMQP_PREFETCH = 100;
/** Sends awaiting their confirm at once, AMQP. */
const AMQP_WINDOW = 1000;
/** Sends awaiting their PUBACK at once, MQTT: Mosquitto's receive maximum. */
const MQTT_WINDOW = 20;
/** The mq MQTT backend's default shared-subscription group. */
const MQTT_GROUP = 'rxamqp';
/**
 * MQTT: most messages sent and not yet received. Mosquitto acknowledges a publish once it has queued
 * it for the subscriber, and drops QoS 1 messages beyond 1,000 queued for one client
 * (`max_queued_messages`): a sender left free runs ahead of the receiver and messages are lost.
 */
const MQTT_AHEAD = 500;
const PER_ROUND = 20_000;
const PER_ROUND_QUICK = 2_000;

/** A name unique to this process and workload, valid as an mq queue name and an MQTT topic. */
function uniqueName(kind: string): string {
  return `bench-mq-${kind}-${process.pid}-${Date.now().toString(36)}`;
}

/**
 * The MQTT sender's gate: the next message may go only while fewer than {@link MQTT_AHEAD} sent
 * messages are still to be received (`sentBefore` counts the messages of earlier rounds). Calls
 * `send()` for each message it lets through, up to `n`, and `done()` after the last; `more()` says
 * whether the sender has room for another (its own window), and `pump()` is called again when it may.
 */
function gatedPump(
  counter: Counter,
  sentBefore: number,
  n: number,
  more: () => boolean,
  send: () => void,
  done: () => void,
): () => void {
  let sent = 0;
  let waiting = false;
  const pump = (): void => {
    if (waiting) return;
    while (sent < n && more()) {
      if (sentBefore + sent - counter.count >= MQTT_AHEAD) {
        waiting = true;
        counter.when(sentBefore + sent - MQTT_AHEAD / 2, () => {
          waiting = false;
          pump();
        });
        return;
      }
      sent++;
      send();
    }
    if (sent === n) {
      sent++;
      done();
    }
  };
  return pump;
}

/** True when something accepts TCP connections at `url`'s host and port. */
function reachable(url: string, defaultPort: number): Promise<boolean> {
  let host = '127.0.0.1';
  let port = defaultPort;
  try {
    const u = new URL(url);
    host = u.hostname.replace(/^\[|\]$/g, '') || host;
    port = u.port === '' ? defaultPort : Number(u.port);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function mqttMissing(url: string): Promise<string | undefined> {
  try {
    await import('mqtt');
  } catch {
    return 'the mqtt package is not installed';
  }
  return (await reachable(url, 1883)) ? undefined : `no MQTT broker at ${url}`;
}

/** Waits for an mq connection's first `connected` (or fails on `closed`). */
async function connected(mq: MqConnection): Promise<void> {
  const status = await firstValueFrom(mq.status$.pipe(filter((s) => s === 'connected' || s === 'closed')));
  if (status === 'closed') throw new Error(`mq: could not connect to ${mq.url}`);
}

/** `rxamqp/mq` on either backend: receiver and sender queues of one connection. */
function mqWorkload(kind: 'amqp' | 'mqtt', url: string, perRound: number): Workload {
  const window = kind === 'amqp' ? AMQP_WINDOW : MQTT_WINDOW;
  const counter = new Counter();
  let mq: MqConnection | undefined;
  let receiving: Subscription | undefined;
  let name = '';
  let run: ((n: number) => Promise<void>) | undefined;
  return {
    name: `mq ${kind}`,
    client: 'rxamqp/mq',
    unit: 'message',
    params: {
      backend: kind,
      bodyBytes: BODY.length,
      window,
      ...(kind === 'amqp' ? { prefetch: AMQP_PREFETCH } : { qos: 1 }),
    },
    opsPerRound: perRound,
    async setup() {
      name = uniqueName(kind);
      mq = connectMq(url, { name: 'bench-mq' });
      await connected(mq);
      const receiver = mq.queue({
        name,
        role: 'receiver',
        ...(kind === 'amqp' ? { amqp: { prefetch: AMQP_PREFETCH } } : {}),
      });
      receiving = receiver.messages$.subscribe((m) => {
        m.ack();
        counter.add();
      });
      const sender = mq.queue({ name, role: 'sender' });
      run = async (n) => {
        const received = counter.until(n, `mq ${kind}`);
        const sentBefore = counter.count;
        // AMQP: RabbitMQ holds what the sender is ahead by; MQTT: the gate keeps it under Mosquitto's limit.
        const bodies =
          kind === 'amqp'
            ? range(0, n).pipe(map(() => BODY))
            : new Observable<Uint8Array>((subscriber) => {
                gatedPump(
                  counter,
                  sentBefore,
                  n,
                  () => !subscriber.closed,
                  () => subscriber.next(BODY),
                  () => subscriber.complete(),
                )();
              });
        await lastValueFrom(bodies.pipe(sendEach(sender, { concurrency: window }), ignoreElements()), {
          defaultValue: undefined,
        });
        await received;
      };
    },
    async run(n) {
      if (run === undefined) throw new Error('mq: setup did not run');
      await run(n);
      return undefined;
    },
    async teardown() {
      receiving?.unsubscribe();
      const conn = mq;
      if (conn !== undefined) {
        await closeWithin(() => lastValueFrom(conn.close(), { defaultValue: undefined }));
      }
      if (kind === 'amqp' && name !== '') await deleteQueue(url, name);
    },
  };
}

async function deleteQueue(url: string, queue: string): Promise<void> {
  await withAdmin(url, (ch) => lastValueFrom(ch.queueDelete(queue), { defaultValue: undefined })).catch(
    () => undefined,
  );
}

/** rxamqp directly: a consumer channel and a confirming publisher on one recovering connection. */
function directAmqp(url: string, perRound: number): Workload {
  const counter = new Counter();
  let connection$: ConnectionObservable | undefined;
  let keep: Subscription | undefined;
  let consuming: Subscription | undefined;
  let publisher: Publisher | undefined;
  let queue = '';
  return {
    name: 'direct amqp',
    client: 'rxamqp',
    unit: 'message',
    params: {
      backend: 'amqp',
      bodyBytes: BODY.length,
      window: AMQP_WINDOW,
      prefetch: AMQP_PREFETCH,
      publisher: 'createPublisher + publishConfirmed',
    },
    opsPerRound: perRound,
    async setup() {
      queue = uniqueName('direct-amqp');
      await withAdmin(url, (ch) => lastValueFrom(ch.queueDeclare(queue, { durable: true })));
      connection$ = connect(url, { name: 'bench-mq-direct', recovery: true, shared: true });
      keep = connection$.subscribe({ error: () => {} });
      const conn = await firstValueFrom(connection$);
      const ch = await conn.openChannel();
      consuming = ch.consume(queue, { prefetch: AMQP_PREFETCH }).subscribe((delivery) => {
        delivery.ack();
        counter.add();
      });
      publisher = createPublisher(connection$, {
        confirm: true,
        republish: true,
        whileDisconnected: 'buffer',
      });
    },
    async run(n) {
      const pub = publisher;
      if (pub === undefined) throw new Error('direct amqp: setup did not run');
      const received = counter.until(n, 'direct amqp');
      await lastValueFrom(
        range(0, n).pipe(
          map(() => ({
            exchange: '',
            routingKey: queue,
            body: BODY,
            properties: PERSISTENT,
            mandatory: true,
          })),
          publishConfirmed(pub, { window: AMQP_WINDOW }),
          filter(({ outcome }) => outcome.status !== 'acked'),
          take(1),
          map(({ outcome }) => {
            throw new Error(`direct amqp: a publish was ${outcome.status}`);
          }),
          ignoreElements(),
        ),
        { defaultValue: undefined },
      );
      await received;
      return undefined;
    },
    async teardown() {
      consuming?.unsubscribe();
      const pub = publisher;
      if (pub !== undefined) await closeWithin(() => lastValueFrom(pub.close(), { defaultValue: undefined }));
      keep?.unsubscribe();
      if (queue !== '') await deleteQueue(url, queue);
    },
  };
}

const PERSISTENT = Object.freeze({ deliveryMode: 2 });

/** An mqtt.js client with the mq backend's options; resolves once connected. */
async function mqttClient(url: string, role: string): Promise<MqttClient> {
  const mqtt = await import('mqtt');
  const connectFn = mqtt.connect ?? (mqtt as unknown as { default: typeof mqtt }).default.connect;
  const options: IClientOptions = {
    protocolVersion: 5,
    clientId: `bench-mq-${role}-${process.pid}-${Math.random().toString(16).slice(2, 10)}`,
    clean: false,
    keepalive: 30,
    connectTimeout: 10_000,
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: true,
    properties: { sessionExpiryInterval: 3600 },
  };
  const client = connectFn(url, options);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error(`direct mqtt: no connection to ${url}`)));
  });
  client.removeAllListeners('error');
  client.removeAllListeners('close');
  client.on('error', () => {});
  return client;
}

/** Ends an mqtt.js client and its session (session expiry 0), as the mq backend's `close()` does. */
function endClient(client: MqttClient): Promise<void> {
  return new Promise<void>((resolve) => {
    client.end(false, { properties: { sessionExpiryInterval: 0 } }, () => resolve());
  });
}

/** mqtt.js directly: one client, subscribed on a shared subscription and publishing with a window. */
function directMqtt(url: string, perRound: number): Workload {
  const counter = new Counter();
  let client: MqttClient | undefined;
  let topic = '';
  return {
    name: 'direct mqtt',
    client: 'mqtt.js',
    unit: 'message',
    params: { backend: 'mqtt', bodyBytes: BODY.length, window: MQTT_WINDOW, qos: 1, clients: 1 },
    opsPerRound: perRound,
    async setup() {
      topic = uniqueName('direct-mqtt');
      client = await mqttClient(url, 'direct');
      client.on('message', () => counter.add());
      const c = client;
      await new Promise<void>((resolve, reject) => {
        c.subscribe(`$share/${MQTT_GROUP}/${topic}`, { qos: 1 }, (err, granted) => {
          if (err) reject(err);
          else if (granted?.[0]?.qos !== 1) reject(new Error(`direct mqtt: granted ${granted?.[0]?.qos}`));
          else resolve();
        });
      });
    },
    async run(n) {
      const c = client;
      if (c === undefined) throw new Error('direct mqtt: setup did not run');
      const received = counter.until(n, 'direct mqtt');
      const payload = Buffer.from(BODY.buffer, BODY.byteOffset, BODY.byteLength);
      const sentBefore = counter.count;
      await new Promise<void>((resolve, reject) => {
        let inFlight = 0;
        let acked = 0;
        let failed = false;
        const onAck = (err?: Error): void => {
          if (failed) return;
          if (err) {
            failed = true;
            reject(err);
            return;
          }
          inFlight--;
          if (++acked === n) resolve();
          else pump();
        };
        const pump = gatedPump(
          counter,
          sentBefore,
          n,
          () => inFlight < MQTT_WINDOW,
          () => {
            inFlight++;
            c.publish(topic, payload, QOS1, onAck);
          },
          () => {},
        );
        pump();
      });
      await received;
      return undefined;
    },
    async teardown() {
      const c = client;
      if (c !== undefined) await closeWithin(() => endClient(c));
    },
  };
}

const QOS1 = Object.freeze({ qos: 1 as const });

const scenario: Scenario = {
  name: 'mq',
  description:
    'rxamqp/mq vs its client (rxamqp, mqtt.js): reliable unicast, 256 B, sender and receiver in one process',
  async workloads(ctx: ScenarioContext) {
    const amqpUrl = ctx.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    const mqttUrl = ctx.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
    const perRound = ctx.quick ? PER_ROUND_QUICK : PER_ROUND;
    const [amqpUp, mqttWhyNot] = await Promise.all([reachable(amqpUrl, 5672), mqttMissing(mqttUrl)]);
    const workloads: Workload[] = [];
    const skipped: string[] = [];
    if (amqpUp) workloads.push(mqWorkload('amqp', amqpUrl, perRound), directAmqp(amqpUrl, perRound));
    else skipped.push('AMQP: no RabbitMQ at AMQP_URL or 127.0.0.1:5672');
    if (mqttWhyNot === undefined) {
      workloads.push(mqWorkload('mqtt', mqttUrl, perRound), directMqtt(mqttUrl, perRound));
    } else skipped.push(`MQTT: ${mqttWhyNot}`);
    if (workloads.length === 0) return { skip: skipped.join('; ') };
    for (const reason of skipped) ctx.log(`${reason}: its workloads are skipped`);
    return workloads;
  },
};

export default scenario;
