import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { GENERATED_FILES, generateFiles, ROOT, SPEC_FILE } from '../../scripts/generate-protocol.js';

const specText = readFileSync(resolve(ROOT, SPEC_FILE), 'utf8');

describe('the committed generated codec', () => {
  const fresh = generateFiles(specText);

  it.each(GENERATED_FILES)(
    '%s is byte for byte what the generator makes from the spec in scripts/',
    (path) => {
      const committed = readFileSync(resolve(ROOT, path), 'utf8');
      expect(committed).toBe(fresh[path]);
      // And it names the spec it came from.
      const recorded = /sha256 ([0-9a-f]{64})/.exec(committed)?.[1];
      expect(recorded).toBe(createHash('sha256').update(specText).digest('hex'));
    },
  );

  it('is generated deterministically', () => {
    expect(generateFiles(specText)).toEqual(fresh);
  });

  it('keeps the constants free of imports, so errors.ts can use them without a cycle', () => {
    expect(fresh['src/protocol/constants.ts']).not.toMatch(/^\s*(import|export\s.*\sfrom)\s/m);
  });
});

/** The relative imports (type-only ones included) of a TypeScript module, as resolved paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'(\.[^']+)'/g)) {
    out.push(resolve(file, '..', m[1]!.replace(/\.js$/, '.ts')));
  }
  return out;
}

describe('the codec modules', () => {
  it('have no import cycle, type imports included (errors.ts is part of the graph)', () => {
    const dir = resolve(ROOT, 'src/protocol');
    const roots = [
      ...readdirSync(dir)
        .filter((f) => f.endsWith('.ts'))
        .map((f) => resolve(dir, f)),
      resolve(ROOT, 'src/errors.ts'),
    ];
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      const s = state.get(file);
      if (s === 'done') return;
      if (s === 'visiting') {
        cycles.push(
          [...path.slice(path.indexOf(file)), file].map((f) => f.slice(ROOT.length + 1)).join(' -> '),
        );
        return;
      }
      state.set(file, 'visiting');
      // Only the codec and errors.ts: the rest of src is not reachable from them.
      for (const dep of importsOf(file)) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const root of roots) visit(root, []);
    expect(cycles).toEqual([]);
  });

  it('import no Node built-in and name no global Buffer', () => {
    const dir = resolve(ROOT, 'src/protocol');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(resolve(dir, f), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '')
        .replace(/'(?:[^'\\\n]|\\.)*'/g, "''");
      expect({ f, node: /from\s+'(node:|buffer'|fs'|crypto')/.test(text) }).toEqual({ f, node: false });
      // A bare `Buffer` identifier is what bundlers polyfill: only `.Buffer` (a runtime lookup) is allowed.
      expect({ f, buffer: /(?<![.\w])Buffer\b(?!\??:)/.test(text) }).toEqual({ f, buffer: false });
    }
  });
});

describe('the codec in a browser bundle', () => {
  // esbuild is a development dependency (test/build/browser-bundle.test.ts uses it too): never skipped.
  it('bundles for the browser with no Node built-in and no Buffer polyfill', () => {
    // platform=browser fails to resolve any node: import; the output must not name a global Buffer.
    const result = esbuild.buildSync({
      entryPoints: [resolve(ROOT, 'src/protocol/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      minifyWhitespace: true, // drops comments, which may say "Buffer"
    });
    expect(result.errors).toEqual([]);
    // Without string literals (messages may say "Buffer"): code only.
    const code = result.outputFiles[0]!.text.replace(/"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, '""');
    expect(code).not.toMatch(/\brequire\(|from\s+["']node:/);
    expect(code).not.toMatch(/(?<![.\w])Buffer\b(?!\??:)/);
    expect(code).toContain('platform.Buffer'); // the one runtime lookup
  });
});
