/**
 * The brokers the conformance suite runs against. Every suite file runs its cases once per entry of
 * {@link backends}, with `describe.each(backends)`, and every case asserts the same exact results for
 * each of them: the cases are the specification of what a client sees of a broker, written down
 * against RabbitMQ.
 *
 * A backend only has to open connections through rxamqp's public `openConnection` (over TCP to a
 * RabbitMQ, over an in-memory `transport` connector to an embedded broker) and say which vhost they
 * land in and which user they log in as, since the broker's reply texts name them. The backends are
 * RabbitMQ and the embedded broker of `rxamqp/testing`; adding one is one more entry in the list.
 *
 * @module
 */
import { type Connection, type ConnectOptions, openConnection } from '../../src/node.js';
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
export const backends: readonly ConformanceBackend[] = [rabbitmq, embedded];
