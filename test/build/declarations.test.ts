/**
 * The published type declarations: emitted as the build emits them (tsconfig.build.json, with
 * `stripInternal`), they must
 *
 * - emit without errors,
 * - keep no declaration marked `@internal` (stripInternal removed them all),
 * - type-check on their own, with `skipLibCheck: false`, for a consumer that imports every typed entry
 *   of package.json's "exports" (`rxamqp`, `rxamqp/operators`, ...) as an ES module under NodeNext
 *   resolution, with @types/node. A public declaration that still names a stripped `@internal` one
 *   ("Cannot find name", "does not satisfy the constraint keyof") fails here.
 *
 * The check itself is in `declarations-check.ts`; it is tested below on a fixture package.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkDeclarations, internalDeclarations, typedEntries } from './declarations-check.js';

const ROOT = join(__dirname, '..', '..');

describe('the declarations of rxamqp', () => {
  it('emit, keep nothing @internal, and type-check on their own for a consumer of every entry', () => {
    const result = checkDeclarations(ROOT);
    try {
      expect(result.entries).toEqual(expect.arrayContaining(['rxamqp', 'rxamqp/operators']));
      expect(result.declarations).toContain('dist/esm/src/index.d.ts');
      expect({
        emitErrors: result.emitErrors,
        internalLeft: result.internalLeft,
        consumerErrors: result.consumerErrors,
      }).toEqual({ emitErrors: [], internalLeft: [], consumerErrors: [] });
    } finally {
      result.cleanup();
    }
  }, 120_000);
});

describe('the declarations check', () => {
  it('finds declarations whose own doc comment is @internal, not a module header', () => {
    const dts = [
      '/**',
      ' * A module.',
      ' * @module',
      ' * @internal',
      ' */',
      '/** Public. */',
      'export type A = number;',
      '/** @internal */',
      'export declare function hidden(): void;',
      'export declare class C {',
      '    /** @internal Not for users. */',
      '    poke(): void;',
      '    /** Public. */',
      '    get x(): number;',
      '}',
      'export interface I {',
      '    /** @internal */',
      '    secret: string;',
      '}',
    ].join('\n');
    expect(internalDeclarations('x.d.ts', dts)).toEqual([
      'x.d.ts:9: hidden',
      'x.d.ts:12: poke',
      'x.d.ts:18: secret',
    ]);
  });

  it('lists the typed entries of package.json exports', () => {
    expect(
      typedEntries({
        name: 'p',
        exports: {
          '.': { import: { types: './a.d.ts', default: './a.js' } },
          './sub': { types: './s.d.ts', default: './s.js' },
          './untyped': { default: './u.js' },
          './package.json': './package.json',
        },
      }),
    ).toEqual(['p', 'p/sub']);
  });

  it('passes a clean package and fails one whose public declaration names a stripped @internal type', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxamqp-dts-fixture-'));
    try {
      const write = (files: Record<string, string>): void => {
        for (const [name, text] of Object.entries(files)) {
          mkdirSync(dirname(join(dir, name)), { recursive: true });
          writeFileSync(join(dir, name), text);
        }
      };
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
      write({
        'package.json': JSON.stringify({
          name: 'fixture',
          type: 'module',
          exports: {
            '.': { import: { types: './dist/src/index.d.ts', default: './dist/src/index.js' } },
            './package.json': './package.json',
          },
        }),
        'tsconfig.build.json': JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'ES2022',
            moduleResolution: 'Bundler',
            strict: true,
            declaration: true,
            stripInternal: true,
            rootDir: '.',
            outDir: 'dist',
            types: [],
          },
          include: ['src'],
        }),
        'src/index.ts': [
          "export { Thing } from './thing.js';",
          '/** @internal */',
          'export function helper(): number { return 1; }',
        ].join('\n'),
        'src/thing.ts': [
          '/** A thing. */',
          'export class Thing {',
          '  /** @internal */',
          '  poke(): void {}',
          '}',
        ].join('\n'),
      });
      const clean = checkDeclarations(dir, { consumerTypes: [] });
      clean.cleanup();
      expect(clean.entries).toEqual(['fixture']);
      expect(clean.declarations).toEqual(['dist/src/index.d.ts', 'dist/src/thing.d.ts']);
      expect([clean.emitErrors, clean.internalLeft, clean.consumerErrors]).toEqual([[], [], []]);

      write({
        'src/thing.ts': [
          '/** @internal */',
          'export interface Hidden { n: number }',
          'export class Thing {',
          '  constructor(readonly hidden: Hidden) {}',
          "  poke(key: keyof Pick<Thing, 'secret'>): void {}",
          '  /** @internal */',
          '  secret(): void {}',
          '}',
        ].join('\n'),
      });
      const broken = checkDeclarations(dir, { consumerTypes: [] });
      broken.cleanup();
      expect(broken.emitErrors).toEqual([]);
      expect(broken.internalLeft).toEqual([]);
      expect(broken.consumerErrors).toEqual([
        "dist/src/thing.d.ts(2,22): error TS2304: Cannot find name 'Hidden'.",
        "dist/src/thing.d.ts(3,25): error TS2304: Cannot find name 'Hidden'.",
        `dist/src/thing.d.ts(4,33): error TS2344: Type '"secret"' does not satisfy the constraint 'keyof Thing'.`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
