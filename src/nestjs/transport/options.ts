/**
 * The options of the NestJS transport (`RxAmqpServer`, `RxAmqpClient`) and their checks: a bad
 * option is a `ConfigurationError` at construction, whose message never shows a password.
 *
 * @module
 */
import type {
  ConsumerDeserializer,
  ConsumerSerializer,
  ProducerDeserializer,
  ProducerSerializer,
} from '@nestjs/microservices';
import { failurePolicyOf } from '../../../operators/ackOnSuccess.js';
import type { FailurePolicy } from '../../../operators/index.js';
import type { ConnectionState } from '../../client/connect.js';
import type { DrainOptions } from '../../client/drain.js';
import type { ConnectOptions } from '../../config/options.js';
import { resolveOptions } from '../../config/resolve-options.js';
import { ConfigurationError } from '../../errors.js';
import {
  type BindSpec,
  type ExchangeSpec,
  type QueueSpec,
  validateExchange,
  validateQueue,
} from '../../topology/specs.js';
import { nodePlatform } from '../../transport/node.js';
import { jsonEnvelope, type TransportEnvelope } from './envelope.js';

/**
 * The status a transport reports through Nest's `status` stream: its connection's state, lowercased
 * (`connecting`, `connected`, `reconnecting`, `closing`, `closed`).
 *
 * @example
 * ```ts
 * server.status.pipe(filter((s: RxAmqpStatus) => s === 'reconnecting')).subscribe(() => log.warn('broker lost'));
 * ```
 */
export type RxAmqpStatus = 'initial' | 'connecting' | 'connected' | 'reconnecting' | 'closing' | 'closed';

/**
 * What `on()` of the server and the client accepts.
 *
 * @example
 * ```ts
 * server.on('error', (error) => sentry.captureException(error));
 * client.on('state', (state) => log.info(state.status));
 * ```
 */
export type RxAmqpEvents = {
  /** Every state change of the connection (with its host and cause). */
  state: (state: ConnectionState) => void;
  /** An error the transport logged: a failed handler, a consumer that failed and is restarted, ... */
  error: (error: unknown) => void;
};

/**
 * Where the server's and client's connection goes, and how.
 *
 * @example
 * ```ts
 * const connection: RxAmqpConnectionOptions = { url: 'amqps://app:secret@mq.example', connectOptions: { heartbeat: 10 } };
 * ```
 */
export interface RxAmqpConnectionOptions {
  /**
   * The broker: an `amqp://` / `amqps://` URL or rxamqp connect options (required). Its password is
   * never shown in an error or a log line.
   */
  readonly url: string | ConnectOptions;
  /**
   * Connect options that override the URL's (heartbeat, tls, name, recovery settings...). Recovery is
   * on unless `recovery: false`.
   */
  readonly connectOptions?: ConnectOptions;
  /**
   * How packets travel in messages (see {@link TransportEnvelope}). Default {@link jsonEnvelope}:
   * Nest's JSON `{ pattern, data, id? }`.
   */
  readonly envelope?: TransportEnvelope;
}

/**
 * One queue the server consumes.
 *
 * @example
 * ```ts
 * const billing: RxAmqpQueueOptions = {
 *   name: queue({ name: 'billing', type: 'quorum', deadLetterExchange: 'billing.dlx' }),
 *   patterns: ['invoice.*'],
 *   prefetch: 20,
 *   onError: 'dead-letter',
 * };
 * ```
 */
export interface RxAmqpQueueOptions {
  /**
   * The queue: a name (declared durable) or an rxamqp `QueueSpec` (`queue({ name, type: 'quorum',
   * deadLetterExchange })`) for full control of its arguments.
   */
  readonly name: string | QueueSpec;
  /**
   * The binding keys of this queue on the server's `exchange` (topic wildcards allowed). Default: the
   * handler patterns no other queue lists. A message is handled by whichever handler matches its
   * pattern, whatever the queue it came through.
   */
  readonly patterns?: readonly string[];
  /** Unacknowledged messages the broker sends at once (per consumer). Default the server's `prefetch`. */
  readonly prefetch?: number;
  /** Handlers running at once for this queue. Default its `prefetch`. */
  readonly concurrency?: number;
  /** Failure policy for this queue's events. Default the server's `onError`. */
  readonly onError?: FailurePolicy;
}

/**
 * Options of `RxAmqpServer`.
 *
 * @example
 * ```ts
 * const options: RxAmqpServerOptions = {
 *   url: process.env.AMQP_URL!,
 *   exchange: 'shop',
 *   queues: [{ name: 'orders', patterns: ['orders.#'] }],
 *   onError: 'retry',
 *   maxDeliveries: 5,
 *   drain: { timeout: 20_000 },
 * };
 * ```
 */
export interface RxAmqpServerOptions extends RxAmqpConnectionOptions {
  /**
   * A topic exchange to declare (a name: durable topic; or an `ExchangeSpec` of type `topic` or
   * `direct`). Each queue is bound to it with its patterns as binding keys, and a handler pattern
   * matches routing keys the way the exchange does (`orders.*`, `orders.#`). Without it, messages are
   * published straight to the queues and carry their pattern in the envelope.
   */
  readonly exchange?: string | ExchangeSpec;
  /** One queue: a shortcut for `queues: [{ name: queue }]`. */
  readonly queue?: string | QueueSpec;
  /** The queues to consume (with `queue`, that one comes first). At least one queue is needed. */
  readonly queues?: readonly RxAmqpQueueOptions[];
  /** Default prefetch of each queue. Default 10. */
  readonly prefetch?: number;
  /**
   * How an event whose handler failed is settled (`ackOnSuccess`'s `FailurePolicy`): `'retry'`
   * (default: requeued, bounded by `maxDeliveries`, then dead-lettered; never loops), `'requeue'`,
   * `'reject'`, `'dead-letter'`. A request whose handler failed is answered with `{ err }` and acked.
   */
  readonly onError?: FailurePolicy;
  /** With `onError: 'retry'`: the most deliveries of one message. Default 20 (see `ackOnSuccess`). */
  readonly maxDeliveries?: number;
  /**
   * More broker objects to declare with the server's own after each (re)connect: a dead-letter
   * exchange, its queue and their binding, say. rxamqp topology specs (checked at `listen`).
   */
  readonly topology?: {
    readonly exchanges?: readonly ExchangeSpec[];
    readonly queues?: readonly QueueSpec[];
    readonly bindings?: readonly BindSpec[];
  };
  /** How `close()` drains: default `{ timeout: 25000, prefetched: 'return' }`. */
  readonly drain?: Pick<DrainOptions, 'timeout' | 'prefetched'>;
  /** Nest's deserializer for incoming packets (used by the default envelope; not with `envelope`). */
  readonly deserializer?: ConsumerDeserializer;
  /** Nest's serializer for replies (used by the default envelope; not with `envelope`). */
  readonly serializer?: ConsumerSerializer;
}

/**
 * Options of `RxAmqpClient`.
 *
 * @example
 * ```ts
 * const options: RxAmqpClientOptions = { url: process.env.AMQP_URL!, exchange: 'shop', timeout: 5000 };
 * ```
 */
export interface RxAmqpClientOptions extends RxAmqpConnectionOptions {
  /**
   * The exchange to publish to, with the pattern as routing key (declared like the server's: a name
   * is a durable topic exchange). Give it or `queue`.
   */
  readonly exchange?: string | ExchangeSpec;
  /** Publish straight to this queue (the pattern travels in the envelope). Give it or `exchange`. */
  readonly queue?: string;
  /**
   * Milliseconds a `send()` waits for its first reply (the request also expires in the queue then);
   * then it errors with RxJS's `TimeoutError`. Default 30000.
   */
  readonly timeout?: number;
  /** Send events persistent (delivery mode 2). Default true. */
  readonly persistent?: boolean;
  /** Events emitted while disconnected: at most this many are held (the publisher's `maxBuffered`). Default 10000. */
  readonly maxBuffered?: number;
  /** Events emitted while disconnected are held at most this long, in ms (`bufferTimeout`). Default 30000. */
  readonly bufferTimeout?: number;
  /** How long `close()` waits for events still to confirm, in ms. Default 10000. */
  readonly closeTimeout?: number;
  /** Nest's serializer for outgoing packets (used by the default envelope; not with `envelope`). */
  readonly serializer?: ProducerSerializer;
  /** Nest's deserializer for replies (used by the default envelope; not with `envelope`). */
  readonly deserializer?: ProducerDeserializer;
}

/** @internal The server's options, checked and with their defaults. */
export interface ResolvedServerOptions {
  readonly url: string | ConnectOptions;
  readonly connectOptions: ConnectOptions;
  readonly envelope: TransportEnvelope;
  readonly exchange: ExchangeSpec | undefined;
  readonly queues: readonly ResolvedQueue[];
  readonly extraExchanges: readonly ExchangeSpec[];
  readonly extraQueues: readonly QueueSpec[];
  readonly extraBindings: readonly BindSpec[];
  readonly drain: Pick<DrainOptions, 'timeout' | 'prefetched'>;
}

/** @internal One queue of the server, checked and with its defaults. */
export interface ResolvedQueue {
  readonly spec: QueueSpec;
  readonly patterns: readonly string[] | undefined;
  readonly prefetch: number;
  readonly concurrency: number;
  readonly onError: FailurePolicy;
  readonly maxDeliveries: number;
}

/** @internal The client's options, checked and with their defaults. */
export interface ResolvedClientOptions {
  readonly url: string | ConnectOptions;
  readonly connectOptions: ConnectOptions;
  readonly envelope: TransportEnvelope;
  readonly exchange: ExchangeSpec | undefined;
  readonly queue: string | undefined;
  readonly timeout: number;
  readonly persistent: boolean;
  readonly maxBuffered: number;
  readonly bufferTimeout: number;
  readonly closeTimeout: number;
}

/** `ConfigurationError`, its message prefixed with who refused the option. */
function refuse(who: string, message: string, cause?: unknown): ConfigurationError {
  return new ConfigurationError(`${who}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Checks the URL and connect options as `connect()` will (its errors never show a password). */
function checkConnection(who: string, options: RxAmqpConnectionOptions): ConnectOptions {
  if (options === null || typeof options !== 'object') throw refuse(who, 'options are required');
  const { url } = options;
  if (
    url === undefined ||
    url === null ||
    url === '' ||
    (typeof url !== 'string' && typeof url !== 'object')
  ) {
    throw refuse(who, 'url is required (an amqp:// or amqps:// URL, or rxamqp connect options)');
  }
  const connectOptions: ConnectOptions = { ...options.connectOptions };
  if (connectOptions.recovery === undefined) connectOptions.recovery = true;
  try {
    resolveOptions(url, connectOptions, nodePlatform);
  } catch (error) {
    // rxamqp's own messages show no password; anything else is not passed on verbatim.
    const message = error instanceof ConfigurationError ? error.message : 'invalid connection options';
    throw refuse(who, message, error instanceof ConfigurationError ? error : undefined);
  }
  return connectOptions;
}

function checkEnvelope(who: string, options: RxAmqpServerOptions | RxAmqpClientOptions): TransportEnvelope {
  const { envelope, serializer, deserializer } = options;
  if (envelope !== undefined) {
    if (serializer !== undefined || deserializer !== undefined) {
      throw refuse(
        who,
        'give either envelope or serializer/deserializer (they belong to the default envelope)',
      );
    }
    for (const method of ['decode', 'encode', 'encodeReply', 'decodeReply'] as const) {
      if (typeof envelope[method] !== 'function') throw refuse(who, `envelope.${method} must be a function`);
    }
    return envelope;
  }
  return jsonEnvelope({
    ...(serializer === undefined ? {} : { serializer }),
    ...(deserializer === undefined ? {} : { deserializer }),
  });
}

function checkExchange(who: string, value: string | ExchangeSpec | undefined): ExchangeSpec | undefined {
  if (value === undefined) return undefined;
  const spec = typeof value === 'string' ? { name: value, type: 'topic', durable: true } : value;
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string') {
    throw refuse(who, 'exchange must be a name or an ExchangeSpec');
  }
  const type = spec.type ?? 'direct';
  if (type !== 'topic' && type !== 'direct') {
    throw refuse(
      who,
      `exchange '${spec.name}' must be of type 'topic' or 'direct' (patterns are routing keys), got '${type}'`,
    );
  }
  try {
    // Checked, not copied: bindings and dead-letter settings may refer to this very object.
    validateExchange(spec);
  } catch (error) {
    throw refuse(who, (error as Error).message, error);
  }
  return spec;
}

function checkQueue(who: string, value: string | QueueSpec): QueueSpec {
  const spec = typeof value === 'string' ? { name: value, durable: true } : value;
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string') {
    throw refuse(who, 'a queue must be a name or a QueueSpec');
  }
  if (spec.name === '') throw refuse(who, 'a queue needs a name (server-named queues are not supported)');
  try {
    validateQueue(spec);
  } catch (error) {
    throw refuse(who, (error as Error).message, error);
  }
  return spec;
}

function positiveInteger(
  who: string,
  name: string,
  value: number | undefined,
  fallback: number,
  max = Infinity,
): number {
  const n = value ?? fallback;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) {
    throw refuse(who, `${name} must be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return n;
}

function checkPatterns(who: string, patterns: readonly string[] | undefined): readonly string[] | undefined {
  if (patterns === undefined) return undefined;
  if (!Array.isArray(patterns)) throw refuse(who, 'patterns must be an array of binding keys');
  for (const p of patterns) {
    if (typeof p !== 'string') throw refuse(who, `a pattern must be a string, got ${typeof p}`);
    if (new TextEncoder().encode(p).length > 255)
      throw refuse(who, `pattern '${p.slice(0, 40)}...' is over 255 bytes`);
  }
  return [...patterns];
}

/** @internal Checks `RxAmqpServer`'s options: throws a `ConfigurationError` for a bad one. */
export function resolveServerOptions(options: RxAmqpServerOptions): ResolvedServerOptions {
  const who = 'RxAmqpServer';
  const connectOptions = checkConnection(who, options);
  const envelope = checkEnvelope(who, options);
  const exchange = checkExchange(who, options.exchange);
  const prefetch = positiveInteger(who, 'prefetch', options.prefetch, 10, 65535);
  const onError = failurePolicyOf(who, options.onError, 'retry');
  const maxDeliveries = positiveInteger(who, 'maxDeliveries', options.maxDeliveries, 20);
  const given: RxAmqpQueueOptions[] = [];
  if (options.queue !== undefined) given.push({ name: options.queue });
  if (options.queues !== undefined) {
    if (!Array.isArray(options.queues)) throw refuse(who, 'queues must be an array');
    given.push(...options.queues);
  }
  if (given.length === 0) throw refuse(who, 'give a queue to consume (queue or queues)');
  const names = new Set<string>();
  const queues = given.map((q): ResolvedQueue => {
    if (q === null || typeof q !== 'object')
      throw refuse(who, 'each of queues must be { name, patterns?, ... }');
    const spec = checkQueue(who, q.name);
    if (names.has(spec.name)) throw refuse(who, `queue '${spec.name}' is listed twice`);
    names.add(spec.name);
    const queuePrefetch = positiveInteger(
      who,
      `prefetch of queue '${spec.name}'`,
      q.prefetch,
      prefetch,
      65535,
    );
    return {
      spec,
      patterns: checkPatterns(who, q.patterns),
      prefetch: queuePrefetch,
      concurrency: positiveInteger(who, `concurrency of queue '${spec.name}'`, q.concurrency, queuePrefetch),
      onError: failurePolicyOf(`${who}, queue '${spec.name}'`, q.onError, onError),
      maxDeliveries,
    };
  });
  const extraExchanges = (options.topology?.exchanges ?? []).map((e) => {
    try {
      validateExchange(e);
    } catch (error) {
      throw refuse(who, (error as Error).message, error);
    }
    return e;
  });
  const extraQueues = (options.topology?.queues ?? []).map((q) => checkQueue(who, q));
  const drain = { timeout: 25_000, prefetched: 'return' as const, ...options.drain };
  if (!(typeof drain.timeout === 'number' && drain.timeout >= 0)) {
    throw refuse(who, `drain.timeout must be a number of milliseconds, got ${String(drain.timeout)}`);
  }
  return {
    url: options.url,
    connectOptions,
    envelope,
    exchange,
    queues,
    extraExchanges,
    extraQueues,
    extraBindings: [...(options.topology?.bindings ?? [])],
    drain,
  };
}

/** @internal Checks `RxAmqpClient`'s options: throws a `ConfigurationError` for a bad one. */
export function resolveClientOptions(options: RxAmqpClientOptions): ResolvedClientOptions {
  const who = 'RxAmqpClient';
  const connectOptions = checkConnection(who, options);
  const envelope = checkEnvelope(who, options);
  const exchange = checkExchange(who, options.exchange);
  const queue = options.queue;
  if (queue !== undefined && (typeof queue !== 'string' || queue === '')) {
    throw refuse(who, 'queue must be a queue name');
  }
  if ((exchange === undefined) === (queue === undefined)) {
    throw refuse(who, 'give exactly one of exchange (publish with the pattern as routing key) or queue');
  }
  return {
    url: options.url,
    connectOptions,
    envelope,
    exchange,
    queue,
    timeout: positiveInteger(who, 'timeout', options.timeout, 30_000),
    persistent: options.persistent ?? true,
    maxBuffered: positiveInteger(who, 'maxBuffered', options.maxBuffered, 10_000),
    bufferTimeout: positiveInteger(who, 'bufferTimeout', options.bufferTimeout, 30_000),
    closeTimeout: positiveInteger(who, 'closeTimeout', options.closeTimeout, 10_000),
  };
}

/** @internal A connection state as a transport status. */
export function statusOf(state: ConnectionState): RxAmqpStatus {
  return state.status.toLowerCase() as RxAmqpStatus;
}

/** @internal Calls each listener; one that throws stops neither the transport nor the others. */
export function tell<A>(listeners: readonly ((arg: A) => void)[], arg: A): void {
  for (const listener of listeners) {
    try {
      listener(arg);
    } catch {
      // A listener's failure is its own.
    }
  }
}
