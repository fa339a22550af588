/**
 * The connection supervisor: opens connections one after the other for one `connect()` lifetime,
 * choosing the host, retrying by the recovery policies, and reporting the state. It knows nothing of
 * RxJS subscribers: {@link ConnectionGroup} hands what it opens to them.
 *
 * @module
 * @internal
 */
import { asyncScheduler, type Subscription } from 'rxjs';
import type { ResolvedEndpoint, ResolvedOptions } from '../config/options.js';
import type { AuthenticationError, ConnectionClosedError } from '../errors.js';
import { isRetryableError, type RetryPolicy } from '../recovery/retry-policy.js';
import { ConnectionCore, type ConnectionListener } from './connection-core.js';
import type { ConnectionState } from './connection-state.js';

export type { ConnectionState, ConnectionStatus } from './connection-state.js';

/** What the supervisor tells the group. */
export interface SupervisorSink<C> {
  /** A connection opened. */
  opened(core: C): void;
  /** The open connection was lost; recovery will open another one. */
  lost(core: C): void;
  /** The lifetime is over: the client closed it (undefined) or an error ended it. */
  ended(error: Error | undefined): void;
  /** connection.blocked / unblocked on the open connection. */
  blocked(core: C, reason: string | undefined): void;
}

/** `{ host, node }` of an endpoint for a state (`node` only when the endpoint names one). */
function where(endpoint: ResolvedEndpoint): { host: string; node?: string } {
  const host = hostLabel(endpoint);
  return endpoint.node === undefined ? { host } : { host, node: endpoint.node };
}

/** Longest wait for `preferNode` to answer before the hosts are tried in their usual order. */
const PREFER_NODE_TIMEOUT = 5000;

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** `host:port`, with IPv6 addresses in brackets. */
export function hostLabel(endpoint: { readonly hostname: string; readonly port: number }): string {
  const host = endpoint.hostname.includes(':') ? `[${endpoint.hostname}]` : endpoint.hostname;
  return `${host}:${endpoint.port}`;
}

interface Decision {
  /** Undefined: give up. */
  readonly delay: number | undefined;
  readonly retry: number;
}

/** What the supervisor needs of a connection: the state machine, or a stand-in in tests. */
export interface SupervisedCore {
  readonly options: ResolvedOptions;
  readonly isClosed: boolean;
  readonly everOpened: boolean;
  start(): void;
  close(): void;
}

/** Makes the connection of one attempt. */
export type CoreFactory<C extends SupervisedCore> = (
  options: ResolvedOptions,
  listener: ConnectionListener,
) => C;

const makeCore: CoreFactory<ConnectionCore> = (options, listener) => new ConnectionCore(options, listener);

/** @internal */
export class Supervisor<C extends SupervisedCore = ConnectionCore> {
  private core: C | undefined;
  /** Index (into the endpoints) of `core`. */
  private coreIndex = 0;
  /** Retries since the last open connection (or since the start). */
  private retries = 0;
  /** Attempts since the last open connection (or since the start). */
  private attempts = 0;
  /** Index (into the endpoints) of the next attempt. */
  private next = 0;
  private connectedOnce = false;
  private timer: Subscription | undefined;
  private stopped = false;
  private finished = false;
  /** CLOSING was reported (by close() or stop()): once is enough. */
  private closingReported = false;
  private readonly decisions = new WeakMap<C, Decision>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly sink: SupervisorSink<C>,
    private readonly report: (state: ConnectionState) => void,
    private readonly factory: CoreFactory<C> = makeCore as unknown as CoreFactory<C>,
  ) {}

  start(): void {
    this.begin();
  }

  /**
   * Starts a sequence of attempts (the first connection, or the reconnect after a loss): asks
   * `preferNode` first, when given, and starts at the host of the node it names.
   */
  private begin(): void {
    const prefer = this.options.preferNode;
    if (prefer === undefined) {
      this.attempt();
      return;
    }
    const go = (node: unknown) => {
      if (this.stopped || this.finished) return;
      const index = typeof node === 'string' ? this.options.endpoints.findIndex((e) => e.node === node) : -1;
      if (index >= 0) this.next = index;
      this.attempt();
    };
    let answer: unknown;
    try {
      answer = prefer();
    } catch {
      go(undefined);
      return;
    }
    if (!isPromiseLike(answer)) {
      go(answer);
      return;
    }
    // Whichever comes first: the answer, or the timeout (then the usual order).
    let settled = false;
    const scheduler = this.options.recovery?.scheduler ?? asyncScheduler;
    const settle = (node: unknown) => {
      if (settled) return;
      settled = true;
      this.timer?.unsubscribe();
      this.timer = undefined;
      go(node);
    };
    this.timer = scheduler.schedule(() => settle(undefined), PREFER_NODE_TIMEOUT);
    answer.then(settle, () => settle(undefined));
  }

  /** The subscribers left: close what is open (the close handshake), stop retrying. */
  stop(): void {
    if (this.stopped || this.finished) return;
    this.stopped = true;
    this.timer?.unsubscribe();
    this.timer = undefined;
    const core = this.core;
    if (core === undefined || core.isClosed) {
      this.finish(undefined);
      return;
    }
    if (!this.closingReported)
      this.report({ status: 'CLOSING', ...where(core.options.endpoints[this.coreIndex]!) });
    this.closingReported = true;
    core.close();
  }

  private attempt(): void {
    const endpoints = this.options.endpoints;
    const index = this.next % endpoints.length;
    const endpoint = endpoints[index]!;
    this.attempts++;
    this.report({ status: 'CONNECTING', ...where(endpoint), attempt: this.attempts });
    // A subscriber may have left on CONNECTING: then there is nothing to open.
    if (this.stopped) return;
    const core: C = this.factory(withEndpoint(this.options, endpoint), {
      opened: () => {
        if (this.stopped) return;
        this.connectedOnce = true;
        this.retries = 0;
        this.attempts = 0;
        this.next = index;
        this.report({ status: 'CONNECTED', ...where(endpoint) });
        this.sink.opened(core);
      },
      closed: (error) => this.closed(core, index, error),
      blocked: (reason) => this.sink.blocked(core, reason),
      closing: () => {
        if (this.stopped || this.closingReported) return;
        this.closingReported = true;
        this.report({ status: 'CLOSING', ...where(endpoint) });
      },
      willRecover: (error) => this.decide(core, error).delay !== undefined,
    });
    this.core = core;
    this.coreIndex = index;
    core.start();
  }

  /** Whether and when to retry after `core` ended with `error` (asked once per core). */
  private decide(core: C, error: ConnectionClosedError | AuthenticationError): Decision {
    let decision = this.decisions.get(core);
    if (decision !== undefined) return decision;
    const recovery = this.options.recovery;
    const policy: RetryPolicy | undefined =
      recovery === undefined ? undefined : this.connectedOnce ? recovery.reconnect : recovery.initial;
    const retry = this.retries + 1;
    let delay: number | undefined;
    if (this.stopped) delay = undefined;
    else if (policy !== undefined) {
      // The policy's `retryable` (by default isRetryableError) decides which errors are retried.
      try {
        delay = policy.delayFor(retry, error);
      } catch {
        delay = undefined;
      }
    } else if (!this.connectedOnce && !core.everOpened && this.attempts < this.options.endpoints.length) {
      // No retry policy: the first connection still tries each host once, in order, without delay.
      delay = isRetryableError(error) ? 0 : undefined;
    }
    decision = { delay, retry };
    this.decisions.set(core, decision);
    return decision;
  }

  private closed(
    core: C,
    index: number,
    error: ConnectionClosedError | AuthenticationError | undefined,
  ): void {
    if (this.core === core) this.core = undefined;
    const wasOpen = core.everOpened;
    if (this.stopped || error === undefined) {
      if (wasOpen && !this.stopped) this.sink.lost(core);
      this.finish(undefined);
      return;
    }
    const { delay, retry } = this.decide(core, error);
    // Subscribers hear of the loss synchronously and may leave right there (stop() then finished).
    if (wasOpen) this.sink.lost(core);
    if (this.stopped || this.finished) return;
    if (delay === undefined) {
      this.finish(error);
      return;
    }
    this.retries = retry;
    const endpoints = this.options.endpoints.length;
    if (wasOpen) {
      this.attempts = 0;
      this.next = this.options.recovery?.hostOrder === 'round-robin' ? index + 1 : 0;
    } else {
      this.next = index + 1;
    }
    // The timer first, so that a subscriber leaving on RECONNECTING (stop()) cancels it.
    const scheduler = this.options.recovery?.scheduler ?? asyncScheduler;
    this.timer = scheduler.schedule(() => {
      this.timer = undefined;
      if (this.stopped) return;
      // After a loss, a new sequence: preferNode may pick its first host.
      if (wasOpen) this.begin();
      else this.attempt();
    }, delay);
    // After a loss with preferNode, the host is not known until preferNode answers (after the
    // delay): RECONNECTING then names none rather than one that may not be tried.
    const decidedLater = wasOpen && this.options.preferNode !== undefined;
    this.report({
      status: 'RECONNECTING',
      ...(decidedLater ? {} : where(this.options.endpoints[this.next % endpoints]!)),
      cause: error,
      attempt: retry,
      delay,
    });
  }

  private finish(error: Error | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.report(error === undefined ? { status: 'CLOSED' } : { status: 'CLOSED', cause: error });
    this.sink.ended(error);
  }
}

/** The options of one attempt: the endpoint's host, port, TLS name and URL. */
function withEndpoint(options: ResolvedOptions, endpoint: ResolvedEndpoint): ResolvedOptions {
  if (options.hostname === endpoint.hostname && options.port === endpoint.port) return options;
  return Object.freeze({
    ...options,
    hostname: endpoint.hostname,
    port: endpoint.port,
    tls: endpoint.tls,
    displayUrl: endpoint.displayUrl,
    url: endpoint.url,
  });
}
