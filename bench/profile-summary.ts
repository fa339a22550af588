/**
 * `npx tsx bench/profile-summary.ts <file.cpuprofile>... [--top N] [--filter <text>] [--lines]`: the
 * functions with the most self time in a V8 CPU profile (from `node --cpu-prof` or
 * `npm run bench -- --profile`), the self time per file and, with `--lines`, the hottest source lines.
 *
 * Line figures need code that keeps its lines: a `tsc` build (`npx tsc -p bench/tsconfig.json`, then
 * run `dist/bench/bench/run.js`), whose source maps are used to point at the TypeScript lines. Under
 * tsx every module is one line, so only function figures mean something there.
 *
 * V8 counts the time of an inlined function as its caller's, with the line number of the inlined code
 * in that code's own file: run with `--no-turbo-inlining` to see time per function that actually
 * spent it (slower overall, but the attribution is exact).
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { table } from './lib/stats.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  positionTicks?: { line: number; ticks: number }[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function place(url: string): string {
  if (url === '') return '(native)';
  try {
    const path = url.startsWith('file:') ? fileURLToPath(url) : url;
    return path.startsWith('/') ? relative(process.cwd(), path) : path;
  } catch {
    return url;
  }
}

const maps = new Map<string, { map: SourceMap; dir: string } | undefined>();

/** `url:line` (1-based), mapped to the TypeScript source when the JavaScript has a source map beside it. */
function sourceLine(url: string, line: number): string {
  if (!url.startsWith('file:')) return `${place(url)}:${line}`;
  const path = fileURLToPath(url);
  if (!maps.has(path)) {
    const mapFile = `${path}.map`;
    maps.set(
      path,
      existsSync(mapFile)
        ? {
            map: new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload),
            dir: dirname(mapFile),
          }
        : undefined,
    );
  }
  const entry = maps.get(path);
  if (entry !== undefined) {
    // The last mapping on the line: a statement's mappings all point at its own source line.
    const found = entry.map.findEntry(line - 1, 1e6) as { originalSource?: string; originalLine?: number };
    if (found.originalSource !== undefined && found.originalLine !== undefined) {
      const source = found.originalSource.startsWith('file:')
        ? fileURLToPath(found.originalSource)
        : resolve(entry.dir, found.originalSource);
      return `${relative(process.cwd(), source)}:${found.originalLine + 1}`;
    }
  }
  return `${place(url)}:${line}`;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      filter: { type: 'string' },
      lines: { type: 'boolean', default: false },
    },
  });
  const top = Number(values.top);
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    const samples = profile.samples ?? [];
    const deltas = profile.timeDeltas ?? [];
    // Each sample's time is the delta to the next sample.
    for (let i = 0; i < samples.length; i++) {
      const id = samples[i]!;
      const dt = deltas[i + 1] ?? 0;
      self.set(id, (self.get(id) ?? 0) + dt);
    }
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const byFunction = new Map<string, number>();
    const byFile = new Map<string, number>();
    for (const [id, micros] of self) {
      const frame = byId.get(id)?.callFrame;
      if (frame === undefined) continue;
      const where = place(frame.url);
      const key = `${frame.functionName || '(anonymous)'}\t${where}${frame.url !== '' ? `:${frame.lineNumber + 1}` : ''}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
      byFile.set(where, (byFile.get(where) ?? 0) + micros);
    }
    const keep = (key: string): boolean => values.filter === undefined || key.includes(values.filter);
    const pct = (micros: number): string => `${((micros / total) * 100).toFixed(1)}%`;
    console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`);
    const functions = [...byFunction].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]);
    console.log(
      table([
        ['self', 'ms', 'function', 'where'],
        ...functions.slice(0, top).map(([key, micros]) => {
          const [name = '', where = ''] = key.split('\t');
          return [pct(micros), (micros / 1000).toFixed(1), name, where];
        }),
      ]),
    );
    console.log('');
    const files = [...byFile].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]);
    console.log(
      table([
        ['self', 'ms', 'file'],
        ...files.slice(0, top).map(([where, micros]) => [pct(micros), (micros / 1000).toFixed(1), where]),
      ]),
    );
    console.log('');
    if (values.lines) {
      const ticksByLine = new Map<string, number>();
      for (const node of profile.nodes) {
        for (const { line, ticks: n } of node.positionTicks ?? []) {
          // Ticks in code inlined from another function carry that function's line, in its own file:
          // a line before the function's start is surely such; mark it rather than map it wrongly.
          const where =
            line - 1 < node.callFrame.lineNumber
              ? `(inlined code, line ${line} of some script)`
              : sourceLine(node.callFrame.url, line);
          const key = `${node.callFrame.functionName || '(anonymous)'}\t${where}`;
          ticksByLine.set(key, (ticksByLine.get(key) ?? 0) + n);
        }
      }
      const ticks = (profile.samples ?? []).length;
      const lines = [...ticksByLine].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]);
      console.log(
        table([
          ['samples', 'share', 'function', 'line'],
          ...lines.slice(0, top).map(([key, n]) => {
            const [name = '', where = ''] = key.split('\t');
            return [String(n), `${((n / ticks) * 100).toFixed(1)}%`, name, where];
          }),
        ]),
      );
      console.log('');
    }
  }
}

main();
