/**
 * The browser entries (`rxamqp`: src/index.ts, `rxamqp/operators`: operators/index.ts, and
 * `rxamqp/testing`: src/testing/index.ts, the embedded broker and the marble kit) bundle for
 * the browser without Node.js: bundled by esbuild for `platform: 'browser'`, ESM, rxjs external, they
 * must not
 *
 * - import any Node built-in (`node:net`, `fs`, `util/types`..., by any kind of import),
 * - contain any module from outside src/ and operators/ (so no polyfill of a built-in either),
 * - refer to a Node-only global (`process`, `Buffer`, `global`, `require`, `setImmediate`...) other than
 *   as a property looked up on `globalThis`.
 *
 * The Node entry (src/node.ts, with the TCP and TLS transports) is not checked. See
 * `browser-bundle-check.ts` for how each rule is checked; the checker itself is tested below on fixtures
 * written to a temporary directory, one clean and some that break each rule.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stop } from 'esbuild';
import { checkBrowserBundle, isNodeBuiltin } from './browser-bundle-check.js';

const ROOT = join(__dirname, '..', '..');

afterAll(async () => {
  await stop();
});

describe('the browser bundle of rxamqp, rxamqp/operators and rxamqp/testing', () => {
  it('imports no Node built-in, bundles nothing from outside src/ and operators/, uses no Node global', async () => {
    const { problems, inputs } = await checkBrowserBundle({
      baseDir: ROOT,
      entryPoints: ['src/index.ts', 'operators/index.ts', 'src/testing/index.ts'],
      allowedRoots: ['src', 'operators'],
      external: ['rxjs'],
    });
    expect(inputs).toContain('src/index.ts');
    expect(inputs).toContain('operators/index.ts');
    expect(inputs).toContain('src/testing/index.ts');
    expect(problems.map((p) => p.message)).toEqual([]);
  });
});

describe('the browser-bundle checker', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rxamqp-bundle-'));
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
  const check = (entryPoints = ['lib/index.ts']) =>
    checkBrowserBundle({ baseDir: dir, entryPoints, allowedRoots: ['lib'], external: ['rxjs'] });

  it('knows the built-ins, prefixed or not, with subpaths', () => {
    for (const name of ['fs', 'node:fs', 'net', 'tls', 'util', 'util/types', 'buffer', 'buffer/', 'events']) {
      expect(isNodeBuiltin(name)).toBe(true);
    }
    for (const name of [
      'stream',
      'crypto',
      'os',
      'path',
      'child_process',
      'dns',
      'node:test',
      'process/browser',
    ]) {
      expect(isNodeBuiltin(name)).toBe(true);
    }
    for (const name of ['rxjs', 'rxjs/operators', './fs', '../net.js', 'readable-stream', 'fs-extra']) {
      expect(isNodeBuiltin(name)).toBe(false);
    }
  });

  it('passes a clean module: globals through globalThis, a local named process, rxjs external', async () => {
    write({
      'lib/index.ts': [
        "import { map } from 'rxjs';",
        "import { helper } from './helper.js';",
        'export const env = (globalThis as { process?: { env?: object } }).process?.env;',
        'export const B = (globalThis as Record<string, unknown>)["Buffer"];',
        'export function f(process: number): number { return process + helper(); }',
        'export const m = map((x: number) => x + 1);',
      ].join('\n'),
      'lib/helper.ts': 'export function helper(): number { const Buffer = 1; return Buffer; }',
    });
    const { problems, inputs } = await check();
    expect(inputs).toEqual(['lib/helper.ts', 'lib/index.ts']);
    expect(problems).toEqual([]);
  });

  it('fails on node:fs reached through two modules, and names the chain', async () => {
    write({
      'lib/index.ts': "export { a } from './a.js';",
      'lib/a.ts': "import { b } from './b.js';\nexport const a = b;",
      'lib/b.ts': "import { readFileSync } from 'node:fs';\nexport const b = () => readFileSync('x');",
    });
    const { problems } = await check();
    expect(problems).toEqual([
      {
        kind: 'builtin',
        message: "Node built-in 'node:fs' (import-statement) imported by lib/index.ts > lib/a.ts > lib/b.ts",
      },
    ]);
  });

  it('fails on unprefixed, subpath, dynamic and require imports of built-ins', async () => {
    write({
      'lib/index.ts': [
        "import { EventEmitter } from 'events';",
        "import { isNativeError } from 'util/types';",
        "export const net = () => import('net');",
        "export const tls = () => require('tls');",
        'export { EventEmitter, isNativeError };',
      ].join('\n'),
    });
    const messages = (await check()).problems.map((p) => p.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        "Node built-in 'events' (import-statement) imported by lib/index.ts",
        "Node built-in 'util/types' (import-statement) imported by lib/index.ts",
        "Node built-in 'net' (dynamic-import) imported by lib/index.ts",
        "Node built-in 'tls' (require-call) imported by lib/index.ts",
      ]),
    );
  });

  it('fails on a polyfill pulled from node_modules', async () => {
    write({
      'node_modules/safe-buffer-shim/package.json': '{"name":"safe-buffer-shim","main":"index.js"}',
      'node_modules/safe-buffer-shim/index.js': 'export const Buffer = { from() {} };',
      'lib/index.ts': "export { Buffer } from 'safe-buffer-shim';",
    });
    const { problems } = await check();
    expect(problems).toEqual([
      {
        kind: 'foreign',
        message:
          'module from outside lib in the bundle (a polyfill or dependency): lib/index.ts > node_modules/safe-buffer-shim/index.js',
      },
    ]);
  });

  it('fails on free Buffer, process and setImmediate, naming the module', async () => {
    write({
      'lib/index.ts': "export * from './bytes.js';\nexport * from './env.js';",
      'lib/bytes.ts': "export const bytes = (s: string) => Buffer.from(s, 'utf8');",
      'lib/env.ts': [
        "export const dev = process.env.NODE_ENV !== 'production';",
        "export const hasBuffer = typeof Buffer !== 'undefined';",
        'export const later = (f: () => void) => setImmediate(f);',
      ].join('\n'),
    });
    const { problems } = await check();
    expect(problems.map((p) => p.message)).toEqual([
      "free Node global 'Buffer' used in lib/index.ts > lib/bytes.ts",
      "free Node global 'Buffer' used in lib/index.ts > lib/env.ts",
      "free Node global 'process' used in lib/index.ts > lib/env.ts",
      "free Node global 'setImmediate' used in lib/index.ts > lib/env.ts",
    ]);
  });
});
