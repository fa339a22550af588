/**
 * Queue and exchange arguments as RabbitMQ 3.10 checks them: validation at declare time (`invalid arg`
 * texts), equivalence on redeclare (`inequivalent arg` texts, integers of any width being equal), and
 * the typed settings a queue reads from its arguments.
 *
 * @module
 * @internal
 */

import { utf8Decode } from '../../protocol/bytes.js';
import {
  type FieldTable,
  type FieldType,
  type FieldValue,
  fieldTypesOf,
  TypedField,
} from '../../protocol/field-table.js';
import { inferFieldType } from '../../protocol/writer.js';
import { type BrokerFault, precondition, resource } from './faults.js';

/** RabbitMQ's names of the field types, as its messages print them. */
const TYPE_NAMES: Record<FieldType, string> = {
  t: 'bool',
  b: 'byte',
  B: 'unsignedbyte',
  s: 'short',
  U: 'short',
  u: 'unsignedshort',
  I: 'signedint',
  i: 'unsignedint',
  l: 'long',
  L: 'long',
  f: 'float',
  d: 'double',
  D: 'decimal',
  S: 'longstr',
  x: 'binary',
  A: 'array',
  T: 'timestamp',
  F: 'table',
  V: 'void',
};

const INT_TYPES = new Set([
  'byte',
  'unsignedbyte',
  'short',
  'unsignedshort',
  'signedint',
  'unsignedint',
  'long',
]);

/** @internal A table entry with its wire type: what RabbitMQ's `table_lookup` returns. */
export interface Typed {
  readonly type: string;
  readonly value: FieldValue;
}

/** @internal The entry `key` of `table` with RabbitMQ's name of its type, or undefined. */
export function lookup(table: FieldTable, key: string): Typed | undefined {
  if (!Object.hasOwn(table, key)) return undefined;
  const raw = table[key];
  if (raw === undefined) return undefined;
  if (raw instanceof TypedField) return { type: TYPE_NAMES[raw.type], value: raw.value };
  const tag = fieldTypesOf(table)[key] ?? inferFieldType(raw);
  return { type: TYPE_NAMES[tag], value: raw };
}

function typeClass(type: string): string {
  if (INT_TYPES.has(type)) return 'int';
  if (type === 'float' || type === 'double') return 'float';
  return type;
}

/** @internal A value as RabbitMQ prints it in its messages. */
export function show(value: FieldValue | undefined): string {
  if (value instanceof Uint8Array) return utf8Decode(value);
  if (value instanceof Date) return String(Math.floor(value.getTime() / 1000));
  if (value === null || value === undefined) return 'undefined';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function showTyped(t: Typed | undefined): string {
  return t === undefined ? 'none' : `the value '${show(t.value)}' of type '${t.type}'`;
}

function sameTyped(a: Typed, b: Typed): boolean {
  if (typeClass(a.type) !== typeClass(b.type)) return false;
  const x = a.value;
  const y = b.value;
  if ((typeof x === 'number' || typeof x === 'bigint') && (typeof y === 'number' || typeof y === 'bigint')) {
    return Number.isInteger(Number(x)) && Number.isInteger(Number(y))
      ? BigInt(x) === BigInt(y)
      : Number(x) === Number(y);
  }
  return show(x) === show(y);
}

/** @internal 406 `inequivalent arg 'durable' ...: received 'true' but current is 'false'`. */
export function inequivalentField(
  where: string,
  key: string,
  received: unknown,
  current: unknown,
): BrokerFault {
  return precondition(
    `inequivalent arg '${key}' for ${where}: received '${received}' but current is '${current}'`,
  );
}

/** @internal Checks that the arguments compared on redeclare are equivalent, in RabbitMQ's order. */
export function assertArgsEquivalent(
  where: string,
  keys: readonly string[],
  current: FieldTable,
  received: FieldTable,
  defaults: Readonly<Record<string, FieldValue>> = {},
): void {
  for (const key of keys) {
    const a = lookup(current, key);
    const b = lookup(received, key);
    // A queue declared without the argument matches a redeclare naming its default (an explicit
    // 'classic'); the texts still say "none".
    const fallback = defaults[key];
    if (a === undefined && b !== undefined && fallback !== undefined && show(b.value) === show(fallback))
      continue;
    if (a === undefined && b === undefined) continue;
    if (a !== undefined && b !== undefined) {
      if (sameTyped(a, b)) continue;
      throw inequivalentField(where, key, show(b.value), show(a.value));
    }
    throw precondition(
      `inequivalent arg '${key}' for ${where}: received ${showTyped(b)} but current is ${showTyped(a)}`,
    );
  }
}

/** The queue arguments RabbitMQ 3.10 validates and compares on redeclare, in its order. */
export const QUEUE_ARGS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-in-memory-length',
  'x-max-in-memory-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-mode',
  'x-single-active-consumer',
  'x-queue-type',
  'x-quorum-initial-group-size',
  'x-max-age',
  'x-stream-max-segment-size-bytes',
  'x-initial-cluster-size',
  'x-queue-leader-locator',
] as const;

/** The exchange arguments compared on redeclare. */
export const EXCHANGE_ARGS = ['alternate-exchange'] as const;

/** What a queue's arguments configure, resolved. */
export interface QueueSettings {
  readonly type: 'classic' | 'quorum';
  readonly messageTtl: number | undefined;
  readonly expires: number | undefined;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  readonly maxLength: number | undefined;
  readonly maxLengthBytes: number | undefined;
  readonly overflow: 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
  readonly deliveryLimit: number | undefined;
  /** `x-max-priority`: a priority queue when set. */
  readonly maxPriority: number | undefined;
  readonly singleActiveConsumer: boolean;
}

function str(t: Typed | undefined): string | undefined {
  if (t === undefined) return undefined;
  return t.value instanceof Uint8Array ? show(t.value) : String(t.value);
}

/**
 * @internal Validates a new queue's arguments as RabbitMQ does (406 `invalid arg`), and the properties
 * a quorum queue cannot have; returns the settings they configure.
 */
export function queueSettings(
  name: string,
  vhost: string,
  args: FieldTable,
  flags: { durable: boolean; exclusive: boolean; autoDelete: boolean },
): QueueSettings {
  const where = resource('queue', name, vhost);
  const invalid = (key: string, why: string): BrokerFault =>
    precondition(`invalid arg '${key}' for ${where}: ${why}`);
  const int = (key: string, check: 'nonneg' | 'positive' | 'any'): number | undefined => {
    const t = lookup(args, key);
    if (t === undefined) return undefined;
    if (!INT_TYPES.has(t.type)) throw invalid(key, `"expected integer, got ${t.type}"`);
    const v = Number(t.value);
    if (check === 'positive' && v === 0) throw invalid(key, `{value_zero,${v}}`);
    if (check !== 'any' && v < 0) throw invalid(key, `{value_negative,${v}}`);
    return v;
  };
  const string = (key: string): string | undefined => {
    const t = lookup(args, key);
    if (t === undefined) return undefined;
    if (t.type !== 'longstr') throw invalid(key, `{unacceptable_type,${t.type}}`);
    return str(t);
  };
  // RabbitMQ's channel checks the dead-letter exchange's type before the queue checks the rest.
  const dlxArg = lookup(args, 'x-dead-letter-exchange');
  if (dlxArg !== undefined && dlxArg.type !== 'longstr') {
    throw precondition(`invalid type '${dlxArg.type}' for arg 'x-dead-letter-exchange' in ${where}`);
  }
  const expires = int('x-expires', 'positive');
  const messageTtl = int('x-message-ttl', 'nonneg');
  const deadLetterExchange = string('x-dead-letter-exchange');
  const deadLetterRoutingKey = string('x-dead-letter-routing-key');
  if (deadLetterRoutingKey !== undefined && deadLetterExchange === undefined) {
    throw invalid('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined');
  }
  const maxLength = int('x-max-length', 'nonneg');
  const maxLengthBytes = int('x-max-length-bytes', 'nonneg');
  int('x-max-in-memory-length', 'nonneg');
  int('x-max-in-memory-bytes', 'nonneg');
  const overflowArg = lookup(args, 'x-overflow');
  let overflow: QueueSettings['overflow'] = 'drop-head';
  if (overflowArg !== undefined) {
    const v = str(overflowArg);
    if (
      overflowArg.type !== 'longstr' ||
      (v !== 'drop-head' && v !== 'reject-publish' && v !== 'reject-publish-dlx')
    ) {
      throw invalid('x-overflow', 'invalid_overflow');
    }
    overflow = v;
  }
  const typeArg = lookup(args, 'x-queue-type');
  const typeName = str(typeArg) ?? 'classic';
  if (typeName !== 'classic' && typeName !== 'quorum') {
    throw invalid('x-queue-type', `"unsupported queue type '${typeName}'"`);
  }
  const deliveryLimitArg = lookup(args, 'x-delivery-limit');
  if (typeName === 'classic') {
    if (deliveryLimitArg !== undefined) {
      throw precondition(`invalid arg 'x-delivery-limit' for ${where} of queue type rabbit_classic_queue`);
    }
  } else {
    for (const key of ['x-max-priority', 'x-queue-mode', 'x-queue-master-locator']) {
      if (lookup(args, key) !== undefined) {
        throw precondition(`invalid arg '${key}' for ${where} of queue type rabbit_quorum_queue`);
      }
    }
    if (!flags.durable) throw precondition(`invalid property 'non-durable' for ${where}`);
    if (flags.exclusive) throw precondition(`invalid property 'exclusive-owner' for ${where}`);
    if (flags.autoDelete) throw precondition(`invalid property 'auto-delete' for ${where}`);
  }
  const deliveryLimit = typeName === 'quorum' ? int('x-delivery-limit', 'nonneg') : undefined;
  const maxPriority = int('x-max-priority', 'nonneg');
  if (maxPriority !== undefined && maxPriority > 255) {
    throw invalid('x-max-priority', `{max_value_exceeded,${maxPriority}}`);
  }
  const sac = lookup(args, 'x-single-active-consumer');
  if (sac !== undefined && sac.type !== 'bool') {
    throw invalid('x-single-active-consumer', `{unacceptable_type,${sac.type}}`);
  }
  return {
    type: typeName,
    messageTtl,
    expires,
    deadLetterExchange,
    deadLetterRoutingKey,
    maxLength,
    maxLengthBytes,
    overflow,
    deliveryLimit,
    maxPriority,
    singleActiveConsumer: sac?.value === true,
  };
}
