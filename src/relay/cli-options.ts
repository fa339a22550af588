/**
 * The `rxamqp-relay` command line: arguments and `RXAMQP_RELAY_*` environment variables turned into
 * {@link StartRelayOptions}. Pure apart from the file reader it is given, so that it is tested without
 * starting a process; an argument on the command line wins over its environment variable.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { ConfigurationError } from '../errors.js';
import { DEFAULT_RELAY_PORT, type StartRelayOptions } from './options.js';

/** What the command line asks for. */
export type RelayCommand =
  | { readonly kind: 'help' }
  | {
      readonly kind: 'run';
      /** Everything but `log`, which the bin adds. */
      readonly options: StartRelayOptions;
      /** No per-connection lines. */
      readonly quiet: boolean;
    };

/** Reads a certificate or key file (`fs.readFileSync` in the bin). */
export type ReadFile = (path: string) => Buffer;

/** Each option, its environment variable, and what it takes. */
const OPTIONS = {
  port: {
    type: 'string',
    short: 'p',
    env: 'PORT',
    value: '<n>',
    help: `port to listen on (default ${DEFAULT_RELAY_PORT}; 0: any free port)`,
  },
  host: {
    type: 'string',
    env: 'HOST',
    value: '<addr>',
    help: "address to listen on (default 127.0.0.1; '0.0.0.0' for every interface)",
  },
  broker: {
    type: 'string',
    env: 'BROKER',
    value: '<url>',
    help: 'amqp://host:port or amqps://host:port (default amqp://127.0.0.1:5672)',
  },
  'allow-origin': {
    type: 'string',
    multiple: true,
    env: 'ALLOW_ORIGIN',
    value: '<origin>',
    help: "an origin allowed to connect, such as https://app.example.com (repeatable; env: comma-separated), or '*' for any. Default: no browser origin (clients without an Origin only)",
  },
  'require-origin': {
    type: 'boolean',
    env: 'REQUIRE_ORIGIN',
    help: 'refuse requests without an Origin header (non-browser clients)',
  },
  path: {
    type: 'string',
    env: 'PATH',
    value: '<path>',
    help: 'accept WebSockets on this path only (default: any path)',
  },
  'max-connections': {
    type: 'string',
    env: 'MAX_CONNECTIONS',
    value: '<n>',
    help: 'most WebSockets open at once (default 1000)',
  },
  'max-buffered-bytes': {
    type: 'string',
    env: 'MAX_BUFFERED_BYTES',
    value: '<n>',
    help: 'bytes held for a slow browser before reading from its broker stops (default 1048576)',
  },
  'max-message-bytes': {
    type: 'string',
    env: 'MAX_MESSAGE_BYTES',
    value: '<n>',
    help: 'largest WebSocket message from a browser (default 33554432)',
  },
  'slow-client-timeout-ms': {
    type: 'string',
    env: 'SLOW_CLIENT_TIMEOUT_MS',
    value: '<ms>',
    help: 'cut a browser whose buffer stays full this long (default 10000)',
  },
  'connect-timeout-ms': {
    type: 'string',
    env: 'CONNECT_TIMEOUT_MS',
    value: '<ms>',
    help: 'give up connecting to the broker after this long (default 10000)',
  },
  'tls-cert': {
    type: 'string',
    env: 'TLS_CERT',
    value: '<file>',
    help: 'serve wss:// with this certificate (PEM; needs --tls-key)',
  },
  'tls-key': { type: 'string', env: 'TLS_KEY', value: '<file>', help: "the certificate's private key (PEM)" },
  'broker-ca': {
    type: 'string',
    env: 'BROKER_CA',
    value: '<file>',
    help: "CA certificates (PEM) to trust for an amqps:// broker, instead of Node's",
  },
  'broker-servername': {
    type: 'string',
    env: 'BROKER_SERVERNAME',
    value: '<name>',
    help: "name to expect in the broker's certificate (default: the broker URL's host)",
  },
  'broker-insecure': {
    type: 'boolean',
    env: 'BROKER_INSECURE',
    help: "do not verify the amqps:// broker's certificate (tests only)",
  },
  quiet: { type: 'boolean', short: 'q', env: 'QUIET', help: 'no per-connection log lines' },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
} as const;

type OptionName = keyof typeof OPTIONS;

const ENV_PREFIX = 'RXAMQP_RELAY_';

/**
 * The `--help` text.
 *
 * @example
 * ```ts
 * console.log(relayUsage());
 * ```
 */
export function relayUsage(): string {
  const rows = Object.entries(OPTIONS).map(([name, spec]) => {
    const short = 'short' in spec ? `-${spec.short}, ` : '    ';
    const value = 'value' in spec ? ` ${spec.value}` : '';
    const env = 'env' in spec ? ` [${ENV_PREFIX}${spec.env}]` : '';
    return `  ${short}--${name}${value}\n        ${spec.help}${env}`;
  });
  return [
    'Usage: rxamqp-relay [options]',
    '',
    'Relays WebSockets from browsers to RabbitMQ over TCP: one broker connection per WebSocket, bytes',
    'copied both ways. The broker still authenticates every client. Stops on SIGINT or SIGTERM.',
    '',
    'Options (each also read from the environment variable in brackets; an argument wins):',
    ...rows,
    '',
  ].join('\n');
}

function integer(name: string, text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new ConfigurationError(`--${name} must be a whole number, got '${text}'`);
  return Number(text);
}

function envBoolean(variable: string, text: string): boolean {
  const value = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['', '0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigurationError(`${variable} must be true or false, got '${text}'`);
}

function readPem(read: ReadFile, name: string, path: string): Buffer {
  try {
    return read(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ConfigurationError(`--${name}: cannot read ${path} (${code})`, { cause: e });
  }
}

/**
 * Parses the command line and the environment.
 *
 * @throws ConfigurationError for an unknown option, a missing value, a value that is not a number, an
 *   unreadable file or a certificate without its key; the bin prints its message and exits 2.
 * @example
 * ```ts
 * const command = parseRelayCommandLine(['--port', '0', '--allow-origin', 'https://app.example.com'], {}, readFileSync);
 * // { kind: 'run', options: { port: 0, allowedOrigins: ['https://app.example.com'] }, quiet: false }
 * ```
 */
export function parseRelayCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  read: ReadFile,
): RelayCommand {
  let values: Partial<Record<OptionName, string | boolean | string[]>>;
  try {
    values = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // parseArgs's messages name the argument and say what is wrong with it.
    throw new ConfigurationError((e as Error).message, { cause: e });
  }
  if (values.help === true) return { kind: 'help' };

  /** The argument, else its environment variable. */
  const text = (name: OptionName): string | undefined => {
    const given = values[name];
    if (typeof given === 'string') return given;
    const spec = OPTIONS[name];
    return 'env' in spec ? env[`${ENV_PREFIX}${spec.env}`] : undefined;
  };
  const flag = (name: OptionName): boolean => {
    if (values[name] === true) return true;
    const spec = OPTIONS[name];
    const variable = 'env' in spec ? `${ENV_PREFIX}${spec.env}` : undefined;
    const raw = variable === undefined ? undefined : env[variable];
    return variable !== undefined && raw !== undefined && envBoolean(variable, raw);
  };
  const number = (name: OptionName): number | undefined => {
    const raw = text(name);
    return raw === undefined ? undefined : integer(name, raw);
  };

  const options: StartRelayOptions = {};
  const port = number('port');
  if (port !== undefined) options.port = port;
  const host = text('host');
  if (host !== undefined) options.host = host;
  const broker = text('broker');
  if (broker !== undefined) options.broker = broker;
  const path = text('path');
  if (path !== undefined) options.path = path;

  const origins = Array.isArray(values['allow-origin'])
    ? values['allow-origin']
    : env[`${ENV_PREFIX}ALLOW_ORIGIN`]
        ?.split(',')
        .map((o) => o.trim())
        .filter((o) => o !== '');
  if (origins !== undefined && origins.length > 0) {
    options.allowedOrigins = origins.includes('*') ? '*' : origins;
  }
  if (flag('require-origin')) options.allowNoOrigin = false;

  const maxConnections = number('max-connections');
  if (maxConnections !== undefined) options.maxConnections = maxConnections;
  const maxBufferedBytes = number('max-buffered-bytes');
  if (maxBufferedBytes !== undefined) options.maxBufferedBytes = maxBufferedBytes;
  const maxMessageBytes = number('max-message-bytes');
  if (maxMessageBytes !== undefined) options.maxMessageBytes = maxMessageBytes;
  const slowClientTimeoutMs = number('slow-client-timeout-ms');
  if (slowClientTimeoutMs !== undefined) options.slowClientTimeoutMs = slowClientTimeoutMs;
  const connectTimeoutMs = number('connect-timeout-ms');
  if (connectTimeoutMs !== undefined) options.connectTimeoutMs = connectTimeoutMs;

  const cert = text('tls-cert');
  const key = text('tls-key');
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigurationError(
      '--tls-cert and --tls-key go together: give both to serve wss://, or neither',
    );
  }
  if (cert !== undefined && key !== undefined) {
    options.tls = { cert: readPem(read, 'tls-cert', cert), key: readPem(read, 'tls-key', key) };
  }

  const ca = text('broker-ca');
  const servername = text('broker-servername');
  const insecure = flag('broker-insecure');
  if (ca !== undefined || servername !== undefined || insecure) {
    options.brokerTls = {
      ...(ca === undefined ? {} : { ca: readPem(read, 'broker-ca', ca) }),
      ...(servername === undefined ? {} : { servername }),
      ...(insecure ? { rejectUnauthorized: false } : {}),
    };
  }
  return { kind: 'run', options, quiet: flag('quiet') };
}
