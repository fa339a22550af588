/**
 * `brokerForTests`: a broker for a user's test suite, found the way rxamqp's own integration tests
 * find theirs: `AMQP_URL`, else a RabbitMQ answering at the local address, else a RabbitMQ container
 * through testcontainers when a Docker daemon answers, else (when allowed) the embedded broker, and
 * otherwise a {@link NoBrokerError} saying how to get one. Node only (it probes TCP and Docker).
 *
 * @module
 */
import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionObservable } from '../client/connect.js';
import type { Connection } from '../client/connection.js';
import type { ConnectOptions } from '../config/options.js';
import { redactUrl } from '../config/url.js';
import { ConfigurationError, NoBrokerError } from '../errors.js';
import { connect, openConnection } from '../node.js';
import { INSPECT } from '../util/runtime.js';
import { EmbeddedBroker, type EmbeddedBrokerOptions } from './broker/index.js';

/**
 * Where the broker of a {@link TestBroker} came from.
 *
 * @example
 * ```ts
 * const canDropConnections = broker.source === 'embedded'; // the embedded broker's hooks are there
 * ```
 */
export type TestBrokerSource = 'AMQP_URL' | 'local' | 'testcontainers' | 'embedded';

/**
 * Options of {@link brokerForTests}.
 *
 * @example
 * ```ts
 * const broker = await brokerForTests({ embedded: 'fallback', probeTimeoutMs: 500 });
 * ```
 */
export interface BrokerForTestsOptions {
  /**
   * The embedded broker: `'fallback'` uses it when no real broker is found (instead of failing),
   * `'always'` uses it without looking for one, `false` (the default) never.
   */
  readonly embedded?: false | 'fallback' | 'always';
  /** Options of the embedded broker, when it is used. */
  readonly embeddedOptions?: EmbeddedBrokerOptions;
  /** Where a local RabbitMQ is looked for. Default `amqp://guest:guest@127.0.0.1:5672`. */
  readonly localUrl?: string;
  /** How long the local address and each Docker socket may take to answer, in ms. Default 2000. */
  readonly probeTimeoutMs?: number;
  /** Whether to try testcontainers when a Docker daemon answers. Default true. */
  readonly docker?: boolean;
  /** The image testcontainers starts. Default `rabbitmq:3.13-alpine`. */
  readonly image?: string;
  /** The environment read for `AMQP_URL` and `DOCKER_HOST`. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The URL of each test broker, kept off the object (see `TestBroker.url`). */
const URLS = new WeakMap<TestBroker, string>();

/** The default local address. */
export const LOCAL_TEST_BROKER_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** The default image testcontainers starts. */
export const TEST_BROKER_IMAGE = 'rabbitmq:3.13-alpine';
const DEFAULT_PROBE_MS = 2000;

/** What a started container offers (the part of testcontainers' API used here). */
interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  stop(): Promise<unknown>;
}

/**
 * The broker a test suite uses: connect to it with {@link TestBroker.connect} or
 * {@link TestBroker.openConnection} (which add what the broker needs, the in-memory transport of the
 * embedded one), and {@link TestBroker.stop} it in `afterAll`. Its `url` carries the password: print
 * the broker itself (`String()`, `JSON.stringify`, `util.inspect` show the URL without it).
 *
 * @example
 * ```ts
 * let broker: TestBroker;
 * beforeAll(async () => { broker = await brokerForTests({ embedded: 'fallback' }); });
 * afterAll(() => broker.stop());
 *
 * it('declares a queue', async () => {
 *   const conn = await broker.openConnection();
 *   const ch = await conn.openChannel();
 *   await lastValueFrom(ch.queueDeclare('jobs'));
 *   await lastValueFrom(conn.close());
 * });
 * ```
 */
export class TestBroker {
  private stopping: Promise<void> | undefined;

  /** @internal Made by {@link brokerForTests}. */
  constructor(
    /** Where the broker came from. */
    readonly source: TestBrokerSource,
    url: string,
    /** The embedded broker with its hooks (close, block, inspect ...), when `source` is `embedded`. */
    readonly embedded: EmbeddedBroker | undefined,
    private readonly container: StartedContainer | undefined,
  ) {
    // Not an own property: a spread, `Object.entries` or a deep inspection of the broker never meets it.
    URLS.set(this, url);
  }

  /** The AMQP URL, password included: do not print it (print the broker, which hides it). */
  get url(): string {
    return URLS.get(this) ?? '';
  }

  /** What `connect` / `openConnection` need besides the URL: the embedded broker's transport, or nothing. */
  get connectOptions(): ConnectOptions {
    return this.embedded === undefined ? {} : { transport: this.embedded.connector };
  }

  /**
   * `connect(url, options)` to this broker (see rxamqp's `connect`).
   *
   * @example
   * ```ts
   * broker.connect({ recovery: {} }).pipe(switchMap((conn) => conn.channel())).subscribe();
   * ```
   */
  connect(options: ConnectOptions = {}): ConnectionObservable {
    return connect(this.url, { ...options, ...this.connectOptions });
  }

  /**
   * `openConnection(url, options)` to this broker (see rxamqp's `openConnection`).
   *
   * @example
   * ```ts
   * const conn = await broker.openConnection({ name: 'orders test' });
   * ```
   */
  openConnection(options: ConnectOptions = {}): Promise<Connection> {
    return openConnection(this.url, { ...options, ...this.connectOptions });
  }

  /**
   * Stops what this helper started: the container, or the embedded broker (closing its connections).
   * A broker found at `AMQP_URL` or the local address is left running. Idempotent.
   *
   * @example
   * ```ts
   * afterAll(() => broker.stop());
   * ```
   */
  stop(): Promise<void> {
    // Every call gets the same promise: a second stop() while the first runs waits for it.
    this.stopping ??= (async () => {
      this.embedded?.close();
      await this.container?.stop();
    })();
    return this.stopping;
  }

  toString(): string {
    return `TestBroker(${this.source}, ${redactUrl(this.url)})`;
  }

  toJSON(): { source: TestBrokerSource; url: string } {
    return { source: this.source, url: redactUrl(this.url) };
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/**
 * Finds a broker for a test suite, in this order: `AMQP_URL` from the environment, as given; a
 * RabbitMQ answering at `localUrl` (127.0.0.1:5672); a RabbitMQ container started with testcontainers
 * when a Docker daemon answers (`@testcontainers/rabbitmq` must be installed); the embedded broker when
 * `embedded` is `'fallback'` (or at once with `'always'`). With none it rejects with a
 * {@link NoBrokerError} saying how to provide one: a suite never skips silently.
 *
 * @example
 * ```ts
 * import { brokerForTests, type TestBroker } from 'rxamqp/testing';
 *
 * let broker: TestBroker;
 * beforeAll(async () => { broker = await brokerForTests({ embedded: 'fallback' }); });
 * afterAll(() => broker.stop());
 * ```
 */
export async function brokerForTests(options: BrokerForTestsOptions = {}): Promise<TestBroker> {
  const settings = checked(options);
  if (settings.embedded === 'always') return embeddedBroker(options.embeddedOptions);

  const fromEnv = settings.env.AMQP_URL;
  if (fromEnv !== undefined && fromEnv !== '')
    return new TestBroker('AMQP_URL', fromEnv, undefined, undefined);

  const local = hostAndPort(settings.localUrl);
  if (await tcpAnswers(local.host, local.port, settings.probeTimeoutMs)) {
    return new TestBroker('local', settings.localUrl, undefined, undefined);
  }

  let containerError: unknown;
  if (settings.docker && (await dockerAnswers(settings.env, settings.probeTimeoutMs))) {
    try {
      const container = await startContainer(settings.image);
      const url = `amqp://guest:guest@${container.getHost()}:${container.getMappedPort(5672)}`;
      return new TestBroker('testcontainers', url, undefined, container);
    } catch (e) {
      containerError = e;
    }
  }

  if (settings.embedded === 'fallback') return embeddedBroker(options.embeddedOptions);

  const lines = [
    `No AMQP broker for the tests: AMQP_URL is not set, nothing answers at ${redactUrl(settings.localUrl)}` +
      (containerError !== undefined
        ? `, and starting ${settings.image} with testcontainers failed (${describe(containerError)}).`
        : settings.docker
          ? ' and no Docker daemon answers for testcontainers.'
          : ' (testcontainers not tried: `docker: false`).'),
    'Provide one of:',
    '  - AMQP_URL=amqp://user:password@host:5672/vhost pointing at a RabbitMQ broker;',
    `  - RabbitMQ at ${redactUrl(settings.localUrl)} (e.g. \`apt-get install rabbitmq-server\`, then \`rabbitmq-server -detached\`);`,
    `  - a running Docker daemon and \`npm install -D @testcontainers/rabbitmq\`: testcontainers starts ${settings.image};`,
    "  - or allow the embedded broker: brokerForTests({ embedded: 'fallback' }).",
  ];
  throw new NoBrokerError(
    lines.join('\n'),
    containerError === undefined ? undefined : { cause: containerError },
  );
}

interface Settings {
  readonly embedded: false | 'fallback' | 'always';
  readonly localUrl: string;
  readonly probeTimeoutMs: number;
  readonly docker: boolean;
  readonly image: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Every option, to refuse the unknown ones (a misspelt `embedded` would otherwise be ignored). */
const OPTION_KEYS: { readonly [K in keyof BrokerForTestsOptions]-?: true } = {
  embedded: true,
  embeddedOptions: true,
  localUrl: true,
  probeTimeoutMs: true,
  docker: true,
  image: true,
  env: true,
};

/** The options, checked up front: a bad option fails at once with a ConfigurationError. */
function checked(options: BrokerForTestsOptions): Settings {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`brokerForTests: options must be an object, got ${typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(OPTION_KEYS, key)) {
      // Quoted only when it looks like a name: not a URL or a password pasted as a key.
      const shown = /^[A-Za-z0-9_$.-]{1,64}$/.test(key) ? JSON.stringify(key) : '(not shown)';
      throw new ConfigurationError(
        `brokerForTests: unknown option ${shown}; the accepted ones are ${Object.keys(OPTION_KEYS).join(', ')}`,
      );
    }
  }
  const { embedded = false, probeTimeoutMs = DEFAULT_PROBE_MS, docker = true } = options;
  if (embedded !== false && embedded !== 'fallback' && embedded !== 'always') {
    throw new ConfigurationError(
      `brokerForTests: embedded must be false, 'fallback' or 'always', got ${show(embedded)}`,
    );
  }
  if (typeof probeTimeoutMs !== 'number' || !Number.isFinite(probeTimeoutMs) || probeTimeoutMs <= 0) {
    throw new ConfigurationError(
      `brokerForTests: probeTimeoutMs must be a positive number of milliseconds, got ${show(probeTimeoutMs)}`,
    );
  }
  if (typeof docker !== 'boolean') {
    throw new ConfigurationError(`brokerForTests: docker must be a boolean, got ${show(docker)}`);
  }
  const image = options.image ?? TEST_BROKER_IMAGE;
  if (typeof image !== 'string' || image === '') {
    throw new ConfigurationError('brokerForTests: image must be a non-empty string');
  }
  const localUrl = options.localUrl ?? LOCAL_TEST_BROKER_URL;
  if (typeof localUrl !== 'string') {
    throw new ConfigurationError(`brokerForTests: localUrl must be a string, got ${typeof localUrl}`);
  }
  hostAndPort(localUrl);
  const env = options.env ?? process.env;
  if (typeof env !== 'object' || env === null) {
    throw new ConfigurationError(`brokerForTests: env must be an object, got ${typeof env}`);
  }
  if (
    options.embeddedOptions !== undefined &&
    (typeof options.embeddedOptions !== 'object' || options.embeddedOptions === null)
  ) {
    throw new ConfigurationError(
      `brokerForTests: embeddedOptions must be an object, got ${typeof options.embeddedOptions}`,
    );
  }
  return { embedded, localUrl, probeTimeoutMs, docker, image, env };
}

/** A value for an error message: its type for objects (which may hold secrets), else the value. */
function show(value: unknown): string {
  return typeof value === 'object' && value !== null ? 'an object' : String(value);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The host and port of an amqp:// or amqps:// URL (the port defaulting by scheme). */
function hostAndPort(url: string): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigurationError(`brokerForTests: localUrl is not a valid URL: ${redactUrl(url)}`);
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new ConfigurationError(
      `brokerForTests: localUrl must be an amqp:// or amqps:// URL: ${redactUrl(url)}`,
    );
  }
  const port = parsed.port === '' ? (parsed.protocol === 'amqps:' ? 5671 : 5672) : Number(parsed.port);
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port };
}

function embeddedBroker(options: EmbeddedBrokerOptions | undefined): TestBroker {
  const broker = new EmbeddedBroker(options);
  return new TestBroker('embedded', 'amqp://guest:guest@embedded', broker, undefined);
}

/** True when a TCP connection to host:port opens within `timeoutMs`. */
function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when a Docker daemon answers `GET /_ping` at `DOCKER_HOST` or one of the usual sockets. */
async function dockerAnswers(
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs: number,
): Promise<boolean> {
  const candidates: { socketPath?: string; host?: string; port?: number }[] = [];
  const dockerHost = env.DOCKER_HOST;
  if (dockerHost?.startsWith('unix://') === true) {
    candidates.push({ socketPath: dockerHost.slice('unix://'.length) });
  } else if (dockerHost?.startsWith('tcp://') === true) {
    try {
      const u = new URL(dockerHost);
      candidates.push({ host: u.hostname, port: Number(u.port || 2375) });
    } catch {
      // An unusable DOCKER_HOST: the usual sockets are still tried.
    }
  }
  const runtimeDir = env.XDG_RUNTIME_DIR;
  for (const socketPath of [
    '/var/run/docker.sock',
    join(homedir(), '.docker', 'run', 'docker.sock'),
    join(homedir(), '.docker', 'desktop', 'docker.sock'),
    ...(runtimeDir === undefined ? [] : [join(runtimeDir, 'docker.sock')]),
  ]) {
    candidates.push({ socketPath });
  }
  for (const candidate of candidates) {
    if (await dockerPing(candidate, timeoutMs)) return true;
  }
  return false;
}

function dockerPing(
  target: { socketPath?: string; host?: string; port?: number },
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Starts a RabbitMQ container with `@testcontainers/rabbitmq` (an optional peer dependency). */
async function startContainer(image: string): Promise<StartedContainer> {
  let module: {
    RabbitMQContainer: new (
      image: string,
    ) => { withStartupTimeout(ms: number): { start(): Promise<StartedContainer> } };
  };
  try {
    module = (await import('@testcontainers/rabbitmq')) as unknown as typeof module;
  } catch (e) {
    throw new NoBrokerError(
      'A Docker daemon answers but @testcontainers/rabbitmq is not installed (npm install -D @testcontainers/rabbitmq)',
      { cause: e },
    );
  }
  return new module.RabbitMQContainer(image).withStartupTimeout(120_000).start();
}
