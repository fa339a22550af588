/**
 * The table-driven method codec: it reads the compact method table that `generated.ts` holds (one
 * string, written by `scripts/generate-protocol.ts` from the specification) and encodes and decodes
 * any method's arguments from it. The hot methods (basic.deliver, basic.ack, ...) have generated code
 * of their own in `generated.ts`; every other method goes through here, so that the browser bundle
 * carries one loop and one table rather than a function body per method: minified, the table and
 * this module are 4.4 KB where the generated bodies, metadata and name lookup they replace were about
 * 19.5 KB (see docs/codec.md). Those methods cost about twice their former CPU time (0.2 µs to encode a
 * queue.declare), next to a round trip to the broker.
 *
 * It imports no other codec module at run time, so `generated.ts` can build its tables with it at
 * load.
 *
 * @module
 * @internal
 */
import type { FieldTable } from './field-table.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

/** The default of a table argument (every table default in the specification is the empty table). */
export const EMPTY_TABLE: FieldTable = Object.freeze({}) as FieldTable;

/**
 * One code per argument in the table: `o` octet, `s` short, `l` long, `L` longlong, `b` bit, `S`
 * shortstr, `T` longstr (text), `X` longstr carried as bytes (SASL), `F` table, `D` timestamp.
 */
const TYPE_NAMES: Record<string, string> = {
  o: 'octet',
  s: 'short',
  l: 'long',
  L: 'longlong',
  b: 'bit',
  S: 'shortstr',
  T: 'longstr',
  X: 'longbytes',
  F: 'table',
  D: 'timestamp',
};

/** What the protocol says about a method (the entries of `METHOD_INFO`). */
export interface MethodInfoEntry {
  readonly classId: number;
  readonly methodId: number;
  readonly synchronous: boolean;
  readonly content: boolean;
  readonly replies: string[];
}

/** A method as the codec knows it: its ids and its arguments in wire order. */
export interface MethodDef {
  /** `class.method`, as in `METHOD_INFO`. */
  readonly name: string;
  /** `classId << 16 | methodId`: the four bytes that open the method frame's payload. */
  readonly id: number;
  readonly info: MethodInfoEntry;
  /** One type code per argument (see {@link TYPE_NAMES}). */
  readonly types: string;
  /** The camelCase property names. */
  readonly props: readonly string[];
  /** The names in the specification (for error messages). */
  readonly specNames: readonly string[];
  /** The defaults the encoder uses; undefined for a required argument. */
  readonly defaults: readonly unknown[];
}

/** The methods of a table, by id and by name. */
export interface MethodTable {
  readonly byId: ReadonlyMap<number, MethodDef>;
  readonly byName: ReadonlyMap<string, MethodDef>;
  /** `METHOD_INFO`: the info of every method by name, in table order. */
  readonly info: Record<string, MethodInfoEntry>;
}

const camel = (s: string): string => s.replace(/-./g, (c) => c[1]!.toUpperCase());

function defaultOf(code: string, text: string): unknown {
  if (code === 'b') return text === '1';
  if (code === 'F') return EMPTY_TABLE;
  return code === 'S' || code === 'T' || code === 'X' ? text : Number(text);
}

/**
 * Reads the method table. Its format (the generator writes it and checks that this reads it back to
 * the specification): classes separated by `;`, each `<class> <classId>` then its methods, each
 * after a `,`: `<method> <methodId>[s][c] <argument>...` where `s` marks a synchronous method and `c`
 * one that carries content, and each argument is `<type code><spec-name>[=<default>]` (a bit's
 * default is `0` or `1`, a table's is empty: the empty table). A synchronous method's replies are its
 * `-ok` and `-empty` methods where they exist.
 */
export function parseMethodTable(table: string): MethodTable {
  const byId = new Map<number, MethodDef>();
  const byName = new Map<string, MethodDef>();
  const infos: [string, MethodInfoEntry][] = [];
  for (const cls of table.split(';')) {
    const [head, ...methods] = cls.split(',');
    const [className, classIdText] = head!.split(' ');
    const classId = Number(classIdText);
    for (const method of methods) {
      const [methodName, idText, ...args] = method.split(' ');
      const name = `${className}.${methodName}`;
      const methodId = Number.parseInt(idText!, 10);
      const entry: MethodInfoEntry = {
        classId,
        methodId,
        synchronous: idText!.includes('s'),
        content: idText!.includes('c'),
        replies: [],
      };
      let types = '';
      const props: string[] = [];
      const specNames: string[] = [];
      const defaults: unknown[] = [];
      for (const arg of args) {
        const eq = arg.indexOf('=');
        const specName = eq < 0 ? arg.slice(1) : arg.slice(1, eq);
        types += arg[0];
        specNames.push(specName);
        props.push(camel(specName));
        defaults.push(eq < 0 ? undefined : defaultOf(arg[0]!, arg.slice(eq + 1)));
      }
      const def: MethodDef = {
        name,
        id: (classId << 16) | methodId,
        info: entry,
        types,
        props,
        specNames,
        defaults,
      };
      byId.set(def.id, def);
      byName.set(name, def);
      infos.push([name, entry]);
      // The replies of a synchronous method come after it: `queue.declare-ok`, `basic.get-empty`.
      const asked = byName.get(name.replace(/-(ok|empty)$/, ''));
      if (asked !== undefined && asked !== def && asked.info.synchronous) asked.info.replies.push(name);
    }
  }
  // Object.fromEntries makes an object in V8's fast mode; one filled key by key would be a dictionary,
  // and `METHOD_INFO[name]` is read for every method written (an ack's cost was 20% higher).
  return { byId, byName, info: Object.fromEntries(infos) };
}

/** The arguments of every method, as `METHOD_ARGUMENTS` gives them. */
export function methodArguments(
  table: MethodTable,
): Record<string, { name: string; specName: string; type: string; default?: unknown }[]> {
  const out: Record<string, { name: string; specName: string; type: string; default?: unknown }[]> = {};
  for (const def of table.byName.values()) {
    out[def.name] = def.specNames.map((specName, i) => {
      const arg = { name: def.props[i]!, specName, type: TYPE_NAMES[def.types[i]!]! };
      const fallback = def.defaults[i];
      return fallback === undefined ? arg : { ...arg, default: fallback };
    });
  }
  return out;
}

/**
 * Decodes the arguments of `def` from `r` (positioned after the ids) into `{ name, ...arguments }`, the
 * properties in wire order, as the generated decoders build them.
 */
export function decodeArguments(r: Reader, def: MethodDef): Record<string, unknown> {
  const m: Record<string, unknown> = { name: def.name };
  const { types, props, specNames } = def;
  let bits = 0;
  let bit = 8;
  for (let i = 0; i < types.length; i++) {
    const type = types[i];
    const prop = props[i]!;
    if (type === 'b') {
      // Consecutive bits share octets, eight to an octet.
      if (bit === 8) {
        bits = r.u8();
        bit = 0;
      }
      m[prop] = (bits & (1 << bit++)) !== 0;
      continue;
    }
    bit = 8;
    let v: unknown;
    switch (type) {
      case 'o':
        v = r.u8();
        break;
      case 's':
        v = r.u16();
        break;
      case 'l':
        v = r.u32();
        break;
      case 'L':
        v = r.u64(specNames[i]);
        break;
      case 'S':
        v = r.shortstr();
        break;
      case 'T':
        v = r.longstr();
        break;
      case 'X':
        v = r.longbytes();
        break;
      case 'F':
        v = r.table();
        break;
      default:
        v = r.timestamp();
    }
    m[prop] = v;
  }
  return m;
}

/**
 * Encodes a method (its ids, then its arguments) into `w`. Arguments left out (undefined or null) take
 * their default; a required one left out fails in the writer with an {@link EncodeError}.
 */
export function encodeArguments(w: Writer, def: MethodDef, m: Record<string, unknown>): void {
  w.u32(def.id);
  const { types, props, specNames, defaults } = def;
  let bits = 0;
  let bit = 8;
  let at = 0;
  for (let i = 0; i < types.length; i++) {
    const type = types[i];
    let v = m[props[i]!];
    if (v == null && defaults[i] !== undefined) v = defaults[i];
    if (type === 'b') {
      // Consecutive bits share octets, eight to an octet: the octet is written, then patched (no
      // other byte is written while it fills, and the writer keeps offsets when it grows).
      if (bit === 8) {
        at = w.pos;
        w.u8(0);
        bits = 0;
        bit = 0;
      }
      if (v) {
        bits |= 1 << bit;
        w.buf[at] = bits;
      }
      bit++;
      continue;
    }
    bit = 8;
    switch (type) {
      case 'o':
        w.u8(v as number);
        break;
      case 's':
        w.u16(v as number);
        break;
      case 'l':
        w.u32(v as number);
        break;
      case 'L':
        w.u64(v as number);
        break;
      case 'S':
        w.shortstr(v as string, specNames[i]);
        break;
      case 'F':
        w.table(v as FieldTable);
        break;
      case 'D':
        w.timestamp(v as Date);
        break;
      default:
        w.longstr(v as string | Uint8Array, specNames[i]);
    }
  }
}
