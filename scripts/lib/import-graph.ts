/**
 * The import graph of a set of TypeScript modules, and its cycles. Used by `scripts/import-cycles.ts`
 * and `test/build/import-cycles.test.ts`.
 *
 * Edges come from parsing each file with the TypeScript compiler (no type checking): `import ... from`,
 * `import type ... from`, `export ... from`, `export * from`, side-effect `import '...'`,
 * `import x = require('...')`, dynamic `import('...')` and type-level `import('...').T`. Type-only imports
 * count: they are erased from the JavaScript but still couple the two modules (and a cycle through a
 * type often turns into a runtime one the day someone imports a value along the same edge).
 *
 * Only relative specifiers are followed: `./x.js` resolves to `./x.ts` (or `./x.tsx`, `./x/index.ts`);
 * packages and Node built-ins are outside the graph.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** One import from one module of the graph to another. */
export interface ImportEdge {
  /** Target module, as a key of the graph (a path relative to the graph's base directory, `/`-separated). */
  to: string;
  /** The specifier as written. */
  specifier: string;
  /** True when the import can only bring types (`import type`, `export type`, every named binding `type`, or `import('...')` in a type). */
  typeOnly: boolean;
  /** 1-based line of the import statement. */
  line: number;
}

/** Module key (relative, `/`-separated path) to its imports of other modules of the graph. */
export type ImportGraph = Map<string, ImportEdge[]>;

/** A cycle: modules in order, the last one importing the first; `edges[i]` goes from `modules[i]` to the next. */
export interface ImportCycle {
  modules: string[];
  edges: ImportEdge[];
}

const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts'];

function toKey(baseDir: string, file: string): string {
  return relative(baseDir, file).split(sep).join('/');
}

/** Every TypeScript source (not `.d.ts`) under `dir`, recursively. */
export function listSources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...listSources(path));
    } else if (
      SOURCE_EXTENSIONS.some((ext) => entry.name.endsWith(ext)) &&
      !/\.d\.[cm]?ts$/.test(entry.name)
    ) {
      out.push(path);
    }
  }
  return out.sort();
}

/** The file a relative specifier names, as NodeNext/Bundler resolution would find it for a `.ts` source; undefined when none exists. */
export function resolveRelative(fromFile: string, specifier: string): string | undefined {
  const base = resolve(dirname(fromFile), specifier);
  const candidates: string[] = [];
  const jsExt = /\.(m|c)?jsx?$/.exec(base);
  if (jsExt) {
    const stem = base.slice(0, -jsExt[0].length);
    const m = jsExt[1] ?? '';
    candidates.push(`${stem}.${m}ts`, `${stem}.${m}tsx`);
    if (m === '') candidates.push(`${stem}.tsx`);
  }
  candidates.push(base, ...SOURCE_EXTENSIONS.map((ext) => base + ext));
  candidates.push(...SOURCE_EXTENSIONS.map((ext) => join(base, `index${ext}`)));
  for (const candidate of candidates) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** A module specifier this file imports, with whether the import can only bring types. */
export interface RawImport {
  specifier: string;
  typeOnly: boolean;
  line: number;
}

/** Every import of `source` (a file's text), parsed with the TypeScript compiler. */
export function parseImports(fileName: string, source: string): RawImport[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: RawImport[] = [];
  const add = (node: ts.Node, specifierNode: ts.Node | undefined, typeOnly: boolean): void => {
    if (specifierNode && ts.isStringLiteralLike(specifierNode)) {
      const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      out.push({ specifier: specifierNode.text, typeOnly, line });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      let typeOnly = false;
      if (clause) {
        if (clause.isTypeOnly) typeOnly = true;
        // `import { type A, type B } from` with no default import: only types come in.
        else if (
          !clause.name &&
          clause.namedBindings &&
          ts.isNamedImports(clause.namedBindings) &&
          clause.namedBindings.elements.length > 0 &&
          clause.namedBindings.elements.every((e) => e.isTypeOnly)
        )
          typeOnly = true;
      }
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isExportDeclaration(node)) {
      let typeOnly = node.isTypeOnly;
      const clause = node.exportClause;
      if (!typeOnly && clause && ts.isNamedExports(clause) && clause.elements.length > 0) {
        typeOnly = clause.elements.every((e) => e.isTypeOnly);
      }
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) add(node, arg.literal, true);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length > 0
    ) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/**
 * The import graph of every TypeScript source under `roots` (directories, relative to `baseDir`). Edges
 * to files outside the roots are dropped; a relative specifier that resolves to nothing is reported in
 * `unresolved`.
 */
export function buildImportGraph(
  baseDir: string,
  roots: readonly string[],
): { graph: ImportGraph; unresolved: { from: string; specifier: string; line: number }[] } {
  const files = roots.flatMap((root) => {
    const dir = resolve(baseDir, root);
    return existsSync(dir) ? listSources(dir) : [];
  });
  const keys = new Set(files.map((f) => toKey(baseDir, f)));
  const graph: ImportGraph = new Map();
  const unresolved: { from: string; specifier: string; line: number }[] = [];
  for (const file of files) {
    const from = toKey(baseDir, file);
    const edges: ImportEdge[] = [];
    for (const imp of parseImports(file, readFileSync(file, 'utf8'))) {
      if (!imp.specifier.startsWith('.')) continue;
      const target = resolveRelative(file, imp.specifier);
      if (target === undefined) {
        unresolved.push({ from, specifier: imp.specifier, line: imp.line });
        continue;
      }
      const to = toKey(baseDir, target);
      if (keys.has(to)) edges.push({ to, specifier: imp.specifier, typeOnly: imp.typeOnly, line: imp.line });
    }
    graph.set(from, edges);
  }
  return { graph, unresolved };
}

/** The strongly connected components of the graph (Tarjan), each sorted, in a stable order. */
export function stronglyConnectedComponents(graph: ImportGraph): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowlink = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];

  // Iterative, so that a long chain of imports cannot overflow the call stack.
  const nodes = [...graph.keys()].sort();
  for (const start of nodes) {
    if (indices.has(start)) continue;
    const work: { node: string; next: number }[] = [{ node: start, next: 0 }];
    indices.set(start, index);
    lowlink.set(start, index);
    index++;
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.next < edges.length) {
        const to = edges[frame.next++]!.to;
        if (!indices.has(to)) {
          indices.set(to, index);
          lowlink.set(to, index);
          index++;
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          lowlink.set(frame.node, Math.min(lowlink.get(frame.node)!, indices.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) lowlink.set(parent.node, Math.min(lowlink.get(parent.node)!, lowlink.get(frame.node)!));
      if (lowlink.get(frame.node) === indices.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        components.push(component.sort());
      }
    }
  }
  return components.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
}

/** Shortest path from `from` to `to` using only nodes of `within`; undefined when there is none. */
function shortestPath(
  graph: ImportGraph,
  from: string,
  to: string,
  within: Set<string>,
): { from: string; edge: ImportEdge }[] | undefined {
  const previous = new Map<string, { node: string; edge: ImportEdge }>();
  const seen = new Set([from]);
  const queue = [from];
  while (queue.length > 0) {
    const node = queue.shift()!;
    if (node === to) break;
    for (const edge of graph.get(node) ?? []) {
      if (!within.has(edge.to) || seen.has(edge.to)) continue;
      seen.add(edge.to);
      previous.set(edge.to, { node, edge });
      queue.push(edge.to);
    }
  }
  if (!seen.has(to)) return undefined;
  const path: { from: string; edge: ImportEdge }[] = [];
  for (let node = to; node !== from; ) {
    const step = previous.get(node)!;
    path.unshift({ from: step.node, edge: step.edge });
    node = step.node;
  }
  return path;
}

/**
 * The import cycles of the graph: for every import that lies on a cycle (an edge inside a strongly
 * connected component, or a module importing itself) and is not on a cycle listed already, the shortest
 * cycle through it. So every import that would have to go to break the cycles appears in at least one
 * listed cycle, without enumerating the (possibly exponential) set of all elementary cycles.
 *
 * Each cycle is rotated to start at its smallest module, and the list is sorted.
 */
export function findCycles(graph: ImportGraph): ImportCycle[] {
  const cycles = new Map<string, ImportCycle>();
  const covered = new Set<ImportEdge>();
  for (const component of stronglyConnectedComponents(graph)) {
    const members = new Set(component);
    for (const from of component) {
      for (const edge of graph.get(from) ?? []) {
        if (!members.has(edge.to) || covered.has(edge)) continue;
        if (component.length === 1 && edge.to !== from) continue;
        const back = edge.to === from ? [] : shortestPath(graph, edge.to, from, members);
        if (back === undefined) continue;
        const edges = [edge, ...back.map((step) => step.edge)];
        for (const e of edges) covered.add(e);
        const modules = [from, ...back.map((step) => step.from)];
        // Rotate so that the smallest module comes first: the same cycle found from two edges is one key.
        let smallest = 0;
        for (let i = 1; i < modules.length; i++) if (modules[i]! < modules[smallest]!) smallest = i;
        const rotated = {
          modules: [...modules.slice(smallest), ...modules.slice(0, smallest)],
          edges: [...edges.slice(smallest), ...edges.slice(0, smallest)],
        };
        const key = rotated.edges.map((e, i) => `${rotated.modules[i]}>${e.to}:${e.line}`).join('|');
        if (!cycles.has(key)) cycles.set(key, rotated);
      }
    }
  }
  return [...cycles.values()].sort((a, b) => {
    const ka = a.modules.join(' ');
    const kb = b.modules.join(' ');
    return a.modules.length - b.modules.length || (ka < kb ? -1 : ka > kb ? 1 : 0);
  });
}

/**
 * One line per cycle: `a.ts -[l.3]-> b.ts -[type l.7]-> a.ts`, each arrow naming the line of the import
 * in the module on its left, and `type` when that import brings only types.
 */
export function formatCycle(cycle: ImportCycle): string {
  const parts = [cycle.modules[0]!];
  cycle.edges.forEach((edge) => {
    parts.push(`-[${edge.typeOnly ? 'type ' : ''}l.${edge.line}]-> ${edge.to}`);
  });
  return parts.join(' ');
}
