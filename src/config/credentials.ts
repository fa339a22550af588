/**
 * Where a connection's credentials come from for each attempt: fixed ones (the URL's or the options'
 * user name and password, replaced by the last secret the broker accepted through
 * `connection.updateSecret`), or a provider the user gives (an OAuth2 token source, say), asked before
 * every connect and reconnect.
 *
 * @module
 */
import { Observable, take } from 'rxjs';
import { ConnectionClosedError } from '../errors.js';
import { messageOf } from '../util/runtime.js';
import { type Secret, toSecret } from './secret.js';

/**
 * Credentials as a SASL mechanism sees them.
 *
 * @example
 * ```ts
 * const credentials: Credentials = { username: 'guest', password: new Secret('guest') };
 * ```
 */
export interface Credentials {
  readonly username: string;
  readonly password: Secret;
}

/**
 * What a {@link CredentialsProvider} gives: a password (or a token sent as the password, as RabbitMQ's
 * OAuth 2 plugin expects), the user name (default: the connection's `username`), and optionally when
 * it expires: the connection then asks the provider again before that time and hands the broker the
 * new secret with `connection.update-secret`, so the open connection outlives the token.
 *
 * @example
 * ```ts
 * const fromToken: ProvidedCredentials = { password: accessToken, expiresAt: Date.now() + 300_000 };
 * ```
 */
export interface ProvidedCredentials {
  /** User name; default the connection's `username` option (or the URL's). */
  readonly username?: string;
  /** Password or token. */
  readonly password: string | Secret;
  /**
   * When the secret stops being valid (a `Date` or milliseconds since the epoch). Given, the open
   * connection refreshes it ahead of time (see `refreshBeforeExpiry` below). Left out: no refresh.
   */
  readonly expiresAt?: Date | number;
}

/**
 * Something with a `subscribe` method that emits a value: an RxJS Observable, or any Subscribable.
 *
 * @example
 * ```ts
 * const token$: SubscribableLike<ProvidedCredentials> = auth.token$.pipe(map((t) => ({ password: t })));
 * ```
 */
export interface SubscribableLike<T> {
  subscribe(observer: { next: (value: T) => void; error: (error: unknown) => void; complete: () => void }): {
    unsubscribe(): void;
  };
}

/**
 * Called before every connection attempt (the first, every reconnect) and before a secret expires:
 * returns the credentials to use, at once, as a Promise, or as an Observable (its first value).
 *
 * @example
 * ```ts
 * connect('wss://app.example.com/amqp', {
 *   credentials: () => auth.getAccessToken().then((token) => ({ password: token.value, expiresAt: token.expiresAt })),
 * });
 * ```
 */
export type CredentialsProvider = () =>
  | ProvidedCredentials
  | PromiseLike<ProvidedCredentials>
  | SubscribableLike<ProvidedCredentials>;

/** Credentials for one attempt, and when their secret expires (ms since the epoch), if it does. */
export interface AttemptCredentials {
  readonly credentials: Credentials;
  readonly expiresAt: number | undefined;
}

/**
 * The credentials of one `connect()`: shared by every attempt of a recovering connection.
 *
 * @internal
 */
export class CredentialsSource {
  private latest: Credentials;

  constructor(
    initial: Credentials,
    private readonly provider: CredentialsProvider | undefined,
  ) {
    this.latest = initial;
  }

  /** True when a provider is asked for each attempt. */
  get provided(): boolean {
    return this.provider !== undefined;
  }

  /** The credentials without a provider (what the URL and options say, or the last secret accepted). */
  get current(): Credentials {
    return this.latest;
  }

  /**
   * Credentials for a new attempt or a refresh: the provider's answer (rejecting with a
   * `ConnectionClosedError` `CREDENTIALS_UNAVAILABLE` when it fails), or the current ones.
   */
  fetch(signal?: AbortSignal): Promise<AttemptCredentials> {
    const provider = this.provider;
    if (provider === undefined) return Promise.resolve({ credentials: this.latest, expiresAt: undefined });
    return new Promise<ProvidedCredentials>((resolve, reject) => {
      const answer = provider();
      if (!isSubscribable(answer)) {
        Promise.resolve(answer).then(resolve, reject);
        return;
      }
      // Its first value: take(1) stops a synchronous source right there (what follows it, a token
      // request say, is never subscribed), and the end of the attempt (signal) unsubscribes a source
      // that has not answered, so that no attempt leaves a subscription behind.
      const subscription = new Observable<ProvidedCredentials>((subscriber) => answer.subscribe(subscriber))
        .pipe(take(1))
        .subscribe({
          next: resolve,
          error: reject,
          complete: () => reject(new Error('the credentials Observable completed without a value')),
        });
      if (signal === undefined || subscription.closed) return;
      const abort = (): void => {
        subscription.unsubscribe();
        reject(signal.reason);
      };
      if (signal.aborted) {
        abort();
        return;
      }
      signal.addEventListener('abort', abort, { once: true });
      subscription.add(() => signal.removeEventListener('abort', abort));
    }).then(
      (value) => this.accept(value),
      (error: unknown) => {
        throw new ConnectionClosedError(
          'CREDENTIALS_UNAVAILABLE',
          `the credentials provider failed: ${messageOf(error)}`,
          { initiator: 'client', cause: error },
        );
      },
    );
  }

  /** The broker accepted `password` for the open connection: later attempts use it (without a provider). */
  updated(password: Secret): void {
    this.latest = Object.freeze({ username: this.latest.username, password });
  }

  private accept(value: unknown): AttemptCredentials {
    const provided = value as ProvidedCredentials | null | undefined;
    if (typeof provided !== 'object' || provided === null) {
      throw invalid(`an object with a password, got ${typeof provided}`);
    }
    const username = provided.username ?? this.latest.username;
    if (typeof username !== 'string' || username.includes('\0')) {
      throw invalid('a username that is a string without NUL characters');
    }
    const password = toSecret(provided.password);
    if (password === undefined || password.reveal().includes('\0')) {
      throw invalid('a password (a string or a Secret) without NUL characters');
    }
    const at = provided.expiresAt;
    const expiresAt = at === undefined ? undefined : at instanceof Date ? at.getTime() : at;
    if (expiresAt !== undefined && (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))) {
      throw invalid('an expiresAt that is a Date or a number of milliseconds since the epoch');
    }
    return { credentials: Object.freeze({ username, password }), expiresAt };
  }
}

function invalid(what: string): ConnectionClosedError {
  return new ConnectionClosedError('CREDENTIALS_UNAVAILABLE', `the credentials provider must give ${what}`, {
    initiator: 'client',
  });
}

function isSubscribable(value: unknown): value is SubscribableLike<ProvidedCredentials> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { subscribe?: unknown }).subscribe === 'function' &&
    typeof (value as { then?: unknown }).then !== 'function'
  );
}

/**
 * When to ask for a new secret before `expiresAt`: at 80% of the time left, and at least 5 s before
 * it expires (right away when less is left), as the RabbitMQ Java client's refresh service does.
 *
 * @example
 * ```ts
 * refreshDelay(Date.now() + 100_000, Date.now()); // 80_000
 * ```
 */
export function refreshDelay(expiresAt: number, now: number): number {
  const left = expiresAt - now;
  if (left <= 5_000) return 0;
  return Math.min(Math.floor(left * 0.8), left - 5_000);
}
