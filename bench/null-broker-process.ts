/**
 * The null broker (`lib/null-broker.ts`) as a process of its own, so that a benchmark's client process
 * CPU does not include the broker's:
 *
 * ```sh
 * npx tsc -p bench/tsconfig.json
 * node dist/bench/bench/null-broker-process.js [--port N] [--host H] [--block-after N]
 * ```
 *
 * Prints one JSON line, `{"port":N}`, on stdout once it listens (port 0, the default, picks a free
 * one). It exits with status 0 on SIGTERM or SIGINT, when its stdin is a pipe and closes (the parent
 * went away), or when its IPC channel disconnects; with status 1 (and a message on stderr) when it
 * cannot start, 2 on a bad argument.
 *
 * @module
 */
import { fstatSync } from 'node:fs';
import { startNullBroker } from './lib/null-broker.js';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: node null-broker-process.js [--port N] [--host ADDRESS] [--block-after N]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): { port: number; host: string; blockAfter: number } {
  const options = { port: 0, host: '127.0.0.1', blockAfter: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? (arg.split('=', 2) as [string, string]) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    const integer = (): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) usage(`${flag} needs a non-negative integer, got ${v}`);
      return n;
    };
    switch (flag) {
      case '--port':
        options.port = integer();
        break;
      case '--host':
        options.host = value();
        break;
      case '--block-after':
        options.blockAfter = integer();
        break;
      case '--help':
      case '-h':
        usage('the null broker: a scripted AMQP 0-9-1 server for benchmarks');
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  return options;
}

/** True when stdin is a pipe or socket whose end means the parent is gone (not a TTY or /dev/null). */
function stdinIsPipe(): boolean {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const broker = await startNullBroker({
    port: options.port,
    host: options.host,
    ...(options.blockAfter > 0 ? { blockAfter: options.blockAfter } : {}),
  });

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    broker.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.send !== undefined) process.on('disconnect', stop);
  if (stdinIsPipe()) {
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }

  process.stdout.write(`${JSON.stringify({ port: broker.port })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`null broker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
