/**
 * The `rxamqp-relay` bin. Its command line and environment are parsed without a process; then the bin
 * itself runs (through tsx, from the sources): it prints where it listens, relays, logs each
 * connection, exits 0 on SIGTERM after closing, and exits 2 with one line for a bad argument.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ConfigurationError } from '../../src/errors.js';
import { parseRelayCommandLine, relayUsage } from '../../src/relay/cli-options.js';
import { openClient } from './support/clients.js';
import { startFakeBroker } from './support/fake-broker.js';
import { killChildren, ROOT, runTs } from './support/process.js';

const CLI = join(ROOT, 'src', 'relay', 'cli.ts');

const noFiles = (path: string): Buffer => {
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
};
const files = (path: string): Buffer => Buffer.from(`pem of ${path}`);

describe('the command line', () => {
  it("takes --allow-origin '*' as any origin, and leaves allowedOrigins out without --allow-origin", () => {
    expect(parseRelayCommandLine(['--allow-origin', '*'], {}, files)).toMatchObject({
      options: { allowedOrigins: '*' },
    });
    const none = parseRelayCommandLine([], {}, files);
    expect(none.kind === 'run' && 'allowedOrigins' in none.options).toBe(false);
  });

  it('turns arguments into options', () => {
    const command = parseRelayCommandLine(
      [
        '--port=0',
        '--host',
        '0.0.0.0',
        '--broker',
        'amqps://mq:5671',
        '--allow-origin',
        'https://a.example',
        '--allow-origin',
        'https://b.example',
        '--require-origin',
        '--max-connections',
        '10',
        '--max-buffered-bytes',
        '65536',
        '--path',
        '/amqp',
        '--tls-cert',
        'c.pem',
        '--tls-key',
        'k.pem',
        '--broker-ca',
        'ca.pem',
        '--broker-insecure',
        '-q',
      ],
      {},
      files,
    );
    expect(command).toEqual({
      kind: 'run',
      quiet: true,
      options: {
        port: 0,
        host: '0.0.0.0',
        broker: 'amqps://mq:5671',
        allowedOrigins: ['https://a.example', 'https://b.example'],
        allowNoOrigin: false,
        maxConnections: 10,
        maxBufferedBytes: 65536,
        path: '/amqp',
        tls: { cert: Buffer.from('pem of c.pem'), key: Buffer.from('pem of k.pem') },
        brokerTls: { ca: Buffer.from('pem of ca.pem'), rejectUnauthorized: false },
      },
    });
  });

  it('reads RXAMQP_RELAY_* variables, and an argument wins over its variable', () => {
    const env = {
      RXAMQP_RELAY_PORT: '4000',
      RXAMQP_RELAY_ALLOW_ORIGIN: 'https://a.example, https://b.example',
      RXAMQP_RELAY_BROKER_INSECURE: 'true',
      RXAMQP_RELAY_SLOW_CLIENT_TIMEOUT_MS: '500',
      RXAMQP_RELAY_QUIET: '0',
    };
    expect(parseRelayCommandLine(['--port', '5000'], env, files)).toEqual({
      kind: 'run',
      quiet: false,
      options: {
        port: 5000,
        allowedOrigins: ['https://a.example', 'https://b.example'],
        slowClientTimeoutMs: 500,
        brokerTls: { rejectUnauthorized: false },
      },
    });
  });

  it.each<[string[], Record<string, string>, RegExp]>([
    [['--port', 'abc'], {}, /--port must be a whole number, got 'abc'/],
    [['--bogus'], {}, /Unknown option '--bogus'/],
    [['extra'], {}, /Unexpected argument 'extra'/],
    [['--tls-cert', 'c.pem'], {}, /--tls-cert and --tls-key go together/],
    [['--broker-ca', 'missing.pem'], {}, /--broker-ca: cannot read missing.pem \(ENOENT\)/],
    [[], { RXAMQP_RELAY_QUIET: 'maybe' }, /RXAMQP_RELAY_QUIET must be true or false, got 'maybe'/],
  ])('refuses %j %j', (argv, env, message) => {
    expect(() => parseRelayCommandLine(argv, env, noFiles)).toThrow(ConfigurationError);
    expect(() => parseRelayCommandLine(argv, env, noFiles)).toThrow(message);
  });

  it('has a --help that lists every option with its variable', () => {
    expect(parseRelayCommandLine(['--help'], {}, noFiles)).toEqual({ kind: 'help' });
    const usage = relayUsage();
    for (const option of [
      '--port',
      '--allow-origin',
      '--broker-insecure',
      'RXAMQP_RELAY_MAX_BUFFERED_BYTES',
    ]) {
      expect(usage).toContain(option);
    }
  });
});

afterEach(killChildren);

describe('the bin', () => {
  it('listens, relays and logs, and exits 0 on SIGTERM after closing', async () => {
    const broker = await startFakeBroker();
    try {
      const bin = runTs('src/relay/cli.ts', ['--port', '0', '--broker', broker.url, '--path', '/amqp']);
      const { out, waitForLine } = bin;
      const listening = await waitForLine(/listening on/);
      expect(listening).toMatch(
        /^\S+Z rxamqp-relay: listening on ws:\/\/127\.0\.0\.1:\d+\/amqp \(this path only\), relaying to amqp:\/\/127\.0\.0\.1:\d+$/,
      );
      const port = Number(/127\.0\.0\.1:(\d+)\/amqp/.exec(listening)?.[1]);
      await waitForLine(
        /browsers are refused: no --allow-origin given \(clients without an Origin may connect\)/,
      );
      const client = await openClient(`ws://127.0.0.1:${port}/amqp`);
      const connection = await broker.nextConnection();
      client.send(Buffer.from('through the bin'));
      expect((await connection.waitForBytes(15)).toString()).toBe('through the bin');
      await waitForLine(/relay #1 open /);
      expect(await bin.stop('SIGTERM')).toBe(0);
      expect(await client.closed).toEqual({ code: 1001, reason: 'relay shutting down' });
      const text = out.join('\n');
      expect(text).toMatch(/relay #1 open remote=127\.0\.0\.1:\d+ origin=- path=\/amqp /);
      expect(text).toMatch(/rxamqp-relay: SIGTERM, closing 1 connection\(s\)/);
      expect(text).toMatch(/relay #1 close .*bytes_up=15 .*reason="relay shutting down \(1001\)"/);
      expect(out.at(-1)).toMatch(/rxamqp-relay: closed$/);
    } finally {
      await broker.close();
    }
  });

  it('exits 2 with one line on stderr for a bad argument', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, '--max-connections', 'many'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      "rxamqp-relay: --max-connections must be a whole number, got 'many' (see --help)\n",
    );
  });
});
