/**
 * Retry policies: how long to wait before each new attempt at something that failed (a connection, a
 * channel, a declare), and when to give up. A {@link RetryPolicy} is a pure function of the attempt
 * number and the error; {@link retryWithPolicy} turns one into an RxJS operator that resubscribes to its
 * source on a timer.
 *
 * @module
 */

import {
  type MonoTypeOperatorFunction,
  type Observable,
  type ObservableInput,
  retry,
  type SchedulerLike,
  throwError,
  timer,
} from 'rxjs';
import { AuthenticationError, ConfigurationError, ConnectionClosedError } from '../errors.js';
import { MAX_TIMER_MS } from '../util/runtime.js';

/**
 * Exponential backoff: delay(n) = min(maxDelay, initialDelay * multiplier^(n-1)), then jitter.
 *
 * @example
 * ```ts
 * // 200, 400, 800, ... ms, at most 10 s, each drawn from [d/2, d]
 * const backoff: BackoffOptions = { initialDelay: 200, multiplier: 2, maxDelay: 10_000, jitter: 0.5 };
 * ```
 */
export interface BackoffOptions {
  /** The delay before the first retry, in ms, before jitter. Default 100. */
  readonly initialDelay?: number;
  /** The factor between two consecutive delays, at least 1. Default 2. */
  readonly multiplier?: number;
  /** The largest delay in ms (before jitter), at most 2147483647 (the longest timer Node.js keeps). Default 30 000. */
  readonly maxDelay?: number;
  /**
   * 0..1, default 0.5: the delay is drawn uniformly from [d*(1-jitter), d], so that clients that failed
   * together do not all retry at the same moment. 0 gives the exact delays.
   */
  readonly jitter?: number;
}

/**
 * What {@link retryPolicy} builds a policy from. With neither `delays` nor `backoff` (in the options or
 * the defaults), the policy is the default exponential backoff (100 ms doubling up to 30 s, jitter 0.5).
 *
 * @example
 * ```ts
 * const options: RetryPolicyOptions = { delays: [0, 1_000, 5_000], maxAttempts: 10 };
 * ```
 */
export interface RetryPolicyOptions {
  /**
   * Explicit delays in ms, attempt 1 uses delays[0]...; past the end the last delay repeats. Exclusive
   * with backoff. No jitter is applied. An empty list never retries.
   */
  readonly delays?: readonly number[];
  /** Exponential backoff with jitter; see {@link BackoffOptions}. */
  readonly backoff?: BackoffOptions;
  /** Most retries (not counting the first try); Infinity for no limit. Default Infinity. */
  readonly maxAttempts?: number;
  /** Which errors are retried; default isRetryableError. */
  readonly retryable?: (error: unknown) => boolean;
}

/**
 * Decides, for each failure, whether to retry and after how long.
 *
 * @example
 * ```ts
 * const policy: RetryPolicy = { delayFor: (attempt) => (attempt <= 3 ? attempt * 1_000 : undefined) };
 * source$.pipe(retryWithPolicy(policy));
 * ```
 */
export interface RetryPolicy {
  /**
   * The delay before retry number `attempt` (1-based) after `error`, or undefined to give up.
   * Exceptions thrown by the policy's own callbacks (`retryable`, `random`) propagate.
   */
  delayFor(attempt: number, error: unknown): number | undefined;
}

/** Default initial delay of the backoff, in ms. */
const DEFAULT_INITIAL_DELAY = 100;
/** Default growth factor of the backoff. */
const DEFAULT_MULTIPLIER = 2;
/** Default cap of the backoff, in ms. */
const DEFAULT_MAX_DELAY = 30_000;
/** Default jitter of the backoff. */
const DEFAULT_JITTER = 0.5;

/** A delay in ms a timer can wait: finite, 0..MAX_TIMER_MS. */
function checkDelay(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 0) || value > MAX_TIMER_MS) {
    throw new ConfigurationError(
      `retryPolicy: ${what} must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${String(value)}`,
    );
  }
  return value;
}

/** Rejects an options object with both `delays` and `backoff`. */
function checkExclusive(options: RetryPolicyOptions | undefined, what: string): void {
  if (options?.delays !== undefined && options.backoff !== undefined) {
    throw new ConfigurationError(`retryPolicy: ${what} give both delays and backoff; choose one`);
  }
}

/** The delay function of a list of explicit delays. */
function fromList(delays: readonly number[]): (attempt: number) => number | undefined {
  if (!Array.isArray(delays)) {
    throw new ConfigurationError('retryPolicy: delays must be an array of numbers');
  }
  const list = delays.map((d, i) => checkDelay(d, `delays[${i}]`));
  return (attempt) => (list.length === 0 ? undefined : list[Math.min(attempt, list.length) - 1]);
}

/** The delay function of an exponential backoff with jitter. */
function fromBackoff(backoff: BackoffOptions, random: () => number): (attempt: number) => number {
  const initialDelay = checkDelay(backoff.initialDelay ?? DEFAULT_INITIAL_DELAY, 'backoff.initialDelay');
  const maxDelay = checkDelay(backoff.maxDelay ?? DEFAULT_MAX_DELAY, 'backoff.maxDelay');
  const multiplier = backoff.multiplier ?? DEFAULT_MULTIPLIER;
  if (typeof multiplier !== 'number' || !(multiplier >= 1) || !Number.isFinite(multiplier)) {
    throw new ConfigurationError(
      `retryPolicy: backoff.multiplier must be a finite number >= 1, got ${String(multiplier)}`,
    );
  }
  const jitter = backoff.jitter ?? DEFAULT_JITTER;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new ConfigurationError(`retryPolicy: backoff.jitter must be from 0 to 1, got ${String(jitter)}`);
  }
  return (attempt) => {
    // 0 * Infinity is NaN: a zero initial delay stays zero however large the attempt.
    const grown = initialDelay === 0 ? 0 : initialDelay * multiplier ** (attempt - 1);
    const capped = Math.min(maxDelay, grown);
    if (jitter === 0) return capped;
    const r = random();
    // A random source out of [0, 1] (or NaN) must not push the delay out of its documented range.
    const u = Number.isNaN(r) ? 0 : Math.min(1, Math.max(0, r));
    const lowest = capped * (1 - jitter);
    // Clamped so that rounding never leaves [lowest, capped].
    return Math.min(capped, Math.max(lowest, capped - capped * jitter * u));
  };
}

/**
 * Builds a policy; `defaults` fill what options leave out. Throws ConfigurationError on bad values
 * (negative delays, jitter outside 0..1, multiplier < 1, both delays and backoff, maxAttempts < 0 or not
 * an integer/Infinity).
 *
 * How `defaults` combine with `options`: `maxAttempts` and `retryable` come from `options` when given,
 * else from `defaults`. For the delays, `options.delays` wins over everything; otherwise
 * `options.backoff`, field by field over `defaults.backoff`; otherwise `defaults.delays`; otherwise
 * the default backoff. Delays above 2147483647 ms are rejected (Node.js timers cannot wait longer).
 *
 * `delayFor` answers undefined when `retryable(error)` is false or when `attempt > maxAttempts`. It
 * throws a RangeError for an `attempt` that is not an integer >= 1.
 *
 * @param random Where jitter draws from, [0, 1); default `Math.random`. Inject one for reproducible tests.
 *
 * @example
 * ```ts
 * // The connection's default, and a user's override of only the cap and the attempts:
 * const policy = retryPolicy({ backoff: { maxDelay: 5_000 }, maxAttempts: 20 }, { backoff: { initialDelay: 500 } });
 * policy.delayFor(1, new Error('ECONNREFUSED')); // 250..500
 * policy.delayFor(21, new Error('ECONNREFUSED')); // undefined: out of attempts
 * ```
 */
export function retryPolicy(
  options: RetryPolicyOptions = {},
  defaults: RetryPolicyOptions = {},
  random: () => number = Math.random,
): RetryPolicy {
  checkExclusive(options, 'the options');
  checkExclusive(defaults, 'the defaults');
  if (typeof random !== 'function') {
    throw new ConfigurationError('retryPolicy: random must be a function');
  }

  let delayOf: (attempt: number) => number | undefined;
  if (options.delays !== undefined) delayOf = fromList(options.delays);
  else if (options.backoff !== undefined) {
    delayOf = fromBackoff({ ...defaults.backoff, ...definedFields(options.backoff) }, random);
  } else if (defaults.delays !== undefined) delayOf = fromList(defaults.delays);
  else delayOf = fromBackoff(defaults.backoff ?? {}, random);

  const maxAttempts = options.maxAttempts ?? defaults.maxAttempts ?? Number.POSITIVE_INFINITY;
  if (
    typeof maxAttempts !== 'number' ||
    !(maxAttempts >= 0) ||
    !(Number.isInteger(maxAttempts) || maxAttempts === Number.POSITIVE_INFINITY)
  ) {
    throw new ConfigurationError(
      `retryPolicy: maxAttempts must be an integer >= 0 or Infinity, got ${String(maxAttempts)}`,
    );
  }

  const retryable = options.retryable ?? defaults.retryable ?? isRetryableError;
  if (typeof retryable !== 'function') {
    throw new ConfigurationError('retryPolicy: retryable must be a function');
  }

  return {
    delayFor(attempt: number, error: unknown): number | undefined {
      if (!Number.isInteger(attempt) || attempt < 1) {
        throw new RangeError(`retryPolicy: attempt must be an integer >= 1, got ${String(attempt)}`);
      }
      if (!retryable(error)) return undefined;
      if (attempt > maxAttempts) return undefined;
      return delayOf(attempt);
    },
  };
}

/** The fields of `backoff` that are not undefined (a JavaScript caller may pass `{ jitter: undefined }`). */
function definedFields(backoff: BackoffOptions): BackoffOptions {
  return Object.fromEntries(Object.entries(backoff).filter(([, v]) => v !== undefined)) as BackoffOptions;
}

/** AMQP 403 ACCESS_REFUSED: the user may not use the vhost (or the credentials were refused). */
const ACCESS_REFUSED = 403;
/** AMQP 530 NOT_ALLOWED: e.g. an unknown vhost. */
const NOT_ALLOWED = 530;

/**
 * The `code`s Node.js gives a TLS connection whose certificate failed verification (OpenSSL's
 * X509_V_ERR_* names without the prefix, and Node's own host-name check). Retrying does not make a
 * certificate valid.
 */
const TLS_VERIFICATION_CODES: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_REJECTED',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** How deep {@link isRetryableError} follows `cause` (a guard against cycles and absurd chains). */
const MAX_CAUSE_DEPTH = 8;

/** The `code` property of an object, if it is a string. */
function codeOf(value: object): string | undefined {
  const code: unknown = (value as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A 530 NOT_ALLOWED in answer to connection.update-secret (class 10, method 70): RabbitMQ refused a new
 * secret (an OAuth 2 token) and closed the connection. A reconnect logs in again with the provider's
 * next secret (or the last one accepted), which can succeed: not permanent.
 */
function refusedSecret(error: ConnectionClosedError): boolean {
  return error.classId === 10 && error.methodId === 70;
}

/** Whether one error, without its causes, is a failure that retrying cannot fix. */
function isPermanent(error: object): boolean {
  if (error instanceof AuthenticationError || error instanceof ConfigurationError) return true;
  if (
    error instanceof ConnectionClosedError &&
    (error.replyCode === ACCESS_REFUSED || (error.replyCode === NOT_ALLOWED && !refusedSecret(error)))
  ) {
    return true;
  }
  const code = codeOf(error);
  return code !== undefined && TLS_VERIFICATION_CODES.has(code);
}

/**
 * False for errors retrying cannot fix: AuthenticationError, ConfigurationError, a ConnectionClosedError
 * with replyCode 403 (ACCESS_REFUSED) or 530 (NOT_ALLOWED, e.g. unknown vhost), a TLS certificate
 * verification failure (cause with code such as 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT',
 * 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'SELF_SIGNED_CERT_IN_CHAIN',
 * 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'); true otherwise (network loss, ECONNREFUSED, 320
 * CONNECTION_FORCED, heartbeat timeout, connect timeout...).
 *
 * The error and its `cause` chain (a few levels deep) are all looked at: a `TLS_HANDSHAKE_FAILED`
 * whose cause is a certificate error is permanent, one whose peer hung up mid-handshake is not.
 *
 * @example
 * ```ts
 * isRetryableError(new ConnectionClosedError('CONNECTION_LOST', 'ECONNREFUSED', { initiator: 'network' })); // true
 * isRetryableError(new AuthenticationError('bad password', { mechanism: 'PLAIN' })); // false
 * ```
 */
export function isRetryableError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH; depth++) {
    if (typeof current !== 'object' || current === null) return true;
    if (isPermanent(current)) return false;
    const next: unknown = (current as { cause?: unknown }).cause;
    if (next === current) return true;
    current = next;
  }
  return true;
}

/**
 * An RxJS operator: on error, resubscribes to the source after policy.delayFor(attempt, error) ms
 * (timer on `scheduler`); gives up (re-emits the error) when the policy says undefined. The attempt
 * count resets to 0 once the source emits a value (a success). `onRetry` is called before each wait
 * with { attempt, delay, error }.
 *
 * What the policy or `onRetry` throws becomes the error notification (in place of the source's error),
 * as does a delay from a custom policy that is not a number from 0 to 2147483647. Unsubscribing during a
 * wait cancels the timer. Completion passes through.
 *
 * @example
 * ```ts
 * connect(url).pipe(
 *   retryWithPolicy(retryPolicy({ backoff: { initialDelay: 500, maxDelay: 10_000 } }), {
 *     onRetry: ({ attempt, delay, error }) => console.warn(`retry ${attempt} in ${delay} ms`, error),
 *   }),
 * );
 * ```
 */
export function retryWithPolicy<T>(
  policy: RetryPolicy,
  options: {
    scheduler?: SchedulerLike;
    onRetry?: (info: { attempt: number; delay: number; error: unknown }) => void;
  } = {},
): MonoTypeOperatorFunction<T> {
  const { scheduler, onRetry } = options;
  const wait = (error: unknown, attempt: number): ObservableInput<unknown> => {
    let delay: number | undefined;
    try {
      delay = policy.delayFor(attempt, error);
      if (delay === undefined) return throwError(() => error);
      if (typeof delay !== 'number' || !(delay >= 0) || delay > MAX_TIMER_MS) {
        return throwError(
          () =>
            new ConfigurationError(
              `retryWithPolicy: the policy gave ${String(delay)} as the delay of attempt ${attempt}; a delay is a number of milliseconds from 0 to ${MAX_TIMER_MS}`,
              { cause: error },
            ),
        );
      }
      onRetry?.({ attempt, delay, error });
    } catch (thrown) {
      return throwError(() => thrown);
    }
    return scheduler === undefined ? timer(delay) : timer(delay, scheduler);
  };
  return (source: Observable<T>) => source.pipe(retry({ delay: wait, resetOnSuccess: true }));
}
