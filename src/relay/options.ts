/**
 * The relay's options: what users pass to `attachRelay` and `startRelay`, checked once, eagerly, into a
 * frozen {@link ResolvedRelayOptions} that the rest of the relay trusts without checking again.
 *
 * @module
 */
import { ConfigurationError } from '../errors.js';
import { MAX_TIMER_MS } from '../util/runtime.js';

/**
 * TLS settings for the relay's connections to the broker (an `amqps://` broker URL).
 *
 * There is deliberately no client certificate here: with one, every browser would reach the broker as
 * the relay's identity (RabbitMQ's EXTERNAL mechanism), which would make the relay an authentication
 * boundary. The broker authenticates each browser's own AMQP login instead.
 *
 * @example
 * ```ts
 * const brokerTls: RelayBrokerTls = { ca: readFileSync('/etc/ssl/broker-ca.pem'), servername: 'mq.internal' };
 * ```
 */
export interface RelayBrokerTls {
  /** CA certificates (PEM) to trust for the broker's certificate, instead of Node's default store. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Verify the broker's certificate and host name. Default true; false is for tests only. */
  readonly rejectUnauthorized?: boolean;
  /** The name sent as SNI and checked against the certificate. Default: the broker URL's host. */
  readonly servername?: string;
}

/**
 * Options of {@link attachRelay} (and of {@link startRelay}, with its listening options).
 *
 * @example
 * ```ts
 * const options: RelayOptions = {
 *   broker: 'amqp://rabbitmq.internal:5672',
 *   allowedOrigins: ['https://app.example.com'],
 *   path: '/amqp',
 *   log: (line) => console.log(line),
 * };
 * ```
 */
export interface RelayOptions {
  /**
   * The broker: `'amqp://host:port'`, or `'amqps://host:port'` for TLS to the broker. Only a host and a
   * port: no credentials (each browser logs in with its own, in its AMQP handshake), no vhost (the
   * client names it in connection.open). Default `'amqp://127.0.0.1:5672'`.
   */
  broker?: string;
  /** TLS to the broker, for an `amqps://` broker only. */
  brokerTls?: RelayBrokerTls;
  /**
   * Origins allowed to connect, each exactly as a browser sends it (`'https://app.example.com'`, with
   * the port when it is not the scheme's default), a predicate (one that throws refuses), or `'*'` for
   * any origin. Undefined: no browser may connect (a request with an `Origin` header gets 403), only
   * clients without one (see `allowNoOrigin`). Without a list, any web page a user visits could open
   * connections to your broker through the relay from that user's browser; and a relay beside the
   * broker connects from loopback, where RabbitMQ lets the `guest` user in.
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean) | '*';
  /**
   * Whether a request without an `Origin` header (not a browser: a script, a server, a test) may
   * connect. Default true: such a client can send any `Origin` it likes anyway.
   */
  allowNoOrigin?: boolean;
  /** Most WebSockets open at once; the next upgrade gets HTTP 503. Default 1000. */
  maxConnections?: number;
  /**
   * Bytes held for one browser that reads slower than the broker sends (the WebSocket's
   * `bufferedAmount`) before the relay stops reading from its broker socket. Also the most bytes held
   * from a browser while its broker socket is still connecting. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * A client whose buffer stays at or above `maxBufferedBytes` this long is cut: its broker socket is
   * destroyed and its WebSocket closed (1008). Default 10 000 ms.
   */
  slowClientTimeoutMs?: number;
  /**
   * Only upgrades on this path (exact match, query string ignored). Default: any path. With
   * {@link attachRelay}, upgrades on other paths are left to the server's other `upgrade` listeners.
   */
  path?: string;
  /** Gives up connecting to the broker (TLS handshake included) after this long: close 1014. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Receives one line per connection opened and one per connection closed (remote address, origin,
   * path without its query string, duration, bytes each way, why it closed), and one per upgrade
   * refused. Never a credential, never a payload byte. Default: no logging.
   */
  log?: (line: string) => void;
  /**
   * Largest WebSocket message accepted from a browser, in bytes; a larger one closes the WebSocket with
   * 1009. `ws` holds a message whole before handing it over, so this bounds what one browser can make
   * the relay hold. Default 32 MiB: RabbitMQ 4's largest message (`max_message_size`, 16 MiB) with its
   * frame headers, published in one WebSocket message, fits with room to spare. Raise it with the
   * broker's limit (RabbitMQ 3.13 accepts up to 128 MiB by default).
   */
  maxMessageBytes?: number;
}

/**
 * Options of {@link startRelay}: the relay's options plus where and how it listens.
 *
 * @example
 * ```ts
 * const options: StartRelayOptions = { port: 15670, host: '0.0.0.0', tls: { cert, key }, allowedOrigins: ['https://app.example.com'] };
 * ```
 */
export interface StartRelayOptions extends RelayOptions {
  /** The port to listen on; 0 picks a free one (see `relay.address`). Default 15670. */
  port?: number;
  /** The address to listen on. Default `'127.0.0.1'` (this machine only). */
  host?: string;
  /** Serve `wss://` directly with this certificate and key (PEM). Default: plain `ws://`. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** Where the broker is and how to reach it, parsed from the `broker` URL. */
export interface ResolvedBroker {
  readonly secure: boolean;
  /** Host name or address, an IPv6 address without its brackets. */
  readonly host: string;
  readonly port: number;
  /** `amqp://host:port` or `amqps://host:port`, for log lines. */
  readonly label: string;
  /** For `amqps://` only. */
  readonly tls: {
    readonly ca: readonly (string | Buffer)[] | undefined;
    readonly rejectUnauthorized: boolean;
    readonly servername: string | undefined;
  };
}

/** Every relay option, checked and with its default. */
export interface ResolvedRelayOptions {
  readonly broker: ResolvedBroker;
  /** Undefined: browsers refused; '*': any origin. */
  readonly allowedOrigins: ReadonlySet<string> | ((origin: string) => boolean) | '*' | undefined;
  readonly allowNoOrigin: boolean;
  readonly maxConnections: number;
  readonly maxBufferedBytes: number;
  readonly slowClientTimeoutMs: number;
  readonly path: string | undefined;
  readonly connectTimeoutMs: number;
  readonly log: ((line: string) => void) | undefined;
  readonly maxMessageBytes: number;
}

/** The listening options of {@link startRelay}, checked and with their defaults. */
export interface ResolvedListenOptions {
  readonly port: number;
  readonly host: string;
  readonly tls: { readonly cert: string | Buffer; readonly key: string | Buffer } | undefined;
}

/** The port the relay listens on by default, the bin's too (next to RabbitMQ's 1567x web plugins). */
export const DEFAULT_RELAY_PORT = 15670;

const DEFAULT_BROKER = 'amqp://127.0.0.1:5672';
const MIB = 1024 * 1024;

// Exhaustive at compile time: adding an option without listing it here does not typecheck, so the
// unknown-key check below can never refuse a real option.
const RELAY_KEYS: Record<keyof RelayOptions, true> = {
  broker: true,
  brokerTls: true,
  allowedOrigins: true,
  allowNoOrigin: true,
  maxConnections: true,
  maxBufferedBytes: true,
  slowClientTimeoutMs: true,
  path: true,
  connectTimeoutMs: true,
  log: true,
  maxMessageBytes: true,
};
const LISTEN_KEYS: Record<Exclude<keyof StartRelayOptions, keyof RelayOptions>, true> = {
  port: true,
  host: true,
  tls: true,
};
const BROKER_TLS_KEYS: Record<keyof RelayBrokerTls, true> = {
  ca: true,
  rejectUnauthorized: true,
  servername: true,
};

function checkKeys(value: object, known: object, what: string, hint?: (key: string) => string): void {
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(known, key)) continue;
    throw new ConfigurationError(`unknown ${what} '${key}'${hint?.(key) ?? ''}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInteger(
  name: string,
  value: unknown,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigurationError(
      `relay option ${name} must be an integer from 1 to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigurationError(`relay option ${name} must be a boolean`);
  return value;
}

function isPem(value: unknown): value is string | Buffer {
  return typeof value === 'string' || Buffer.isBuffer(value);
}

/**
 * Parses the broker URL. Never quotes the URL back when it has user info (it may hold a password).
 */
function resolveBroker(url: unknown, tls: unknown): ResolvedBroker {
  if (url !== undefined && typeof url !== 'string') {
    throw new ConfigurationError('relay option broker must be a string such as amqp://127.0.0.1:5672');
  }
  const text = url ?? DEFAULT_BROKER;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch (e) {
    throw new ConfigurationError(
      'relay option broker is not a URL (expected amqp://host:port or amqps://host:port)',
      {
        cause: e,
      },
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new ConfigurationError(
      'relay option broker must not carry credentials: each browser sends its own in its AMQP login',
    );
  }
  const secure = parsed.protocol === 'amqps:';
  if (!secure && parsed.protocol !== 'amqp:') {
    throw new ConfigurationError(
      `relay option broker must be an amqp:// or amqps:// URL, got ${parsed.protocol}//`,
    );
  }
  if (parsed.hostname === '') throw new ConfigurationError(`relay option broker has no host: ${text}`);
  if ((parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search !== '' || parsed.hash !== '') {
    throw new ConfigurationError(
      `relay option broker names only a host and a port (the client chooses the vhost in its own handshake): ${text}`,
    );
  }
  const port = parsed.port === '' ? (secure ? 5671 : 5672) : Number(parsed.port);
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const label = `${parsed.protocol}//${parsed.hostname}:${port}`;

  if (tls !== undefined && !isObject(tls))
    throw new ConfigurationError('relay option brokerTls must be an object');
  if (tls !== undefined && !secure) {
    throw new ConfigurationError(
      'relay option brokerTls is set but the broker URL is amqp:// (plain TCP): use amqps:// for TLS to the broker',
    );
  }
  const settings = tls ?? {};
  checkKeys(settings, BROKER_TLS_KEYS, 'brokerTls option', (key) =>
    key === 'cert' || key === 'key' || key === 'pfx'
      ? ' (the relay presents no client certificate: the broker authenticates each browser)'
      : '',
  );
  const { ca, servername } = settings;
  let cas: (string | Buffer)[] | undefined;
  if (ca !== undefined) {
    cas = Array.isArray(ca) ? [...(ca as unknown[])].filter(isPem) : isPem(ca) ? [ca] : [];
    if (cas.length === 0 || (Array.isArray(ca) && cas.length !== ca.length)) {
      throw new ConfigurationError(
        'relay option brokerTls.ca must be PEM text or a Buffer, or a non-empty array of them',
      );
    }
  }
  if (servername !== undefined && (typeof servername !== 'string' || servername === '')) {
    throw new ConfigurationError('relay option brokerTls.servername must be a non-empty string');
  }
  return Object.freeze({
    secure,
    host,
    port,
    label,
    tls: Object.freeze({
      ca: cas === undefined ? undefined : Object.freeze(cas),
      rejectUnauthorized: booleanOption('brokerTls.rejectUnauthorized', settings.rejectUnauthorized, true),
      servername: servername as string | undefined,
    }),
  });
}

/**
 * Checks one allowed origin: it must be what a browser sends, so that the exact comparison can match.
 */
function checkOrigin(origin: unknown): string {
  if (typeof origin !== 'string')
    throw new ConfigurationError('relay option allowedOrigins must hold strings');
  if (origin === 'null') {
    throw new ConfigurationError(
      "relay option allowedOrigins cannot list 'null': sandboxed frames and file: pages of any site send it; use a predicate if you really mean it",
    );
  }
  let serialized: string;
  try {
    serialized = new URL(origin).origin;
  } catch (e) {
    throw new ConfigurationError(
      `relay option allowedOrigins: '${origin}' is not an origin such as https://app.example.com`,
      {
        cause: e,
      },
    );
  }
  if (serialized !== origin) {
    const hint =
      serialized === 'null' ? 'an http(s) origin such as https://app.example.com' : `'${serialized}'`;
    throw new ConfigurationError(
      `relay option allowedOrigins: '${origin}' never matches what a browser sends (scheme://host[:port], lower case, no path): use ${hint}`,
    );
  }
  return origin;
}

function resolveAllowedOrigins(value: unknown): ResolvedRelayOptions['allowedOrigins'] {
  if (value === undefined || value === '*' || typeof value === 'function')
    return value as ((origin: string) => boolean) | '*' | undefined;
  if (!Array.isArray(value)) {
    throw new ConfigurationError(
      "relay option allowedOrigins must be an array of origins, a function or '*' (any origin)",
    );
  }
  return new Set(value.map(checkOrigin));
}

function resolvePath(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !value.startsWith('/') || /[?#\s]/.test(value)) {
    throw new ConfigurationError(
      `relay option path must start with / and hold no query, fragment or space, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A logger that throws must not take a connection down with it (it runs inside socket events). */
function guardLog(log: (line: string) => void): (line: string) => void {
  return (line) => {
    try {
      log(line);
    } catch {
      // Dropped: the relay has nowhere else to report it.
    }
  };
}

function resolveShared(options: Record<string, unknown>): ResolvedRelayOptions {
  const { log } = options;
  if (log !== undefined && typeof log !== 'function')
    throw new ConfigurationError('relay option log must be a function');
  return Object.freeze({
    broker: resolveBroker(options.broker, options.brokerTls),
    allowedOrigins: resolveAllowedOrigins(options.allowedOrigins),
    allowNoOrigin: booleanOption('allowNoOrigin', options.allowNoOrigin, true),
    maxConnections: positiveInteger('maxConnections', options.maxConnections, 1000),
    maxBufferedBytes: positiveInteger('maxBufferedBytes', options.maxBufferedBytes, MIB),
    slowClientTimeoutMs: positiveInteger(
      'slowClientTimeoutMs',
      options.slowClientTimeoutMs,
      10_000,
      MAX_TIMER_MS,
    ),
    path: resolvePath(options.path),
    connectTimeoutMs: positiveInteger('connectTimeoutMs', options.connectTimeoutMs, 10_000, MAX_TIMER_MS),
    log: log === undefined ? undefined : guardLog(log as (line: string) => void),
    maxMessageBytes: positiveInteger('maxMessageBytes', options.maxMessageBytes, 32 * MIB),
  });
}

/**
 * Checks the options of {@link attachRelay} and fills in the defaults.
 *
 * @throws ConfigurationError naming the option and what is wrong with it.
 * @example
 * ```ts
 * resolveRelayOptions({ broker: 'amqp://rabbitmq:5672' }).maxConnections; // 1000
 * ```
 */
export function resolveRelayOptions(options: RelayOptions | undefined): ResolvedRelayOptions {
  const given: unknown = options ?? {};
  if (!isObject(given)) throw new ConfigurationError('relay options must be an object');
  checkKeys(given, RELAY_KEYS, 'relay option', (key) =>
    Object.hasOwn(LISTEN_KEYS, key) ? ' (only startRelay listens: an attached relay uses your server)' : '',
  );
  return resolveShared(given);
}

/**
 * Checks the options of {@link startRelay} and fills in the defaults.
 *
 * @throws ConfigurationError naming the option and what is wrong with it.
 * @example
 * ```ts
 * const { relay, listen } = resolveStartRelayOptions({ port: 0 });
 * listen.host; // '127.0.0.1'
 * ```
 */
export function resolveStartRelayOptions(options: StartRelayOptions | undefined): {
  readonly relay: ResolvedRelayOptions;
  readonly listen: ResolvedListenOptions;
} {
  const given: unknown = options ?? {};
  if (!isObject(given)) throw new ConfigurationError('relay options must be an object');
  checkKeys(given, { ...RELAY_KEYS, ...LISTEN_KEYS }, 'relay option');
  const { port, host, tls } = given;
  if (
    port !== undefined &&
    (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535)
  ) {
    throw new ConfigurationError(`relay option port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  if (host !== undefined && (typeof host !== 'string' || host === '')) {
    throw new ConfigurationError('relay option host must be a non-empty string');
  }
  if (tls !== undefined) {
    if (!isObject(tls) || !isPem(tls.cert) || !isPem(tls.key)) {
      throw new ConfigurationError('relay option tls must be { cert, key }, each PEM text or a Buffer');
    }
    checkKeys(tls, { cert: true, key: true }, 'tls option');
  }
  const listen: ResolvedListenOptions = Object.freeze({
    port: (port as number | undefined) ?? DEFAULT_RELAY_PORT,
    host: (host as string | undefined) ?? '127.0.0.1',
    tls:
      tls === undefined
        ? undefined
        : Object.freeze({ cert: tls.cert as string | Buffer, key: tls.key as string | Buffer }),
  });
  return { relay: resolveShared(given), listen };
}
