/**
 * Import cycles among the library's modules (`src/` and `operators/`), type-only imports included: two
 * modules that import each other, even for types, cannot be understood, moved or split apart alone.
 * `npx tsx scripts/import-cycles.ts` prints the same list. The cycle finder itself is tested below on
 * small graphs written to a temporary directory.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  buildImportGraph,
  findCycles,
  formatCycle,
  type ImportGraph,
  parseImports,
  stronglyConnectedComponents,
} from '../../scripts/lib/import-graph.js';

const ROOT = join(__dirname, '..', '..');

describe('import cycles in src/ and operators/', () => {
  it('has none (type-only imports included)', () => {
    const { graph, unresolved } = buildImportGraph(ROOT, ['src', 'operators']);
    expect(graph.size).toBeGreaterThan(10);
    expect(unresolved).toEqual([]);
    const cycles = findCycles(graph).map(formatCycle);
    expect(cycles).toEqual([]);
  });
});

describe('the cycle finder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rxamqp-cycles-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (files: Record<string, string>): void => {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
  };

  it('parses every kind of import and knows which bring only types', () => {
    const source = [
      "import a from './a.js';",
      "import type { B } from './b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, e } from './e.js';",
      "export * from './f.js';",
      "export type { G } from './g.js';",
      "import './h.js';",
      "import i = require('./i.js');",
      "const j = () => import('./j.js');",
      "let k: import('./k.js').K;",
      "import { readFileSync } from 'node:fs';",
      "export { l } from './l.js';",
      "export { type M } from './m.js';",
      "import {} from './n.js';",
      'const notAnImport = \'import x from "./nope.js"\';',
    ].join('\n');
    const imports = parseImports('x.ts', source).map((i) => [i.specifier, i.typeOnly, i.line]);
    expect(imports).toEqual([
      ['./a.js', false, 1],
      ['./b.js', true, 2],
      ['./c.js', true, 3],
      ['./e.js', false, 4],
      ['./f.js', false, 5],
      ['./g.js', true, 6],
      ['./h.js', false, 7],
      ['./i.js', false, 8],
      ['./j.js', false, 9],
      ['./k.js', true, 10],
      ['node:fs', false, 11],
      ['./l.js', false, 12],
      ['./m.js', true, 13],
      ['./n.js', false, 14],
    ]);
  });

  it('finds no cycle in a DAG, and resolves .js to .ts and directories to index.ts', () => {
    write({
      'lib/a.ts':
        "import { b } from './b.js';\nimport { c } from './sub/index.js';\nimport { d } from './d';",
      'lib/b.ts': "import { c } from './sub/index.js';\nexport const b = 1;",
      'lib/sub/index.ts': "import { rx } from 'rxjs';\nexport const c = 1;",
      'lib/d/index.ts': "import { c } from '../sub/index.js';\nexport const d = 1;",
      'lib/types.d.ts': "import { a } from './a.js';",
    });
    const { graph, unresolved } = buildImportGraph(dir, ['lib']);
    expect(unresolved).toEqual([]);
    expect([...graph.keys()]).toEqual(['lib/a.ts', 'lib/b.ts', 'lib/d/index.ts', 'lib/sub/index.ts']);
    expect(graph.get('lib/a.ts')!.map((e) => e.to)).toEqual([
      'lib/b.ts',
      'lib/sub/index.ts',
      'lib/d/index.ts',
    ]);
    expect(findCycles(graph)).toEqual([]);
    expect(stronglyConnectedComponents(graph).every((c) => c.length === 1)).toBe(true);
  });

  it('finds a cycle through a type-only import, a self-import and a longer cycle, and ignores other roots', () => {
    write({
      'lib/options.ts': "import type { Transport } from './transport.js';\nexport interface Options {}",
      'lib/transport.ts': "import type { Options } from './options.js';\nexport interface Transport {}",
      'lib/self.ts': "export * from './self.js';",
      'lib/x.ts': "import { y } from './y.js';\nexport const x = 1;",
      'lib/y.ts': "\n\nexport { z } from './z.js';\nexport const y = 1;",
      'lib/z.ts':
        "import { x } from './x.js';\nimport { outside } from '../other/o.js';\nexport const z = 1;",
      'other/o.ts': "import { z } from '../lib/z.js';\nexport const outside = 1;",
      'lib/broken.ts': "import { gone } from './gone.js';",
    });
    const { graph, unresolved } = buildImportGraph(dir, ['lib']);
    expect(unresolved).toEqual([{ from: 'lib/broken.ts', specifier: './gone.js', line: 1 }]);
    expect(findCycles(graph).map(formatCycle)).toEqual([
      'lib/self.ts -[l.1]-> lib/self.ts',
      'lib/options.ts -[type l.1]-> lib/transport.ts -[type l.1]-> lib/options.ts',
      'lib/x.ts -[l.1]-> lib/y.ts -[l.3]-> lib/z.ts -[l.1]-> lib/x.ts',
    ]);
  });

  it('lists a shortest cycle through every import on a cycle not listed yet, each cycle once', () => {
    // a -> b -> a, b -> c -> a, and c -> b: three edges' cycles cover every edge of the component.
    const edge = (to: string, line = 1) => ({ to, specifier: `./${to}`, typeOnly: false, line });
    const graph: ImportGraph = new Map([
      ['a', [edge('b')]],
      ['b', [edge('a'), edge('c', 2)]],
      ['c', [edge('a'), edge('b', 2)]],
      ['d', [edge('a')]],
    ]);
    expect(stronglyConnectedComponents(graph)).toEqual([['a', 'b', 'c'], ['d']]);
    const cycles = findCycles(graph).map((c) => c.modules.join(' '));
    expect(cycles).toEqual(['a b', 'b c', 'a b c']);
  });

  it('does not overflow the stack on a long chain', () => {
    const n = 5000;
    const graph: ImportGraph = new Map();
    for (let i = 0; i < n; i++) {
      graph.set(`m${i}`, [{ to: `m${(i + 1) % n}`, specifier: '', typeOnly: false, line: 1 }]);
    }
    const cycles = findCycles(graph);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]!.modules).toHaveLength(n);
  });
});
