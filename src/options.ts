/**
 * Connection options: what `connect()` accepts, and the fully resolved form the connection uses.
 * A URL (RabbitMQ URI spec) and an options object can be combined; the object wins.
 *
 * @module
 */
import type { FieldTable } from './protocol/field-table.js';
import type { Secret } from './secret.js';
import type { TransportConnector } from './transport/transport.js';

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
/** Default read batching of dense streams. */
export const DEFAULT_READ_BATCHING = Object.freeze({ minMessages: 4, delayMs: 1 });

/**
 * Credentials as a SASL mechanism sees them.
 *
 * @example
 * ```ts
 * const credentials: Credentials = { username: 'guest', password: new Secret('guest') };
 * ```
 */
export interface Credentials {
  readonly username: string;
  readonly password: Secret;
}

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
  challenge?(challenge: Buffer, credentials: Credentials): Uint8Array;
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
  /** CA certificates (PEM) to trust instead of Node's defaults. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Client certificate chain (PEM), for EXTERNAL authentication or mutual TLS. */
  cert?: string | Buffer;
  /** Client private key (PEM). */
  key?: string | Buffer;
  /** Passphrase of the private key. */
  passphrase?: string | Secret;
  /** PKCS#12 bundle instead of cert + key. */
  pfx?: Buffer;
  /** Paths read at connect time (the URI's `cacertfile`, `certfile`, `keyfile`). */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Verify the broker's certificate chain and host name. Default true. */
  rejectUnauthorized?: boolean;
  /** Server name for SNI and host-name verification; `false` sends no SNI. Default: the host name. */
  servername?: string | false;
  /** Lowest TLS version accepted. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** A custom host-name check, as in `tls.connect`. */
  checkServerIdentity?: (hostname: string, cert: import('node:tls').PeerCertificate) => Error | undefined;
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
   * least `minMessages` messages (deliveries, returns and publisher confirms) without filling the read buffer (a dense stream the client keeps up
   * with), reading pauses for `delayMs` so that the next read takes a larger batch. It adds at most
   * `delayMs` of latency, and only to messages of such streams: sparse traffic (request/reply, one
   * message at a time), large messages and a backlog (full reads) are read without pause. Set `false`
   * for the lowest latency on dense streams. Default `{ minMessages: 4, delayMs: 1 }`.
   */
  readBatching?: false | { minMessages?: number; delayMs?: number };
  /** A custom transport instead of TCP/TLS. */
  transport?: TransportConnector;
}

/** Resolved TLS settings: files read, defaults applied. */
export interface ResolvedTlsOptions {
  readonly ca: (string | Buffer)[] | undefined;
  readonly cert: string | Buffer | undefined;
  readonly key: string | Buffer | undefined;
  readonly passphrase: Secret | undefined;
  readonly pfx: Buffer | undefined;
  readonly rejectUnauthorized: boolean;
  /** SNI and verification name; undefined sends no SNI. */
  readonly servername: string | undefined;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
  readonly checkServerIdentity:
    | ((hostname: string, cert: import('node:tls').PeerCertificate) => Error | undefined)
    | undefined;
}

/** Resolved socket settings. */
export interface ResolvedSocketOptions {
  readonly noDelay: boolean;
  readonly keepAlive: boolean | number;
  readonly localAddress: string | undefined;
  readonly family: 0 | 4 | 6;
}

/** Every setting the connection uses, with defaults applied and values validated. */
export interface ResolvedOptions {
  readonly hostname: string;
  readonly port: number;
  readonly vhost: string;
  readonly credentials: Credentials;
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
  readonly transport: TransportConnector | undefined;
  /** `amqp[s]://user@host:port/vhost`, with no password: for messages and logs. */
  readonly displayUrl: string;
}
