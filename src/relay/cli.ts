#!/usr/bin/env node
/**
 * The `rxamqp-relay` bin: {@link startRelay} from the command line (see `rxamqp-relay --help`). Prints a
 * startup line and one line per connection opened and closed to stdout, exits 0 after closing every
 * connection on SIGINT or SIGTERM (a second signal exits 1 at once), 2 with a one-line message for bad
 * arguments, and 1 when it cannot listen.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../errors.js';
import { formatRemote } from '../transport/tcp.js';
import type { Relay } from './attach.js';
import { parseRelayCommandLine, type RelayCommand, relayUsage } from './cli-options.js';
import { DEFAULT_RELAY_PORT } from './options.js';
import { startRelay } from './start.js';

const NAME = 'rxamqp-relay';

function print(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

function fail(status: number, message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(status);
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? '';
  return String(error);
}

function stopOnSignals(relay: Relay): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`${NAME}: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    print(`${NAME}: ${signal}, closing ${relay.connections} connection(s)`);
    void relay.close().then(() => {
      print(`${NAME}: closed`);
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function main(): Promise<void> {
  // A closed stdout (`rxamqp-relay | head`) must not stop the relay: its lines are only lost.
  process.stdout.on('error', () => {});
  let command: RelayCommand;
  try {
    command = parseRelayCommandLine(process.argv.slice(2), process.env, (path) => readFileSync(path));
  } catch (e) {
    fail(2, `${describeError(e)} (see --help)`);
  }
  if (command.kind === 'help') {
    process.stdout.write(relayUsage());
    return;
  }
  const { options, quiet } = command;
  let relay: Relay;
  try {
    relay = await startRelay(quiet ? options : { ...options, log: print });
  } catch (e) {
    if (e instanceof ConfigurationError) fail(2, `${e.message} (see --help)`);
    const code = (e as NodeJS.ErrnoException).code;
    fail(
      1,
      `cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? DEFAULT_RELAY_PORT}: ${code ?? describeError(e)}`,
    );
  }
  const { address } = relay;
  const scheme = options.tls === undefined ? 'ws' : 'wss';
  const where = address === undefined ? '?' : formatRemote(address.host, address.port);
  print(
    `${NAME}: listening on ${scheme}://${where}${options.path ?? ''} (${options.path === undefined ? 'any path' : 'this path only'}), relaying to ${options.broker ?? 'amqp://127.0.0.1:5672'}`,
  );
  if (options.allowedOrigins === undefined) {
    print(`${NAME}: browsers are refused: no --allow-origin given (clients without an Origin may connect)`);
  } else if (options.allowedOrigins === '*') {
    print(
      `${NAME}: warning: any origin may connect (--allow-origin '*'): any web page a user opens can reach the broker through this relay`,
    );
  }
  if (options.brokerTls?.rejectUnauthorized === false) {
    print(`${NAME}: warning: the broker's certificate is not verified (--broker-insecure)`);
  }
  stopOnSignals(relay);
}

main().catch((e: unknown) => fail(1, describeError(e)));
