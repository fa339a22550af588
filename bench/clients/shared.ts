/**
 * What the benchmark clients share: the guard that makes every method reject rather than hang (a
 * sticky failure of the client's connection, an error of the operation's own channel, or a timeout),
 * and the bounded window of promises used for the promise-based clients.
 *
 * None of this is measured overhead of one client more than another: each method of every client
 * pays for one guard (a timer and a few closures per call, not per message).
 *
 * @module
 */
import type { ClientName } from '../lib/clients.js';

/** The longest a method waits for the broker before it rejects. */
export const GUARD_MS = 120_000;
/** The longest `close()` waits for the close handshake before it gives up (and drops the socket). */
export const CLOSE_GUARD_MS = 5_000;

/** Turns anything thrown into an Error (with the client's name in front when it has no message). */
export function toError(client: ClientName, e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(`${client}: ${String(e)}`);
}

/** What a guarded operation is given: its abort signal (checked by loops) and a way to fail it. */
export interface Guarded {
  /** Aborted once the operation has failed: loops stop starting new work. */
  readonly signal: AbortSignal;
  /** Fails the operation (an error of its own channel or consumer, say). */
  fail(e: unknown): void;
}

/**
 * The sticky failure of one client: once its connection, or a channel it cannot do without, has
 * failed (or the client was closed), every pending and later method rejects with that error. Each
 * method runs in {@link Failure.guard}, which also rejects after {@link GUARD_MS}.
 */
export class Failure {
  private error: Error | undefined;
  private readonly listeners = new Set<(e: Error) => void>();

  /** @param onTimeout called when a method times out (which also fails the client): to drop the socket. */
  constructor(
    readonly client: ClientName,
    private readonly onTimeout?: () => void,
  ) {}

  /** The error every method rejects with from now on, if any. */
  get current(): Error | undefined {
    return this.error;
  }

  /** Records the failure (the first one counts) and rejects every pending method with it. */
  fail(e: unknown): void {
    if (this.error !== undefined) return;
    this.error = toError(this.client, e);
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const l of listeners) l(this.error);
  }

  /**
   * Runs `work`; rejects when it rejects, when the client fails, when `work` calls `fail`, or after
   * `ms` with a message that says what was being waited for (a timeout fails the whole client).
   */
  guard<T>(what: string, work: (g: Guarded) => Promise<T>, ms = GUARD_MS): Promise<T> {
    if (this.error !== undefined) return Promise.reject(this.error);
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.listeners.delete(onFailure);
        if (error === undefined) resolve(value as T);
        else {
          controller.abort(error);
          reject(error);
        }
      };
      const onFailure = (e: Error): void => finish(e);
      this.listeners.add(onFailure);
      // A method that times out leaves the client in an unknown state: the failure is the client's.
      const timer = setTimeout(() => {
        this.fail(new Error(`${this.client}: ${what} did not finish within ${ms / 1000} s`));
        this.onTimeout?.();
      }, ms);
      const guarded: Guarded = {
        signal: controller.signal,
        fail: (e) => finish(toError(this.client, e)),
      };
      let running: Promise<T>;
      try {
        running = work(guarded);
      } catch (e) {
        finish(toError(this.client, e));
        return;
      }
      running.then(
        (value) => finish(undefined, value),
        (e: unknown) => finish(toError(this.client, e)),
      );
    });
  }
}

/**
 * Runs `publish` `n` times with at most `window` of its promises unresolved at once, and resolves when
 * all have resolved (the `windowed` of bench/confirm.ts, with the window as a parameter). Rejects with
 * the first rejection; stops starting publishes once `signal` is aborted.
 */
export function windowed(
  n: number,
  window: number,
  publish: () => Promise<unknown>,
  signal: AbortSignal,
): Promise<void> {
  if (n <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    let started = 0;
    let failed = false;
    const failWith = (e: unknown): void => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    const done = (): void => {
      inFlight--;
      if (started === n && inFlight === 0) resolve();
      else pump();
    };
    const pump = (): void => {
      if (failed) return;
      if (signal.aborted) {
        failWith(signal.reason);
        return;
      }
      while (inFlight < window && started < n) {
        started++;
        inFlight++;
        let p: Promise<unknown>;
        try {
          p = publish();
        } catch (e) {
          failWith(e);
          return;
        }
        p.then(done, failWith);
      }
    };
    pump();
  });
}

/** `work`, or its rejection with the abort reason once `signal` aborts (so no loop waits forever). */
export function orAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** A promise of the next value handed to `put`: for round trips, one delivery at a time. */
export class Mailbox<T> {
  private waiter: ((value: T) => void) | undefined;

  /** The next value put (rejects once `signal` aborts). Only one waiter at a time. */
  next(signal: AbortSignal): Promise<T> {
    return orAbort(
      new Promise<T>((resolve) => {
        this.waiter = resolve;
      }),
      signal,
    );
  }

  /** Hands `value` to the waiter; false when nobody waits (a delivery nobody asked for). */
  put(value: T): boolean {
    const w = this.waiter;
    if (w === undefined) return false;
    this.waiter = undefined;
    w(value);
    return true;
  }
}

/** The error of a round trip that receives a message it did not publish. */
export function strayDelivery(client: ClientName, queue: string): Error {
  return new Error(
    `${client}: roundTrips received a message it was not waiting for on ${queue} (the queue must be empty at the start)`,
  );
}

/** Resolves with `work`, or rejects after `ms` (for close handshakes). */
export function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
