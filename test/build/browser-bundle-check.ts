/**
 * Bundles entry points with esbuild for the browser and reports everything that ties the bundle to
 * Node.js. Used by `browser-bundle.test.ts`, on the library's browser entries and on fixtures.
 *
 * What it reports (each is a problem for a browser bundle):
 *
 * 1. `builtin`: any import (static, dynamic, `require`, `export ... from`) of a Node built-in module,
 *    with or without the `node:` prefix, subpaths included (`fs`, `node:net`, `util/types`, `buffer/`,
 *    `process/browser`...). An esbuild plugin sees every import before it is resolved, marks built-ins
 *    external (so that the build goes on and every one is listed) and records them. Each is reported with
 *    the chain of imports from an entry point to the module that imports it.
 * 2. `foreign`: any module in the bundle from outside the allowed roots (for the library: `src/` and
 *    `operators/`; `rxjs` is external). This is how a polyfill (`buffer`, `events`, `readable-stream`,
 *    `process`...) that a bundler would quietly pull from node_modules is caught: rxamqp has no runtime
 *    dependency besides rxjs, so nothing else belongs in its bundle.
 * 3. `global`: a free reference to a Node-only global (`process`, `Buffer`, `global`, `__dirname`,
 *    `setImmediate`...): one that no local binding shadows. esbuild's `define` replaces
 *    exactly those (a local variable named `process` and a property such as `globalThis.Buffer` are left
 *    alone) with a marker identifier, which is then searched in the output. So `globalThis.process?.env`
 *    and `const { Buffer } = globalThis` are fine, `typeof Buffer` and `process.env.X` are not (the
 *    automatic `process.env.NODE_ENV` define of esbuild for the browser is overridden too: rxamqp must
 *    not depend on a bundler replacing it).
 */
import { builtinModules } from 'node:module';
import { relative, resolve, sep } from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';

/**
 * Node-only globals that a browser does not have. `require` is not among them: esbuild must see
 * `require('x')` as an import (rule 1 catches `require('fs')`).
 */
export const NODE_GLOBALS = [
  'process',
  'Buffer',
  'global',
  '__dirname',
  '__filename',
  'setImmediate',
  'clearImmediate',
] as const;

const MARKER_PREFIX = '__rxamqp_free_global_';
const MARKER_RE = new RegExp(`${MARKER_PREFIX}(\\w+?)__`, 'g');

const BUILTINS = new Set(builtinModules);

/** True for a specifier naming a Node built-in: `node:*`, or a built-in's name or a subpath of one. */
export function isNodeBuiltin(specifier: string): boolean {
  if (specifier.startsWith('node:')) return true;
  if (BUILTINS.has(specifier)) return true;
  const first = specifier.split('/')[0]!;
  return BUILTINS.has(first);
}

export interface BundleProblem {
  kind: 'builtin' | 'foreign' | 'global';
  /** One line for a person: what, where, and how an entry point reaches it. */
  message: string;
}

export interface BundleCheckOptions {
  /** Directory the entry points and allowed roots are relative to. */
  baseDir: string;
  /** Entry points, relative to baseDir. */
  entryPoints: string[];
  /** Directories (relative to baseDir, `/`-separated, no trailing slash) whose modules may be bundled. */
  allowedRoots: string[];
  /** Packages left out of the bundle (their own subpaths too). */
  external?: string[];
}

export interface BundleCheckResult {
  problems: BundleProblem[];
  /** Every module bundled (relative to baseDir), to check that the check saw something. */
  inputs: string[];
}

function posix(path: string): string {
  return path.split(sep).join('/');
}

/**
 * For each module of the bundle, the module that first imported it on a breadth-first walk from the
 * entry points: following it back gives a shortest chain of imports from an entry.
 */
function importParents(metafile: Metafile, entries: string[]): Map<string, string | undefined> {
  const parent = new Map<string, string | undefined>();
  const queue: string[] = [];
  for (const entry of entries) {
    if (metafile.inputs[entry] && !parent.has(entry)) {
      parent.set(entry, undefined);
      queue.push(entry);
    }
  }
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const imp of metafile.inputs[node]?.imports ?? []) {
      if (imp.external || parent.has(imp.path)) continue;
      parent.set(imp.path, node);
      queue.push(imp.path);
    }
  }
  return parent;
}

function chainTo(parent: Map<string, string | undefined>, module: string): string {
  const chain: string[] = [];
  for (let m: string | undefined = module; m !== undefined; m = parent.get(m)) chain.unshift(m);
  if (!parent.has(module)) chain.unshift('(not reached from an entry)');
  return chain.join(' > ');
}

/** The module whose code contains output offset `offset`: esbuild heads each module's code with `// path`. */
function moduleAt(output: string, offset: number): string {
  const before = output.slice(0, offset);
  const matches = [...before.matchAll(/^\/\/ (\S.*)$/gm)];
  return matches.length > 0 ? matches[matches.length - 1]![1]!.trim() : '(unknown module)';
}

export async function checkBrowserBundle(options: BundleCheckOptions): Promise<BundleCheckResult> {
  const baseDir = resolve(options.baseDir);
  const builtinImports: { specifier: string; importer: string; kind: string }[] = [];
  const recordBuiltins: Plugin = {
    name: 'record-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (!isNodeBuiltin(args.path)) return undefined;
        builtinImports.push({
          specifier: args.path,
          importer: posix(relative(baseDir, args.importer)),
          kind: args.kind,
        });
        return { path: args.path, external: true };
      });
    },
  };
  const external = (options.external ?? []).flatMap((name) => [name, `${name}/*`]);
  const define = Object.fromEntries(NODE_GLOBALS.map((name) => [name, `${MARKER_PREFIX}${name}__`]));

  const result = await build({
    absWorkingDir: baseDir,
    entryPoints: options.entryPoints,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    outdir: 'out',
    metafile: true,
    minify: false,
    external,
    define,
    plugins: [recordBuiltins],
    logLevel: 'silent',
  });

  const metafile = result.metafile;
  const entries = options.entryPoints.map((e) => posix(e));
  const parent = importParents(metafile, entries);
  const problems: BundleProblem[] = [];

  const seenBuiltins = new Set<string>();
  for (const imp of builtinImports) {
    const key = `${imp.importer}\0${imp.specifier}`;
    if (seenBuiltins.has(key)) continue;
    seenBuiltins.add(key);
    problems.push({
      kind: 'builtin',
      message: `Node built-in '${imp.specifier}' (${imp.kind}) imported by ${chainTo(parent, imp.importer)}`,
    });
  }

  const allowed = options.allowedRoots.map((root) => `${root}/`);
  const inputs = Object.keys(metafile.inputs).sort();
  for (const input of inputs) {
    if (allowed.some((root) => input.startsWith(root))) continue;
    problems.push({
      kind: 'foreign',
      message: `module from outside ${options.allowedRoots.join(', ')} in the bundle (a polyfill or dependency): ${chainTo(parent, input)}`,
    });
  }

  const seenGlobals = new Set<string>();
  for (const file of result.outputFiles) {
    for (const match of file.text.matchAll(MARKER_RE)) {
      const module = moduleAt(file.text, match.index);
      const key = `${module}\0${match[1]}`;
      if (seenGlobals.has(key)) continue;
      seenGlobals.add(key);
      problems.push({
        kind: 'global',
        message: `free Node global '${match[1]}' used in ${chainTo(parent, module)}`,
      });
    }
  }

  problems.sort((a, b) => (a.kind + a.message < b.kind + b.message ? -1 : 1));
  return { problems, inputs };
}
