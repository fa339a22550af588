/**
 * The configuration of `provideRxAmqp`: the relay's URL, rxamqp's connect options and the Angular
 * service's own, given as an object or as a factory run in an injection context (so that it can
 * `inject()` an environment service or an auth service). Checked eagerly: what can be checked when
 * `provideRxAmqp` is called is checked there, the rest (every connect option) when the service is
 * created, with a `ConfigurationError` that never shows a password.
 *
 * @module
 */
import type { ConnectOptions, PublisherOptions, RecoveryOptions } from '../index.js';
import { ConfigurationError, redactUrl } from '../index.js';

/**
 * What `provideRxAmqp` takes: the URL of the WebSocket relay (`rxamqp-relay`) and rxamqp's connect
 * options (`credentials`, `heartbeat`, `recovery`, `name`, `transport`...), plus the service's own.
 * `recovery` is on by default here, the first connection included: a page keeps trying to connect
 * (with a backoff up to 10 s) and comes back after a loss, and so do its consumers; `recovery: false`
 * turns it off, an object of settings replaces it. The connection is always shared by everything that
 * uses the service.
 *
 * @example
 * ```ts
 * const config: RxAmqpConfig = {
 *   url: 'wss://app.example.com/amqp',
 *   credentials: () => ({ username: 'web', password: auth.token() }),
 *   heartbeat: 20,
 *   name: 'orders-ui',
 * };
 * ```
 */
export interface RxAmqpConfig extends Omit<ConnectOptions, 'shared'> {
  /**
   * The relay's URL: `ws://` or `wss://` (a browser has no TCP; see docs/relay.md). Another scheme
   * only with a `transport` connector (the embedded broker's in tests, say).
   */
  readonly url: string;
  /**
   * The publisher behind `publish()`: confirms on, messages held while disconnected (at most
   * `maxBuffered`, each at most `bufferTimeout`). Default: rxamqp's defaults.
   */
  readonly publisher?: PublisherOptions;
  /**
   * When the connection opens: `'startup'` (default) while the application bootstraps, `'first-use'`
   * when something first injects the `RxAmqp` service.
   */
  readonly connectOn?: 'startup' | 'first-use';
}

/**
 * A configuration computed in an injection context: a function that may `inject()` what it needs (an
 * environment service for the URL, an auth service for the credentials) and returns the configuration,
 * or a Promise of it (the connection then opens once it resolves).
 *
 * @example
 * ```ts
 * const fromEnvironment: RxAmqpConfigFactory = () => {
 *   const auth = inject(AuthService);
 *   return { url: inject(ENVIRONMENT).relayUrl, credentials: () => auth.credentials() };
 * };
 * ```
 */
export type RxAmqpConfigFactory = () => RxAmqpConfig | PromiseLike<RxAmqpConfig>;

/**
 * Recovery for a page, when the configuration asks for none in particular: the first connection is
 * retried as long as the page is open (rxamqp's default gives up after about 3 s, which suits a
 * server that should fail its start, not a browser tab opened while the relay restarts or a laptop
 * wakes up), with a backoff up to 10 s; reconnects as rxamqp's default (unlimited, up to 30 s). Errors
 * that retrying cannot fix (a refused login) still end it.
 */
const PAGE_RECOVERY: RecoveryOptions = Object.freeze({
  initial: Object.freeze({ backoff: Object.freeze({ initialDelay: 200, maxDelay: 10_000 }) }),
});

/**
 * The configuration split into the service's settings and `connect()`'s options, with `recovery` on
 * by default and `shared` forced on.
 *
 * @internal
 */
export interface SplitConfig {
  readonly url: string;
  readonly connect: ConnectOptions;
  readonly publisher: PublisherOptions;
  readonly connectOn: 'startup' | 'first-use';
}

/**
 * Checks what the Angular layer owns (the URL's type and scheme, `publisher`, `connectOn`) and splits
 * the configuration; `connect()` checks its own options when the service subscribes.
 *
 * @internal
 * @throws ConfigurationError for a configuration that cannot work.
 */
export function splitConfig(config: unknown): SplitConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new ConfigurationError(
      `provideRxAmqp needs an object with a url (or a function returning one), got ${describe(config)}`,
    );
  }
  const { url, publisher, connectOn, ...rest } = config as Record<string, unknown>;
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ConfigurationError(
      `provideRxAmqp needs a url: the relay's ws:// or wss:// URL, got ${describe(url)}`,
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'ws' && scheme !== 'wss' && rest.transport === undefined) {
    throw new ConfigurationError(
      `provideRxAmqp: ${redactUrl(url)} is not a ws:// or wss:// URL. A browser cannot open TCP to ` +
        'RabbitMQ: run a relay (rxamqp-relay, see docs/relay.md) and give its URL, or pass a transport connector',
    );
  }
  if (publisher !== undefined && (typeof publisher !== 'object' || publisher === null)) {
    throw new ConfigurationError(`provideRxAmqp: publisher must be an object, got ${describe(publisher)}`);
  }
  if (connectOn !== undefined && connectOn !== 'startup' && connectOn !== 'first-use') {
    throw new ConfigurationError(
      `provideRxAmqp: connectOn must be 'startup' or 'first-use', got ${describe(connectOn)}`,
    );
  }
  if ('shared' in rest) {
    throw new ConfigurationError(
      'provideRxAmqp: shared is not an option here: the service always shares one connection',
    );
  }
  const options = rest as ConnectOptions;
  const recovery =
    options.recovery === undefined || options.recovery === true ? PAGE_RECOVERY : options.recovery;
  const connect: ConnectOptions = { ...options, recovery, shared: true };
  return Object.freeze({
    url,
    connect: Object.freeze(connect),
    publisher: Object.freeze({ ...(publisher as PublisherOptions | undefined) }),
    connectOn: connectOn ?? 'startup',
  });
}

/** For messages: a value's type, never the value itself (it may be a URL with a password). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.trim() === '' ? 'an empty string' : 'a string';
  return typeof value;
}
