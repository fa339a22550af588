/**
 * What the real-browser tests need: Chromium (Debian's), the Angular example built with Angular's
 * own tools (`ng build`, reused while its inputs are unchanged), and a static file server for it.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, relative, sep } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'angular');
const CACHE = join(ROOT, 'node_modules', '.cache', 'rxamqp-angular-example');

/**
 * The Chromium to drive: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`. Missing, the test fails
 * (it never skips) with what to install.
 */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(
      `Chromium not found at ${path}: the real-browser tests need it. Install it (Debian: apt-get install -y chromium) ` +
        'or set CHROMIUM_PATH to a Chromium or Chrome binary.',
    );
  }
  return path;
}

/** Every file under `dir` (relative paths, sorted), skipping `node_modules`. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      if (name === 'node_modules') continue;
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(path);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * A digest of what the example's build reads: its own files, rxamqp's sources it compiles, the
 * lock file (Angular's version) and the Node.js major version (so each CI run, one per Node line,
 * runs Angular's CLI itself).
 */
function inputsDigest(): string {
  const hash = createHash('sha256');
  hash.update(`node ${process.versions.node.split('.')[0]}\n`);
  for (const dir of [EXAMPLE, join(ROOT, 'src'), join(ROOT, 'operators')]) {
    for (const file of filesUnder(dir)) {
      hash.update(`${relative(ROOT, file)}\n`);
      hash.update(readFileSync(file));
    }
  }
  hash.update(readFileSync(join(ROOT, 'package-lock.json')));
  return hash.digest('hex').slice(0, 16);
}

/** Runs `ng build` for the example into `outputPath`; rejects with its output when it fails. */
function ngBuild(outputPath: string): Promise<void> {
  const ng = join(ROOT, 'node_modules', '@angular', 'cli', 'bin', 'ng.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ng, 'build', '--output-path', outputPath], {
      cwd: EXAMPLE,
      env: { ...process.env, NG_CLI_ANALYTICS: 'false', NG_FORCE_TTY: 'false', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`ng build of examples/angular failed (exit ${code}):\n${output}`));
    });
  });
}

/**
 * The example built by Angular's CLI (production configuration: AOT, strict templates, budgets):
 * the directory of its browser files. A build of the same inputs is reused; otherwise the older
 * builds are removed and it builds (about 12 s on two cores, 6 s with Angular's cache warm).
 */
export async function buildAngularExample(): Promise<{ dir: string; built: boolean; ms: number }> {
  const started = Date.now();
  const out = join(CACHE, `build-${inputsDigest()}`);
  const dir = join(out, 'browser');
  if (existsSync(join(dir, 'index.html'))) return { dir, built: false, ms: Date.now() - started };
  if (existsSync(CACHE)) {
    for (const name of readdirSync(CACHE)) {
      if (name.startsWith('build-')) rmSync(join(CACHE, name), { recursive: true, force: true });
    }
  }
  try {
    await ngBuild(out);
  } catch (error) {
    rmSync(out, { recursive: true, force: true });
    throw error;
  }
  if (!existsSync(join(dir, 'index.html')))
    throw new Error(`ng build wrote no ${relative(ROOT, dir)}/index.html`);
  return { dir, built: true, ms: Date.now() - started };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
  '.svg': 'image/svg+xml',
};

/**
 * Serves `dir` on 127.0.0.1 (a free port), as a single-page application: a path that is not a file
 * gets index.html.
 */
export async function serveStatic(
  dir: string,
): Promise<{ url: string; origin: string; close(): Promise<void> }> {
  const root = normalize(dir + sep);
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    let file = normalize(join(root, path));
    if (!file.startsWith(root) || !existsSync(file) || statSync(file).isDirectory())
      file = join(root, 'index.html');
    response.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    response.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
