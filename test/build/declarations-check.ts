/**
 * Emits the library's declarations as the build does (tsconfig.build.json, `stripInternal` included)
 * into a temporary package, and type-checks a consumer against them. Used by `declarations.test.ts`.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import * as ts from 'typescript';

export interface DeclarationCheck {
  /** The temporary directory holding `pkg/` (the package with its emitted declarations) and `consumer/`. */
  dir: string;
  /** Emitted `.d.ts` files, relative to `pkg/` (for example `dist/esm/src/index.d.ts`). */
  declarations: string[];
  /** Errors of the declaration emit itself, formatted. */
  emitErrors: string[];
  /** `file:line: name` for every emitted declaration still marked `@internal` (see {@link internalDeclarations}). */
  internalLeft: string[];
  /** The module specifiers the consumer imports: the package's name and each subpath export. */
  entries: string[];
  /** Errors of the consumer's type check (skipLibCheck off), formatted with paths relative to `pkg/`. */
  consumerErrors: string[];
  cleanup(): void;
}

function posix(path: string): string {
  return path.split(sep).join('/');
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

/**
 * Parsed declaration files of TypeScript's libs and of node_modules (`@types/node`, rxjs), shared by the
 * programs this module creates: each would otherwise parse them again.
 */
const libCache = new Map<string, ts.SourceFile>();

function cachingHost(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    if (!fileName.includes('/node_modules/') || !fileName.endsWith('.d.ts')) {
      return getSourceFile(fileName, languageVersion, onError, shouldCreate);
    }
    const key = `${fileName}\0${JSON.stringify(languageVersion)}`;
    let file = libCache.get(key);
    if (file === undefined) {
      file = getSourceFile(fileName, languageVersion, onError, shouldCreate);
      if (file !== undefined) libCache.set(key, file);
    }
    return file;
  };
  return host;
}

function format(diagnostics: readonly ts.Diagnostic[], baseDir: string): string[] {
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return `error TS${d.code}: ${text}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    let where = posix(relative(baseDir, d.file.fileName));
    if (where.startsWith('../')) where = d.file.fileName;
    return `${where}(${line + 1},${character + 1}): error TS${d.code}: ${text}`;
  });
}

/** The name of a declaration, for a report. */
function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const name = (node as { name?: ts.Node }).name;
  if (name) return name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (ts.isVariableStatement(node))
    return node.declarationList.declarations.map((d) => d.name.getText(sf)).join(', ');
  return ts.SyntaxKind[node.kind];
}

/**
 * `file:line: name` for every declaration of a `.d.ts` (statement, class or interface member, enum
 * member, parameter, type literal member) whose own doc comment (the last comment before it, the rule
 * `stripInternal` applies) has an `@internal` tag: what `stripInternal` should have removed. A module's
 * header comment (`@module @internal`) is not a declaration's, and is left alone.
 */
export function internalDeclarations(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    const isDeclaration =
      ts.isStatement(node) ||
      ts.isClassElement(node) ||
      ts.isTypeElement(node) ||
      ts.isEnumMember(node) ||
      ts.isParameter(node);
    if (isDeclaration && !ts.isImportDeclaration(node) && !ts.isExportDeclaration(node)) {
      const ranges = ts.getLeadingCommentRanges(text, node.pos) ?? [];
      const own = ranges[ranges.length - 1];
      if (own && /@internal\b/.test(text.slice(own.pos, own.end))) {
        const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
        found.push(`${fileName}:${line}: ${nameOf(node, sf)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/**
 * The subpath exports of a package.json that have types under some condition (`types` at any depth,
 * so that `node` / `browser` / `default` conditions nesting `import` / `require` count): `.` and
 * `./operators` give `name` and `name/operators`.
 */
export function typedEntries(pkg: { name: string; exports?: Record<string, unknown> }): string[] {
  const hasTypes = (target: unknown): boolean =>
    typeof target === 'object' &&
    target !== null &&
    Object.entries(target as Record<string, unknown>).some(
      ([key, value]) => (key === 'types' && typeof value === 'string') || hasTypes(value),
    );
  const entries: string[] = [];
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (hasTypes(target)) entries.push(subpath === '.' ? pkg.name : `${pkg.name}${subpath.slice(1)}`);
  }
  return entries;
}

export interface DeclarationCheckOptions {
  /** The build's tsconfig, relative to the root. Default `tsconfig.build.json`. */
  buildConfig?: string;
  /** `types` of the consumer's compiler options. Default `['node']`: a Node.js consumer. */
  consumerTypes?: string[];
}

export function checkDeclarations(root: string, opts: DeclarationCheckOptions = {}): DeclarationCheck {
  const buildConfig = opts.buildConfig ?? 'tsconfig.build.json';
  const dir = mkdtempSync(join(tmpdir(), 'rxamqp-dts-'));
  const pkgDir = join(dir, 'pkg');
  const consumerDir = join(dir, 'consumer');
  mkdirSync(pkgDir);
  mkdirSync(join(consumerDir, 'node_modules'), { recursive: true });

  // 1. Emit the declarations as the build does, into pkg/<the build's outDir>.
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, buildConfig), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error(`cannot read ${buildConfig}`);
  if (parsed.errors.length > 0) throw new Error(format(parsed.errors, root).join('\n'));
  const outDir = relative(root, parsed.options.outDir ?? join(root, 'dist'));
  const options: ts.CompilerOptions = {
    ...parsed.options,
    outDir: join(pkgDir, outDir),
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    sourceMap: false,
    noEmit: false,
    incremental: false,
  };
  const program = ts.createProgram({ rootNames: parsed.fileNames, options, host: cachingHost(options) });
  const emitted = program.emit();
  const emitErrors = format(emitted.diagnostics, root);

  const declarations = listFiles(pkgDir)
    .filter((f) => f.endsWith('.d.ts'))
    .map((f) => posix(relative(pkgDir, f)))
    .sort();
  const internalLeft = declarations.flatMap((file) =>
    internalDeclarations(file, readFileSync(join(pkgDir, file), 'utf8')),
  );

  // 2. The package around them: its package.json (for "exports"), and its dependencies' node_modules.
  const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports?: Record<string, unknown>;
  };
  writeFileSync(join(pkgDir, 'package.json'), JSON.stringify(packageJson, null, 2));
  symlinkSync(join(root, 'node_modules'), join(pkgDir, 'node_modules'), 'dir');

  // 3. A consumer (an ES module) that imports every typed entry of the package.
  const entries = typedEntries(packageJson);
  symlinkSync(pkgDir, join(consumerDir, 'node_modules', packageJson.name), 'dir');
  writeFileSync(join(consumerDir, 'package.json'), JSON.stringify({ type: 'module' }));
  const consumerSource = [
    ...entries.map((e, i) => `import * as entry${i} from '${e}';`),
    `export type Entries = [${entries.map((_, i) => `typeof entry${i}`).join(', ')}];`,
    '',
  ].join('\n');
  const consumerFile = join(consumerDir, 'index.ts');
  writeFileSync(consumerFile, consumerSource);
  const consumerOptions: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    // The DOM's types too: `rxamqp/angular`'s declarations import @angular/core's, which use them.
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    // Every declaration file is checked (ours, and rxjs's and @types/node's, which should pass), except
    // TypeScript's own lib files.
    skipLibCheck: false,
    skipDefaultLibCheck: true,
    types: opts.consumerTypes ?? ['node'],
    typeRoots: [join(root, 'node_modules', '@types')],
  };
  const consumer = ts.createProgram({
    rootNames: [consumerFile],
    options: consumerOptions,
    host: cachingHost(consumerOptions),
  });
  const consumerErrors = format(ts.getPreEmitDiagnostics(consumer), pkgDir).map((line) =>
    line.replace(/^\.\.\/consumer\//, 'consumer/'),
  );

  return {
    dir,
    declarations,
    emitErrors,
    internalLeft,
    entries,
    consumerErrors,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
