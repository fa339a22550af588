/**
 * Broker discovery for integration tests. In order of preference:
 *
 * 1. `AMQP_URL` from the environment, used as given;
 * 2. a RabbitMQ on `amqp://guest:guest@127.0.0.1:5672`, when a TCP connection to it succeeds within 2 s;
 * 3. a RabbitMQ container started with testcontainers, when a Docker daemon answers (stop it with
 *    {@link stopBroker} in `afterAll`).
 *
 * With none of these the lookup fails with an error that says how to provide a broker: integration
 * suites never skip. Error messages never show a password.
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
import { request } from 'node:http';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the local broker is looked for when `AMQP_URL` is not set. */
export const LOCAL_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** The image started when the broker comes from testcontainers. */
export const RABBITMQ_IMAGE = 'rabbitmq:3.13-alpine';

const LOCAL_PROBE_MS = 2000;
const DOCKER_PROBE_MS = 2000;

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

interface StoppableContainer {
  stop(): Promise<unknown>;
}

let discovery: Promise<BrokerEndpoint> | undefined;
let container: StoppableContainer | undefined;

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
  const running = container;
  container = undefined;
  discovery = undefined;
  if (running !== undefined) await running.stop();
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
  const fromEnv = process.env.AMQP_URL;
  if (fromEnv !== undefined && fromEnv !== '') return parseAmqpUrl(fromEnv, 'AMQP_URL');

  const local = parseAmqpUrl(LOCAL_AMQP_URL, 'local');
  if (await tcpAnswers(local.host, local.port, LOCAL_PROBE_MS)) return local;

  const docker = await findDockerDaemon();
  if (docker !== undefined) return startContainer();

  throw new Error(
    [
      `No AMQP broker for the integration tests: AMQP_URL is not set, nothing answers on ${redactUrl(LOCAL_AMQP_URL)}` +
        ' and no Docker daemon answers for testcontainers. Provide one of:',
      '  - AMQP_URL=amqp://user:password@host:5672/vhost pointing at a RabbitMQ broker;',
      '  - RabbitMQ on 127.0.0.1:5672 with user guest/guest: `apt-get install rabbitmq-server`, then' +
        ' `rabbitmq-server -detached` if it is not running (or `bash .ci/run`, which does both);',
      `  - a running Docker daemon (DOCKER_HOST or /var/run/docker.sock): testcontainers starts ${RABBITMQ_IMAGE}.`,
    ].join('\n'),
  );
}

async function startContainer(): Promise<BrokerEndpoint> {
  const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
  let started: Awaited<ReturnType<InstanceType<typeof RabbitMQContainer>['start']>>;
  try {
    started = await new RabbitMQContainer(RABBITMQ_IMAGE).withStartupTimeout(120_000).start();
  } catch (e) {
    throw new Error(
      `A Docker daemon answers but starting ${RABBITMQ_IMAGE} with testcontainers failed: ${String(e)}.` +
        ' Set AMQP_URL or start RabbitMQ on 127.0.0.1:5672 instead.',
      { cause: e },
    );
  }
  container = started;
  // The container's default user is guest/guest; getAmqpUrl() carries no credentials.
  const url = `amqp://guest:guest@${started.getHost()}:${started.getMappedPort(5672)}`;
  return parseAmqpUrl(url, 'testcontainers');
}

/** True when a TCP connection to host:port opens within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Where a Docker daemon answers `GET /_ping`: `DOCKER_HOST` (unix:// or tcp://) if set, else the usual
 * socket paths. Undefined when none answers.
 */
async function findDockerDaemon(): Promise<string | undefined> {
  const candidates: { socketPath?: string; host?: string; port?: number; label: string }[] = [];
  const dockerHost = process.env.DOCKER_HOST;
  if (dockerHost !== undefined && dockerHost !== '') {
    if (dockerHost.startsWith('unix://')) {
      candidates.push({ socketPath: dockerHost.slice('unix://'.length), label: dockerHost });
    } else if (dockerHost.startsWith('tcp://')) {
      try {
        const u = new URL(dockerHost);
        candidates.push({ host: u.hostname, port: Number(u.port || 2375), label: dockerHost });
      } catch {
        // unusable DOCKER_HOST: fall through to the default sockets
      }
    }
  }
  const runtimeDir = process.env.XDG_RUNTIME_DIR;
  const paths = [
    '/var/run/docker.sock',
    join(homedir(), '.docker', 'run', 'docker.sock'),
    join(homedir(), '.docker', 'desktop', 'docker.sock'),
    ...(runtimeDir === undefined ? [] : [join(runtimeDir, 'docker.sock')]),
  ];
  for (const socketPath of paths) candidates.push({ socketPath, label: socketPath });
  for (const candidate of candidates) {
    if (await dockerPing(candidate)) return candidate.label;
  }
  return undefined;
}

function dockerPing(target: { socketPath?: string; host?: string; port?: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: DOCKER_PROBE_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
