/**
 * Broker discovery for integration tests. In order of preference:
 *
 * 1. `AMQP_URL` from the environment, used as given;
 * 2. a RabbitMQ on `amqp://guest:guest@127.0.0.1:5672`, when a TCP connection to it succeeds within 2 s;
 * 3. a RabbitMQ container started with testcontainers, when a Docker daemon answers (stop it with
 *    {@link stopBroker} in `afterAll`).
 *
 * With none of these the lookup fails with an error that says how to provide a broker: integration
 * suites never skip. Error messages never show a password. The lookup itself is rxamqp's own
 * `brokerForTests` (`rxamqp/testing`), which users' suites call the same way.
 *
 * @example
 * ```ts
 * let endpoint: BrokerEndpoint;
 * beforeAll(async () => { endpoint = await brokerEndpoint(); });
 * afterAll(() => stopBroker());
 * ```
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import type { Channel } from '../../src/client/channel.js';
import { openConnection } from '../../src/node.js';
import { brokerForTests, LOCAL_TEST_BROKER_URL, type TestBroker } from '../../src/testing/node.js';

/** Where the local broker is looked for when `AMQP_URL` is not set. */
export const LOCAL_AMQP_URL = LOCAL_TEST_BROKER_URL;

/** The image started when the broker comes from testcontainers. */
export const RABBITMQ_IMAGE = 'rabbitmq:3.13-alpine';

/** The parts of an AMQP URL a test needs to open a connection. */
export interface BrokerEndpoint {
  /** The whole URL, credentials included: do not print it, use {@link redactUrl}. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  /** Where the broker came from. */
  readonly source: 'AMQP_URL' | 'local' | 'testcontainers';
}

let discovery: Promise<BrokerEndpoint> | undefined;
let found: TestBroker | undefined;

/**
 * The AMQP URL of the broker integration tests use (see the module documentation for the order of
 * the lookup). The lookup runs once per test file; later calls return the same URL.
 *
 * @throws Error saying how to provide a broker when none is reachable.
 */
export async function brokerUrl(): Promise<string> {
  return (await brokerEndpoint()).url;
}

/**
 * The broker integration tests use, with its URL split into host, port, credentials and vhost.
 *
 * @throws Error saying how to provide a broker when none is reachable.
 */
export function brokerEndpoint(): Promise<BrokerEndpoint> {
  if (discovery === undefined) {
    discovery = discover();
    // A failed lookup is not cached, so a later call may find a broker that has come up since.
    discovery.catch(() => {
      discovery = undefined;
    });
  }
  return discovery;
}

/** The broker's host name (or address). */
export async function brokerHost(): Promise<string> {
  return (await brokerEndpoint()).host;
}

/** The broker's AMQP port. */
export async function brokerPort(): Promise<number> {
  return (await brokerEndpoint()).port;
}

/**
 * Stops the RabbitMQ container if this test file started one; does nothing otherwise. Call it from
 * `afterAll`.
 */
export async function stopBroker(): Promise<void> {
  const running = found;
  found = undefined;
  discovery = undefined;
  await running?.stop();
}

/**
 * The URL with its password replaced by `***`, fit for messages and logs.
 *
 * @example
 * ```ts
 * redactUrl('amqp://guest:guest@host:5672/'); // 'amqp://guest:***@host:5672/'
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    // Not parseable: cut anything between "//user:" and "@".
    return url.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
  }
}

/**
 * Splits an `amqp://` or `amqps://` URL. The vhost is the URL-decoded path without its leading slash,
 * `/` when the path is empty; user and password default to guest.
 *
 * @throws Error (without the password) when the URL is not an AMQP URL.
 */
export function parseAmqpUrl(url: string, source: BrokerEndpoint['source']): BrokerEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${source} is not a valid URL: ${redactUrl(url)}`);
  }
  const tls = parsed.protocol === 'amqps:';
  if (!tls && parsed.protocol !== 'amqp:') {
    throw new Error(`${source} must be an amqp:// URL, got ${redactUrl(url)}`);
  }
  const path = parsed.pathname;
  return {
    url,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? (tls ? 5671 : 5672) : Number(parsed.port),
    username: parsed.username === '' ? 'guest' : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? 'guest' : decodeURIComponent(parsed.password),
    vhost: path === '' || path === '/' ? '/' : decodeURIComponent(path.slice(1)),
    source,
  };
}

async function discover(): Promise<BrokerEndpoint> {
  const broker = await brokerForTests({ image: RABBITMQ_IMAGE });
  found = broker;
  if (broker.source === 'embedded') throw new Error('unreachable: the embedded broker was not allowed');
  return parseAmqpUrl(broker.url, broker.source);
}

/**
 * Runs `use` on a channel of a fresh connection to the test broker (closed after), for a test's set-up
 * and clean-up.
 *
 * @example
 * ```ts
 * await withBrokerChannel((ch) => lastValueFrom(ch.queueDelete('jobs')));
 * ```
 */
export async function withBrokerChannel<T>(use: (ch: Channel) => Promise<T>): Promise<T> {
  const conn = await openConnection(await brokerUrl());
  try {
    return await use(await conn.openChannel());
  } finally {
    await lastValueFrom(conn.close(), { defaultValue: undefined });
  }
}
