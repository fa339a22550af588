/**
 * Connection options: what `connect()` accepts, and the fully resolved form the connection uses.
 * A URL (RabbitMQ URI spec) and an options object can be combined; the object wins.
 *
 * @module
 */
import type { SchedulerLike } from 'rxjs';
import type { FieldTable } from '../protocol/field-table.js';
import type { RetryPolicy, RetryPolicyOptions } from '../recovery/retry-policy.js';
import type { Instrumentation } from '../telemetry/instrumentation.js';
import type { Reporter } from '../telemetry/reporter.js';
import type {
  ResolvedSocketOptions,
  ResolvedTlsOptions,
  ServerIdentityCheck,
  TransportConnector,
} from '../transport/transport.js';
import type { Credentials, CredentialsProvider, CredentialsSource } from './credentials.js';
import type { Secret } from './secret.js';

// The transport seam owns the resolved TLS and socket settings (so that it imports nothing from the
// configuration); they are re-exported here, where they have always been found.
export type { ResolvedSocketOptions, ResolvedTlsOptions } from '../transport/transport.js';
export type { Credentials };

/** Default heartbeat the client asks for, in seconds (RabbitMQ's own clients use 60). */
export const DEFAULT_HEARTBEAT = 60;
/** Default largest frame the client asks for (RabbitMQ's default). */
export const DEFAULT_FRAME_MAX = 131072;
/** Default highest channel number the client asks for (RabbitMQ's default). */
export const DEFAULT_CHANNEL_MAX = 2047;
/** Default time allowed to open a connection (TCP, TLS and the AMQP handshake), in milliseconds. */
export const DEFAULT_CONNECTION_TIMEOUT = 30_000;
/** Default time allowed for the broker's close-ok before the socket is dropped, in milliseconds. */
export const DEFAULT_CLOSE_TIMEOUT = 5_000;
/** Default outbound buffer high-water mark, in bytes. */
export const DEFAULT_WRITE_HIGH_WATER_MARK = 1024 * 1024;
/** Default longest hold of a consumer's ack, in milliseconds. */
export const DEFAULT_ACK_DELAY = 1;
/** Default longest wait of a publish while the broker blocks the connection, in milliseconds. */
export const DEFAULT_BLOCKED_TIMEOUT = 60_000;
/** Default read batching of dense streams. */
export const DEFAULT_READ_BATCHING = Object.freeze({ minMessages: 4, delayMs: 1 });

/**
 * A SASL mechanism: PLAIN, AMQPLAIN and EXTERNAL are built in; implement this for others.
 *
 * @example
 * ```ts
 * const token: SaslMechanism = {
 *   name: 'X-TOKEN',
 *   response: () => Buffer.from(process.env.TOKEN ?? ''),
 * };
 * connect({ hostname: 'localhost', sasl: [token] });
 * ```
 */
export interface SaslMechanism {
  /** The mechanism name the broker advertises, such as `PLAIN`. */
  readonly name: string;
  /** The initial response sent in connection.start-ok. */
  response(credentials: Credentials): Uint8Array;
  /** The answer to a connection.secure challenge, for mechanisms with several steps. */
  challenge?(challenge: Uint8Array, credentials: Credentials): Uint8Array;
}

/**
 * TLS settings: those of `tls.connect` that matter for a broker connection, plus file paths as the
 * RabbitMQ URI spec names them. Verification of the certificate chain and the host name is on unless
 * `rejectUnauthorized: false` is given (the URI's `verify=verify_none`).
 *
 * @example
 * ```ts
 * connect({ hostname: 'mq.example.com', tls: { caFile: '/etc/ssl/mq-ca.pem' } });
 * ```
 */
export interface TlsOptions {
  /** CA certificates (PEM) to trust instead of the runtime's defaults. A `Buffer` is a `Uint8Array`. */
  ca?: string | Uint8Array | (string | Uint8Array)[];
  /** Client certificate chain (PEM), for EXTERNAL authentication or mutual TLS. */
  cert?: string | Uint8Array;
  /** Client private key (PEM). */
  key?: string | Uint8Array;
  /** Passphrase of the private key. */
  passphrase?: string | Secret;
  /** PKCS#12 bundle instead of cert + key. */
  pfx?: Uint8Array;
  /**
   * Paths read when the options are resolved (the URI's `cacertfile`, `certfile`, `keyfile`), with the
   * platform's `readFile` (Node: `fs.readFileSync`); a runtime without files refuses them.
   */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Verify the broker's certificate chain and host name. Default true. */
  rejectUnauthorized?: boolean;
  /** Server name for SNI and host-name verification; `false` sends no SNI. Default: the host name. */
  servername?: string | false;
  /** Lowest TLS version accepted. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * A custom host-name check, as in `tls.connect` (Node only). `cert` is Node's `tls.PeerCertificate`;
   * it is typed loosely so that the options type-check where Node's types are absent (browsers).
   */
  checkServerIdentity?: ServerIdentityCheck;
}

/**
 * Socket settings.
 *
 * @example
 * ```ts
 * connect({ hostname: 'localhost', socket: { noDelay: true, keepAlive: 30_000 } });
 * ```
 */
export interface SocketOptions {
  /** Disable Nagle's algorithm. Default true. */
  noDelay?: boolean;
  /** TCP keep-alive: false, true, or the initial delay in milliseconds. Default false. */
  keepAlive?: boolean | number;
  /** Local address to bind. */
  localAddress?: string;
  /** IP family to resolve the host name to: 4, 6 or 0 (either). Default 0. */
  family?: 0 | 4 | 6;
}

/**
 * Everything `connect()` accepts. All fields are optional; a URL given to `connect()` fills those the
 * object leaves out.
 *
 * @example
 * ```ts
 * connect({
 *   hostname: 'localhost',
 *   username: 'app',
 *   password: process.env.AMQP_PASSWORD,
 *   vhost: 'orders',
 *   heartbeat: 30,
 *   name: 'order-service',
 * });
 * ```
 */
export interface ConnectOptions {
  /** Host name or address. Default `localhost`. */
  hostname?: string;
  /** Port. Default 5672, or 5671 with TLS. */
  port?: number;
  /** Virtual host. Default `/`. */
  vhost?: string;
  /** User name. Default `guest`. */
  username?: string;
  /** Password. Default `guest`. */
  password?: string | Secret;
  /**
   * Asked for the user name and password (or token) before every connection attempt, the first and
   * each reconnect, instead of `password`: for OAuth 2 tokens and other rotating secrets. When the
   * answer has an `expiresAt`, the open connection asks again ahead of that time and hands the broker
   * the new secret (`connection.update-secret`). A provider that fails (rejects, throws, errors)
   * fails the attempt with a `ConnectionClosedError` `CREDENTIALS_UNAVAILABLE`, which recovery retries.
   *
   * @example
   * ```ts
   * connect('wss://app.example.com/amqp', {
   *   credentials: async () => ({ username: 'web', password: await auth.token() }),
   * });
   * ```
   */
  credentials?: CredentialsProvider;
  /** TLS: true for the defaults (verification on), or settings. Default false (`amqps://` turns it on). */
  tls?: boolean | TlsOptions;
  /**
   * Heartbeat to ask for, in seconds. Default 60. Negotiated as RabbitMQ's clients do: the lower of the
   * two values, except that 0 on one side means the other side decides, so 0 disables heartbeats only
   * when the broker also proposes 0.
   */
  heartbeat?: number;
  /** Largest frame to ask for, in bytes (at least 4096, or 0 for no limit). Default 131072. */
  frameMax?: number;
  /** Highest channel number to ask for (0 for the protocol maximum, 65535). Default 2047. */
  channelMax?: number;
  /** Milliseconds allowed to open the connection (TCP, TLS, AMQP handshake). Default 30000. */
  connectionTimeout?: number;
  /** Milliseconds to wait for the broker's close-ok when closing. Default 5000. */
  closeTimeout?: number;
  /** SASL mechanism names to offer, in order of preference (URI `auth_mechanism`). Default `['PLAIN']`. */
  authMechanism?: string | readonly string[];
  /** SASL mechanisms to use instead of the built-in ones named by `authMechanism`. */
  sasl?: readonly SaslMechanism[];
  /** Client properties sent to the broker (merged over rxamqp's own: product, version, capabilities). */
  clientProperties?: FieldTable;
  /** Connection name shown in the management UI (`connection_name`). */
  name?: string;
  /** Locale. Default `en_US`. */
  locale?: string;
  /** Socket settings. */
  socket?: SocketOptions;
  /** Largest message body accepted from the broker and sent to it. Default 128 MiB. */
  maxBodySize?: number;
  /** Outbound buffer size above which publishing waits for the socket to drain. Default 1 MiB. */
  writeHighWaterMark?: number;
  /**
   * Longest time, in milliseconds, a consumer's `ack()` is held so that it goes out with later ones as
   * one `basic.ack` with `multiple: true` (only where that acks exactly the same messages). Held acks
   * also go out as soon as they reach a quarter of the channel's prefetch, and before any other method
   * of their channel (so a `txCommit` follows them). 0 sends them at the end of the current turn (the
   * acks of one turn are still merged). Default 1.
   */
  ackDelay?: number;
  /**
   * Batches the reads of dense message streams, to spend less CPU per message: when one read brings at
   * least `minMessages` messages (deliveries and returns; not publisher confirms, which a confirmed publisher waits for) without filling the read buffer (a dense stream the client keeps up
   * with), reading pauses for `delayMs` so that the next read takes a larger batch. It adds at most
   * `delayMs` of latency, and only to messages of such streams: sparse traffic (request/reply, one
   * message at a time), large messages and a backlog (full reads) are read without pause. Set `false`
   * for the lowest latency on dense streams. Default `{ minMessages: 4, delayMs: 1 }`.
   */
  readBatching?: false | { minMessages?: number; delayMs?: number };
  /**
   * A custom transport instead of the platform's (TCP/TLS on Node): a function that opens a byte stream
   * to the broker. Required in runtimes without TCP (browsers), and for URLs of schemes other than
   * amqp/amqps (`ws://`, `wss://`, `memory:`...), which only a custom connector can open. See
   * `docs/transports.md`.
   */
  transport?: TransportConnector;
  /**
   * The brokers of a cluster, tried in turn (see {@link RecoveryOptions.hostOrder}): `'host'`,
   * `'host:port'`, `'[::1]:5672'` or `{ hostname, port }`. A host without a port takes the URL's (or
   * `port`'s) port. Left out, the URL's host is the only one. Everything else (credentials, vhost,
   * TLS) is shared; with TLS, each host is verified under its own name.
   */
  hosts?: readonly (string | HostAddress)[];
  /**
   * Asked before the first connection and before each reconnect after a loss: the name of the broker
   * node to try first (`'rabbit@rabbit-2'`), as the `node` of one of {@link ConnectOptions.hosts}.
   * Give it a function that looks up where a queue's leader runs (the management API reports it as
   * the queue's `leader`), so that a consumer connects to the node hosting its queue. `undefined`, a
   * name no host has, an error, or no answer within 5 s: the hosts are tried in their usual order.
   * See docs/cluster.md.
   */
  preferNode?: () => string | undefined | PromiseLike<string | undefined>;
  /**
   * Automatic recovery: `true` for the defaults, or settings. `connect()` then emits a fresh
   * `Connection` after every reconnect, and what was opened on a lost connection (channels, consumer
   * streams) completes instead of erroring, so pipelines built with `switchMap` re-open by themselves.
   * Default off.
   */
  recovery?: boolean | RecoveryOptions;
  /**
   * One socket for every subscriber of the `connect()` Observable: the first subscriber opens it, later
   * ones get the open `Connection` at once, and the last unsubscribe closes it. Default: on with
   * `recovery`, off without (each subscription is then its own connection).
   */
  shared?: boolean;
  /**
   * What a publish does while the broker blocks the connection (a resource alarm, `blocked$`):
   * `'wait'` holds it until the broker unblocks (at most `blockedTimeout`), `'fail'` errors at once with
   * a `PublishBlockedError`. Default `'wait'`.
   */
  whenBlocked?: 'wait' | 'fail';
  /**
   * Reports every change of the connection's state (each attempt, each failure with its cause and the
   * delay before the next attempt, the open connection, the end) as one line of text: `true` writes
   * the lines with `console.warn`, a function receives them. The lines are what `state$` emits, for
   * those who have not subscribed to it yet; they never show a password. Default: off.
   */
  debug?: boolean | ((line: string) => void);
  /**
   * What observes this connection: its publishes, its deliveries and their settlements, and its
   * lifecycle events. `openTelemetry()` from `rxamqp/otel` traces and measures with OpenTelemetry
   * (see docs/observability.md); any {@link Instrumentation} of your own works too. Default: none,
   * and then the client calls nothing and allocates nothing for it.
   *
   * @example
   * ```ts
   * import { openTelemetry } from 'rxamqp/otel';
   * connect('amqp://localhost', { telemetry: openTelemetry() });
   * ```
   */
  telemetry?: Instrumentation;
  /**
   * Longest time, in milliseconds, a publish waits for the broker to unblock before it errors with a
   * `PublishBlockedError` (code `BLOCKED_TIMEOUT`). Default 60000.
   */
  blockedTimeout?: number;
}

/** A broker's address, for {@link ConnectOptions.hosts}. */
export interface HostAddress {
  readonly hostname: string;
  readonly port?: number;
  /**
   * The name of the broker node at this address (`'rabbit@rabbit-1'`). RabbitMQ does not name its node
   * to AMQP 0-9-1 clients, so this is how `state$` reports the node a connection is on (`node`), and
   * how {@link ConnectOptions.preferNode} finds the host of a node.
   */
  readonly node?: string;
}

/**
 * Settings of automatic recovery ({@link ConnectOptions.recovery}).
 *
 * @example
 * ```ts
 * connect(url, {
 *   hosts: ['rabbit-1', 'rabbit-2', 'rabbit-3'],
 *   recovery: {
 *     initial: { delays: [100, 1000, 5000], maxAttempts: 10 },
 *     reconnect: { backoff: { initialDelay: 200, maxDelay: 10_000 } },
 *     hostOrder: 'round-robin',
 *   },
 * });
 * ```
 */
export interface RecoveryOptions {
  /**
   * Retries of the first connection, or `false` for none (each of several `hosts` is still tried
   * once, as without recovery). Default
   * `{ backoff: { initialDelay: 100, maxDelay: 5000 }, maxAttempts: 5 }` (about 3 s).
   */
  initial?: RetryPolicyOptions | false;
  /**
   * Retries after an established connection is lost. Default: exponential backoff from 100 ms doubling
   * to 30 s, with jitter, and no limit on attempts. By default (`isRetryableError`), errors that
   * retrying cannot fix (a refused login, access refused, an unknown vhost, a certificate that does not
   * verify) are not retried; a policy's own `retryable` replaces that check.
   */
  reconnect?: RetryPolicyOptions;
  /**
   * How {@link ConnectOptions.hosts} are tried: `'in-order'` (default) starts every recovery at the
   * first host and moves on to the next after each failed attempt; `'round-robin'` starts at the host
   * after the one last used, spreading reconnects over the cluster.
   */
  hostOrder?: 'in-order' | 'round-robin';
  /** The scheduler of the retry delays (tests pass a virtual-time scheduler). Default `asyncScheduler`. */
  scheduler?: SchedulerLike;
}

/** Every setting the connection uses, with defaults applied and values validated. */
export interface ResolvedOptions {
  readonly hostname: string;
  readonly port: number;
  readonly vhost: string;
  /** The URL's or options' user name and password (see `credentialsSource` for each attempt's). */
  readonly credentials: Credentials;
  /** @internal Each attempt's credentials: a provider's, or the fixed ones updated by update-secret. */
  readonly credentialsSource: CredentialsSource;
  readonly tls: ResolvedTlsOptions | undefined;
  readonly heartbeat: number;
  readonly frameMax: number;
  readonly channelMax: number;
  readonly connectionTimeout: number;
  readonly closeTimeout: number;
  /** The mechanisms to offer, in order of preference. */
  readonly mechanisms: readonly SaslMechanism[];
  readonly clientProperties: FieldTable;
  readonly name: string | undefined;
  readonly locale: string;
  readonly socket: ResolvedSocketOptions;
  readonly maxBodySize: number;
  readonly writeHighWaterMark: number;
  readonly ackDelay: number;
  /** Undefined when read batching is off. */
  readonly readBatching: { readonly minMessages: number; readonly delayMs: number } | undefined;
  /** The connector to open transports with: the `transport` option, else the platform's. */
  readonly transport: TransportConnector;
  /** The URL scheme, lower case (`amqp` or `amqps` for options objects): `TransportTarget.scheme`. */
  readonly scheme: string;
  /** The URL for the connector, without user information: `TransportTarget.url` of the first host. */
  readonly url: string;
  /** `amqp[s]://user@host:port/vhost` (other schemes: `scheme://user@host:port/path`), with no password: for messages and logs. */
  readonly displayUrl: string;
  /** Every host to try, the first being the one above. */
  readonly endpoints: readonly ResolvedEndpoint[];
  /** Undefined when recovery is off. */
  readonly recovery: ResolvedRecovery | undefined;
  readonly shared: boolean;
  readonly whenBlocked: 'wait' | 'fail';
  readonly blockedTimeout: number;
  /** See ConnectOptions.preferNode. */
  readonly preferNode: (() => string | undefined | PromiseLike<string | undefined>) | undefined;
  /** Where the state lines go (see ConnectOptions.debug), or undefined. */
  readonly debug: ((line: string) => void) | undefined;
  /** See ConnectOptions.telemetry. */
  readonly telemetry: Instrumentation | undefined;
  /** @internal Who hears of this connection lifetime (set for each lifetime by the connection Observable). */
  readonly reporter: Reporter;
}

/** One broker address with what depends on it. */
export interface ResolvedEndpoint {
  readonly hostname: string;
  readonly port: number;
  readonly tls: ResolvedTlsOptions | undefined;
  /** `TransportTarget.url` for this host. */
  readonly url: string;
  readonly displayUrl: string;
  /** The broker node at this address, when the `hosts` entry names it. */
  readonly node: string | undefined;
}

/** Recovery settings with their policies built. */
export interface ResolvedRecovery {
  /** Undefined: the first connection is not retried. */
  readonly initial: RetryPolicy | undefined;
  readonly reconnect: RetryPolicy;
  readonly hostOrder: 'in-order' | 'round-robin';
  readonly scheduler: SchedulerLike | undefined;
}
