/**
 * Typed topology specifications: exchanges, queues, bindings and consumers described as plain readonly
 * objects, validated, and mapped to the arguments of the AMQP methods that declare them. Pure: nothing
 * here talks to a broker (see `apply.ts` for that).
 *
 * @module
 */
import { encodeStreamOffset, type StreamOffset, streamOffsetProblem } from '../client/streams.js';
import type { ConsumeOptions, ExchangeDeclareOptions, QueueDeclareOptions } from '../client/types.js';
import { ConfigurationError } from '../errors.js';
import { utf8Length } from '../protocol/bytes.js';
import type { FieldTable } from '../protocol/field-table.js';

export type { StreamOffset } from '../client/streams.js';

// ---- the spec types ------------------------------------------------------------------------------

/**
 * An exchange type: one of the four built-in ones, or a plugin type such as `x-consistent-hash` or
 * `x-delayed-message`.
 *
 * @example
 * ```ts
 * const type: ExchangeType = 'topic';
 * const hashed: ExchangeType = 'x-consistent-hash';
 * ```
 */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers' | (string & {});

/**
 * An exchange that should exist.
 *
 * @example
 * ```ts
 * const orders: ExchangeSpec = { name: 'orders', type: 'topic', durable: true, alternateExchange: 'unrouted' };
 * ```
 */
export interface ExchangeSpec {
  /** The exchange's name: not empty (the default exchange cannot be declared), not starting with `amq.`. */
  readonly name: string;
  /**
   * `direct` (the default), `fanout`, `topic`, `headers` or a plugin type. With {@link ExchangeSpec.delayed}
   * it defaults to, and must be, `x-delayed-message`.
   */
  readonly type?: ExchangeType;
  /** Survive a broker restart. Default false. */
  readonly durable?: boolean;
  /** Deleted when its last binding is removed. Default false. */
  readonly autoDelete?: boolean;
  /** Only other exchanges may publish to it (through exchange-to-exchange bindings). Default false. */
  readonly internal?: boolean;
  /** Where messages no binding routes go: the `alternate-exchange` argument (a name or a spec). */
  readonly alternateExchange?: ExchangeRef;
  /**
   * A delayed-message exchange (the `rabbitmq_delayed_message_exchange` plugin): the exchange type
   * becomes `x-delayed-message` and `type` here is its `x-delayed-type` argument, the routing the
   * exchange does once a message's `x-delay` header has passed.
   */
  readonly delayed?: { readonly type: 'direct' | 'fanout' | 'topic' | 'headers' | (string & {}) };
  /** Extra raw arguments. A key that a typed field above also sets is a {@link ConfigurationError}. */
  readonly arguments?: FieldTable;
}

/**
 * A queue type (`x-queue-type`): `classic`, `quorum` (replicated, durable) or `stream` (append-only
 * log, durable).
 *
 * @example
 * ```ts
 * const type: QueueType = 'quorum';
 * ```
 */
export type QueueType = 'classic' | 'quorum' | 'stream';

/**
 * What a full queue does with a new message (`x-overflow`): drop the oldest (`drop-head`, the default),
 * refuse the publish (`reject-publish`; nacked in confirm mode), or refuse it and dead-letter it
 * (`reject-publish-dlx`, classic queues only).
 *
 * @example
 * ```ts
 * const overflow: QueueOverflow = 'reject-publish';
 * ```
 */
export type QueueOverflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/**
 * A queue that should exist. `name: ''` asks the broker to name it (a server-named queue): applying
 * the topology tells the generated name (`applied.queueName(spec)`), a new one on every apply.
 *
 * @example
 * ```ts
 * const jobs: QueueSpec = {
 *   name: 'jobs',
 *   type: 'quorum',
 *   deadLetterExchange: 'jobs.dlx',
 *   deliveryLimit: 5,
 * };
 * ```
 */
export interface QueueSpec {
  /** The queue's name, or `''` for a server-named queue. Must not start with `amq.`. */
  readonly name: string;
  /** `x-queue-type`. Default: not sent, so the broker's (or the vhost's) default type applies. */
  readonly type?: QueueType;
  /** Survive a broker restart. Default false, but true for quorum and stream queues (which must be durable). */
  readonly durable?: boolean;
  /** Used only by the declaring connection, deleted when it closes. Classic queues only. Default false. */
  readonly exclusive?: boolean;
  /** Deleted when its last consumer goes. Classic queues only. Default false. */
  readonly autoDelete?: boolean;
  /** `x-dead-letter-exchange`: where rejected, expired and dropped messages go (a name or a spec; `''`: the default exchange). */
  readonly deadLetterExchange?: ExchangeRef;
  /** `x-dead-letter-routing-key`: the routing key dead-lettered messages get (needs `deadLetterExchange`). */
  readonly deadLetterRoutingKey?: string;
  /** `x-message-ttl`: milliseconds a message may wait in the queue (an integer ≥ 0). */
  readonly messageTtl?: number;
  /** `x-expires`: milliseconds the queue may go unused before the broker deletes it (an integer ≥ 1). */
  readonly expires?: number;
  /** `x-max-length`: most ready messages (an integer ≥ 0). */
  readonly maxLength?: number;
  /** `x-max-length-bytes`: most bytes of ready message bodies (an integer ≥ 0). */
  readonly maxLengthBytes?: number;
  /** `x-overflow`: what happens past `maxLength` / `maxLengthBytes`. */
  readonly overflow?: QueueOverflow;
  /** `x-single-active-consumer`: deliver to one consumer at a time, the others standing by. */
  readonly singleActiveConsumer?: boolean;
  /** `x-max-priority`: a priority queue with priorities 0..maxPriority (1 to 255). Classic queues only. */
  readonly maxPriority?: number;
  /** `x-delivery-limit`: redeliveries before a message is dropped or dead-lettered. Quorum queues only. */
  readonly deliveryLimit?: number;
  /** `x-max-age`: how long a stream keeps messages, such as `'7D'` or `'12h'` (units Y M D h m s). Streams only. */
  readonly maxAge?: string;
  /**
   * `x-stream-max-segment-size-bytes`: the size of a stream's segment files (an integer ≥ 1; RabbitMQ's
   * default is 500 MB). Retention (`maxLengthBytes`, `maxAge`) removes whole segments. Streams only.
   */
  readonly streamMaxSegmentSizeBytes?: number;
  /** Extra raw arguments. A key that a typed field above also sets is a {@link ConfigurationError}. */
  readonly arguments?: FieldTable;
}

/**
 * An exchange, by name or by its spec. A spec must be one of the topology's exchanges (the same
 * object); a name may also be an exchange that exists outside the topology, such as `amq.topic`.
 *
 * @example
 * ```ts
 * const ref: ExchangeRef = 'amq.topic';
 * ```
 */
export type ExchangeRef = string | ExchangeSpec;

/**
 * A queue, by name or by its spec. A server-named queue can only be referred to by its spec, whose
 * actual name is known once the topology is applied.
 *
 * @example
 * ```ts
 * const inbox = queue({ name: '', exclusive: true });
 * const ref: QueueRef = inbox;
 * ```
 */
export type QueueRef = string | QueueSpec;

/**
 * A binding of a queue to an exchange (`queue.bind`).
 *
 * @example
 * ```ts
 * const b: QueueBindSpec = { exchange: 'logs', queue: 'errors', routingKey: 'error' };
 * ```
 */
export interface QueueBindSpec {
  /** The exchange messages come from. */
  readonly exchange: ExchangeRef;
  /** The queue they go to. */
  readonly queue: QueueRef;
  /** The binding key. Default `''`. */
  readonly routingKey?: string;
  /** Binding arguments: for a headers exchange, `x-match` and the headers to match. */
  readonly arguments?: FieldTable;
}

/**
 * A binding of an exchange to another exchange (`exchange.bind`, a RabbitMQ extension): messages that
 * `source` routes with this key also go through `destination`.
 *
 * @example
 * ```ts
 * const b: ExchangeBindSpec = { source: 'orders', destination: 'audit', routingKey: 'order.#' };
 * ```
 */
export interface ExchangeBindSpec {
  /** The exchange messages come from. */
  readonly source: ExchangeRef;
  /** The exchange they go to. */
  readonly destination: ExchangeRef;
  /** The binding key. Default `''`. */
  readonly routingKey?: string;
  /** Binding arguments: for a headers source exchange, `x-match` and the headers to match. */
  readonly arguments?: FieldTable;
}

/**
 * A binding: a queue to an exchange (with `exchange` and `queue`), or an exchange to an exchange (with
 * `source` and `destination`).
 *
 * @example
 * ```ts
 * const bindings: BindSpec[] = [
 *   { exchange: 'logs', queue: 'errors', routingKey: 'error' },
 *   { source: 'logs', destination: 'archive' },
 * ];
 * ```
 */
export type BindSpec = QueueBindSpec | ExchangeBindSpec;

/**
 * A consumer: which queue, and how (`basic.qos` and `basic.consume` options). Start it with
 * `consumeSpec(channel, spec, applied)`.
 *
 * @example
 * ```ts
 * const worker: ConsumerSpec = { queue: 'jobs', prefetch: 20, priority: 5 };
 * ```
 */
export interface ConsumerSpec {
  /** The queue, by name or spec (a server-named queue by its spec). */
  readonly queue: QueueRef;
  /** Unacknowledged messages the broker may send this consumer (basic.qos, per consumer), 0 to 65535. */
  readonly prefetch?: number;
  /** Deliveries count as acknowledged when sent (at-most-once). Default false. */
  readonly noAck?: boolean;
  /** Be the queue's only consumer. Default false. */
  readonly exclusive?: boolean;
  /** `x-priority`: consumers with a higher priority get messages first (an integer). */
  readonly priority?: number;
  /** `x-stream-offset`, for a stream queue: where to start reading. */
  readonly streamOffset?: StreamOffset;
  /** A consumer tag of your choice; default: one the broker generates. */
  readonly consumerTag?: string;
  /** Extra raw consumer arguments. A key that a typed field above also sets is a {@link ConfigurationError}. */
  readonly arguments?: FieldTable;
}

/**
 * A whole topology: the exchanges and queues to declare, the bindings between them and, for
 * reference, the consumers that will read from them. Apply it with `applyTopology(connection, topology)`.
 *
 * @example
 * ```ts
 * const logs = exchange({ name: 'logs', type: 'direct' });
 * const errors = queue({ name: 'errors', durable: true });
 * const t: Topology = { exchanges: [logs], queues: [errors], bindings: [binding({ exchange: logs, queue: errors, routingKey: 'error' })] };
 * ```
 */
export interface Topology {
  readonly exchanges?: readonly ExchangeSpec[];
  readonly queues?: readonly QueueSpec[];
  readonly bindings?: readonly BindSpec[];
  /** Validated with the rest (their queues must be in the topology); started with `consumeSpec`. */
  readonly consumers?: readonly ConsumerSpec[];
}

/**
 * One step of applying a topology, in the order `planTopology` gives.
 *
 * @example
 * ```ts
 * for (const step of planTopology(t)) console.log(step.kind, describeStep(step));
 * ```
 */
export type TopologyStep =
  | { readonly kind: 'exchange'; readonly spec: ExchangeSpec }
  | { readonly kind: 'queue'; readonly spec: QueueSpec }
  | { readonly kind: 'exchange-binding'; readonly spec: ExchangeBindSpec }
  | { readonly kind: 'queue-binding'; readonly spec: QueueBindSpec };

// ---- factories -----------------------------------------------------------------------------------

/**
 * Checks an exchange spec and returns it frozen. Refer to the returned object in bindings.
 *
 * @throws ConfigurationError when the spec is invalid (empty or reserved name, `delayed` with another
 * type, a typed argument also given raw, ...).
 *
 * @example
 * ```ts
 * const logs = exchange({ name: 'logs', type: 'fanout', durable: true });
 * const later = exchange({ name: 'later', delayed: { type: 'direct' } }); // x-delayed-message
 * ```
 */
export function exchange(spec: ExchangeSpec): ExchangeSpec {
  validateExchange(spec);
  return Object.freeze({ ...spec });
}

/**
 * Checks a queue spec and returns it frozen. Refer to the returned object in bindings and consumers.
 *
 * @throws ConfigurationError when the spec is invalid (an exclusive quorum queue, `maxPriority` on a
 * quorum queue, a non-durable stream, a negative TTL, ...).
 *
 * @example
 * ```ts
 * const jobs = queue({ name: 'jobs', type: 'quorum', deliveryLimit: 3 });
 * const mine = queue({ name: '', exclusive: true }); // server-named
 * ```
 */
export function queue(spec: QueueSpec): QueueSpec {
  validateQueue(spec);
  return Object.freeze({ ...spec });
}

/**
 * Checks a binding spec and returns it frozen: `{ exchange, queue }` binds a queue,
 * `{ source, destination }` binds an exchange to an exchange.
 *
 * @throws ConfigurationError when the spec is invalid (the default exchange, an empty queue name, a
 * routing key over 255 bytes, ...).
 *
 * @example
 * ```ts
 * binding({ exchange: logs, queue: errors, routingKey: 'error' });
 * binding({ source: orders, destination: audit, routingKey: 'order.#' });
 * ```
 */
export function binding(spec: QueueBindSpec): QueueBindSpec;
export function binding(spec: ExchangeBindSpec): ExchangeBindSpec;
export function binding(spec: BindSpec): BindSpec {
  validateBinding(spec);
  return Object.freeze({ ...spec });
}

/**
 * Checks a consumer spec and returns it frozen.
 *
 * @throws ConfigurationError when the spec is invalid (a prefetch out of 0..65535, a stream consumer
 * without prefetch, ...).
 *
 * @example
 * ```ts
 * const worker = consumer({ queue: jobs, prefetch: 10, priority: 1 });
 * ```
 */
export function consumer(spec: ConsumerSpec): ConsumerSpec {
  validateConsumer(spec);
  return Object.freeze({ ...spec });
}

/**
 * Checks a whole topology (every spec, and that every spec a binding or consumer refers to is part of
 * it) and returns it frozen.
 *
 * @throws ConfigurationError when anything is invalid.
 *
 * @example
 * ```ts
 * const logs = exchange({ name: 'logs', type: 'fanout' });
 * const mine = queue({ name: '', exclusive: true });
 * const t = defineTopology({ exchanges: [logs], queues: [mine], bindings: [binding({ exchange: logs, queue: mine })] });
 * ```
 */
export function defineTopology(topology: Topology): Topology {
  validateTopology(topology);
  return Object.freeze({ ...topology });
}

// ---- argument mapping ----------------------------------------------------------------------------

/** The exchange type a spec declares. */
function exchangeTypeOf(spec: ExchangeSpec): string {
  return spec.type ?? (spec.delayed === undefined ? 'direct' : DELAYED_TYPE);
}

const DELAYED_TYPE = 'x-delayed-message';

/**
 * The name of an exchange reference (a name, or a spec's name).
 *
 * @example
 * ```ts
 * exchangeRefName(exchange({ name: 'logs' })); // 'logs'
 * ```
 */
export function exchangeRefName(ref: ExchangeRef): string {
  return typeof ref === 'string' ? ref : ref.name;
}

/** Merges typed arguments with the raw ones (checked by validation not to overlap). */
function withRaw(typed: FieldTable, raw: FieldTable | undefined): FieldTable {
  if (raw === undefined) return typed;
  const out: FieldTable = { ...typed };
  for (const [key, value] of Object.entries(raw)) if (value !== undefined) out[key] = value;
  return out;
}

/** The typed arguments of an exchange spec, without the raw ones. */
function exchangeTypedArguments(spec: ExchangeSpec): FieldTable {
  const args: FieldTable = {};
  if (spec.alternateExchange !== undefined)
    args['alternate-exchange'] = exchangeRefName(spec.alternateExchange);
  if (spec.delayed !== undefined) args['x-delayed-type'] = spec.delayed.type;
  return args;
}

/**
 * The arguments of `exchange.declare` for a spec: its typed fields as AMQP arguments
 * (`alternateExchange` → `alternate-exchange`, `delayed.type` → `x-delayed-type`) plus the raw ones.
 *
 * @example
 * ```ts
 * exchangeArguments({ name: 'x', alternateExchange: 'unrouted' }); // { 'alternate-exchange': 'unrouted' }
 * ```
 */
export function exchangeArguments(spec: ExchangeSpec): FieldTable {
  return withRaw(exchangeTypedArguments(spec), spec.arguments);
}

/**
 * What `channel.exchangeDeclare` takes for a spec: the name, the type and the options.
 *
 * @example
 * ```ts
 * const { exchange: name, type, options } = toExchangeDeclare(exchange({ name: 'later', delayed: { type: 'topic' } }));
 * ch.exchangeDeclare(name, type, options); // 'x-delayed-message' with { 'x-delayed-type': 'topic' }
 * ```
 */
export function toExchangeDeclare(spec: ExchangeSpec): {
  readonly exchange: string;
  readonly type: string;
  readonly options: ExchangeDeclareOptions;
} {
  return {
    exchange: spec.name,
    type: exchangeTypeOf(spec),
    options: {
      durable: spec.durable ?? false,
      autoDelete: spec.autoDelete ?? false,
      internal: spec.internal ?? false,
      arguments: exchangeArguments(spec),
    },
  };
}

/** Whether a queue type must be durable. */
function replicated(spec: QueueSpec): boolean {
  return spec.type === 'quorum' || spec.type === 'stream';
}

/** The typed arguments of a queue spec, without the raw ones. */
function queueTypedArguments(spec: QueueSpec): FieldTable {
  const args: FieldTable = {};
  if (spec.type !== undefined) args['x-queue-type'] = spec.type;
  if (spec.deadLetterExchange !== undefined) {
    args['x-dead-letter-exchange'] = exchangeRefName(spec.deadLetterExchange);
  }
  if (spec.deadLetterRoutingKey !== undefined) args['x-dead-letter-routing-key'] = spec.deadLetterRoutingKey;
  if (spec.messageTtl !== undefined) args['x-message-ttl'] = spec.messageTtl;
  if (spec.expires !== undefined) args['x-expires'] = spec.expires;
  if (spec.maxLength !== undefined) args['x-max-length'] = spec.maxLength;
  if (spec.maxLengthBytes !== undefined) args['x-max-length-bytes'] = spec.maxLengthBytes;
  if (spec.overflow !== undefined) args['x-overflow'] = spec.overflow;
  if (spec.singleActiveConsumer !== undefined) args['x-single-active-consumer'] = spec.singleActiveConsumer;
  if (spec.maxPriority !== undefined) args['x-max-priority'] = spec.maxPriority;
  if (spec.deliveryLimit !== undefined) args['x-delivery-limit'] = spec.deliveryLimit;
  if (spec.maxAge !== undefined) args['x-max-age'] = spec.maxAge;
  if (spec.streamMaxSegmentSizeBytes !== undefined) {
    args['x-stream-max-segment-size-bytes'] = spec.streamMaxSegmentSizeBytes;
  }
  return args;
}

/**
 * The arguments of `queue.declare` for a spec: its typed fields as AMQP arguments (`type` →
 * `x-queue-type`, `messageTtl` → `x-message-ttl`, `deadLetterExchange` → `x-dead-letter-exchange`, ...)
 * plus the raw ones.
 *
 * @example
 * ```ts
 * queueArguments({ name: 'q', type: 'quorum', messageTtl: 60_000 }); // { 'x-queue-type': 'quorum', 'x-message-ttl': 60000 }
 * ```
 */
export function queueArguments(spec: QueueSpec): FieldTable {
  return withRaw(queueTypedArguments(spec), spec.arguments);
}

/**
 * What `channel.queueDeclare` takes for a spec: the name and the options. Quorum and stream queues
 * are durable unless the spec says otherwise (which validation refuses).
 *
 * @example
 * ```ts
 * const { queue: name, options } = toQueueDeclare(queue({ name: 'jobs', type: 'quorum' }));
 * ch.queueDeclare(name, options); // durable, { 'x-queue-type': 'quorum' }
 * ```
 */
export function toQueueDeclare(spec: QueueSpec): {
  readonly queue: string;
  readonly options: QueueDeclareOptions;
} {
  return {
    queue: spec.name,
    options: {
      durable: spec.durable ?? replicated(spec),
      exclusive: spec.exclusive ?? false,
      autoDelete: spec.autoDelete ?? false,
      arguments: queueArguments(spec),
    },
  };
}

/** The typed arguments of a consumer spec, without the raw ones. */
function consumerTypedArguments(spec: ConsumerSpec): FieldTable {
  const args: FieldTable = {};
  if (spec.priority !== undefined) args['x-priority'] = spec.priority;
  // RabbitMQ reads a numeric offset as a long (`l`) and a point in time as a timestamp (`T`).
  if (spec.streamOffset !== undefined) args['x-stream-offset'] = encodeStreamOffset(spec.streamOffset);
  return args;
}

/**
 * The `channel.consume` options for a consumer spec (`prefetch`, `noAck`, `exclusive`, `consumerTag`,
 * and `priority` → `x-priority`, `streamOffset` → `x-stream-offset` in the arguments).
 *
 * @example
 * ```ts
 * toConsumeOptions({ queue: 'jobs', prefetch: 10, priority: 2 }); // { prefetch: 10, arguments: { 'x-priority': 2 } }
 * ```
 */
export function toConsumeOptions(spec: ConsumerSpec): ConsumeOptions {
  const args = withRaw(consumerTypedArguments(spec), spec.arguments);
  return {
    ...(spec.prefetch === undefined ? {} : { prefetch: spec.prefetch }),
    ...(spec.noAck === undefined ? {} : { noAck: spec.noAck }),
    ...(spec.exclusive === undefined ? {} : { exclusive: spec.exclusive }),
    ...(spec.consumerTag === undefined ? {} : { consumerTag: spec.consumerTag }),
    ...(Object.keys(args).length === 0 ? {} : { arguments: args }),
  };
}

// ---- validation ----------------------------------------------------------------------------------

function fail(what: string, problem: string): never {
  throw new ConfigurationError(`invalid ${what}: ${problem}`);
}

function describeExchange(spec: ExchangeSpec): string {
  return `exchange '${spec.name}'`;
}

function describeQueue(spec: QueueSpec): string {
  return spec.name === '' ? 'server-named queue' : `queue '${spec.name}'`;
}

function describeRef(ref: ExchangeRef | QueueRef, kind: 'exchange' | 'queue'): string {
  if (typeof ref === 'string') return `${kind} '${ref}'`;
  return kind === 'queue' ? describeQueue(ref as QueueSpec) : describeExchange(ref as ExchangeSpec);
}

/**
 * A short description of a step, as used in messages: `exchange 'logs'`, `binding of queue 'q' to
 * exchange 'logs' with key 'error'`, ...
 *
 * @example
 * ```ts
 * describeStep({ kind: 'queue', spec: { name: '' } }); // 'server-named queue'
 * ```
 */
export function describeStep(step: TopologyStep): string {
  switch (step.kind) {
    case 'exchange':
      return describeExchange(step.spec);
    case 'queue':
      return describeQueue(step.spec);
    case 'exchange-binding':
      return `binding of ${describeRef(step.spec.destination, 'exchange')} to ${describeRef(step.spec.source, 'exchange')} with key '${step.spec.routingKey ?? ''}'`;
    case 'queue-binding':
      return `binding of ${describeRef(step.spec.queue, 'queue')} to ${describeRef(step.spec.exchange, 'exchange')} with key '${step.spec.routingKey ?? ''}'`;
  }
}

function checkShortString(what: string, label: string, value: unknown): void {
  if (typeof value !== 'string') fail(what, `${label} must be a string`);
  if (utf8Length(value) > 255) fail(what, `${label} is longer than 255 bytes`);
}

function checkInteger(
  what: string,
  label: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
    fail(what, `${label} must be ${range}, not ${String(value)}`);
  }
}

function checkBoolean(what: string, label: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') fail(what, `${label} must be a boolean`);
}

function checkRawArguments(
  what: string,
  typed: FieldTable,
  raw: FieldTable | undefined,
  source: string,
): void {
  if (raw === undefined) return;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail(what, 'arguments must be a field table');
  for (const key of Object.keys(raw)) {
    if (key in typed && raw[key] !== undefined) {
      fail(what, `the argument '${key}' is set both by ${source} and in arguments; give it once`);
    }
  }
}

function checkExchangeRef(what: string, label: string, ref: unknown): void {
  if (typeof ref === 'string') {
    checkShortString(what, label, ref);
    return;
  }
  if (typeof ref !== 'object' || ref === null || typeof (ref as ExchangeSpec).name !== 'string') {
    fail(what, `${label} must be an exchange name or an exchange spec`);
  }
}

function checkQueueRef(what: string, label: string, ref: unknown): void {
  if (typeof ref === 'string') {
    checkShortString(what, label, ref);
    if (ref === '') fail(what, `${label} is empty: refer to a server-named queue by its spec`);
    return;
  }
  if (typeof ref !== 'object' || ref === null || typeof (ref as QueueSpec).name !== 'string') {
    fail(what, `${label} must be a queue name or a queue spec`);
  }
}

const MAX_AGE = /^\d+[YMDhms]$/;

/**
 * Checks an exchange spec on its own (references to other specs are checked by `validateTopology`).
 *
 * @throws ConfigurationError saying what is wrong.
 *
 * @example
 * ```ts
 * validateExchange({ name: '' }); // throws: the default exchange cannot be declared
 * ```
 */
export function validateExchange(spec: ExchangeSpec): void {
  if (typeof spec !== 'object' || spec === null)
    throw new ConfigurationError('invalid exchange: not an object');
  const what = describeExchange(spec);
  checkShortString(what, 'the name', spec.name);
  if (spec.name === '')
    fail('exchange', "the name is empty, and the default exchange ('') cannot be declared");
  if (spec.name.startsWith('amq.')) {
    fail(
      what,
      "names starting with 'amq.' are reserved to the broker: refer to it by name in bindings instead",
    );
  }
  if (spec.type !== undefined && (typeof spec.type !== 'string' || spec.type === '')) {
    fail(what, 'the type must be a non-empty string');
  }
  checkBoolean(what, 'durable', spec.durable);
  checkBoolean(what, 'autoDelete', spec.autoDelete);
  checkBoolean(what, 'internal', spec.internal);
  if (spec.alternateExchange !== undefined) {
    checkExchangeRef(what, 'alternateExchange', spec.alternateExchange);
    if (exchangeRefName(spec.alternateExchange) === spec.name) fail(what, 'it is its own alternate exchange');
  }
  const type = exchangeTypeOf(spec);
  if (spec.delayed !== undefined) {
    if (type !== DELAYED_TYPE) {
      fail(what, `'delayed' makes an exchange of type '${DELAYED_TYPE}', but the type is '${type}'`);
    }
    if (
      typeof spec.delayed.type !== 'string' ||
      spec.delayed.type === '' ||
      spec.delayed.type === DELAYED_TYPE
    ) {
      fail(
        what,
        "delayed.type must be the routing type of the delayed exchange, such as 'direct' or 'topic'",
      );
    }
  } else if (type === DELAYED_TYPE && spec.arguments?.['x-delayed-type'] === undefined) {
    fail(
      what,
      `an exchange of type '${DELAYED_TYPE}' needs 'delayed: { type }' (its x-delayed-type argument)`,
    );
  }
  checkRawArguments(what, exchangeTypedArguments(spec), spec.arguments, 'a typed field');
}

/**
 * Checks a queue spec on its own (references to other specs are checked by `validateTopology`).
 *
 * @throws ConfigurationError saying what is wrong.
 *
 * @example
 * ```ts
 * validateQueue({ name: 'q', type: 'quorum', exclusive: true }); // throws: quorum queues cannot be exclusive
 * ```
 */
export function validateQueue(spec: QueueSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new ConfigurationError('invalid queue: not an object');
  const what = describeQueue(spec);
  checkShortString(what, 'the name', spec.name);
  if (spec.name.startsWith('amq.')) fail(what, "names starting with 'amq.' are reserved to the broker");
  if (
    spec.type !== undefined &&
    spec.type !== 'classic' &&
    spec.type !== 'quorum' &&
    spec.type !== 'stream'
  ) {
    fail(what, `the type must be 'classic', 'quorum' or 'stream', not '${String(spec.type)}'`);
  }
  checkBoolean(what, 'durable', spec.durable);
  checkBoolean(what, 'exclusive', spec.exclusive);
  checkBoolean(what, 'autoDelete', spec.autoDelete);
  checkBoolean(what, 'singleActiveConsumer', spec.singleActiveConsumer);
  if (spec.deadLetterExchange !== undefined)
    checkExchangeRef(what, 'deadLetterExchange', spec.deadLetterExchange);
  if (spec.deadLetterRoutingKey !== undefined) {
    checkShortString(what, 'deadLetterRoutingKey', spec.deadLetterRoutingKey);
    if (spec.deadLetterExchange === undefined && spec.arguments?.['x-dead-letter-exchange'] === undefined) {
      fail(what, 'deadLetterRoutingKey needs a deadLetterExchange');
    }
  }
  if (spec.messageTtl !== undefined) checkInteger(what, 'messageTtl', spec.messageTtl, 0, 0xffffffff);
  if (spec.expires !== undefined) checkInteger(what, 'expires', spec.expires, 1, 0xffffffff);
  if (spec.maxLength !== undefined) checkInteger(what, 'maxLength', spec.maxLength, 0);
  if (spec.maxLengthBytes !== undefined) checkInteger(what, 'maxLengthBytes', spec.maxLengthBytes, 0);
  if (spec.maxPriority !== undefined) checkInteger(what, 'maxPriority', spec.maxPriority, 1, 255);
  if (spec.deliveryLimit !== undefined) checkInteger(what, 'deliveryLimit', spec.deliveryLimit, 0);
  if (
    spec.overflow !== undefined &&
    spec.overflow !== 'drop-head' &&
    spec.overflow !== 'reject-publish' &&
    spec.overflow !== 'reject-publish-dlx'
  ) {
    fail(
      what,
      `overflow must be 'drop-head', 'reject-publish' or 'reject-publish-dlx', not '${String(spec.overflow)}'`,
    );
  }
  if (spec.maxAge !== undefined && (typeof spec.maxAge !== 'string' || !MAX_AGE.test(spec.maxAge))) {
    fail(
      what,
      `maxAge must be a number and a unit (Y, M, D, h, m or s), such as '7D', not '${String(spec.maxAge)}'`,
    );
  }

  const type = spec.type;
  if (type === 'quorum' || type === 'stream') {
    const kind = `a ${type} queue`;
    if (spec.name === '') fail(what, `${kind} cannot be server-named: give it a name`);
    if (spec.durable === false) fail(what, `${kind} is always durable: durable cannot be false`);
    if (spec.exclusive === true) fail(what, `${kind} cannot be exclusive`);
    if (spec.autoDelete === true) fail(what, `${kind} cannot be auto-delete`);
    if (spec.maxPriority !== undefined)
      fail(what, `${kind} has no priorities: maxPriority is for classic queues`);
  }
  if (spec.deliveryLimit !== undefined && type !== 'quorum') {
    fail(what, "deliveryLimit is for quorum queues: set type: 'quorum'");
  }
  if (spec.maxAge !== undefined && type !== 'stream') fail(what, "maxAge is for streams: set type: 'stream'");
  if (spec.streamMaxSegmentSizeBytes !== undefined) {
    checkInteger(what, 'streamMaxSegmentSizeBytes', spec.streamMaxSegmentSizeBytes, 1);
    if (type !== 'stream') fail(what, "streamMaxSegmentSizeBytes is for streams: set type: 'stream'");
  }
  if (type === 'quorum' && spec.overflow === 'reject-publish-dlx') {
    fail(what, "a quorum queue does not support overflow 'reject-publish-dlx'");
  }
  if (type === 'stream') {
    const unsupported: [keyof QueueSpec, string][] = [
      ['messageTtl', 'messageTtl (use maxAge)'],
      ['expires', 'expires'],
      ['maxLength', 'maxLength (use maxLengthBytes)'],
      ['overflow', 'overflow'],
      ['deadLetterExchange', 'deadLetterExchange'],
      ['deadLetterRoutingKey', 'deadLetterRoutingKey'],
      ['singleActiveConsumer', 'singleActiveConsumer'],
    ];
    for (const [key, label] of unsupported) {
      if (spec[key] !== undefined) fail(what, `a stream does not support ${label}`);
    }
  }
  checkRawArguments(what, queueTypedArguments(spec), spec.arguments, 'a typed field');
}

/**
 * Checks a binding spec on its own (whether the specs it refers to are in the topology is checked by
 * `validateTopology`).
 *
 * @throws ConfigurationError saying what is wrong.
 *
 * @example
 * ```ts
 * validateBinding({ exchange: '', queue: 'q' }); // throws: the default exchange cannot be bound
 * ```
 */
export function validateBinding(spec: BindSpec): void {
  if (typeof spec !== 'object' || spec === null)
    throw new ConfigurationError('invalid binding: not an object');
  const isQueue = 'queue' in spec || 'exchange' in spec;
  const isExchange = 'source' in spec || 'destination' in spec;
  if (isQueue === isExchange) {
    throw new ConfigurationError(
      'invalid binding: give either { exchange, queue } (a queue binding) or { source, destination } (an exchange-to-exchange binding)',
    );
  }
  const step: TopologyStep = isQueue
    ? { kind: 'queue-binding', spec: spec as QueueBindSpec }
    : { kind: 'exchange-binding', spec: spec as ExchangeBindSpec };
  const what = step.kind === 'queue-binding' ? 'binding' : 'exchange-to-exchange binding';
  const exchanges: [string, unknown][] =
    step.kind === 'queue-binding'
      ? [['exchange', step.spec.exchange]]
      : [
          ['source', step.spec.source],
          ['destination', step.spec.destination],
        ];
  for (const [label, ref] of exchanges) {
    checkExchangeRef(what, label, ref);
    if (exchangeRefName(ref as ExchangeRef) === '') {
      fail(what, `the ${label} is the default exchange (''), which cannot be bound`);
    }
  }
  if (step.kind === 'queue-binding') checkQueueRef(what, 'queue', step.spec.queue);
  const full = describeStep(step);
  if (spec.routingKey !== undefined) checkShortString(full, 'the routing key', spec.routingKey);
  checkRawArguments(full, {}, spec.arguments, '');
}

/**
 * Checks a consumer spec on its own. When its queue is given as a stream spec, it also checks what
 * stream consumers need (a prefetch, acknowledgements).
 *
 * @throws ConfigurationError saying what is wrong.
 *
 * @example
 * ```ts
 * validateConsumer({ queue: 'jobs', prefetch: -1 }); // throws: prefetch must be an integer from 0 to 65535
 * ```
 */
export function validateConsumer(spec: ConsumerSpec): void {
  if (typeof spec !== 'object' || spec === null)
    throw new ConfigurationError('invalid consumer: not an object');
  checkQueueRef('consumer', 'queue', spec.queue);
  const what = `consumer of ${describeRef(spec.queue, 'queue')}`;
  if (spec.prefetch !== undefined) checkInteger(what, 'prefetch', spec.prefetch, 0, 0xffff);
  if (spec.priority !== undefined) checkInteger(what, 'priority', spec.priority, -0x80000000, 0x7fffffff);
  checkBoolean(what, 'noAck', spec.noAck);
  checkBoolean(what, 'exclusive', spec.exclusive);
  if (spec.consumerTag !== undefined) checkShortString(what, 'consumerTag', spec.consumerTag);
  if (spec.streamOffset !== undefined) {
    const problem = streamOffsetProblem(spec.streamOffset);
    if (problem !== undefined) fail(what, `streamOffset ${problem}`);
  }
  if (typeof spec.queue !== 'string' && spec.queue.type === 'stream') {
    if (spec.prefetch === undefined || spec.prefetch === 0) {
      fail(what, 'a stream consumer needs a prefetch (the broker refuses it without one)');
    }
    if (spec.noAck === true) fail(what, 'a stream consumer must acknowledge: noAck cannot be true');
  } else if (
    typeof spec.queue !== 'string' &&
    spec.queue.type !== undefined &&
    spec.streamOffset !== undefined
  ) {
    fail(what, 'streamOffset is for stream queues');
  }
  checkRawArguments(what, consumerTypedArguments(spec), spec.arguments, 'a typed field');
}

/**
 * Checks a whole topology: every spec on its own, that no two different specs share a name, and that
 * every spec object a binding, consumer, `alternateExchange` or `deadLetterExchange` refers to is one
 * of the topology's (references by name may point outside it).
 *
 * @throws ConfigurationError saying what is wrong.
 *
 * @example
 * ```ts
 * const q = queue({ name: '', exclusive: true });
 * validateTopology({ bindings: [{ exchange: 'amq.fanout', queue: q }] }); // throws: q is not in the topology
 * ```
 */
export function validateTopology(topology: Topology): void {
  if (typeof topology !== 'object' || topology === null) {
    throw new ConfigurationError('invalid topology: not an object');
  }
  const exchanges = new Set<ExchangeSpec>();
  const exchangeNames = new Map<string, ExchangeSpec>();
  for (const spec of topology.exchanges ?? []) {
    validateExchange(spec);
    const other = exchangeNames.get(spec.name);
    if (other !== undefined && other !== spec) {
      throw new ConfigurationError(`invalid topology: two different specs for exchange '${spec.name}'`);
    }
    exchanges.add(spec);
    exchangeNames.set(spec.name, spec);
  }
  const queues = new Set<QueueSpec>();
  const queueNames = new Map<string, QueueSpec>();
  for (const spec of topology.queues ?? []) {
    validateQueue(spec);
    if (spec.name !== '') {
      const other = queueNames.get(spec.name);
      if (other !== undefined && other !== spec) {
        throw new ConfigurationError(`invalid topology: two different specs for queue '${spec.name}'`);
      }
      queueNames.set(spec.name, spec);
    }
    queues.add(spec);
  }
  const checkExchange = (ref: ExchangeRef, where: string): void => {
    if (typeof ref !== 'string' && !exchanges.has(ref)) {
      throw new ConfigurationError(
        `invalid topology: ${where} refers to the spec of ${describeExchange(ref)}, which is not one of the topology's exchanges (add it, or refer to it by name)`,
      );
    }
  };
  const checkQueue = (ref: QueueRef, where: string): void => {
    if (typeof ref !== 'string' && !queues.has(ref)) {
      throw new ConfigurationError(
        `invalid topology: ${where} refers to the spec of ${describeQueue(ref)}, which is not one of the topology's queues (add it${ref.name === '' ? '' : ', or refer to it by name'})`,
      );
    }
  };
  for (const spec of exchanges) {
    if (spec.alternateExchange !== undefined) checkExchange(spec.alternateExchange, describeExchange(spec));
  }
  for (const spec of queues) {
    if (spec.deadLetterExchange !== undefined) checkExchange(spec.deadLetterExchange, describeQueue(spec));
  }
  for (const spec of topology.bindings ?? []) {
    validateBinding(spec);
    if ('queue' in spec) {
      const where = describeStep({ kind: 'queue-binding', spec });
      checkExchange(spec.exchange, `the ${where}`);
      checkQueue(spec.queue, `the ${where}`);
    } else {
      const where = describeStep({ kind: 'exchange-binding', spec });
      checkExchange(spec.source, `the ${where}`);
      checkExchange(spec.destination, `the ${where}`);
    }
  }
  for (const spec of topology.consumers ?? []) {
    validateConsumer(spec);
    checkQueue(spec.queue, `a consumer of ${describeRef(spec.queue, 'queue')}`);
  }
}

// ---- ordering ------------------------------------------------------------------------------------

/**
 * Orders items so that each comes after those it depends on, keeping the given order otherwise
 * (a stable topological sort). Items in a cycle keep their given order among themselves.
 */
function dependencyOrder<T>(items: readonly T[], dependsOn: (item: T) => readonly T[]): T[] {
  const out: T[] = [];
  const state = new Map<T, 'visiting' | 'done'>();
  const visit = (item: T): void => {
    if (state.has(item)) return; // done, or a cycle: leave it where it is
    state.set(item, 'visiting');
    for (const dependency of dependsOn(item)) if (items.includes(dependency)) visit(dependency);
    state.set(item, 'done');
    out.push(item);
  };
  for (const item of items) visit(item);
  return out;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/**
 * The order in which `applyTopology` declares a (valid) topology:
 *
 * 1. exchanges, each after the exchange it names as its alternate exchange;
 * 2. queues, in the given order;
 * 3. exchange-to-exchange bindings, downstream first: a binding whose destination is itself the
 *    source of other bindings comes after those, so that each one connects to a route already built;
 * 4. queue bindings, in the given order.
 *
 * Every declaration comes before any binding, so each binding's source and destination exist when it
 * is made. A spec listed twice is declared once.
 *
 * @example
 * ```ts
 * planTopology(t).map((step) => step.kind); // ['exchange', 'exchange', 'queue', 'exchange-binding', 'queue-binding']
 * ```
 */
export function planTopology(topology: Topology): readonly TopologyStep[] {
  const exchanges = unique(topology.exchanges ?? []);
  const byName = new Map(exchanges.map((e) => [e.name, e]));
  const orderedExchanges = dependencyOrder(exchanges, (e) => {
    if (e.alternateExchange === undefined) return [];
    const ae = byName.get(exchangeRefName(e.alternateExchange));
    return ae === undefined ? [] : [ae];
  });
  const bindings = topology.bindings ?? [];
  const exchangeBindings = bindings.filter((b): b is ExchangeBindSpec => !('queue' in b));
  const queueBindings = bindings.filter((b): b is QueueBindSpec => 'queue' in b);
  const orderedExchangeBindings = dependencyOrder(exchangeBindings, (b) => {
    const destination = exchangeRefName(b.destination);
    return exchangeBindings.filter((other) => other !== b && exchangeRefName(other.source) === destination);
  });
  return [
    ...orderedExchanges.map((spec) => ({ kind: 'exchange' as const, spec })),
    ...unique(topology.queues ?? []).map((spec) => ({ kind: 'queue' as const, spec })),
    ...orderedExchangeBindings.map((spec) => ({ kind: 'exchange-binding' as const, spec })),
    ...queueBindings.map((spec) => ({ kind: 'queue-binding' as const, spec })),
  ];
}
