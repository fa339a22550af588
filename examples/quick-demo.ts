/**
 * Quick demo: the first step of an AMQP 0-9-1 handshake, done by hand with the rxamqp codec.
 *
 * Opens a TCP socket to RabbitMQ, sends the protocol header, decodes the broker's `connection.start`
 * with `FrameDecoder` and prints who answered. Then it hangs up: no credentials are sent.
 *
 *   npm run demo                       # same as: npx tsx examples/quick-demo.ts
 *   AMQP_URL=amqp://host:5672 npm run demo
 *
 * Needs RabbitMQ on 127.0.0.1:5672, or wherever AMQP_URL points (only its host and port are used).
 * Exits with status 1 and a one-paragraph explanation when the broker cannot be reached.
 */
import { connect } from 'node:net';
import { FrameDecoder, FrameError, type MethodOf, PROTOCOL_HEADER } from '../src/index.js';

type ConnectionStart = MethodOf<'connection.start'>;

const TIMEOUT_MS = 5000;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 5672;

interface Target {
  host: string;
  port: number;
  /** host:port, for messages: never the whole URL, which may hold a password. */
  label: string;
}

/** An error whose message is meant for the user as is. */
class DemoError extends Error {}

function targetFromEnv(): Target {
  const raw = process.env.AMQP_URL;
  if (raw === undefined || raw === '') {
    return { host: DEFAULT_HOST, port: DEFAULT_PORT, label: `${DEFAULT_HOST}:${DEFAULT_PORT}` };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Do not echo the value: it may hold a password.
    throw new DemoError('AMQP_URL is not a valid URL; expected amqp://user:password@host:port/vhost.');
  }
  if (url.protocol !== 'amqp:') {
    throw new DemoError(`AMQP_URL uses ${url.protocol}//; this demo speaks plain TCP (amqp://) only.`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || DEFAULT_HOST;
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  const label = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return { host, port, label };
}

/** Connects, sends the protocol header and resolves with the broker's connection.start. */
function fetchConnectionStart(target: Target): Promise<ConnectionStart> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    let settled = false;
    const settle = (error: unknown, start?: ConnectionStart): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (start !== undefined) {
        socket.end();
        resolve(start);
      } else {
        socket.destroy();
        reject(error);
      }
    };
    const timer = setTimeout(() => {
      settle(new DemoError(`No AMQP answer from ${target.label} within ${TIMEOUT_MS / 1000} s.`));
    }, TIMEOUT_MS);

    const decoder = new FrameDecoder({
      onMethod: (channel, method) => {
        if (channel === 0 && method.name === 'connection.start') settle(undefined, method);
        else settle(new DemoError(`Expected connection.start, got ${method.name} on channel ${channel}.`));
      },
      onContent: (_channel, method) =>
        settle(new DemoError(`Unexpected ${method.name} before the handshake.`)),
      onHeartbeat: () => {},
    });

    socket.on('connect', () => socket.write(PROTOCOL_HEADER));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (e) {
        settle(e);
      }
    });
    socket.on('error', (e) => settle(e));
    socket.on('close', () => {
      settle(new DemoError(`${target.label} closed the connection without sending connection.start.`));
    });
  });
}

/** A field-table value as text (RabbitMQ sends its server properties as long strings). */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return undefined;
}

/** Words joined with ", ", wrapped to `width` columns and indented under a label. */
function wrap(words: readonly string[], indent: number, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    const next = line === '' ? word : `${line}, ${word}`;
    if (line !== '' && indent + next.length > width) {
      lines.push(`${line},`);
      line = word;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

function report(target: Target, start: ConnectionStart): void {
  const props = start.serverProperties;
  const row = (label: string, value: string): void => {
    console.log(`  ${label.padEnd(13)} ${value}`);
  };
  const product = text(props.product) ?? 'unknown product';
  const version = text(props.version) ?? '';
  console.log(`Connected to ${target.label}: ${product} ${version}`.trimEnd());
  const platform = text(props.platform);
  if (platform !== undefined) row('platform', platform);
  const cluster = text(props.cluster_name);
  if (cluster !== undefined) row('cluster', cluster);
  row('mechanisms', start.mechanisms.split(' ').filter(Boolean).join(', '));
  row('locales', start.locales.split(' ').filter(Boolean).join(', '));

  const capabilities = props.capabilities;
  if (typeof capabilities === 'object' && capabilities !== null && !Array.isArray(capabilities)) {
    const entries = Object.entries(capabilities);
    const on = entries.filter(([, v]) => v === true).map(([k]) => k);
    const off = entries.filter(([, v]) => v !== true).map(([k]) => k);
    row('capabilities', wrap(on, 16));
    if (off.length > 0) row('not offered', wrap(off, 16));
  }
}

/** One line saying what went wrong, without a stack trace or anything from AMQP_URL but host:port. */
function explain(error: unknown, label: string): string {
  if (error instanceof DemoError) return error.message;
  if (error instanceof FrameError) {
    if (error.code === 'PROTOCOL_MISMATCH') return `${label}: ${error.message}.`;
    return `${label} did not answer with AMQP 0-9-1 frames: ${error.message} (${error.code}).`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return `Could not connect to ${label}: connection refused (is RabbitMQ running?).`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Could not resolve the host of ${label}.`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `Could not reach ${label} (${code}).`;
    case 'ECONNRESET':
      return `${label} reset the connection.`;
    default:
      return `Could not talk to ${label}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const HELP = `Start a broker, for example:
  docker run -d --name rabbitmq -p 5672:5672 rabbitmq:3
or point AMQP_URL at one: AMQP_URL=amqp://host:5672 npm run demo`;

async function main(): Promise<void> {
  let target: Target;
  try {
    target = targetFromEnv();
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
    return;
  }
  try {
    report(target, await fetchConnectionStart(target));
  } catch (e) {
    console.error(explain(e, target.label));
    console.error(HELP);
    process.exitCode = 1;
  }
}

await main();
