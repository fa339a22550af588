/**
 * AMQP URLs as the RabbitMQ URI specification defines them:
 *
 * ```text
 * amqp[s]://[user[:password]@][host][:port][/vhost][?key=value&key=value...]
 * ```
 *
 * Every component is percent-decoded (`%2F` in the vhost is `/`, `%40` in a password is `@`). The query
 * keys are those of RabbitMQ's URI query parameters that make sense for this client: `heartbeat`,
 * `frame_max`, `channel_max`, `connection_timeout`, `auth_mechanism` and, for `amqps://` only,
 * `cacertfile`, `certfile`, `keyfile`, `verify` and `server_name_indication`. Any other key is an error,
 * so a misspelt parameter never passes silently.
 *
 * Errors are {@link ConfigurationError}s whose message shows the URL with its password replaced by `***`
 * (see {@link redactUrl}); no error ever carries the password.
 *
 * URLs of other schemes (`ws://`, `wss://`, `memory:`...) are for custom transports: see
 * {@link parseConnectionUrl} and `docs/transports.md`.
 *
 * @module
 */
import { ConfigurationError } from '../errors.js';
import { isIPv6 } from './host.js';
import type { ConnectOptions, TlsOptions } from './options.js';
import { Secret } from './secret.js';

/**
 * The query parameters `parseUrl` accepts, as RabbitMQ's URI query parameters name them.
 *
 * @example
 * ```ts
 * URL_QUERY_KEYS.includes('heartbeat'); // true
 * ```
 */
export const URL_QUERY_KEYS: readonly string[] = Object.freeze([
  'heartbeat',
  'frame_max',
  'channel_max',
  'connection_timeout',
  'auth_mechanism',
  'cacertfile',
  'certfile',
  'keyfile',
  'verify',
  'server_name_indication',
]);

const TLS_KEYS = new Set(['cacertfile', 'certfile', 'keyfile', 'verify', 'server_name_indication']);

/** Numeric query parameters: option name and accepted range. */
const NUMERIC_KEYS: Record<
  string,
  {
    option: 'heartbeat' | 'frameMax' | 'channelMax' | 'connectionTimeout';
    check: (n: number) => boolean;
    range: string;
  }
> = {
  heartbeat: { option: 'heartbeat', check: (n) => n <= 65535, range: 'an integer from 0 to 65535 (seconds)' },
  frame_max: {
    option: 'frameMax',
    check: (n) => n === 0 || (n >= 4096 && n <= 0xffffffff),
    range: '0 or an integer from 4096 to 4294967295 (bytes)',
  },
  channel_max: { option: 'channelMax', check: (n) => n <= 65535, range: 'an integer from 0 to 65535' },
  connection_timeout: {
    option: 'connectionTimeout',
    check: (n) => n >= 1 && n <= 0x7fffffff,
    range: 'an integer from 1 to 2147483647 (milliseconds)',
  },
};

// RFC 3986 character classes (percent-escapes are matched separately).
const UNRESERVED_SUB_DELIMS = "A-Za-z0-9\\-._~!$&'()*+,;=";
/** User name and password. `@` and `:` are tolerated: the last `@` and the first `:` split them. */
const USERINFO = new RegExp(`^(?:[${UNRESERVED_SUB_DELIMS}:@]|%[0-9A-Fa-f]{2})*$`);
/** A registered host name (or IPv4 address). */
const REG_NAME = new RegExp(`^(?:[${UNRESERVED_SUB_DELIMS}]|%[0-9A-Fa-f]{2})*$`);
/** A path segment (the vhost). */
const SEGMENT = new RegExp(`^(?:[${UNRESERVED_SUB_DELIMS}:@]|%[0-9A-Fa-f]{2})*$`);
/** A path (of a URL of another scheme). */
const PATH = new RegExp(`^(?:[${UNRESERVED_SUB_DELIMS}:@/]|%[0-9A-Fa-f]{2})*$`);
/** The query. */
const QUERY = new RegExp(`^(?:[${UNRESERVED_SUB_DELIMS}:@/?]|%[0-9A-Fa-f]{2})*$`);
/** An RFC 4422 SASL mechanism name. */
const SASL_NAME = /^[A-Z0-9_-]{1,20}$/;

/**
 * The spans of `url` that {@link redactUrl} hides: the password, between `://user:` and the last `@`
 * (greedy, so that a password with an unescaped `/`, `?` or `#` is hidden whole), and the value of any
 * query parameter whose name contains "pass".
 */
function secretSpans(url: string): [number, number][] {
  const spans: [number, number][] = [];
  const sep = url.indexOf('://');
  const start = sep < 0 ? 0 : sep + 3;
  const at = url.lastIndexOf('@');
  if (at >= start) {
    const colon = url.indexOf(':', start);
    if (colon >= 0 && colon < at) spans.push([colon + 1, at]);
  } else if (sep >= 0 && url[start] === '[') {
    // `amqp://[user:password]`: brackets that do not hold an IPv6 address are hidden, to the end.
    const close = url.indexOf(']', start);
    const inner = url.slice(start + 1, close < 0 ? url.length : close);
    if (!/^[0-9A-Fa-f:.]*(?:%25[0-9A-Za-z\-._~%]*)?$/.test(inner)) spans.push([start + 1, url.length]);
  } else if (sep >= 0) {
    // No "@": `amqp://user:password` (the "@host" forgotten) parses as host "user", port "password".
    // Whatever follows a colon of the authority and is not a port is hidden, to the end of the text,
    // since a password may hold an unescaped "/", "?" or "#".
    const authorityEnd = indexOfAny(url, '/?#', start);
    const colon = url.indexOf(':', start);
    if (colon >= 0 && colon < authorityEnd && !/^[0-9]*$/.test(url.slice(colon + 1, authorityEnd))) {
      spans.push([colon + 1, url.length]);
    }
  }
  const passParam = /[?&;]([^=&#]*pass[^=&#]*)=([^&#]*)/gi;
  for (let m = passParam.exec(url); m !== null; m = passParam.exec(url)) {
    const valueStart = m.index + m[0].length - m[2]!.length;
    if (m[2] !== '') spans.push([valueStart, valueStart + m[2]!.length]);
  }
  return spans;
}

/**
 * The URL with its password replaced by `***`, fit for messages and logs. It copes with text that is
 * not a valid URL: anything between `://user:` and the last `@` is masked, so a password holding an
 * unescaped `/`, `?`, `#` or `@` is still hidden whole (at the price of masking a little more than the
 * password when a valid URL has an `@` in its vhost or query). Without any `@`, what follows a `:` of
 * the authority is masked to the end unless it is a port (`amqp://user:password`, the `@host`
 * forgotten), and so are brackets that hold no IPv6 address. The values of query parameters whose
 * name contains "pass" are masked too.
 *
 * @example
 * ```ts
 * redactUrl('amqp://app:s3cret@mq.example.com/orders'); // 'amqp://app:***@mq.example.com/orders'
 * redactUrl('amqp://app:a/b?c@host');                    // 'amqp://app:***@host'
 * redactUrl('amqp://app:s3cret');                        // 'amqp://app:***' (no "@host")
 * redactUrl('amqp://mq.example.com:5672/orders');       // unchanged
 * ```
 */
export function redactUrl(url: string): string {
  const spans = secretSpans(url).sort((a, b) => a[0] - b[0]);
  let out = '';
  let pos = 0;
  for (const [start, end] of spans) {
    if (end <= pos) continue;
    out += `${url.slice(pos, Math.max(pos, start))}***`;
    pos = end;
  }
  return out + url.slice(pos);
}

const MASKED = '(masked)';

/** Builds errors for one URL: every message shows the redacted URL, and quotes only visible text. */
class UrlErrors {
  private readonly spans: [number, number][];
  private readonly shown: string;

  /** `AMQP URL`, or `URL` once the scheme is known to be another one. */
  kind = 'AMQP URL';

  constructor(private readonly url: string) {
    this.spans = secretSpans(url);
    this.shown = redactUrl(url);
  }

  error(detail: string): ConfigurationError {
    return new ConfigurationError(`invalid ${this.kind} "${this.shown}": ${detail}`);
  }

  /** `"text"` for url[start, end), or a neutral word when that span overlaps a masked part. */
  quote(start: number, end: number, text = this.url.slice(start, end)): string {
    const hidden = this.spans.some(([s, e]) => start < e && end > s);
    return hidden ? MASKED : JSON.stringify(text);
  }
}

function decode(raw: string, what: string, errors: UrlErrors): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw errors.error(`${what} is not valid percent-encoded UTF-8`);
  }
}

/** First index at or after `from` of any character in `chars`, or `text.length`. */
function indexOfAny(text: string, chars: string, from: number): number {
  for (let i = from; i < text.length; i++) if (chars.includes(text[i]!)) return i;
  return text.length;
}

/**
 * Parses an `amqp://` or `amqps://` URL into connect options, following the RabbitMQ URI specification.
 * Components the URL leaves out are left out of the result, so that defaults (or other options) apply:
 * `amqp://host` has no vhost (the default `/` applies) while `amqp://host/` names the empty vhost, as the
 * specification says. `amqps://` sets `tls` (`true`, or a {@link TlsOptions} object when TLS query
 * parameters are given). The password is returned as a {@link Secret}.
 *
 * @throws ConfigurationError for anything the specification does not allow: another scheme, a bad
 * port, a vhost with an unescaped `/`, an unknown query parameter, a TLS parameter on `amqp://`...
 * The message shows the URL with the password replaced by `***`.
 *
 * @example
 * ```ts
 * const options = parseUrl('amqps://app:p%40ss@mq.example.com/orders?heartbeat=30&cacertfile=/etc/ca.pem');
 * // { hostname: 'mq.example.com', vhost: 'orders', username: 'app',
 * //   password: Secret(***), heartbeat: 30, tls: { caFile: '/etc/ca.pem' } }  (no port: 5671 applies)
 * options.password?.toString(); // '***'
 * ```
 */
export function parseUrl(url: string): ConnectOptions {
  return parseConnectionUrl(url, false).options;
}

/**
 * A URL as {@link parseConnectionUrl} splits it.
 *
 * @example
 * ```ts
 * const parsed: ParsedUrl = parseConnectionUrl('ws://mq.example.com/ws?vhost=orders', true);
 * ```
 */
export interface ParsedUrl {
  /** The options the URL sets (for other schemes: the host, port, credentials and known query parameters). */
  readonly options: ConnectOptions;
  /** The scheme, lower case. */
  readonly scheme: string;
  /** True for `amqp` and `amqps`. */
  readonly amqp: boolean;
  /** True when the URL has an authority (`scheme://...`). */
  readonly authority: boolean;
  /** For other schemes: the path as written (percent-escapes kept), `''` when there is none. */
  readonly path: string;
  /** For other schemes: the query as written, without the `?`; undefined when there is none. */
  readonly query: string | undefined;
}

/**
 * Schemes whose URLs mean TLS (the connector must encrypt; `tls: false` is refused). Decided by name,
 * never guessed from a trailing "s" (`ws`, `redis` and `nats` end in "s" too).
 *
 * @example
 * ```ts
 * SECURE_SCHEMES.has('wss'); // true
 * SECURE_SCHEMES.has('ws');  // false
 * ```
 */
export const SECURE_SCHEMES: ReadonlySet<string> = new Set(['amqps', 'wss', 'https']);
/**
 * Schemes that mean a plain stream, with their secure twin: asking them for TLS (the `tls` option, a
 * TLS query parameter) is refused. `amqp` is not here: `amqp://` with the `tls` option has always
 * meant TLS.
 *
 * @example
 * ```ts
 * PLAIN_SCHEMES.ws; // 'wss'
 * ```
 */
export const PLAIN_SCHEMES: Readonly<Record<string, string>> = Object.freeze({ ws: 'wss', http: 'https' });
/**
 * Default ports of the schemes that have one. A URL of another scheme that names a host must name a
 * port too (or the `port` option must); one that names no host (`memory:`) gets port 0.
 *
 * @example
 * ```ts
 * DEFAULT_PORTS.wss; // 443
 * DEFAULT_PORTS.memory; // undefined
 * ```
 */
export const DEFAULT_PORTS: Readonly<Record<string, number>> = Object.freeze({
  amqp: 5672,
  amqps: 5671,
  ws: 80,
  wss: 443,
  http: 80,
  https: 443,
});

/**
 * Parses a connection URL. With `otherSchemes` false it accepts only `amqp://` and `amqps://` (this is
 * {@link parseUrl}). With `otherSchemes` true, any RFC 3986 scheme is accepted, for a custom transport
 * connector: the authority (`user:password@host:port`) is read as for AMQP, but the path is not the
 * vhost (it is kept for the connector, in {@link ParsedUrl.path}); in the query, the AMQP parameters and
 * `vhost` are read, the others are left to the connector. TLS parameters (`cacertfile`...) are refused
 * on `amqp`, `ws` and `http`, whose URLs mean a plain stream. Every error message shows the URL
 * redacted.
 *
 * @example
 * ```ts
 * const { scheme, options, path } = parseConnectionUrl('wss://app:s3cret@mq.example.com/ws?vhost=orders&heartbeat=10', true);
 * // scheme 'wss', path '/ws', options { hostname: 'mq.example.com', username: 'app', password: Secret(***),
 * //   vhost: 'orders', heartbeat: 10, tls: true }
 * ```
 */
export function parseConnectionUrl(url: string, otherSchemes: boolean): ParsedUrl {
  if (typeof url !== 'string') {
    throw new ConfigurationError(`the AMQP URL must be a string, got ${url === null ? 'null' : typeof url}`);
  }
  const text = url.trim();
  const errors = new UrlErrors(text);

  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
  if (schemeMatch === null) throw errors.error('it does not start with amqp:// or amqps://');
  const rawScheme = schemeMatch[1]!;
  const scheme = rawScheme.toLowerCase();
  const amqp = scheme === 'amqp' || scheme === 'amqps';
  if (!amqp && !otherSchemes) {
    throw errors.error(
      `the scheme must be amqp or amqps, not ${errors.quote(0, rawScheme.length)} (an AMQP URL starts with amqp:// or amqps://); ` +
        'a URL of another scheme needs a connector in the transport option',
    );
  }
  if (!amqp) errors.kind = 'URL';
  const secure = SECURE_SCHEMES.has(scheme);
  const plain = amqp ? !secure : Object.hasOwn(PLAIN_SCHEMES, scheme);
  let pos = rawScheme.length + 1;
  const result: ConnectOptions = {};
  const hasAuthority = text.startsWith('//', pos);
  if (!hasAuthority && amqp) throw errors.error(`expected "//" after "${scheme}:"`);
  if (hasAuthority) pos = parseAuthority(text, pos + 2, errors, result);

  // Path: for AMQP, "/" vhost, a single segment; for other schemes, the connector's.
  let path = '';
  if (amqp && text[pos] === '/') {
    const pathEnd = indexOfAny(text, '?#', pos + 1);
    const rawVhost = text.slice(pos + 1, pathEnd);
    if (rawVhost.includes('/')) {
      throw errors.error('the vhost is a single path segment: write a "/" inside it as %2F');
    }
    if (!SEGMENT.test(rawVhost))
      throw errors.error('the vhost holds a character that must be percent-encoded');
    result.vhost = decode(rawVhost, 'the vhost', errors);
    pos = pathEnd;
  } else if (!amqp) {
    const pathEnd = indexOfAny(text, '?#', pos);
    path = text.slice(pos, pathEnd);
    if (!PATH.test(path)) throw errors.error('the path holds a character that must be percent-encoded');
    pos = pathEnd;
  }

  // Query.
  let tls: TlsOptions | undefined;
  let rawQuery: string | undefined;
  if (text[pos] === '?') {
    const queryEnd = indexOfAny(text, '#', pos + 1);
    const query = text.slice(pos + 1, queryEnd);
    rawQuery = query;
    if (!QUERY.test(query)) {
      throw errors.error('the query holds a character that must be percent-encoded');
    }
    const seen = new Set<string>();
    const mechanisms: string[] = [];
    let paramStart = pos + 1;
    for (const param of query.split('&')) {
      const start = paramStart;
      paramStart += param.length + 1;
      if (param === '') continue;
      const eq = param.indexOf('=');
      const rawKey = eq < 0 ? param : param.slice(0, eq);
      const key = decode(rawKey, 'a query parameter name', errors);
      const keyText = errors.quote(start, start + rawKey.length, key);
      if (!URL_QUERY_KEYS.includes(key) && !(key === 'vhost' && !amqp)) {
        // Other schemes: the parameter is the connector's (a WebSocket server's, say).
        if (!amqp) continue;
        throw errors.error(
          `unknown query parameter ${keyText}; the accepted parameters are ${URL_QUERY_KEYS.join(', ')}`,
        );
      }
      if (eq < 0) throw errors.error(`the query parameter ${keyText} has no value`);
      const value = decode(param.slice(eq + 1), `the value of ${key}`, errors);
      const valueText = errors.quote(start + eq + 1, start + param.length, value);
      if (key !== 'auth_mechanism') {
        if (seen.has(key)) throw errors.error(`the query parameter ${keyText} is given more than once`);
        seen.add(key);
      }
      if (TLS_KEYS.has(key) && plain) {
        throw errors.error(
          `${key} is a TLS parameter: use ${amqp ? 'an amqps://' : `a ${PLAIN_SCHEMES[scheme]}://`} URL for TLS`,
        );
      }
      if (key === 'vhost') {
        result.vhost = value;
        continue;
      }

      const numeric = NUMERIC_KEYS[key];
      if (numeric !== undefined) {
        const n = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
        if (!Number.isSafeInteger(n) || !numeric.check(n)) {
          throw errors.error(`${key} must be ${numeric.range}, not ${valueText}`);
        }
        result[numeric.option] = n;
        continue;
      }
      switch (key) {
        case 'auth_mechanism': {
          const name = value.toUpperCase();
          if (!SASL_NAME.test(name)) {
            throw errors.error(
              `auth_mechanism must be a SASL mechanism name (such as PLAIN or EXTERNAL), not ${valueText}`,
            );
          }
          if (!mechanisms.includes(name)) mechanisms.push(name);
          break;
        }
        case 'cacertfile':
        case 'certfile':
        case 'keyfile': {
          if (value === '') throw errors.error(`${key} must be a file path`);
          tls ??= {};
          if (key === 'cacertfile') tls.caFile = value;
          else if (key === 'certfile') tls.certFile = value;
          else tls.keyFile = value;
          break;
        }
        case 'verify':
          if (value !== 'verify_peer' && value !== 'verify_none') {
            throw errors.error(`verify must be verify_peer or verify_none, not ${valueText}`);
          }
          tls ??= {};
          tls.rejectUnauthorized = value === 'verify_peer';
          break;
        case 'server_name_indication':
          if (value === '') {
            throw errors.error('server_name_indication must be a host name, or "disable" to send none');
          }
          tls ??= {};
          tls.servername = value === 'disable' ? false : value;
          break;
      }
    }
    if (mechanisms.length > 0) result.authMechanism = mechanisms;
    pos = queryEnd;
  }

  if (pos < text.length) {
    // Only a fragment can be left.
    throw errors.error(
      `${errors.kind === 'URL' ? 'a' : 'an'} ${errors.kind} has no fragment ("#..."): percent-encode a "#" as %23`,
    );
  }
  if (secure) result.tls = tls ?? true;
  else if (tls !== undefined) result.tls = tls; // TLS parameters on a scheme that leaves TLS open
  return { options: result, scheme, amqp, authority: hasAuthority, path, query: rawQuery };
}

/** Reads `[userinfo@]host[:port]` from `pos` into `result`; returns where the authority ends. */
function parseAuthority(text: string, pos: number, errors: UrlErrors, result: ConnectOptions): number {
  const authorityEnd = indexOfAny(text, '/?#', pos);
  const authority = text.slice(pos, authorityEnd);
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    if (!USERINFO.test(userinfo)) {
      throw errors.error(
        'the user name or password holds a character that must be percent-encoded ' +
          '(such as a space, "%", "/", "?", "#", "[" or "]")',
      );
    }
    const colon = userinfo.indexOf(':');
    result.username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), 'the user name', errors);
    if (colon >= 0) result.password = new Secret(decode(userinfo.slice(colon + 1), 'the password', errors));
  }
  const hostStart = pos + at + 1;
  const hostPort = authority.slice(at + 1);
  let portText: string | undefined;
  let portStart = 0;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) throw errors.error('the IPv6 address in brackets has no closing "]"');
    const inner = hostPort.slice(1, close);
    const address = /^[0-9A-Fa-f:.]*(?:%25[^\]]*)?$/.test(inner) ? decode(inner, 'the host', errors) : '';
    if (!isIPv6(address)) {
      // Quoted only when it looks like a host name: `[user:password]` must not show the password.
      const shown = /^[A-Za-z0-9\-_.]*$/.test(inner) ? `"[${inner}]"` : 'the host in brackets';
      throw errors.error(`${shown} is not an IPv6 address (only IPv6 addresses go in brackets)`);
    }
    result.hostname = address;
    const rest = hostPort.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw errors.error('only ":port" may follow the IPv6 address in brackets');
      portText = rest.slice(1);
      portStart = hostStart + close + 2;
    }
  } else {
    const colon = hostPort.indexOf(':');
    const rawHost = colon < 0 ? hostPort : hostPort.slice(0, colon);
    if (colon >= 0) {
      portText = hostPort.slice(colon + 1);
      portStart = hostStart + colon + 1;
    }
    if (portText?.includes(':')) {
      throw errors.error('write an IPv6 address in brackets, such as amqp://[::1]:5672');
    }
    if (!REG_NAME.test(rawHost)) {
      throw errors.error('the host holds a character that must be percent-encoded');
    }
    const hostname = decode(rawHost, 'the host', errors);
    if (hostname !== '') result.hostname = hostname;
  }
  if (portText !== undefined && portText !== '') {
    const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) {
      const shown = errors.quote(portStart, portStart + portText.length);
      if (shown !== MASKED) throw errors.error(`the port must be an integer from 1 to 65535, not ${shown}`);
      throw errors.error(
        text.includes('@', pos)
          ? 'the host and port cannot be told apart from the password: percent-encode any "/", "?" or "#" ' +
              'in the user name or password (as %2F, %3F, %23)'
          : 'the port must be an integer from 1 to 65535 (what follows ":" is not shown: if it is a password, ' +
              'the "@host" part is missing)',
      );
    }
    result.port = port;
  }
  return authorityEnd;
}
