/**
 * Measures what rxamqp adds to a browser application: `test/build/fixtures/browser-program.ts`
 * (connect through a relay, consume with acks, publish) bundled by esbuild for the browser from the
 * browser entry (`src/index.ts`), minified, rxjs left out (the application has it anyway), then
 * gzipped at level 9. Used by `browser-size.test.ts` and by `npx tsx scripts/browser-size.ts`, which
 * prints the figures (the README quotes them).
 *
 * @module
 */
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** What one measurement gives, in bytes. */
export interface BundleSize {
  readonly minified: number;
  readonly gzipped: number;
  /** Minified bytes per source file, largest first. */
  readonly byFile: readonly { readonly file: string; readonly bytes: number }[];
}

/** Bundles, minifies and gzips the browser program; `root` is the repository's root directory. */
export async function measureBrowserProgram(root: string): Promise<BundleSize> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['test/build/fixtures/browser-program.ts'],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: ['rxjs', 'rxjs/*'],
    alias: { rxamqp: './src/index.ts' },
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const output = result.outputFiles[0]!.contents;
  const inputs = Object.values(result.metafile.outputs)[0]!.inputs;
  const byFile = Object.entries(inputs)
    .map(([file, { bytesInOutput }]) => ({ file, bytes: bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes);
  return { minified: output.length, gzipped: gzipSync(output, { level: 9 }).length, byFile };
}
