/**
 * Generates the codec's spec-derived modules from the AMQP 0-9-1 specification (RabbitMQ's JSON
 * edition, kept next to this script as `amqp-rabbitmq-0.9.1.json`: RabbitMQ's file as formatted by biome,
 * the same JSON value as the original, whose sha256 is 48dd1bb5374de5db3a0d789899a8cc2fbbe7f9a3d4efc69c8daf79dfb0591303):
 *
 * - `src/protocol/constants.ts`: the frame constants, protocol header, reply codes and class ids. It
 *   imports nothing, so `src/errors.ts` can use the reply codes without an import cycle.
 * - `src/protocol/generated.ts`: a typed interface per method, the method table (every method's ids,
 *   flags and arguments in one compact string, which `src/protocol/method-codec.ts` reads at load and
 *   encodes and decodes any method from), the metadata built from it, generated encoders and decoders
 *   for the hot methods only (`HOT_DECODE`, `HOT_ENCODE`), and the basic content-header properties
 *   codec; it re-exports the constants.
 *
 * Usage: `npm run generate`. The output is committed; test/protocol/generated.test.ts regenerates it in
 * memory with {@link generateFiles} and fails when the committed files differ.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { methodArguments, parseMethodTable } from '../src/protocol/method-codec.js';

interface SpecArgument {
  name: string;
  type?: string;
  domain?: string;
  'default-value'?: unknown;
}
interface SpecMethod {
  id: number;
  name: string;
  arguments: SpecArgument[];
  synchronous?: boolean;
  content?: boolean;
}
interface SpecClass {
  id: number;
  name: string;
  methods: SpecMethod[];
  properties?: { name: string; type: string }[];
}
/** The parts of the JSON specification the generator reads. */
export interface Spec {
  'major-version': number;
  'minor-version': number;
  revision: number;
  domains: [string, string][];
  constants: { name: string; value: number; class?: string }[];
  classes: SpecClass[];
}

/**
 * The repository root (this script lives in scripts/).
 *
 * @example
 * ```ts
 * readFileSync(resolve(ROOT, SPEC_FILE), 'utf8');
 * ```
 */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * The specification the generator reads, relative to {@link ROOT}.
 *
 * @example
 * ```ts
 * const files = generateFiles(readFileSync(resolve(ROOT, SPEC_FILE), 'utf8'));
 * ```
 */
export const SPEC_FILE = 'scripts/amqp-rabbitmq-0.9.1.json';
/**
 * The files the generator writes, relative to {@link ROOT}.
 *
 * @example
 * ```ts
 * for (const path of GENERATED_FILES) console.log(path, generateFiles(specText)[path].length);
 * ```
 */
export const GENERATED_FILES = ['src/protocol/constants.ts', 'src/protocol/generated.ts'] as const;

/** Long-string arguments that carry bytes (SASL) rather than text. */
const BINARY_LONGSTR = new Set(['response', 'challenge', 'new-secret']);

const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const pascal = (s: string): string => camel(s).replace(/^[a-z]/, (c) => c.toUpperCase());
const constName = (s: string): string => s.replace(/-/g, '_').toUpperCase();
const hex = (n: number, width: number): string => `0x${n.toString(16).padStart(width, '0')}`;

interface ResolvedArg {
  name: string;
  prop: string;
  type: string;
  default: unknown;
  hasDefault: boolean;
}

function resolveArgs(spec: Spec, method: SpecMethod): ResolvedArg[] {
  const domains = new Map(spec.domains);
  return method.arguments.map((a) => {
    let type = a.type ?? a.domain;
    if (type === undefined) throw new Error(`argument ${a.name} of ${method.name} has no type`);
    while (domains.has(type) && domains.get(type) !== type) type = domains.get(type)!;
    if (type === 'longstr' && BINARY_LONGSTR.has(a.name)) type = 'longbytes';
    return {
      name: a.name,
      prop: camel(a.name),
      type,
      default: a['default-value'],
      hasDefault: 'default-value' in a,
    };
  });
}

const TS_TYPES: Record<string, [decoded: string, init: string]> = {
  octet: ['number', 'number'],
  short: ['number', 'number'],
  long: ['number', 'number'],
  longlong: ['number', 'number'],
  bit: ['boolean', 'boolean'],
  shortstr: ['string', 'string'],
  longstr: ['string', 'string'],
  longbytes: ['Uint8Array', 'string | Uint8Array'],
  table: ['FieldTable', 'FieldTable'],
  timestamp: ['Date', 'Date'],
};

const READERS: Record<string, (arg: ResolvedArg) => string> = {
  octet: () => 'r.u8()',
  short: () => 'r.u16()',
  long: () => 'r.u32()',
  longlong: (a) => `r.u64('${a.name}')`,
  shortstr: () => 'r.shortstr()',
  longstr: () => 'r.longstr()',
  longbytes: () => 'r.longbytes()',
  table: () => 'r.table()',
  timestamp: () => 'r.timestamp()',
};

const WRITERS: Record<string, (expr: string, arg: ResolvedArg) => string> = {
  octet: (e) => `w.u8(${e});`,
  short: (e) => `w.u16(${e});`,
  long: (e) => `w.u32(${e});`,
  longlong: (e) => `w.u64(${e});`,
  shortstr: (e, a) => `w.shortstr(${e}, '${a.name}');`,
  longstr: (e, a) => `w.longstr(${e}, '${a.name}');`,
  longbytes: (e, a) => `w.longstr(${e}, '${a.name}');`,
  table: (e) => `w.table(${e});`,
  timestamp: (e) => `w.timestamp(${e});`,
};

function literal(value: unknown): string {
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return 'EMPTY_TABLE';
  return JSON.stringify(value);
}

/** Groups consecutive bit arguments into the octets they share on the wire. */
function fieldGroups(args: ResolvedArg[]): (ResolvedArg | ResolvedArg[])[] {
  const groups: (ResolvedArg | ResolvedArg[])[] = [];
  let bits: ResolvedArg[] | null = null;
  for (const a of args) {
    if (a.type === 'bit') {
      if (bits === null || bits.length === 8) {
        bits = [];
        groups.push(bits);
      }
      bits.push(a);
    } else {
      bits = null;
      groups.push(a);
    }
  }
  return groups;
}

/**
 * The methods with generated code of their own, because they run per message: decoding what a
 * consumer, a confirming publisher and a broker receive for each message, and encoding the
 * acknowledgements a consumer sends (publishing has `FrameWriter.writePublish`). Every other method is
 * encoded and decoded from the method table by `src/protocol/method-codec.ts`.
 */
const HOT_DECODE = ['basic.deliver', 'basic.ack', 'basic.nack'];
const HOT_ENCODE = ['basic.ack', 'basic.reject', 'basic.nack'];

/** The type codes of the method table (see `src/protocol/method-codec.ts`). */
const TYPE_CODES: Record<string, string> = {
  octet: 'o',
  short: 's',
  long: 'l',
  longlong: 'L',
  bit: 'b',
  shortstr: 'S',
  longstr: 'T',
  longbytes: 'X',
  table: 'F',
  timestamp: 'D',
};

/** One argument in the method table: `<type code><spec-name>[=<default>]`. */
function tableArgument(a: ResolvedArg): string {
  const code = TYPE_CODES[a.type];
  if (code === undefined) throw new Error(`no type code for ${a.type}`);
  if (!/^[a-z]+(-[a-z]+)*$/.test(a.name)) throw new Error(`argument name ${a.name} does not camelCase back`);
  if (!a.hasDefault) return `${code}${a.name}`;
  const d = a.default;
  let text: string;
  if (a.type === 'bit' && typeof d === 'boolean') text = d ? '1' : '0';
  else if (a.type === 'table' && literal(d) === 'EMPTY_TABLE') text = '';
  else if (typeof d === 'number' && ['octet', 'short', 'long', 'longlong'].includes(a.type)) text = String(d);
  else if (typeof d === 'string' && ['shortstr', 'longstr', 'longbytes'].includes(a.type)) text = d;
  else throw new Error(`default ${JSON.stringify(d)} of ${a.name} has no form in the method table`);
  if (/[\s,;'\\]/.test(text)) throw new Error(`default ${JSON.stringify(d)} of ${a.name} has a separator`);
  return `${code}${a.name}=${text}`;
}

/**
 * Reads the method table back as the codec will and checks it against the specification: ids, flags,
 * replies, and every argument's name, type and default.
 */
function checkTable(
  text: string,
  methods: { cls: SpecClass; m: SpecMethod; full: string; args: ResolvedArg[] }[],
  names: Set<string>,
): void {
  const table = parseMethodTable(text);
  const args = methodArguments(table);
  const expected = methods.map(({ cls, m, full, args: resolved }) => {
    const replies = m.synchronous ? [`${full}-ok`, `${full}-empty`].filter((n) => names.has(n)) : [];
    if (m.synchronous && replies.length === 0) throw new Error(`synchronous ${full} has no reply`);
    return {
      full,
      info: {
        classId: cls.id,
        methodId: m.id,
        synchronous: m.synchronous === true,
        content: m.content === true,
        replies,
      },
      args: resolved.map((a) => ({
        name: a.prop,
        specName: a.name,
        type: a.type,
        ...(a.hasDefault ? { default: a.default } : {}),
      })),
    };
  });
  const actual = Object.keys(table.info).map((full) => ({ full, info: table.info[full], args: args[full] }));
  // The table's empty-table default is a frozen {}: equal to the spec's {} as JSON.
  if (JSON.stringify(actual) !== JSON.stringify(expected))
    throw new Error('the method table does not read back');
}

/** The sha256 of the spec text, recorded in each generated file. */
function specHash(specText: string): string {
  return createHash('sha256').update(specText).digest('hex');
}

/**
 * Renders `src/protocol/constants.ts`: the frame constants, protocol header, reply codes and class ids.
 * It imports nothing, so that `src/errors.ts` can use the reply codes without an import cycle.
 */
function generateConstants(spec: Spec, specText: string): string {
  const out: string[] = [];
  const emit = (line = ''): void => {
    out.push(line);
  };
  emit('// AMQP 0-9-1 constants. DO NOT EDIT: generated by scripts/generate-protocol.ts');
  emit(`// from amqp-rabbitmq-0.9.1.json (sha256 ${specHash(specText)}).`);
  emit('// Regenerate with `npm run generate`; test/protocol/generated.test.ts checks this file is current.');
  emit('// It imports nothing: src/errors.ts reads the reply codes from here without an import cycle.');
  emit('/* biome-ignore-all lint: generated code */');
  emit();
  emit(
    `/** Protocol version: ${spec['major-version']}-${spec['minor-version']}-${spec.revision}, as [major, minor, revision]. */`,
  );
  emit(
    `export const PROTOCOL_VERSION = [${spec['major-version']}, ${spec['minor-version']}, ${spec.revision}] as const;`,
  );
  emit('/**');
  emit(' * The 8 bytes a client sends first: "AMQP", 0, major, minor, revision.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(' * socket.write(PROTOCOL_HEADER); // the broker answers with connection.start');
  emit(' * ```');
  emit(' */');
  emit(
    `export const PROTOCOL_HEADER: Uint8Array = new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, ${spec['major-version']}, ${spec['minor-version']}, ${spec.revision}]);`,
  );
  emit();
  const replyCodes = spec.constants.filter((c) => c.class !== undefined || c.name === 'REPLY-SUCCESS');
  for (const c of spec.constants.filter((k) => !replyCodes.includes(k))) {
    emit(`/** The spec's ${c.name} constant: \`${constName(c.name)} === ${c.value}\`. */`);
    emit(`export const ${constName(c.name)} = ${c.value};`);
  }
  emit();
  emit('/**');
  emit(' * AMQP reply codes, by name.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * if (close.replyCode === ReplyCode.NOT_FOUND) console.log('no such queue');");
  emit(' * ```');
  emit(' */');
  emit('export const ReplyCode = {');
  for (const c of replyCodes) emit(`  ${constName(c.name)}: ${c.value},`);
  emit('} as const;');
  emit();
  emit('/** Whether a reply code closes a channel (`soft`) or the whole connection (`hard`). */');
  emit("export type ReplyCodeKind = 'success' | 'soft' | 'hard';");
  emit();
  emit('/**');
  emit(' * The name and kind of a reply code.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(' * const info: ReplyCodeInfo | undefined = REPLY_CODES[close.replyCode];');
  emit(' * ```');
  emit(' */');
  emit('export interface ReplyCodeInfo {');
  emit('  readonly name: string;');
  emit('  readonly kind: ReplyCodeKind;');
  emit('}');
  emit();
  const hardErrors = replyCodes.filter((c) => c.class === 'hard-error').map((c) => c.value);
  emit('/** The reply codes the specification classes as hard errors (they close the connection). */');
  emit(`const HARD_ERRORS: readonly number[] = [${hardErrors.join(', ')}];`);
  emit();
  emit('/**');
  emit(' * Name and kind of every reply code the specification defines.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * REPLY_CODES[406]; // { name: 'PRECONDITION_FAILED', kind: 'soft' }");
  emit(' * ```');
  emit(' */');
  // Built from ReplyCode and the list of hard errors, so that each name is written once.
  const success = replyCodes.filter((c) => c.class === undefined);
  if (success.length !== 1 || success[0]!.name !== 'REPLY-SUCCESS')
    throw new Error('one success code expected');
  emit('export const REPLY_CODES: Readonly<Record<number, ReplyCodeInfo>> = Object.fromEntries(');
  emit('  Object.entries(ReplyCode).map(([name, code]) => [');
  emit('    code,');
  emit('    {');
  emit('      name,');
  emit(
    "      kind: code === ReplyCode.REPLY_SUCCESS ? 'success' : HARD_ERRORS.includes(code) ? 'hard' : 'soft',",
  );
  emit('    },');
  emit('  ]),');
  emit(');');
  emit();
  emit('/**');
  emit(
    ' * True for the reply codes that the specification classes as hard errors (they close the connection).',
  );
  emit(' * Unknown codes count as hard: the peer cannot have meant a channel-level error the spec lacks.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(' * isHardError(ReplyCode.NOT_FOUND); // false');
  emit(' * isHardError(ReplyCode.FRAME_ERROR); // true');
  emit(' * ```');
  emit(' */');
  emit('export function isHardError(replyCode: number): boolean {');
  emit("  return REPLY_CODES[replyCode]?.kind !== 'soft' && replyCode !== ReplyCode.REPLY_SUCCESS;");
  emit('}');
  emit();
  emit('/**');
  emit(' * Class ids.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(' * ClassId.BASIC; // 60');
  emit(' * ```');
  emit(' */');
  emit('export const ClassId = {');
  for (const cls of spec.classes) emit(`  ${constName(cls.name)}: ${cls.id},`);
  emit('} as const;');
  emit();
  return out.join('\n');
}

/** Renders `src/protocol/generated.ts`: the methods and properties codec. */
function generateMethods(spec: Spec, specText: string): string {
  const out: string[] = [];
  const emit = (line = ''): void => {
    out.push(line);
  };
  const methods: { cls: SpecClass; m: SpecMethod; full: string; type: string; args: ResolvedArg[] }[] = [];
  for (const cls of spec.classes) {
    for (const m of cls.methods) {
      methods.push({
        cls,
        m,
        full: `${cls.name}.${m.name}`,
        type: pascal(`${cls.name}-${m.name}`),
        args: resolveArgs(spec, m),
      });
    }
  }
  const names = new Set(methods.map((x) => x.full));
  const hotDecode = methods.filter((x) => HOT_DECODE.includes(x.full));
  const hotEncode = methods.filter((x) => HOT_ENCODE.includes(x.full));
  if (hotDecode.length !== HOT_DECODE.length || hotEncode.length !== HOT_ENCODE.length)
    throw new Error('a hot method is not in the specification');
  const needsEmptyTable = hotEncode.some((x) =>
    x.args.some((a) => a.hasDefault && literal(a.default) === 'EMPTY_TABLE'),
  );

  emit('// AMQP 0-9-1 method definitions. DO NOT EDIT: generated by scripts/generate-protocol.ts');
  emit(`// from amqp-rabbitmq-0.9.1.json (sha256 ${specHash(specText)}).`);
  emit('// Regenerate with `npm run generate`; test/protocol/generated.test.ts checks this file is current.');
  emit('/* biome-ignore-all lint: generated code */');
  emit("import type { FieldTable } from './field-table.js';");
  emit(
    `import { decodeArguments, ${needsEmptyTable ? 'EMPTY_TABLE, ' : ''}encodeArguments, methodArguments, parseMethodTable } from './method-codec.js';`,
  );
  emit("import type { Reader } from './reader.js';");
  emit("import type { Writer } from './writer.js';");
  emit();
  emit("export * from './constants.js';");
  emit();

  for (const { cls, m, full, type, args } of methods) {
    const flags = [m.synchronous ? 'synchronous' : 'asynchronous', m.content ? 'carries content' : '']
      .filter(Boolean)
      .join(', ');
    emit(`/** \`${full}\` (${cls.id}/${m.id}), ${flags}: as decoded from the wire. */`);
    emit(`export interface ${type} {`);
    emit(`  readonly name: '${full}';`);
    for (const a of args) emit(`  readonly ${a.prop}: ${TS_TYPES[a.type]![0]};`);
    emit('}');
    emit(`/** \`${full}\` as given to the encoder: arguments with a default in the spec may be left out. */`);
    emit(`export interface ${type}Init {`);
    emit(`  readonly name: '${full}';`);
    for (const a of args) {
      const comment = a.hasDefault ? ` // default ${JSON.stringify(a.default)}` : '';
      emit(`  readonly ${a.prop}${a.hasDefault ? '?' : ''}: ${TS_TYPES[a.type]![1]};${comment}`);
    }
    emit('}');
    emit();
  }

  emit('/**');
  emit(' * Every method, as decoded from the wire, discriminated by `name`.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(' * function onMethod(channel: number, method: Method): void {');
  emit(" *   if (method.name === 'channel.close') console.log(channel, method.replyCode, method.replyText);");
  emit(' * }');
  emit(' * ```');
  emit(' */');
  emit(`export type Method =\n${methods.map((x) => `  | ${x.type}`).join('\n')};`);
  emit();
  emit('/**');
  emit(' * Every method, as given to the encoder: arguments the spec gives a default may be left out.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * const declare: MethodInit = { name: 'queue.declare', queue: 'jobs', durable: true };");
  emit(' * writer.writeMethod(1, declare);');
  emit(' * ```');
  emit(' */');
  emit(`export type MethodInit =\n${methods.map((x) => `  | ${x.type}Init`).join('\n')};`);
  emit();
  emit("/** A method's full name, such as `'basic.publish'`. */");
  emit("export type MethodName = Method['name'];");
  emit('/** The decoded method with a given name. */');
  emit('export type MethodOf<N extends MethodName> = Extract<Method, { readonly name: N }>;');
  emit('/** The encoder input for a method with a given name. */');
  emit('export type MethodInitOf<N extends MethodName> = Extract<MethodInit, { readonly name: N }>;');
  emit();
  emit('/** What the protocol says about one method. */');
  emit('export interface MethodInfo {');
  emit('  readonly classId: number;');
  emit('  readonly methodId: number;');
  emit('  /** The sender waits for one of `replies` before its next synchronous method on the channel. */');
  emit('  readonly synchronous: boolean;');
  emit('  /** Followed by a content header and body frames. */');
  emit('  readonly content: boolean;');
  emit('  /** The methods that answer it (empty for asynchronous methods). */');
  emit('  readonly replies: readonly MethodName[];');
  emit('}');
  emit();
  // The method table that method-codec.ts reads (its format is described there); checked below by
  // reading it back with the same function the codec uses.
  // One piece per class and per method, so that each method reads on a line of its own.
  const tablePieces = spec.classes.flatMap((cls, i) => [
    `${i === 0 ? '' : ';'}${cls.name} ${cls.id}`,
    ...cls.methods.map((m) => {
      const full = `${cls.name}.${m.name}`;
      const args = methods.find((x) => x.full === full)!.args;
      const flags = `${m.synchronous ? 's' : ''}${m.content ? 'c' : ''}`;
      return [`,${m.name} ${m.id}${flags}`, ...args.map(tableArgument)].join(' ');
    }),
  ]);
  checkTable(tablePieces.join(''), methods, names);

  emit('/**');
  emit(' * Every method in one compact table, read once at load (see `method-codec.ts` for its format).');
  emit(' * The hot methods also have the generated code below; the others are encoded and decoded from it.');
  emit(' * @internal');
  emit(' */');
  emit('export const METHOD_TABLE = parseMethodTable(');
  tablePieces.forEach((piece, i) => {
    const indent = piece.startsWith(',') ? '    ' : '  ';
    emit(`${indent}'${piece}'${i < tablePieces.length - 1 ? ' +' : ','}`);
  });
  emit(');');
  emit();
  emit('/**');
  emit(' * Ids, synchronicity, content and replies of every method, by name.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * METHOD_INFO['basic.get'].replies; // ['basic.get-ok', 'basic.get-empty']");
  emit(' * ```');
  emit(' */');
  emit(
    'export const METHOD_INFO = METHOD_TABLE.info as unknown as Readonly<Record<MethodName, MethodInfo>>;',
  );
  emit();
  emit("/** The wire type of a method argument or property, after resolving the spec's domains. */");
  emit(
    "export type ArgumentType = 'octet' | 'short' | 'long' | 'longlong' | 'bit' | 'shortstr' | 'longstr' | 'longbytes' | 'table' | 'timestamp';",
  );
  emit('/** One argument of a method, in wire order. */');
  emit('export interface ArgumentInfo {');
  emit('  /** The camelCase property name. */');
  emit('  readonly name: string;');
  emit('  /** The name in the specification. */');
  emit('  readonly specName: string;');
  emit('  readonly type: ArgumentType;');
  emit('  /** The default the encoder uses when the argument is left out; absent for required arguments. */');
  emit('  readonly default?: unknown;');
  emit('}');
  emit();
  emit('/**');
  emit(' * The arguments of every method, in wire order.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * METHOD_ARGUMENTS['basic.ack'].map((a) => a.name); // ['deliveryTag', 'multiple']");
  emit(' * ```');
  emit(' */');
  emit(
    'export const METHOD_ARGUMENTS = /* @__PURE__ */ methodArguments(METHOD_TABLE) as unknown as Readonly<Record<MethodName, readonly ArgumentInfo[]>>;',
  );
  emit();
  emit('/**');
  emit(' * The name of the method with these ids, or undefined when the spec has none.');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * methodName(60, 60); // 'basic.deliver'");
  emit(' * ```');
  emit(' */');
  emit('export function methodName(classId: number, methodId: number): MethodName | undefined {');
  emit('  return METHOD_TABLE.byId.get((classId << 16) | methodId)?.name as MethodName | undefined;');
  emit('}');
  emit();
  emit('/**');
  emit(' * True when the method with these ids is followed by content (a header and body frames).');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(' * isContentMethod(60, 40); // true: basic.publish');
  emit(' * ```');
  emit(' */');
  emit('export function isContentMethod(classId: number, methodId: number): boolean {');
  const contentIds = methods.filter((x) => x.m.content).map((x) => hex((x.cls.id << 16) | x.m.id, 8));
  emit(`  const id = (classId << 16) | methodId;`);
  emit(`  return ${contentIds.map((id) => `id === ${id}`).join(' || ')};`);
  emit('}');
  emit();

  emit('/**');
  emit(' * Decodes the arguments of the method with these ids from `r` (positioned after the ids).');
  emit(' * Returns undefined for ids the specification does not define.');
  emit(' * @internal');
  emit(' */');
  emit(
    'export function decodeMethodArgs(r: Reader, classId: number, methodId: number): Method | undefined {',
  );
  emit('  const id = (classId << 16) | methodId;');
  emit('  switch (id) {');
  for (const { cls, m, full, args } of hotDecode) {
    emit(`    case ${hex((cls.id << 16) | m.id, 8)}: {`);
    const fields: string[] = [];
    let bitOctet = 0;
    for (const g of fieldGroups(args)) {
      if (Array.isArray(g)) {
        const v = `bits${bitOctet++}`;
        emit(`      const ${v} = r.u8();`);
        g.forEach((a, i) => {
          fields.push(`${a.prop}: (${v} & ${1 << i}) !== 0`);
        });
      } else {
        const v = `f${fields.length}`;
        emit(`      const ${v} = ${READERS[g.type]!(g)};`);
        fields.push(`${g.prop}: ${v}`);
      }
    }
    emit(`      return { name: '${full}'${fields.map((f) => `, ${f}`).join('')} };`);
    emit('    }');
  }
  emit('  }');
  emit('  const def = METHOD_TABLE.byId.get(id);');
  emit('  return def === undefined ? undefined : (decodeArguments(r, def) as unknown as Method);');
  emit('}');
  emit();

  emit('/**');
  emit(
    ' * Encodes a method (its class and method ids, then its arguments) into `w`. Arguments left out take',
  );
  emit(' * the default the specification gives them.');
  emit(' * @internal');
  emit(' */');
  emit('export function encodeMethod(w: Writer, m: MethodInit): void {');
  emit('  switch (m.name) {');
  for (const { cls, m, full, args } of hotEncode) {
    emit(`    case '${full}': {`);
    emit(`      w.u32(${hex((cls.id << 16) | m.id, 8)});`);
    for (const g of fieldGroups(args)) {
      if (Array.isArray(g)) {
        const parts = g.map((a, i) => {
          const v = a.hasDefault ? `(m.${a.prop} ?? ${literal(a.default)})` : `m.${a.prop}`;
          return `(${v} ? ${1 << i} : 0)`;
        });
        emit(`      w.u8(${parts.join(' | ')});`);
      } else {
        const expr = g.hasDefault ? `m.${g.prop} ?? ${literal(g.default)}` : `m.${g.prop}`;
        emit(`      ${WRITERS[g.type]!(expr, g)}`);
      }
    }
    emit('      return;');
    emit('    }');
  }
  emit('  }');
  emit('  const def = METHOD_TABLE.byName.get(m.name);');
  emit(
    `  if (def === undefined) throw new TypeError(\`unknown method \${String((m as { name?: unknown }).name)}\`);`,
  );
  emit('  encodeArguments(w, def, m as unknown as Record<string, unknown>);');
  emit('}');
  emit();

  const basic = spec.classes.find((c) => c.name === 'basic');
  const props = basic?.properties ?? [];
  if (props.length > 14) throw new Error('more than 14 basic properties need a continuation flag word');
  emit('/**');
  emit(' * The message properties carried by a content header (the `basic` class properties).');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(
    " * const properties: BasicProperties = { contentType: 'application/json', deliveryMode: 2, headers: { tenant: 'acme' } };",
  );
  emit(' * ```');
  emit(' */');
  emit('export interface BasicProperties {');
  for (const p of props) emit(`  ${camel(p.name)}?: ${TS_TYPES[p.type]![1]} | undefined;`);
  emit('}');
  emit();
  emit('/**');
  emit(' * The property names in wire order (property flag bit 15 first).');
  emit(' *');
  emit(' * @example');
  emit(' * ```ts');
  emit(" * BASIC_PROPERTY_NAMES[0]; // 'contentType'");
  emit(' * ```');
  emit(' */');
  emit(
    `export const BASIC_PROPERTY_NAMES = [${props.map((p) => `'${camel(p.name)}'`).join(', ')}] as const;`,
  );
  emit();
  emit('/**');
  emit(' * Writes the property flags word and the present properties. A property is present unless it is');
  emit(' * undefined.');
  emit(' * @internal');
  emit(' */');
  emit('export function encodeBasicProperties(w: Writer, p: BasicProperties): void {');
  emit('  w.ensure(2);');
  emit('  const flagsAt = w.pos;');
  emit('  w.pos += 2;');
  emit('  let flags = 0;');
  props.forEach((p, i) => {
    const prop = camel(p.name);
    const bit = 1 << (15 - i);
    const arg = { name: p.name, prop, type: p.type, default: undefined, hasDefault: false };
    emit(`  if (p.${prop} !== undefined) {`);
    emit(`    flags |= ${hex(bit, 4)};`);
    emit(`    ${WRITERS[p.type]!(`p.${prop}`, arg)}`);
    emit('  }');
  });
  emit('  w.buf[flagsAt] = flags >>> 8;');
  emit('  w.buf[flagsAt + 1] = flags & 0xff;');
  emit('}');
  emit();
  const unused = 0xffff & ~props.reduce((acc, _p, i) => acc | (1 << (15 - i)), 0) & ~1;
  emit('/**');
  emit(
    ' * Reads the property flags word(s) and the properties they mark present. Returns undefined when the',
  );
  emit(' * flags mark a property this class does not define (the caller raises a syntax error).');
  emit(' * @internal');
  emit(' */');
  emit('export function decodeBasicProperties(r: Reader): BasicProperties | undefined {');
  emit('  const flags = r.u16();');
  emit(`  if ((flags & ${hex(unused, 4)}) !== 0) return undefined;`);
  emit('  if ((flags & 1) !== 0) {');
  emit('    // A continuation word may follow; no property lives there for this class, so it must be empty.');
  emit('    let more = 1;');
  emit('    while ((more & 1) !== 0) {');
  emit('      more = r.u16();');
  emit('      if ((more & 0xfffe) !== 0) return undefined;');
  emit('    }');
  emit('  }');
  emit('  const p: BasicProperties = {};');
  emit('  if (flags === 0) return p;');
  props.forEach((p, i) => {
    const prop = camel(p.name);
    const arg = { name: p.name, prop, type: p.type, default: undefined, hasDefault: false };
    if (prop === 'headers' && p.type === 'table') {
      // A headers table that cannot be decoded is skipped (its length is known), not fatal: the
      // reader keeps the problem for the decoder to hand over with the message.
      emit(`  if ((flags & ${hex(1 << (15 - i), 4)}) !== 0) {`);
      emit('    const headers = r.headersTable();');
      emit('    if (headers !== undefined) p.headers = headers;');
      emit('  }');
    } else {
      emit(`  if ((flags & ${hex(1 << (15 - i), 4)}) !== 0) p.${prop} = ${READERS[p.type]!(arg)};`);
    }
  });
  emit('  return p;');
  emit('}');
  emit();
  return out.join('\n');
}

/**
 * Renders every generated file from the text of the JSON specification: a map from the path of each
 * file (relative to the repository root, as in {@link GENERATED_FILES}) to its text. Pure: the same
 * spec text always gives the same texts, and nothing is read or written.
 *
 * @example
 * ```ts
 * const files = generateFiles(readFileSync(resolve(ROOT, SPEC_FILE), 'utf8'));
 * files['src/protocol/constants.ts'].startsWith('// AMQP 0-9-1 constants'); // true
 * ```
 */
export function generateFiles(specText: string): Record<(typeof GENERATED_FILES)[number], string> {
  const spec = JSON.parse(specText) as Spec;
  return {
    'src/protocol/constants.ts': generateConstants(spec, specText),
    'src/protocol/generated.ts': generateMethods(spec, specText),
  };
}

function main(): void {
  const text = readFileSync(resolve(ROOT, SPEC_FILE), 'utf8');
  for (const [path, content] of Object.entries(generateFiles(text))) {
    writeFileSync(resolve(ROOT, path), content);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
