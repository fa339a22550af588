/**
 * The dependency rules of src/config and src/transport, read from the sources: the configuration
 * imports no Node built-in (it runs in any runtime; Node's services come in a Platform), the transport
 * seam imports nothing from the rest of the client, and there is no import cycle among them (type
 * imports count: a cycle of types is still a cycle of modules to understand).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');

interface Import {
  readonly specifier: string;
  /** `import type`, `export type` or an `import('...')` type query: erased at run time. */
  readonly typeOnly: boolean;
}

function importsOf(file: string): Import[] {
  // Comments go first: doc examples are full of imports.
  const source = readFileSync(join(ROOT, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const found: Import[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)) {
    found.push({ specifier: m[3]!, typeOnly: m[2] !== undefined });
  }
  for (const m of source.matchAll(/import\('([^']+)'\)/g)) found.push({ specifier: m[1]!, typeOnly: true });
  return found;
}

/** `src/...ts` for a relative specifier, else the specifier itself. */
function target(from: string, specifier: string): string {
  if (!specifier.startsWith('.')) return specifier;
  return normalize(join(dirname(from), specifier)).replace(/\.js$/, '.ts');
}

const filesIn = (dir: string): string[] =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${dir}/${f}`);

const CONFIG = filesIn('src/config');
const TRANSPORT = filesIn('src/transport');

describe('dependency rules', () => {
  it('src/config imports no Node built-in at run time', () => {
    for (const file of CONFIG) {
      const runtime = importsOf(file).filter((i) => !i.typeOnly && i.specifier.startsWith('node:'));
      expect({ file, runtime }).toEqual({ file, runtime: [] });
    }
  });

  it('only node.ts, tcp.ts and tls.ts of src/transport import Node built-ins', () => {
    for (const file of TRANSPORT) {
      if (/\/(node|tcp|tls)\.ts$/.test(file)) continue;
      const node = importsOf(file).filter((i) => !i.typeOnly && i.specifier.startsWith('node:'));
      expect({ file, node }).toEqual({ file, node: [] });
    }
  });

  it('the transport seam imports nothing from the client', () => {
    const imports = importsOf('src/transport/transport.ts').filter((i) => i.specifier.startsWith('.'));
    expect(imports).toEqual([]);
  });

  it('no import cycle among src/config and src/transport, type imports included', () => {
    const files = new Set([...CONFIG, ...TRANSPORT]);
    const edges = new Map<string, string[]>();
    for (const file of files) {
      edges.set(
        file,
        importsOf(file)
          .map((i) => target(file, i.specifier))
          .filter((t) => files.has(t)),
      );
    }
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative('src', f)).join(' -> '));
        return;
      }
      state.set(file, 'visiting');
      for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('finds imports at all (the rules above are not vacuous)', () => {
    expect(importsOf('src/config/options.ts').map((i) => i.specifier)).toContain('../transport/transport.js');
    expect(importsOf('src/transport/node.ts')).toContainEqual({ specifier: 'node:fs', typeOnly: false });
  });
});
