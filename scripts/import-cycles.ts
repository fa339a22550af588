/**
 * Lists the import cycles among the library's modules (`src/` and `operators/`), type-only imports
 * included (see `scripts/lib/import-graph.ts`). Exits 1 when there is at least one.
 *
 * Usage: `npx tsx scripts/import-cycles.ts [dir ...]` (directories relative to the repository; default
 * `src operators`), or `npm run cycles`. `test/build/import-cycles.test.ts` asserts the same.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildImportGraph,
  findCycles,
  formatCycle,
  stronglyConnectedComponents,
} from './lib/import-graph.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dirs = process.argv.slice(2);
const roots = dirs.length > 0 ? dirs : ['src', 'operators'];

const { graph, unresolved } = buildImportGraph(ROOT, roots);
for (const u of unresolved)
  console.warn(`warning: ${u.from}:${u.line} imports '${u.specifier}', which resolves to no file`);

const edgeCount = [...graph.values()].reduce((n, edges) => n + edges.length, 0);
const components = stronglyConnectedComponents(graph).filter(
  (c) => c.length > 1 || (graph.get(c[0]!) ?? []).some((e) => e.to === c[0]),
);
const cycles = findCycles(graph);
console.log(`${graph.size} modules, ${edgeCount} imports between them, in ${roots.join(', ')}`);
if (cycles.length === 0) {
  console.log('no import cycles');
} else {
  console.log(`${components.length} group(s) of modules that import each other:`);
  for (const c of components) console.log(`  {${c.join(', ')}}`);
  console.log(`${cycles.length} cycle(s), the shortest through each import that lies on one:`);
  for (const cycle of cycles) console.log(`  ${formatCycle(cycle)}`);
  process.exitCode = 1;
}
