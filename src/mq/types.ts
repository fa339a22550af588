/**
 * The public types of `rxamqp/mq`: one queue interface over AMQP 0-9-1 and MQTT, after the model of
 * the general-mq crate (each queue a sender or a receiver, unicast or broadcast, reliable or
 * best-effort), with every result an Observable.
 *
 * @module
 */

import type { SettleableMessage } from '../client/interfaces.js';
import type { ConnectOptions, RecoveryOptions } from '../config/options.js';

/**
 * The state of an mq connection, as general-mq names them: `connecting` (the first attempt, or an
 * attempt after a loss), `connected`, `disconnected` (lost; another attempt follows), `closing`
 * (`close()` called), `closed` (over: closed by the client, or the retries ran out).
 *
 * @example
 * ```ts
 * mq.status$.subscribe((s) => console.log('mq', s));
 * ```
 */
export type MqStatus = 'connecting' | 'connected' | 'disconnected' | 'closing' | 'closed';

/** Which broker protocol an mq connection speaks: chosen by the URL's scheme. */
export type MqBackendKind = 'amqp' | 'mqtt';

/**
 * Options of the MQTT backend (`mqtt://`, `mqtts://`, `ws://`, `wss://` URLs), passed to mqtt.js.
 *
 * @example
 * ```ts
 * connectMq('mqtt://localhost:1883', { mqtt: { clientId: 'worker-1', keepalive: 30 } });
 * ```
 */
export interface MqttBackendOptions {
  /**
   * The MQTT client id. Reliable receivers keep a persistent session under it: give a stable one to
   * find the session (and what was sent meanwhile) again after a restart. Default: `name` (or
   * `rxamqp-mq`) and a random suffix, stable for the connection's life.
   */
  readonly clientId?: string;
  /** MQTT keep-alive in seconds. Default 30. */
  readonly keepalive?: number;
  /** Milliseconds to wait for CONNACK. Default 10000. */
  readonly connectTimeout?: number;
  /**
   * How long the broker keeps the session after a disconnection, in seconds (MQTT 5's session expiry
   * interval). Default 3600.
   */
  readonly sessionExpiry?: number;
  /** User name and password, when the URL does not carry them. */
  readonly username?: string;
  readonly password?: string;
  /**
   * TLS settings of `mqtts://` and `wss://` connections (and a client certificate for mutual TLS),
   * passed to mqtt.js. The broker's certificate chain and host name are verified unless
   * `rejectUnauthorized: false` is given.
   */
  readonly tls?: MqttTlsOptions;
}

/**
 * TLS settings of an MQTT connection: those of Node's `tls.connect` a broker connection needs.
 *
 * @example
 * ```ts
 * connectMq('mqtts://mq.example.com:8883', { mqtt: { tls: { ca: readFileSync('/etc/ssl/mq-ca.pem') } } });
 * ```
 */
export interface MqttTlsOptions {
  /** CA certificates (PEM) to trust instead of the runtime's defaults. A `Buffer` is a `Uint8Array`. */
  readonly ca?: string | Uint8Array | readonly (string | Uint8Array)[];
  /** Client certificate chain (PEM), for mutual TLS. */
  readonly cert?: string | Uint8Array;
  /** Client private key (PEM). */
  readonly key?: string | Uint8Array;
  /** Passphrase of the private key. */
  readonly passphrase?: string;
  /** Verify the broker's certificate chain and host name. Default true. */
  readonly rejectUnauthorized?: boolean;
  /** Server name for SNI and host-name verification. Default: the URL's host name. */
  readonly servername?: string;
}

/**
 * Options of {@link connectMq}.
 *
 * @example
 * ```ts
 * const mq = connectMq(process.env.MQ_URL ?? 'amqp://localhost', {
 *   name: 'billing',
 *   recovery: { reconnect: { backoff: { initialDelay: 200, maxDelay: 5_000 } } },
 * });
 * ```
 */
export interface MqConnectOptions {
  /** A name for the connection: AMQP's connection name, the prefix of the MQTT client id. */
  readonly name?: string;
  /**
   * Reconnection, with rxamqp's retry policies on both backends (`initial`, `reconnect`): `true`
   * (default) for the defaults, `false` for none (the first loss ends the connection).
   */
  readonly recovery?: boolean | Pick<RecoveryOptions, 'initial' | 'reconnect' | 'scheduler'>;
  /** Options of the AMQP backend: any `connect()` option but `recovery` and `shared`. */
  readonly amqp?: Omit<ConnectOptions, 'recovery' | 'shared'>;
  /** Options of the MQTT backend. */
  readonly mqtt?: MqttBackendOptions;
}

/**
 * A queue of an mq connection ({@link MqConnection.queue}).
 *
 * @example
 * ```ts
 * const jobs = mq.queue({ name: 'jobs.resize', role: 'sender', pattern: 'unicast', reliable: true });
 * ```
 */
export interface MqQueueOptions {
  /**
   * The queue's name: segments of `a-z`, `0-9`, `_` and `-`, joined by dots (`jobs.resize`). It names
   * the AMQP queue (unicast) or fanout exchange (broadcast), and the MQTT topic.
   */
  readonly name: string;
  /** A queue only sends or only receives. */
  readonly role: 'sender' | 'receiver';
  /** `unicast` (default): each message to one receiver; `broadcast`: each message to every receiver. */
  readonly pattern?: 'unicast' | 'broadcast';
  /**
   * `true` (default): sends complete once the broker has taken the message (AMQP publisher confirms,
   * MQTT PUBACK at QoS 1), messages are persistent and received messages are acknowledged by the
   * application; `false`: best effort (no confirms, QoS 0, automatic acknowledgement). On MQTT the
   * QoS decides (an `mqtt.qos` given overrides what `reliable` implies): at QoS 1 messages are
   * acknowledged by the application, at QoS 0 they come settled.
   */
  readonly reliable?: boolean;
  /** AMQP only. */
  readonly amqp?: {
    /** Receivers: the consumer's prefetch. Default 100. */
    readonly prefetch?: number;
    /** Senders: persistent messages (delivery mode 2). Default: `reliable`. */
    readonly persistent?: boolean;
  };
  /** MQTT only. */
  readonly mqtt?: {
    /** Unicast receivers: the shared-subscription group (`$share/<group>/<name>`). Default `rxamqp`. */
    readonly group?: string;
    /** The QoS, instead of the one `reliable` implies (1 reliable, 0 best effort). */
    readonly qos?: 0 | 1;
  };
}

/** What a sender sends: bytes, or a string (sent as UTF-8). */
export type MqPayload = Uint8Array | string;

/**
 * Options of one send.
 *
 * @example
 * ```ts
 * queue.send(JSON.stringify(job), { contentType: 'application/json' });
 * ```
 */
export interface MqSendOptions {
  /** The payload's content type (AMQP's property; MQTT 5's content type). */
  readonly contentType?: string;
}

/**
 * A received message: the operators of `rxamqp/operators` (`ackOnSuccess`, `decodeJson`, ...) settle
 * it as they settle a `Delivery`. `body` is the payload; `properties.contentType` the content type
 * where the backend carries it; `fields.routingKey` the queue's name (MQTT: the topic) and
 * `fields.redelivered` whether it may have been delivered before (MQTT: the DUP flag). On a
 * best-effort queue it comes settled (`ack()` returns false).
 *
 * @example
 * ```ts
 * jobs.messages$.pipe(ackOnSuccess((m) => resize(m.json<Job>()))).subscribe();
 * ```
 */
export interface MqMessage extends SettleableMessage {
  /** The payload decoded as UTF-8. */
  text(): string;
  /** The payload parsed as JSON. */
  json<T = unknown>(): T;
}
