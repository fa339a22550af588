/**
 * Routing rules of the built-in exchange types, pure: topic patterns (in `src/topology/topic.ts`) and
 * headers matching (`x-match` all, any, all-with-x, any-with-x; a binding value of void matches any
 * value).
 *
 * @module
 */
import {
  Decimal,
  type FieldTable,
  type FieldValue,
  isFieldTable,
  TypedField,
} from '../../protocol/field-table.js';

// Topic matching is shared with the NestJS transport, which routes messages as the exchange did.
export { topicMatch, topicMatchWords, topicWords } from '../../topology/topic.js';

/**
 * The `x-match` modes of a headers binding.
 *
 * @example
 * ```ts
 * const mode: HeadersMatchMode = 'any-with-x'; // any header, x- ones included, may match
 * ```
 */
export type HeadersMatchMode = 'all' | 'any' | 'all-with-x' | 'any-with-x';

/**
 * The `x-match` mode of a headers binding's arguments (`all` when absent), or undefined when the
 * value is not one RabbitMQ accepts.
 *
 * @example
 * ```ts
 * headersMatchMode({ 'x-match': 'any', color: 'red' }); // 'any'
 * ```
 */
export function headersMatchMode(args: FieldTable): HeadersMatchMode | undefined {
  const mode = plain(args['x-match']);
  if (mode === undefined) return 'all';
  if (mode === 'all' || mode === 'any' || mode === 'all-with-x' || mode === 'any-with-x') return mode;
  return undefined;
}

/**
 * True when a message's headers match a headers binding's arguments: with `all`, every binding
 * argument (other than those starting `x-`) is present with an equal value; with `any`, at least one
 * is. The `-with-x` modes compare the `x-` arguments too (`x-match` itself never). A binding value of
 * void (`null`) matches any value of that header.
 *
 * @example
 * ```ts
 * headersMatch({ 'x-match': 'any', a: 1, b: 2 }, { b: 2 }); // true
 * headersMatch({ a: 1, b: 2 }, { b: 2 }); // false: all by default
 * ```
 */
export function headersMatch(args: FieldTable, headers: FieldTable | undefined): boolean {
  const mode = headersMatchMode(args) ?? 'all';
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const all = mode === 'all' || mode === 'all-with-x';
  let compared = 0;
  for (const key of Object.keys(args)) {
    if (key === 'x-match' || (!withX && key.startsWith('x-'))) continue;
    compared++;
    const expected = args[key];
    const present = headers !== undefined && Object.hasOwn(headers, key) && headers[key] !== undefined;
    const matches = present && (plain(expected) === null || fieldEquals(expected, headers[key]));
    if (all && !matches) return false;
    if (!all && matches) return true;
  }
  return all || compared < 0;
}

/** A typed field's value, or the value itself. */
function plain(value: FieldValue | undefined): FieldValue | undefined {
  return value instanceof TypedField ? value.value : value;
}

/**
 * Equality of two field values as RabbitMQ compares them for headers matching: numbers by value
 * whatever their width, strings, booleans, byte arrays by content, timestamps by time, tables and
 * arrays element by element.
 *
 * @example
 * ```ts
 * fieldEquals(1, field.int64(1)); // true
 * ```
 */
export function fieldEquals(a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  const x = plain(a);
  const y = plain(b);
  if (x === y) return true;
  if ((typeof x === 'number' || typeof x === 'bigint') && (typeof y === 'number' || typeof y === 'bigint')) {
    return Number.isInteger(Number(x)) && Number.isInteger(Number(y))
      ? BigInt(x) === BigInt(y)
      : Number(x) === Number(y);
  }
  if (x instanceof Uint8Array && y instanceof Uint8Array) {
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (x instanceof Date && y instanceof Date) return x.getTime() === y.getTime();
  if (x instanceof Decimal && y instanceof Decimal) return x.scale === y.scale && x.value === y.value;
  if (Array.isArray(x) && Array.isArray(y)) {
    return x.length === y.length && x.every((v, i) => fieldEquals(v, y[i]));
  }
  if (isFieldTable(x) && isFieldTable(y)) {
    const kx = Object.keys(x).filter((k) => x[k] !== undefined);
    const ky = Object.keys(y).filter((k) => y[k] !== undefined);
    return kx.length === ky.length && kx.every((k) => Object.hasOwn(y, k) && fieldEquals(x[k], y[k]));
  }
  return false;
}
