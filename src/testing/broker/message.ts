/**
 * A message as the broker keeps it: the published content (shared by every queue it was routed to,
 * never copied) and one entry per queue holding what is the queue's own (its place, the redelivered
 * flag, its expiry, the quorum delivery count). Also the dead-lettering rewrite of a message's
 * headers (`x-death`, `x-first-death-*`) as RabbitMQ 3.10 writes them.
 *
 * @module
 * @internal
 */
import { utf8Decode } from '../../protocol/bytes.js';
import {
  type FieldTable,
  type FieldValue,
  field,
  fieldTypesOf,
  isFieldTable,
  rememberFieldType,
  TypedField,
} from '../../protocol/field-table.js';
import type { BasicProperties } from '../../protocol/generated.js';

/** @internal What was published: immutable once stored. */
export interface Content {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

/** @internal A message in one queue (ready, or delivered and not yet settled). */
export class Entry {
  redelivered = false;
  /** Returns counted by a quorum queue (`x-delivery-count`). */
  deliveryCount = 0;

  constructor(
    readonly content: Content,
    /** The queue's sequence number: requeued messages go back to their place by it. */
    readonly seq: number,
    /** When it expires (clock milliseconds), or Infinity. */
    readonly expiresAt: number,
    /** Its priority in a priority queue (`x-max-priority`), else 0. */
    readonly priority = 0,
  ) {}
}

/** @internal Why a message was dead-lettered, in RabbitMQ's words. */
export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

/** @internal The per-message TTL of `expiration` in milliseconds, or undefined when absent or invalid. */
export function messageTtl(properties: BasicProperties): number | undefined {
  const e = properties.expiration;
  if (e === undefined) return undefined;
  if (!/^\d+$/.test(e)) return undefined;
  return Number(e);
}

/**
 * @internal The properties of a message dead-lettered from `queue`: its `x-death` entry for this queue
 * and reason is incremented and moved first (or a new one added first), `x-first-death-*` are set if
 * absent, and `expiration` is removed (kept as `original-expiration`).
 */
export function deadLetterProperties(
  content: Content,
  queue: string,
  reason: DeathReason,
  now: number,
): BasicProperties {
  const { expiration, ...rest } = content.properties;
  const headers: FieldTable = copyTable(content.properties.headers ?? {});
  const previous = Array.isArray(headers['x-death']) ? (headers['x-death'] as FieldValue[]) : [];
  let count = 1;
  const others: FieldValue[] = [];
  for (const item of previous) {
    if (isFieldTable(item) && text(item.queue) === queue && text(item.reason) === reason) {
      count = Number(plain(item.count) ?? 0) + 1;
      continue;
    }
    // RabbitMQ re-encodes the earlier entries from its decoded (sorted) form.
    others.push(isFieldTable(item) ? sortKeys(item) : item);
  }
  const routingKeys: FieldValue[] = [content.routingKey];
  const cc = content.properties.headers?.CC;
  if (Array.isArray(cc)) for (const k of cc) routingKeys.push(k);
  // Plain values, as the client decodes them (inspection shows `count: 1`, `time` a Date); `count`
  // remembers its wire type, a long as RabbitMQ writes it (a Date is a timestamp by itself).
  const death: FieldTable = {
    count,
    reason,
    queue,
    time: new Date(Math.floor(now / 1000) * 1000),
    exchange: content.exchange,
    'routing-keys': routingKeys,
  };
  rememberFieldType(death, 'count', 'l');
  if (expiration !== undefined) death['original-expiration'] = expiration;
  headers['x-death'] = [death, ...others];
  if (headers['x-first-death-exchange'] === undefined) {
    headers['x-first-death-exchange'] = content.exchange;
    headers['x-first-death-queue'] = queue;
    headers['x-first-death-reason'] = reason;
  }
  return { ...rest, headers };
}

/** @internal True when `queue` is in the message's `x-death` for reasons other than rejection only (a cycle). */
export function diedIn(properties: BasicProperties, queue: string): boolean {
  const deaths = properties.headers?.['x-death'];
  if (!Array.isArray(deaths)) return false;
  let seen = false;
  for (const item of deaths) {
    if (!isFieldTable(item)) continue;
    if (text(item.reason) === 'rejected') return false;
    if (text(item.queue) === queue) seen = true;
  }
  return seen;
}

function plain(v: FieldValue | undefined): FieldValue | undefined {
  return v instanceof TypedField ? v.value : v;
}

function text(v: FieldValue | undefined): string | undefined {
  const p = plain(v);
  if (typeof p === 'string') return p;
  if (p instanceof Uint8Array) return utf8Decode(p);
  return undefined;
}

function sortKeys(table: FieldTable): FieldTable {
  return copyTable(table, Object.keys(table).sort());
}

/**
 * @internal A shallow copy of a decoded table that keeps the wire types the decoder remembered, so
 * that the copy encodes to the same bytes (a `long` 1 stays a `long`).
 */
export function copyTable(table: FieldTable, keys: readonly string[] = Object.keys(table)): FieldTable {
  const out: FieldTable = {};
  const types = fieldTypesOf(table);
  for (const k of keys) {
    out[k] = table[k];
    const t = types[k];
    if (t !== undefined) rememberFieldType(out, k, t);
  }
  return out;
}

/**
 * @internal The properties a message is delivered with: as published, except that a quorum queue
 * adds `x-delivery-count` (first, as RabbitMQ puts it). RabbitMQ 3.10 leaves it out of a consumer's
 * first delivery of a message but shows 0 to a basic.get (`get`).
 */
export function deliveryProperties(entry: Entry, quorum: boolean, get: boolean): BasicProperties {
  const properties = entry.content.properties;
  if (!quorum || (entry.deliveryCount === 0 && !get)) return properties;
  const headers: FieldTable = { 'x-delivery-count': field.int64(entry.deliveryCount) };
  const rest = properties.headers;
  if (rest !== undefined) {
    const types = fieldTypesOf(rest);
    for (const k of Object.keys(rest)) {
      if (k === 'x-delivery-count') continue;
      headers[k] = rest[k];
      const t = types[k];
      if (t !== undefined) rememberFieldType(headers, k, t);
    }
  }
  return { ...properties, headers };
}
