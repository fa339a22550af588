/**
 * Turns what `connect()` is given (a URL, an options object, or a URL and an options object) into the
 * {@link ResolvedOptions} the connection uses: defaults applied, every value validated, TLS files read,
 * SASL mechanisms built, client properties assembled. Every problem is a {@link ConfigurationError}
 * naming the option; none of them shows a password, a passphrase or the contents of a file.
 *
 * @module
 */
import { ConfigurationError, ConnectionClosedError } from '../errors.js';
import { utf8Length } from '../protocol/bytes.js';
import {
  type FieldTable,
  type FieldValue,
  fieldTypesOf,
  isFieldTable,
  rememberFieldType,
} from '../protocol/field-table.js';
import { DEFAULT_MAX_BODY_SIZE } from '../protocol/frame-decoder.js';
import { type RetryPolicy, type RetryPolicyOptions, retryPolicy } from '../recovery/retry-policy.js';
import type { Instrumentation } from '../telemetry/instrumentation.js';
import { SILENT } from '../telemetry/reporter.js';
import type { TransportConnector, TransportTarget } from '../transport/transport.js';
import { INSPECT, MAX_TIMER_MS } from '../util/runtime.js';
import { VERSION } from '../version.js';
import { CredentialsSource } from './credentials.js';
import { hostnameProblem, ipVersion, isIPv6 } from './host.js';
import {
  type ConnectOptions,
  type Credentials,
  DEFAULT_ACK_DELAY,
  DEFAULT_BLOCKED_TIMEOUT,
  DEFAULT_CHANNEL_MAX,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_CONNECTION_TIMEOUT,
  DEFAULT_FRAME_MAX,
  DEFAULT_HEARTBEAT,
  DEFAULT_READ_BATCHING,
  DEFAULT_WRITE_HIGH_WATER_MARK,
  type RecoveryOptions,
  type ResolvedEndpoint,
  type ResolvedOptions,
  type ResolvedRecovery,
  type ResolvedSocketOptions,
  type ResolvedTlsOptions,
  type SaslMechanism,
  type SocketOptions,
  type TlsOptions,
} from './options.js';
import type { Platform } from './platform.js';
import { BUILTIN_MECHANISMS } from './sasl.js';
import { type Secret, toSecret } from './secret.js';
import { DEFAULT_PORTS, PLAIN_SCHEMES, parseConnectionUrl, SECURE_SCHEMES } from './url.js';

/** Node's (and Deno's, Bun's) `util.inspect.custom`, without importing `node:util`. */

// Exhaustive key lists: adding a field to an options interface without listing it here fails to compile.
const CONNECT_KEYS: { readonly [K in keyof ConnectOptions]-?: true } = {
  hostname: true,
  port: true,
  vhost: true,
  username: true,
  password: true,
  credentials: true,
  tls: true,
  heartbeat: true,
  frameMax: true,
  channelMax: true,
  connectionTimeout: true,
  closeTimeout: true,
  authMechanism: true,
  sasl: true,
  clientProperties: true,
  name: true,
  locale: true,
  socket: true,
  maxBodySize: true,
  writeHighWaterMark: true,
  ackDelay: true,
  readBatching: true,
  transport: true,
  hosts: true,
  preferNode: true,
  recovery: true,
  shared: true,
  whenBlocked: true,
  blockedTimeout: true,
  debug: true,
  telemetry: true,
};
const RECOVERY_KEYS: { readonly [K in keyof RecoveryOptions]-?: true } = {
  initial: true,
  reconnect: true,
  hostOrder: true,
  scheduler: true,
};
const TLS_KEYS: { readonly [K in keyof TlsOptions]-?: true } = {
  ca: true,
  cert: true,
  key: true,
  passphrase: true,
  pfx: true,
  caFile: true,
  certFile: true,
  keyFile: true,
  rejectUnauthorized: true,
  servername: true,
  minVersion: true,
  checkServerIdentity: true,
};
const SOCKET_KEYS: { readonly [K in keyof SocketOptions]-?: true } = {
  noDelay: true,
  keepAlive: true,
  localAddress: true,
  family: true,
};

function fail(message: string, cause?: unknown): never {
  throw new ConfigurationError(message, cause === undefined ? undefined : { cause });
}

/**
 * True for text that may hold credentials: a URL, `user:password@host`. Such text is never quoted in a
 * message, whatever option it was given in.
 */
function mayHoldCredentials(text: string): boolean {
  return text.includes('@') || text.includes('://');
}

/**
 * A short description of a value for messages: numbers and booleans as they are, strings quoted
 * (except those that may hold credentials, which are described, not shown).
 */
function show(value: unknown): string {
  if (typeof value === 'string') {
    if (mayHoldCredentials(value)) return 'a string that looks like a URL or user information (not shown)';
    return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value === 'function' ? 'function' : Object.prototype.toString.call(value).slice(8, -1)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkKeys(value: Record<string, unknown>, known: object, what: string): void {
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(known, key)) {
      // A key is quoted only when it looks like an identifier: not a URL or a password pasted as a key.
      const shown = /^[A-Za-z0-9_$.-]{1,64}$/.test(key) ? JSON.stringify(key) : '(not shown)';
      fail(`unknown ${what} ${shown}; the accepted ones are ${Object.keys(known).join(', ')}`);
    }
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as Partial<T>;
}

function integer(name: string, value: unknown, min: number, max: number, unit = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${name} must be an integer from ${min} to ${max}${unit}, got ${show(value)}`);
  }
  return value;
}

function timeout(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    fail(`${name} must be a positive number of milliseconds up to ${MAX_TIMER_MS}, got ${show(value)}`);
  }
  return value;
}

function shortString(name: string, value: unknown): string {
  if (typeof value !== 'string') fail(`${name} must be a string, got ${show(value)}`);
  const bytes = utf8Length(value);
  if (bytes > 255) fail(`${name} must be at most 255 bytes in UTF-8, got ${bytes}`);
  return value;
}

function secret(name: string, value: unknown): Secret {
  const result = toSecret(value);
  if (result !== undefined) return result;
  // Never show the value: it is meant to be secret even when it has the wrong type.
  fail(`${name} must be a string or a Secret, got ${value === null ? 'null' : typeof value}`);
}

/** Merges the URL's (or first object's) settings with the overrides, field by field. */
function merge(
  base: ConnectOptions,
  overrides: ConnectOptions,
  urlScheme: string | undefined,
): ConnectOptions {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const current = out[key];
    if (key === 'tls') {
      out[key] = mergeTls(current, value, urlScheme);
    } else if (
      (key === 'socket' || key === 'clientProperties') &&
      isPlainObject(current) &&
      isPlainObject(value)
    ) {
      out[key] = { ...current, ...withoutUndefined(value) };
    } else {
      out[key] = value;
    }
  }
  return out as ConnectOptions;
}

function mergeTls(current: unknown, value: unknown, urlScheme: string | undefined): unknown {
  if (value === false) {
    if (urlScheme !== undefined && SECURE_SCHEMES.has(urlScheme)) {
      const plain = urlScheme === 'amqps' ? 'amqp' : urlScheme === 'wss' ? 'ws' : 'http';
      fail(
        `tls: false contradicts the ${urlScheme}:// URL; use ${plain === 'amqp' ? 'an' : 'a'} ${plain}:// URL for a connection without TLS`,
      );
    }
    return false;
  }
  if (value === true) return isPlainObject(current) ? current : true;
  if (isPlainObject(value)) {
    return { ...(isPlainObject(current) ? current : {}), ...withoutUndefined(value) };
  }
  return value; // invalid: reported by resolveTls
}

/** The option that takes the contents of each file option. */
const FILE_CONTENT_OPTION: Record<string, string> = { caFile: 'ca', certFile: 'cert', keyFile: 'key' };

function readTlsFile(option: string, path: unknown, platform: Platform): Uint8Array {
  if (typeof path !== 'string' || path === '') fail(`tls.${option} must be a file path, got ${show(path)}`);
  const { readFile } = platform;
  if (readFile === undefined) {
    fail(
      `tls.${option} names a file, but this runtime cannot read files: ` +
        `give the contents in tls.${FILE_CONTENT_OPTION[option]} instead`,
    );
  }
  try {
    return readFile(path);
  } catch (e) {
    const code = (e as { code?: unknown } | undefined)?.code;
    // The path is shown (to find the file) unless it looks like a URL; the error that says why it
    // could not be read then goes too, as its message repeats the path.
    const shown = show(path);
    return fail(
      `cannot read tls.${option} ${shown}: ${typeof code === 'string' ? code : 'unknown error'}`,
      mayHoldCredentials(path) ? undefined : e,
    );
  }
}

function pem(option: string, value: unknown): string | Uint8Array {
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  // Not shown: it may be a private key.
  return fail(
    `tls.${option} must be a string or a Buffer (PEM), got ${value === null ? 'null' : typeof value}`,
  );
}

function resolveTls(tls: unknown, hostname: string, platform: Platform): ResolvedTlsOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls !== true && !isPlainObject(tls)) fail(`tls must be a boolean or an object, got ${show(tls)}`);
  const o: TlsOptions = tls === true ? {} : (tls as TlsOptions);
  if (tls !== true) checkKeys(tls, TLS_KEYS, 'tls option');

  let ca: (string | Uint8Array)[] | undefined;
  if (o.ca !== undefined) ca = (Array.isArray(o.ca) ? o.ca : [o.ca]).map((c) => pem('ca', c));
  if (o.caFile !== undefined) ca = [...(ca ?? []), readTlsFile('caFile', o.caFile, platform)];

  if (o.cert !== undefined && o.certFile !== undefined) fail('give tls.cert or tls.certFile, not both');
  if (o.key !== undefined && o.keyFile !== undefined) fail('give tls.key or tls.keyFile, not both');
  const cert =
    o.certFile !== undefined
      ? readTlsFile('certFile', o.certFile, platform)
      : o.cert === undefined
        ? undefined
        : pem('cert', o.cert);
  const key =
    o.keyFile !== undefined
      ? readTlsFile('keyFile', o.keyFile, platform)
      : o.key === undefined
        ? undefined
        : pem('key', o.key);

  const passphrase = o.passphrase === undefined ? undefined : secret('tls.passphrase', o.passphrase);
  if (o.pfx !== undefined && !(o.pfx instanceof Uint8Array))
    fail(`tls.pfx must be a Buffer, got ${o.pfx === null ? 'null' : typeof o.pfx}`);

  const rejectUnauthorized = o.rejectUnauthorized ?? true;
  if (typeof rejectUnauthorized !== 'boolean') {
    fail(`tls.rejectUnauthorized must be a boolean, got ${show(rejectUnauthorized)}`);
  }

  let servername: string | undefined;
  if (o.servername === undefined) {
    // SNI carries host names only (RFC 6066): none for an IP address, which Node then verifies as is.
    servername = hostname !== '' && ipVersion(hostname) === 0 ? hostname : undefined;
  } else if (o.servername !== false) {
    if (typeof o.servername !== 'string' || o.servername === '') {
      fail(`tls.servername must be a host name or false, got ${show(o.servername)}`);
    }
    // TLS errors quote the server name: a URL or user information pasted here must not get that far.
    const problem = hostnameProblem(o.servername);
    if (problem !== undefined) fail(`tls.servername is not a host name: ${problem}`);
    if (ipVersion(o.servername) !== 0) {
      fail(
        `tls.servername cannot be an IP address (${o.servername}): SNI carries host names only; ` +
          'leave it out to verify the certificate against the address',
      );
    }
    servername = o.servername;
  }

  if (o.minVersion !== undefined && o.minVersion !== 'TLSv1.2' && o.minVersion !== 'TLSv1.3') {
    fail(`tls.minVersion must be 'TLSv1.2' or 'TLSv1.3', got ${show(o.minVersion)}`);
  }
  if (o.checkServerIdentity !== undefined && typeof o.checkServerIdentity !== 'function') {
    fail(`tls.checkServerIdentity must be a function, got ${show(o.checkServerIdentity)}`);
  }

  const resolved: ResolvedTlsOptions = {
    ca,
    cert,
    key,
    passphrase,
    pfx: o.pfx,
    rejectUnauthorized,
    servername,
    minVersion: o.minVersion,
    checkServerIdentity: o.checkServerIdentity,
  };
  // The private key is as secret as a password: keep it out of logs and JSON.
  const masked = (): Record<string, unknown> => ({
    ...resolved,
    key: key === undefined ? undefined : '***',
    pfx: o.pfx === undefined ? undefined : '***',
  });
  Object.defineProperties(resolved, {
    toJSON: { value: masked },
    [INSPECT]: {
      // Node passes its inspect as the third argument (since 16.14); returning the object lets an
      // older inspect format it itself.
      value: (depth: number, options: object, inspectFn?: (value: unknown, options: object) => string) =>
        inspectFn === undefined ? masked() : inspectFn(masked(), { ...options, depth }),
    },
  });
  return Object.freeze(resolved);
}

function resolveSocket(socket: unknown): ResolvedSocketOptions {
  if (socket === undefined)
    return Object.freeze({ noDelay: true, keepAlive: false, localAddress: undefined, family: 0 });
  if (!isPlainObject(socket)) fail(`socket must be an object, got ${show(socket)}`);
  checkKeys(socket, SOCKET_KEYS, 'socket option');
  const s = socket as SocketOptions;
  const noDelay = s.noDelay ?? true;
  if (typeof noDelay !== 'boolean') fail(`socket.noDelay must be a boolean, got ${show(noDelay)}`);
  const keepAlive = s.keepAlive ?? false;
  if (
    typeof keepAlive !== 'boolean' &&
    (typeof keepAlive !== 'number' || !Number.isFinite(keepAlive) || keepAlive < 0)
  ) {
    fail(
      `socket.keepAlive must be a boolean or a non-negative number of milliseconds, got ${show(keepAlive)}`,
    );
  }
  if (s.localAddress !== undefined && (typeof s.localAddress !== 'string' || s.localAddress === '')) {
    fail(`socket.localAddress must be an address, got ${show(s.localAddress)}`);
  }
  const family = s.family ?? 0;
  if (family !== 0 && family !== 4 && family !== 6)
    fail(`socket.family must be 0, 4 or 6, got ${show(family)}`);
  return Object.freeze({ noDelay, keepAlive, localAddress: s.localAddress, family });
}

function resolveMechanisms(sasl: unknown, authMechanism: unknown): readonly SaslMechanism[] {
  if (sasl !== undefined) {
    if (!Array.isArray(sasl) || sasl.length === 0) fail('sasl must be a non-empty array of SASL mechanisms');
    for (const m of sasl as unknown[]) {
      const candidate = m as Partial<SaslMechanism> | null;
      if (
        typeof candidate !== 'object' ||
        candidate === null ||
        typeof candidate.name !== 'string' ||
        candidate.name === '' ||
        typeof candidate.response !== 'function'
      ) {
        fail('each sasl mechanism must be an object with a name and a response(credentials) function');
      }
    }
    return Object.freeze([...(sasl as SaslMechanism[])]);
  }
  const names =
    authMechanism === undefined
      ? ['PLAIN']
      : typeof authMechanism === 'string'
        ? [authMechanism]
        : authMechanism;
  if (!Array.isArray(names) || names.length === 0) {
    fail(`authMechanism must be a mechanism name or a non-empty array of them, got ${show(authMechanism)}`);
  }
  const mechanisms: SaslMechanism[] = [];
  const seen = new Set<string>();
  for (const raw of names as unknown[]) {
    const name = typeof raw === 'string' ? raw.toUpperCase() : '';
    if (!Object.hasOwn(BUILTIN_MECHANISMS, name)) {
      fail(
        `unknown authMechanism ${show(raw)}: the built-in mechanisms are ${Object.keys(BUILTIN_MECHANISMS).join(', ')}; ` +
          'pass a custom mechanism in the sasl option',
      );
    }
    if (seen.has(name)) continue;
    seen.add(name);
    mechanisms.push(BUILTIN_MECHANISMS[name as keyof typeof BUILTIN_MECHANISMS]());
  }
  return Object.freeze(mechanisms);
}

/**
 * Copies the entries of `source` over `target`, with the wire tags a decoded table remembers (which
 * spreading would lose). `special` handles a key itself when it returns true.
 */
function mergeTable(
  target: FieldTable,
  source: FieldTable,
  special?: (key: string, value: FieldValue | undefined) => boolean,
): void {
  const tags = fieldTypesOf(source);
  for (const [key, value] of Object.entries(source)) {
    if (special?.(key, value)) continue;
    target[key] = value;
    const tag = tags[key];
    if (tag !== undefined) rememberFieldType(target, key, tag);
  }
}

function clientProperties(user: unknown, name: string | undefined, platform: Platform): FieldTable {
  const properties: FieldTable = {
    product: 'rxamqp',
    version: VERSION,
    // The runtime is the platform's to say (src/config reads no Node global such as process.version).
    ...(typeof platform.name === 'string' ? { platform: platform.name } : {}),
    information: 'https://www.npmjs.com/package/rxamqp',
    capabilities: {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
    },
  };
  if (name !== undefined) properties.connection_name = name;
  if (user === undefined) return properties;
  if (!isPlainObject(user)) fail(`clientProperties must be a field table (an object), got ${show(user)}`);
  mergeTable(properties, user as FieldTable, (key, value) => {
    if (key !== 'capabilities' || value === undefined) return false;
    if (!isFieldTable(value)) fail(`clientProperties.capabilities must be a field table, got ${show(value)}`);
    const capabilities: FieldTable = { ...(properties.capabilities as FieldTable) };
    mergeTable(capabilities, value);
    properties.capabilities = capabilities;
    return true;
  });
  return properties;
}

/** How the URL given names the broker, for the connector's URL and the display URL. */
interface UrlShape {
  /** Lower case: `amqp`/`amqps` (decided by TLS) or the URL's own scheme. */
  readonly scheme: string;
  readonly amqp: boolean;
  /** Other schemes: whether the URL had `//authority`, and its path and query as written. */
  readonly authority: boolean;
  readonly path: string;
  readonly query: string | undefined;
}

/** `host`, `host:port` or `[v6]:port` as a URL authority (no port when it is 0: none was given). */
function hostPort(hostname: string, port: number): string {
  const host = isIPv6(hostname) ? `[${hostname.replace(/%/g, '%25')}]` : hostname;
  return port === 0 ? host : `${host}:${port}`;
}

/** The URL a connector opens: {@link TransportTarget.url}. Never holds user information. */
function targetUrl(shape: UrlShape, hostname: string, port: number, vhost: string): string {
  if (shape.amqp) return `${shape.scheme}://${hostPort(hostname, port)}/${encodeURIComponent(vhost)}`;
  const authority = shape.authority || hostname !== '' ? `//${hostPort(hostname, port)}` : '';
  return `${shape.scheme}:${authority}${shape.path}${shape.query === undefined ? '' : `?${shape.query}`}`;
}

/** The URL for messages and logs: the user name, never the password; no query (it may hold a token). */
function displayUrl(
  shape: UrlShape,
  username: string,
  hostname: string,
  port: number,
  vhost: string,
): string {
  const user = username === '' ? '' : `${encodeURIComponent(username)}@`;
  if (shape.amqp) {
    return `${shape.scheme}://${user}${hostPort(hostname, port)}/${encodeURIComponent(vhost)}`;
  }
  const authority = shape.authority || hostname !== '' ? `//${user}${hostPort(hostname, port)}` : '';
  return `${shape.scheme}:${authority}${shape.path}`;
}

/** The port: given, or the scheme's default, or 0 for a scheme without one when no host is named. */
function resolvePort(port: unknown, shape: UrlShape, hostname: string): number {
  if (port !== undefined) return integer('port', port, 1, 65535);
  const byDefault = DEFAULT_PORTS[shape.scheme];
  if (byDefault !== undefined) return byDefault;
  if (hostname === '') return 0; // `memory:` and the like: no host, no port
  return fail(
    `the ${shape.scheme}: scheme has no default port: give one in the URL (${shape.scheme}://host:port) ` +
      'or in the port option',
  );
}

/** The runtime's connector for a non-AMQP scheme (`ws`, `wss`), if it has one. */
function schemeConnectorOf(platform: Platform, scheme: string): TransportConnector | undefined {
  const schemes = platform.schemes;
  return schemes !== undefined && Object.hasOwn(schemes, scheme) ? schemes[scheme] : undefined;
}

/** Checks a host name option; the message never quotes it (see hostnameProblem). */

function checkHostname(name: string, hostname: string): string {
  const problem = hostnameProblem(hostname);
  if (problem !== undefined) fail(`${name} is not a host name or IP address: ${problem}`);
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * Resolves what `connect()` was given into the settings the connection uses. A string is parsed as a
 * URL ({@link parseUrl}); an object is taken as it is. `overrides` (the options object of
 * `connect(url, options)`) win field by field: a `tls`, `socket` or `clientProperties` object merges
 * over the one from the URL, and `tls: false` is refused when the URL is `amqps://` (or `wss://`,
 * `https://`).
 *
 * Defaults: `localhost`, port 5672 (5671 with TLS), vhost `/`, user and password `guest`, heartbeat 60 s,
 * frame max 131072, channel max 2047, connection timeout 30 s, close timeout 5 s, locale `en_US`,
 * mechanism PLAIN, TLS verification on with SNI set to the host name (unless it is an IP address). TLS
 * certificate files are read here, with `platform.readFile`, so a missing file fails before any
 * connection attempt.
 *
 * The connector is the `transport` option, else `platform.connector` (Node: TCP/TLS); with neither,
 * a ConfigurationError. URLs of schemes other than amqp/amqps (`ws://`, `wss://`, `memory:`...) are
 * accepted only with a `transport` option: their path is the connector's, not the vhost (which comes
 * from the `vhost` option or query parameter, default `/`); their port comes from the URL, the `port`
 * option or the scheme's default (ws and http 80, wss and https 443), and is 0 when the URL names no
 * host; TLS is on for wss and https (and whenever the `tls` option or a TLS query parameter asks for
 * it, except on ws and http). See `docs/transports.md`.
 *
 * @throws ConfigurationError naming the option for any invalid value, unknown option, unreadable file.
 * No message quotes a password, a key, or a host name or URL that may hold one.
 *
 * @example
 * ```ts
 * const options = resolveOptions('amqps://app:s3cret@mq.example.com/orders', { heartbeat: 30, name: 'orders-api' }, nodePlatform);
 * options.port;        // 5671
 * options.displayUrl;  // 'amqps://app@mq.example.com:5671/orders'
 * options.tls?.servername; // 'mq.example.com'
 * options.clientProperties.connection_name; // 'orders-api'
 * options.transport === nodePlatform.connector; // true
 *
 * // In a browser: no TCP; a WebSocket connector (the browser entry's default for ws:/wss:).
 * resolveOptions('wss://mq.example.com/ws?vhost=orders', { transport: webSocketConnector() }, {}).url;
 * // 'wss://mq.example.com:443/ws?vhost=orders'
 * ```
 */
export function resolveOptions(
  input: string | ConnectOptions,
  overrides: ConnectOptions | undefined,
  platform: Platform,
): ResolvedOptions {
  // A caller that predates the platform parameter (plain JavaScript) gets "no built-in transport"
  // rather than a TypeError.
  const runtime: Platform = platform ?? {};
  let options: ConnectOptions;
  let urlShape: UrlShape | undefined;
  if (typeof input === 'string') {
    const parsed = parseConnectionUrl(input, true);
    options = parsed.options;
    urlShape = parsed;
  } else if (isPlainObject(input)) {
    checkKeys(input, CONNECT_KEYS, 'option');
    options = input;
  } else {
    return fail(`connect() takes an AMQP URL or an options object, got ${show(input)}`);
  }
  if (overrides !== undefined) {
    if (!isPlainObject(overrides)) fail(`the options must be an object, got ${show(overrides)}`);
    checkKeys(overrides, CONNECT_KEYS, 'option');
    const urlScheme =
      urlShape === undefined
        ? undefined
        : urlShape.amqp
          ? options.tls === undefined
            ? 'amqp'
            : 'amqps'
          : urlShape.scheme;
    options = merge(options, overrides, urlScheme);
  }

  if (options.transport !== undefined && typeof options.transport !== 'function') {
    fail(`transport must be a function (a TransportConnector), got ${show(options.transport)}`);
  }
  const amqp = urlShape?.amqp ?? true;
  const schemeConnector = amqp ? undefined : schemeConnectorOf(runtime, urlShape!.scheme);
  if (!amqp) {
    const scheme = urlShape!.scheme;
    if (options.transport === undefined && schemeConnector === undefined) {
      fail(
        `rxamqp opens amqp:, amqps:, ws: and wss: URLs; a ${scheme}: URL needs a connector in the transport ` +
          'option (see docs/transports.md)',
      );
    }
    if (Object.hasOwn(PLAIN_SCHEMES, scheme) && options.tls !== undefined && options.tls !== false) {
      fail(`the tls option contradicts the ${scheme}:// URL; use a ${PLAIN_SCHEMES[scheme]}:// URL for TLS`);
    }
  }

  let hostname = options.hostname ?? (amqp ? 'localhost' : '');
  if (typeof hostname !== 'string' || (hostname === '' && amqp))
    fail(`hostname must be a host name or address, got ${show(hostname)}`);
  hostname = checkHostname('hostname', hostname);

  const tls = resolveTls(options.tls, hostname, runtime);
  const shape: UrlShape =
    urlShape === undefined || amqp
      ? {
          scheme: tls === undefined ? 'amqp' : 'amqps',
          amqp: true,
          authority: true,
          path: '',
          query: undefined,
        }
      : urlShape;
  const port = amqp
    ? integer('port', options.port ?? (tls === undefined ? 5672 : 5671), 1, 65535)
    : resolvePort(options.port, shape, hostname);
  const vhost = shortString('vhost', options.vhost ?? '/');

  const username = options.username ?? 'guest';
  if (typeof username !== 'string') fail(`username must be a string, got ${show(username)}`);
  const password = secret('password', options.password ?? 'guest');
  if (username.includes('\0')) fail('username must not contain a NUL character');
  if (password.reveal().includes('\0')) fail('password must not contain a NUL character');
  const provider = options.credentials;
  if (provider !== undefined && typeof provider !== 'function') {
    fail(`credentials must be a function (a CredentialsProvider), got ${show(provider)}`);
  }
  const credentials: Credentials = Object.freeze({ username, password });

  const name = options.name === undefined ? undefined : shortString('name', options.name);
  const locale = shortString('locale', options.locale ?? 'en_US');

  const transport = options.transport ?? (amqp ? runtime.connector : schemeConnector);
  if (transport === undefined) {
    fail(
      `this runtime has no built-in transport for ${shape.scheme}: URLs: pass a connector in the transport ` +
        'option (a WebSocket one, say; see docs/transports.md)',
    );
  }

  const endpoints = resolveHosts(options.hosts, {
    hostname,
    port,
    tls,
    username,
    vhost,
    tlsInput: options.tls,
    shape,
    platform: runtime,
  });
  const recovery = resolveRecovery(options.recovery, endpoints.length);
  const shared = options.shared ?? recovery !== undefined;
  if (typeof shared !== 'boolean') fail(`shared must be a boolean, got ${show(shared)}`);
  const whenBlocked = options.whenBlocked ?? 'wait';
  if (whenBlocked !== 'wait' && whenBlocked !== 'fail') {
    fail(`whenBlocked must be 'wait' or 'fail', got ${show(whenBlocked)}`);
  }

  const resolved: ResolvedOptions = {
    hostname: endpoints[0]!.hostname,
    port: endpoints[0]!.port,
    vhost,
    credentials,
    credentialsSource: new CredentialsSource(credentials, provider),
    tls: endpoints[0]!.tls,
    heartbeat: integer('heartbeat', options.heartbeat ?? DEFAULT_HEARTBEAT, 0, 65535, ' (seconds)'),
    frameMax: frameMax(options.frameMax ?? DEFAULT_FRAME_MAX),
    channelMax: integer('channelMax', options.channelMax ?? DEFAULT_CHANNEL_MAX, 0, 65535),
    connectionTimeout: timeout('connectionTimeout', options.connectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT),
    closeTimeout: timeout('closeTimeout', options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT),
    mechanisms: resolveMechanisms(options.sasl, options.authMechanism),
    clientProperties: clientProperties(options.clientProperties, name, runtime),
    name,
    locale,
    socket: resolveSocket(options.socket),
    maxBodySize: integer(
      'maxBodySize',
      options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE,
      1,
      Number.MAX_SAFE_INTEGER,
      ' (bytes)',
    ),
    writeHighWaterMark: integer(
      'writeHighWaterMark',
      options.writeHighWaterMark ?? DEFAULT_WRITE_HIGH_WATER_MARK,
      0,
      Number.MAX_SAFE_INTEGER,
      ' (bytes)',
    ),
    ackDelay: integer('ackDelay', options.ackDelay ?? DEFAULT_ACK_DELAY, 0, 1000, ' (milliseconds)'),
    readBatching: readBatching(options.readBatching),
    transport,
    scheme: shape.scheme,
    url: endpoints[0]!.url,
    displayUrl: endpoints[0]!.displayUrl,
    endpoints,
    recovery,
    shared,
    whenBlocked,
    blockedTimeout: timeout('blockedTimeout', options.blockedTimeout ?? DEFAULT_BLOCKED_TIMEOUT),
    preferNode: preferNode(options.preferNode, endpoints),
    debug: debugSink(options.debug),
    telemetry: instrumentation(options.telemetry),
    reporter: SILENT,
  };
  return Object.freeze(resolved);
}

/**
 * What a connector is given for a connection attempt with `options` (whose host, port, TLS and URL
 * are those of the endpoint being tried).
 *
 * @example
 * ```ts
 * const options = resolveOptions('amqp://localhost', undefined, nodePlatform);
 * const transport = await options.transport(transportTarget(options), handler, signal);
 * ```
 */
export function transportTarget(options: ResolvedOptions): TransportTarget {
  return Object.freeze({
    scheme: options.scheme,
    url: options.url,
    hostname: options.hostname,
    port: options.port,
    tls: options.tls,
    socket: options.socket,
    timeoutMs: options.connectionTimeout,
    writeHighWaterMark: options.writeHighWaterMark,
  });
}

/** The hosts to try: the URL's alone, or those of `hosts` (each with its own TLS name and URL). */
function resolveHosts(
  hosts: unknown,
  base: {
    hostname: string;
    port: number;
    tls: ResolvedTlsOptions | undefined;
    username: string;
    vhost: string;
    tlsInput: unknown;
    shape: UrlShape;
    platform: Platform;
  },
): readonly ResolvedEndpoint[] {
  const endpoint = (hostname: string, port: number, node?: string): ResolvedEndpoint => {
    const tls = hostname === base.hostname ? base.tls : resolveTls(base.tlsInput, hostname, base.platform);
    return Object.freeze({
      hostname,
      port,
      tls,
      url: targetUrl(base.shape, hostname, port, base.vhost),
      displayUrl: displayUrl(base.shape, base.username, hostname, port, base.vhost),
      node,
    });
  };
  if (hosts === undefined) return Object.freeze([endpoint(base.hostname, base.port)]);
  if (!Array.isArray(hosts) || hosts.length === 0) {
    fail(`hosts must be a non-empty array of 'host', 'host:port' or { hostname, port }, got ${show(hosts)}`);
  }
  return Object.freeze(
    hosts.map((h: unknown, i: number) => {
      const { hostname, port, node } = hostAddress(h, `hosts[${i}]`);
      return endpoint(hostname, port ?? base.port, node);
    }),
  );
}

/** Like show(), but never echoes what may carry credentials (a URL, `user:password@host`). */
function showHost(value: unknown): string {
  if (typeof value === 'string' && (value.includes('@') || value.includes('://'))) {
    return 'a URL or a value with user information (not shown: it may hold a password); give the host alone';
  }
  return show(value);
}

/** Parses one entry of `hosts`. */
function hostAddress(
  value: unknown,
  name: string,
): { hostname: string; port: number | undefined; node?: string } {
  if (isPlainObject(value)) {
    checkKeys(value, { hostname: true, port: true, node: true }, `${name} key`);
    const hostname = value.hostname;
    if (typeof hostname !== 'string' || hostname === '') {
      fail(`${name}.hostname must be a host name or address, got ${showHost(hostname)}`);
    }
    const port = value.port === undefined ? undefined : integer(`${name}.port`, value.port, 1, 65535);
    const node = value.node;
    if (node !== undefined && (typeof node !== 'string' || node === '')) {
      fail(`${name}.node must be a node name such as 'rabbit@rabbit-1', got ${show(node)}`);
    }
    return {
      hostname: checkHostname(`${name}.hostname`, hostname),
      port,
      ...(node === undefined ? {} : { node: node as string }),
    };
  }
  if (typeof value !== 'string' || value.trim() === '') {
    fail(`${name} must be 'host', 'host:port' or { hostname, port }, got ${showHost(value)}`);
  }
  const text = value.trim();
  if (isIPv6(text)) return { hostname: text, port: undefined };
  const match = /^(?:\[([^\]@/\s]+)\]|([^:[\]@/\s]+))(?::(\d+))?$/.exec(text);
  if (match === null) {
    // Not quoted even when it holds no "@": `user:password` (the "@host" forgotten) looks like host:port.
    fail(
      `${name} must be 'host', 'host:port' or '[IPv6]:port', got ${
        mayHoldCredentials(text) ? showHost(value) : 'a value not shown here, as it may hold a password'
      }`,
    );
  }
  const hostname = checkHostname(name, match[1] === undefined ? match[2]! : `[${match[1]}]`);
  const port = match[3] === undefined ? undefined : integer(`${name} port`, Number(match[3]), 1, 65535);
  return { hostname, port };
}

/** @internal The retries of a first connection by default (recovery on): about 3 s. */
export const DEFAULT_INITIAL_RETRY: RetryPolicyOptions = Object.freeze({
  backoff: Object.freeze({ initialDelay: 100, maxDelay: 5000 }),
  maxAttempts: 5,
});
/** @internal The retries after a loss by default: backoff from 100 ms to 30 s, without end. */
export const DEFAULT_RECONNECT_RETRY: RetryPolicyOptions = Object.freeze({
  backoff: Object.freeze({ initialDelay: 100, multiplier: 2, maxDelay: 30_000, jitter: 0.5 }),
  maxAttempts: Number.POSITIVE_INFINITY,
});

/** The `preferNode` option, checked: a function, and only with hosts that name their nodes. */
function preferNode(value: unknown, endpoints: readonly ResolvedEndpoint[]): ResolvedOptions['preferNode'] {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') fail(`preferNode must be a function, got ${show(value)}`);
  if (!endpoints.some((e) => e.node !== undefined)) {
    fail(
      "preferNode needs hosts that name their nodes: hosts: [{ hostname, port, node: 'rabbit@host' }, ...]",
    );
  }
  return value as ResolvedOptions['preferNode'];
}

/** The `telemetry` option, checked: an object whose `publish`, `deliver` and `event` are functions where given. */
function instrumentation(value: unknown): Instrumentation | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) {
    return fail(
      `telemetry must be an instrumentation object (openTelemetry() from rxamqp/otel), got ${show(value)}`,
    );
  }
  for (const method of ['publish', 'deliver', 'event'] as const) {
    const fn = (value as Record<string, unknown>)[method];
    if (fn !== undefined && typeof fn !== 'function') {
      fail(`telemetry.${method} must be a function, got ${show(fn)}`);
    }
  }
  return value as Instrumentation;
}

/** The `debug` option as a function, or undefined when off. */
function debugSink(value: unknown): ((line: string) => void) | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return (line) => console.warn(line);
  if (typeof value === 'function') return value as (line: string) => void;
  return fail(`debug must be a boolean or a function, got ${show(value)}`);
}

/**
 * The default first-connect policy, bounded: an attempt that timed out (CONNECT_TIMEOUT, a host that
 * accepts TCP but never answers) is not retried once every host has had one, since waiting another
 * `connectionTimeout` rarely helps a newcomer pointed at the wrong port. Refused and reset connections
 * keep the default's quick retries (about 3 s in all). Measured against a silent endpoint: the first
 * error came after 182 s (6 attempts of 30 s) before this bound, after one `connectionTimeout` now.
 */
function boundedFirstConnect(base: RetryPolicy, hostCount: number): RetryPolicy {
  return {
    delayFor: (attempt, error) =>
      error instanceof ConnectionClosedError && error.code === 'CONNECT_TIMEOUT' && attempt >= hostCount
        ? undefined
        : base.delayFor(attempt, error),
  };
}

function resolveRecovery(value: unknown, hostCount: number): ResolvedRecovery | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && !isPlainObject(value)) {
    fail(`recovery must be a boolean or an object, got ${show(value)}`);
  }
  const o: RecoveryOptions = value === true ? {} : (value as RecoveryOptions);
  if (value !== true) checkKeys(value as Record<string, unknown>, RECOVERY_KEYS, 'recovery option');
  const hostOrder = o.hostOrder ?? 'in-order';
  if (hostOrder !== 'in-order' && hostOrder !== 'round-robin') {
    fail(`recovery.hostOrder must be 'in-order' or 'round-robin', got ${show(hostOrder)}`);
  }
  const policy = (name: string, options: unknown, defaults: RetryPolicyOptions) => {
    if (options !== undefined && !isPlainObject(options)) {
      fail(`recovery.${name} must be an object (a retry policy), got ${show(options)}`);
    }
    try {
      return retryPolicy(options as RetryPolicyOptions | undefined, defaults);
    } catch (e) {
      return fail(`recovery.${name}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  };
  const scheduler = o.scheduler;
  if (
    scheduler !== undefined &&
    (typeof scheduler !== 'object' || typeof scheduler.schedule !== 'function')
  ) {
    fail(`recovery.scheduler must be an RxJS scheduler, got ${show(scheduler)}`);
  }
  return Object.freeze({
    initial:
      o.initial === false
        ? undefined
        : o.initial === undefined
          ? boundedFirstConnect(policy('initial', undefined, DEFAULT_INITIAL_RETRY), hostCount)
          : policy('initial', o.initial, DEFAULT_INITIAL_RETRY),
    reconnect: policy('reconnect', o.reconnect, DEFAULT_RECONNECT_RETRY),
    hostOrder,
    scheduler,
  });
}

function readBatching(value: unknown): ResolvedOptions['readBatching'] {
  if (value === false) return undefined;
  if (value === undefined || value === true) return DEFAULT_READ_BATCHING;
  if (!isPlainObject(value)) {
    fail(`readBatching must be false or { minMessages?, delayMs? }, got ${show(value)}`);
  }
  checkKeys(value, DEFAULT_READ_BATCHING, 'readBatching option');
  const o = value as { minMessages?: unknown; delayMs?: unknown };
  return Object.freeze({
    minMessages: integer(
      'readBatching.minMessages',
      o.minMessages ?? DEFAULT_READ_BATCHING.minMessages,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    delayMs: integer(
      'readBatching.delayMs',
      o.delayMs ?? DEFAULT_READ_BATCHING.delayMs,
      1,
      1000,
      ' (milliseconds)',
    ),
  });
}

function frameMax(value: unknown): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    !(value === 0 || (value >= 4096 && value <= 0xffffffff))
  ) {
    fail(`frameMax must be 0 (no limit) or an integer from 4096 to 4294967295 (bytes), got ${show(value)}`);
  }
  return value;
}
