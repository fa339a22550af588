/**
 * The relay's log lines: one per connection opened, one per connection closed, one per upgrade refused.
 * Built from connection metadata only (addresses, origin, path, counters, the reason for the close):
 * payload bytes never reach this module, and the path loses its query string, where tokens travel.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { formatRemote } from '../transport/tcp.js';

/** What the log lines say about one WebSocket request. */
export interface RequestInfo {
  /** `host:port` of the peer (the reverse proxy's, when there is one). */
  readonly remote: string;
  /** The `Origin` header, or undefined when the request had none. */
  readonly origin: string | undefined;
  /** The request path without its query string. */
  readonly path: string;
}

/** What one closed connection did, for its close line. */
export interface CloseStats {
  readonly durationMs: number;
  /** Bytes from the browser to the broker. */
  readonly up: number;
  /** Bytes from the broker to the browser. */
  readonly down: number;
  /** Why it closed, in a few words (no payload, no credential). */
  readonly reason: string;
}

/** The longest origin or path quoted in a line: the rest is cut (both come from the peer). */
const MAX_FIELD = 200;

/**
 * Makes a peer-supplied value safe for a one-line, space-separated log: everything outside printable
 * ASCII, and the space, `"` and `%`, is percent-encoded, so a value can neither forge a second line
 * nor a second field.
 */
function field(value: string): string {
  const cut = value.length > MAX_FIELD ? `${value.slice(0, MAX_FIELD)}...` : value;
  return cut.replace(/[^\x21-\x7e]|[%"]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `%${code.toString(16).padStart(2, '0').toUpperCase()}`
      : `%u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * The request path up to its query string or fragment.
 *
 * @example
 * ```ts
 * pathOf('/amqp?token=secret'); // '/amqp'
 * ```
 */
export function pathOf(url: string | undefined): string {
  if (url === undefined || url === '') return '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/**
 * The log-relevant facts of an upgrade request.
 *
 * @example
 * ```ts
 * server.on('upgrade', (request) => console.log(requestInfo(request).remote));
 * ```
 */
export function requestInfo(request: IncomingMessage): RequestInfo {
  const { remoteAddress, remotePort } = request.socket;
  const remote = remoteAddress === undefined ? 'unknown' : formatRemote(remoteAddress, remotePort ?? 0);
  const { origin } = request.headers;
  return { remote, origin, path: pathOf(request.url) };
}

function describe(info: RequestInfo): string {
  const origin = info.origin === undefined ? '-' : field(info.origin);
  return `remote=${info.remote} origin=${origin} path=${field(info.path)}`;
}

/**
 * The line for a WebSocket accepted (its broker socket is being opened).
 *
 * @example
 * ```ts
 * openLine(7, info, 'amqp://127.0.0.1:5672', 'amqp');
 * // 'relay #7 open remote=127.0.0.1:51234 origin=https://app.example.com path=/amqp protocol=amqp broker=amqp://127.0.0.1:5672'
 * ```
 */
export function openLine(id: number, info: RequestInfo, broker: string, protocol: string): string {
  return `relay #${id} open ${describe(info)} protocol=${protocol === '' ? '-' : field(protocol)} broker=${broker}`;
}

/**
 * The line for a connection closed (WebSocket and broker socket both).
 *
 * @example
 * ```ts
 * closeLine(7, info, { durationMs: 1532, up: 1204, down: 5678, reason: 'broker closed (1000)' });
 * ```
 */
export function closeLine(id: number, info: RequestInfo, stats: CloseStats): string {
  const duration = Math.round(stats.durationMs);
  return `relay #${id} close ${describe(info)} duration_ms=${duration} bytes_up=${stats.up} bytes_down=${stats.down} reason="${stats.reason}"`;
}

/**
 * The line for an upgrade refused with an HTTP status.
 *
 * @example
 * ```ts
 * refusedLine(info, 403, 'origin not allowed');
 * ```
 */
export function refusedLine(info: RequestInfo, status: number, reason: string): string {
  return `relay refused ${describe(info)} status=${status} reason="${reason}"`;
}
