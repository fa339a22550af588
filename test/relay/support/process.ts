/**
 * Runs a TypeScript entry point (the bin, an example) as a child process through tsx, as users run
 * them, with its stdout as lines to wait on. Children still running after a test are killed by
 * {@link killChildren} (from `afterEach`), so that a failed test never leaves Jest waiting.
 *
 * @example
 * ```ts
 * const child = runTs('src/relay/cli.ts', ['--port', '0']);
 * const line = await child.waitForLine(/listening on/);
 * ```
 *
 * @module
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

/** The repository's root. */
export const ROOT = join(__dirname, '..', '..', '..');

/** A running child. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  /** Its stdout lines so far. */
  readonly out: string[];
  /** The first stdout line matching `pattern`, waiting for it; rejects if the child exits first. */
  waitForLine(pattern: RegExp): Promise<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

const children: ChildProcessWithoutNullStreams[] = [];

/** Kills every child still running. */
export function killChildren(): void {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
}

/** Starts `node --import tsx <file> ...args` in the repository's root. */
export function runTs(
  file: string,
  args: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, file), ...args], { cwd: ROOT, env });
  children.push(child);
  const out: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    out.push(...lines);
    child.stdout.emit('lines');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return {
    process: child,
    out,
    async waitForLine(pattern) {
      for (;;) {
        const line = out.find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (child.exitCode !== null) throw new Error(`${file} exited (${child.exitCode}): ${stderr}`);
        await Promise.race([once(child.stdout, 'lines'), once(child, 'exit')]);
      }
    },
    async stop(signal) {
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
}
