/**
 * What differs between JavaScript runtimes, in one place, so that nothing above the transports needs
 * a Node built-in: timers that may be unref'd, the inspect hook, the longest timer, UTF-8 bytes.
 *
 * @module
 */

/** @internal The message of an error, or the string of anything else thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** @internal A timer handle as this runtime's `setTimeout` returns it (an object in Node, a number in browsers). */
export type Timer = ReturnType<typeof setTimeout>;

/**
 * @internal The longest delay a timer keeps (2^31 - 1 ms, about 24.8 days): longer ones fire at once in Node
 * and in browsers alike.
 */
export const MAX_TIMER_MS = 0x7fffffff;

/**
 * Node's `util.inspect` hook, reached by its registered symbol so that no import of `node:util` is
 * needed: objects that define it show a redacted summary in logs and the REPL.
 */
export const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/** @internal Lets the process exit while `timer` is pending (Node); nothing where timers are plain numbers. */
export function unrefTimer(timer: Timer): Timer {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/**
 * @internal Starts `timer` again for `ms` (Node's `refresh()`, which keeps the timer object), or a new timer
 * where timers are plain numbers. Returns the timer to keep.
 */
export function rearm(timer: Timer | undefined, callback: () => void, ms: number): Timer {
  if (timer !== undefined) {
    const refresh = (timer as { refresh?: () => unknown }).refresh;
    if (refresh !== undefined) {
      refresh.call(timer);
      return timer;
    }
    clearTimeout(timer);
  }
  return setTimeout(callback, ms);
}

/**
 * @internal A copy of a decoded field value that `JSON.stringify` can take: bigints become strings,
 * byte arrays `{ bytes: length }`, the rest as it is (tables and arrays copied likewise).
 */
export function jsonSafe(value: unknown, depth = 0): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return { bytes: value.length };
  if (value === null || typeof value !== 'object' || value instanceof Date || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => jsonSafe(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = jsonSafe(v, depth + 1);
  return out;
}

const resolvedPromise = Promise.resolve();

/**
 * @internal Runs `task` in a microtask, on the Promise job queue rather than through
 * `queueMicrotask`: Jest's fake timers (and @sinonjs/fake-timers) replace `queueMicrotask` but never
 * the Promise job queue, so a connection keeps flushing its output in a test that fakes timers (the
 * embedded broker of `rxamqp/testing` runs under `jest.useFakeTimers()`). `task` must not throw.
 */
export function microtask(task: () => void): void {
  void resolvedPromise.then(task);
}

/**
 * @internal Runs `task` at the end of the current turn of the event loop, after its microtasks (Node's
 * `setImmediate`); undefined where the runtime has no such primitive (browsers), where callers fall
 * back to a microtask.
 */
export const endOfTurn: ((task: () => void) => void) | undefined = (() => {
  const immediate = (globalThis as { setImmediate?: (task: () => void) => unknown }).setImmediate;
  return immediate === undefined ? undefined : (task: () => void) => void immediate(task);
})();

/**
 * @internal Where errors thrown by users' callbacks go when the code that called them must carry on
 * (a loop releasing several waiting publishes, say): by default thrown from a fresh task, as RxJS
 * reports an error thrown by a subscriber, so that it still surfaces (`uncaughtException` in Node,
 * the console in browsers). Tests replace `report` to see them.
 */
export const uncaught = {
  report(error: unknown): void {
    setTimeout(() => {
      throw error;
    }, 0);
  },
};

/**
 * Writes a line to the `debug` option's logger, if there is one; a logger that throws must not break
 * the connection, so what it throws is ignored.
 */
export function debugLine(debug: ((line: string) => void) | undefined, line: string): void {
  if (debug === undefined) return;
  try {
    debug(line);
  } catch {
    // a logger that throws must not break the connection
  }
}
