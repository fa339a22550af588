/**
 * Field tables and arrays: the typed key/value maps AMQP uses for message headers, queue and exchange
 * arguments and server properties. The decoder reads every tag of the AMQP 0-9-1 spec and of
 * RabbitMQ's errata; where they clash, RabbitMQ's meaning wins (it is what brokers and most clients
 * write).
 *
 * | tag | wire type              | JavaScript value                                          |
 * |-----|------------------------|-----------------------------------------------------------|
 * | t   | boolean                | `boolean`                                                 |
 * | b B | int8 / uint8           | `number`                                                  |
 * | s   | int16 (RabbitMQ; the spec's short string) | `number`                               |
 * | U   | int16 (the spec's tag) | `number`                                                  |
 * | u   | uint16                 | `number`                                                  |
 * | I i | int32 / uint32         | `number`                                                  |
 * | l   | int64 (RabbitMQ; the spec says uint64) | `number` when a safe integer, else `bigint` |
 * | L   | int64 (the spec's tag, as py-amqp writes big integers) | as `l`                    |
 * | f d | float32 / float64      | `number`                                                  |
 * | D   | decimal: scale octet, **signed** int32 value (as the Java client and pika write it; the spec says unsigned) | {@link Decimal} |
 * | S   | long string            | `string`                                                  |
 * | x   | byte array             | `Uint8Array` (a `Buffer` in Node)                         |
 * | A   | array                  | `FieldValue[]`                                            |
 * | T   | timestamp (s)          | `Date`                                                    |
 * | F   | nested table           | {@link FieldTable}                                        |
 * | V   | void                   | `null`                                                    |
 *
 * Encoding picks the tag from the JavaScript type (`number` integers in int32 range become `I`, other
 * safe integers `l`, other numbers `d`; `bigint` becomes `l`). Wrap a value with {@link field} to choose
 * another tag. Decoded tables remember the tags that inference would not reproduce, so a table that is
 * decoded and encoded again (a dead-lettered message republished with its headers) keeps its exact
 * wire types.
 *
 * @module
 */

/**
 * The RabbitMQ field value type tags.
 *
 * @example
 * ```ts
 * const tag: FieldType = 'l'; // a signed 64-bit integer
 * ```
 */
export type FieldType =
  | 't'
  | 'b'
  | 'B'
  | 's'
  | 'U'
  | 'u'
  | 'I'
  | 'i'
  | 'l'
  | 'L'
  | 'f'
  | 'd'
  | 'D'
  | 'S'
  | 'x'
  | 'A'
  | 'T'
  | 'F'
  | 'V';

/**
 * A value in a field table or array. See the module documentation for how each maps to a wire type.
 *
 * @example
 * ```ts
 * const values: FieldValue[] = [true, 42, 2n ** 60n, 'text', new Date(), null, [1, 2], { nested: 'table' }];
 * ```
 */
export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | Decimal
  | TypedField
  | null
  | FieldValue[]
  | FieldTable;

/**
 * A field table: string keys (at most 255 UTF-8 bytes) to {@link FieldValue}s. Keys whose value is
 * `undefined` are left out when encoding.
 *
 * @example
 * ```ts
 * const headers: FieldTable = { 'x-retries': 3, tenant: 'acme', 'x-sent': new Date() };
 * ```
 */
export interface FieldTable {
  [key: string]: FieldValue | undefined;
}

/**
 * An AMQP decimal: `value / 10 ** scale`, with `scale` an octet and `value` a **signed** 32-bit
 * integer. The 0-9-1 spec calls the value unsigned, but the Java client and pika write it signed (a
 * BigDecimal of -1.5 goes out as scale 1, value bytes `ff ff ff f1`), so rxamqp reads and writes it
 * signed like them.
 *
 * @example
 * ```ts
 * const price = new Decimal(2, 1999); // 19.99
 * price.toNumber(); // 19.99
 * new Decimal(1, -15).toString(); // "-1.5"
 * new Decimal(2, -5).toString(); // "-0.05"
 * ```
 */
export class Decimal {
  constructor(
    /** Number of decimal digits after the point (0-255). */
    readonly scale: number,
    /** The unscaled value, a signed 32-bit integer (-2^31 to 2^31 - 1). */
    readonly value: number,
  ) {}

  /** The decimal as a (possibly rounded) JavaScript number. */
  toNumber(): number {
    return this.value / 10 ** this.scale;
  }

  /** The exact decimal as a string, such as `"19.99"` or `"-0.05"`. */
  toString(): string {
    if (this.scale === 0) return String(this.value);
    const sign = this.value < 0 ? '-' : '';
    const digits = String(Math.abs(this.value)).padStart(this.scale + 1, '0');
    return `${sign}${digits.slice(0, digits.length - this.scale)}.${digits.slice(digits.length - this.scale)}`;
  }
}

/**
 * A value with an explicit field type tag, for the tags that inference from the JavaScript type does
 * not choose (int8, uint16, float32, ...). Create them with {@link field}.
 *
 * @example
 * ```ts
 * const priority = field.uint8(5); // new TypedField('B', 5)
 * priority.type; // 'B'
 * ```
 */
export class TypedField {
  constructor(
    readonly type: FieldType,
    readonly value: FieldValue,
  ) {}
}

/**
 * @internal True for a nested field table: an object that is not an array, bytes, a date, a decimal or
 * a typed field (the other object values a table holds).
 */
export function isFieldTable(value: unknown): value is FieldTable {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof Date) &&
    !(value instanceof Decimal) &&
    !(value instanceof TypedField)
  );
}

/**
 * Constructors for values with an explicit wire type.
 *
 * @example
 * ```ts
 * const args: FieldTable = {
 *   'x-max-priority': field.uint8(10),
 *   'x-message-ttl': field.int64(60_000),
 *   ratio: field.float32(0.5),
 * };
 * ```
 */
export const field = {
  /** `t`: boolean. */
  bool: (v: boolean): TypedField => new TypedField('t', v),
  /** `b`: signed 8-bit integer. */
  int8: (v: number): TypedField => new TypedField('b', v),
  /** `B`: unsigned 8-bit integer. */
  uint8: (v: number): TypedField => new TypedField('B', v),
  /** `s`: signed 16-bit integer (RabbitMQ's tag; `new TypedField('U', v)` writes the spec's). */
  int16: (v: number): TypedField => new TypedField('s', v),
  /** `u`: unsigned 16-bit integer. */
  uint16: (v: number): TypedField => new TypedField('u', v),
  /** `I`: signed 32-bit integer. */
  int32: (v: number): TypedField => new TypedField('I', v),
  /** `i`: unsigned 32-bit integer. */
  uint32: (v: number): TypedField => new TypedField('i', v),
  /** `l`: signed 64-bit integer. */
  int64: (v: number | bigint): TypedField => new TypedField('l', v),
  /** `f`: 32-bit float. */
  float32: (v: number): TypedField => new TypedField('f', v),
  /** `d`: 64-bit float. */
  float64: (v: number): TypedField => new TypedField('d', v),
  /** `S`: long string. */
  string: (v: string): TypedField => new TypedField('S', v),
  /** `x`: byte array. */
  bytes: (v: Uint8Array): TypedField => new TypedField('x', v),
  /** `T`: timestamp, whole seconds. */
  timestamp: (v: Date): TypedField => new TypedField('T', v),
} as const;

/**
 * Where a decoded table or array keeps the wire tags that inference would not reproduce. Not
 * enumerable, so JSON, spreading and equality checks do not see it. Read it with {@link fieldTypesOf}.
 *
 * @example
 * ```ts
 * const tags = (headers as { [FIELD_TYPES]?: FieldTypeMap })[FIELD_TYPES]; // same as fieldTypesOf(headers)
 * ```
 */
export const FIELD_TYPES: unique symbol = Symbol.for('rxamqp.fieldTypes');

/**
 * The wire tags a decoded table or array remembers, by key or index.
 *
 * @example
 * ```ts
 * const tags: FieldTypeMap = { 'x-priority': 'b' };
 * ```
 */
export type FieldTypeMap = Record<string, FieldType>;

interface WithFieldTypes {
  [FIELD_TYPES]?: FieldTypeMap;
}

/**
 * The wire type tags that a decoded table or array remembers for values whose JavaScript type does
 * not determine the tag, by key (or index). Empty for tables built in code.
 *
 * @example
 * ```ts
 * fieldTypesOf(delivery.properties.headers ?? {}); // { 'x-priority': 'b' }
 * ```
 */
export function fieldTypesOf(value: FieldTable | readonly FieldValue[]): Readonly<FieldTypeMap> {
  return (value as WithFieldTypes)[FIELD_TYPES] ?? {};
}

/** @internal Records a remembered tag on a decoded table or array. */
export function rememberFieldType(target: object, key: string, type: FieldType): void {
  const holder = target as WithFieldTypes;
  let map = holder[FIELD_TYPES];
  if (map === undefined) {
    map = Object.create(null) as FieldTypeMap;
    Object.defineProperty(target, FIELD_TYPES, {
      value: map,
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  map[key] = type;
}
