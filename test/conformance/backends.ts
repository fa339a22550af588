/**
 * The brokers the conformance suite runs against. Every suite file runs its cases once per entry of
 * {@link backends}, with `describe.each(backends)`, and every case asserts the same exact results for
 * each of them: the cases are the specification of what a client sees of a broker, written down
 * against RabbitMQ.
 *
 * A backend only has to open connections through rxamqp's public `openConnection` (over TCP to a
 * RabbitMQ, over an in-memory `transport` connector to an embedded broker) and say which vhost they
 * land in and which user they log in as, since the broker's reply texts name them. The backends are
 * RabbitMQ over TCP, RabbitMQ through the WebSocket relay (`rxamqp/relay`, over `ws://` with the `ws`
 * package: what a browser's connection goes through), and the embedded broker of `rxamqp/testing`;
 * adding one is one more entry in the list.
 *
 * @module
 */
import { type Connection, type ConnectOptions, openConnection } from '../../src/node.js';
import { startRelay } from '../../src/relay/index.js';
import { EmbeddedBroker } from '../../src/testing/index.js';
import { brokerEndpoint, stopBroker } from '../support/broker.js';

/** A broker started (or found) for one suite file. */
export interface RunningBroker {
  /** The vhost connections land in: RabbitMQ's reply texts name it (`... in vhost '/'`). */
  readonly vhost: string;
  /** The user connections log in as: RabbitMQ checks a message's `userId` against it. */
  readonly username: string;
  /**
   * Opens a connection with rxamqp's `openConnection`; `options` are the suite's connection options
   * (a connection name, `ackDelay`, ...), to be passed through unchanged.
   */
  connect(options?: ConnectOptions): Promise<Connection>;
  /** Releases what `start` took (called once, in `afterAll`, after every connection has closed). */
  stop(): Promise<void>;
}

/** One broker the conformance cases run against. */
export interface ConformanceBackend {
  /** Shown in the test names: `queues [rabbitmq] ...`. */
  readonly name: string;
  /** Starts or finds the broker; called once per suite file, in `beforeAll`. Fails loudly, never skips. */
  start(): Promise<RunningBroker>;
}

/**
 * RabbitMQ, found as every integration suite finds it (`AMQP_URL`, else 127.0.0.1:5672, else a
 * testcontainers container), see `test/support/broker.ts`. The cases were written against 3.10.
 */
export const rabbitmq: ConformanceBackend = {
  name: 'rabbitmq',
  async start() {
    const endpoint = await brokerEndpoint();
    return {
      vhost: endpoint.vhost,
      username: endpoint.username,
      connect: (options = {}) => openConnection(endpoint.url, options),
      stop: () => stopBroker(),
    };
  },
};

/**
 * The same RabbitMQ reached through a WebSocket relay started for the suite file (`startRelay`, on a
 * free port): every case's bytes go over `ws://` to the relay and over TCP from there, as a browser's
 * do. The relay never reads AMQP, so every case must give exactly the results it gives over TCP.
 */
export const rabbitmqViaRelay: ConformanceBackend = {
  name: 'rabbitmq via relay',
  async start() {
    const endpoint = await brokerEndpoint();
    const relay = await startRelay({
      port: 0,
      broker: `${endpoint.url.startsWith('amqps:') ? 'amqps' : 'amqp'}://${endpoint.host}:${endpoint.port}`,
    });
    const { port } = relay.address!;
    const user = `${encodeURIComponent(endpoint.username)}:${encodeURIComponent(endpoint.password)}`;
    const vhost = endpoint.vhost === '/' ? '' : `?vhost=${encodeURIComponent(endpoint.vhost)}`;
    const url = `ws://${user}@127.0.0.1:${port}/${vhost}`;
    return {
      vhost: endpoint.vhost,
      username: endpoint.username,
      connect: (options = {}) => openConnection(url, options),
      stop: async () => {
        await relay.close();
        await stopBroker();
      },
    };
  },
};

/**
 * The embedded broker of `rxamqp/testing`, one per suite file, with timers on: the TTL, expiry and
 * polling cases wait in wall-clock time, as they do against RabbitMQ.
 */
export const embedded: ConformanceBackend = {
  name: 'embedded',
  async start() {
    const broker = new EmbeddedBroker({ timers: true });
    return {
      vhost: '/',
      username: 'guest',
      connect: (options = {}) =>
        openConnection('amqp://guest:guest@embedded', { ...options, transport: broker.connector }),
      stop: async () => broker.close(),
    };
  },
};

/** Every backend the suite runs against. */
export const backends: readonly ConformanceBackend[] = [rabbitmq, rabbitmqViaRelay, embedded];
