import { EMPTY, type MonoTypeOperatorFunction, retry, type SchedulerLike, timer } from 'rxjs';
import {
  ChannelClosedError,
  ConfigurationError,
  ConnectionClosedError,
  DrainingError,
  isConsumerTimeout,
} from '../src/index.js';

/** Options of {@link resumeOnConsumerTimeout}. */
export interface ResumeOnConsumerTimeoutOptions {
  /**
   * The most resumes in a row, with no value emitted in between (a value resets the count): past it,
   * the stream errors with the timeout. Default 10; `Infinity` for no limit.
   */
  maxResumes?: number;
  /** Milliseconds to wait before subscribing again. Default 0. */
  delayMs?: number;
  /** Called with the timeout error and the resume's number (1 for the first in a row), before it. */
  onResume?: (error: unknown, resume: number) => void;
  /** Where the delay is timed (tests pass a virtual-time scheduler). Default RxJS's `asyncScheduler`. */
  scheduler?: SchedulerLike;
}

/**
 * Subscribes again to the source when it errors with a consumer timeout ({@link isConsumerTimeout}:
 * RabbitMQ's delivery acknowledgement timeout, as the 406 channel close of RabbitMQ 3.x or the
 * basic.cancel of 4.3); other errors pass through. Put it after a channel and its consumer, so that
 * subscribing again opens a new channel and starts a new consumer: the deliveries the broker took
 * back (the one that timed out among them) are delivered again, `redelivered: true`.
 *
 * On a recovering connection (`connect(url, { recovery })`) this operator is not needed: there a
 * consumer timeout is recovered like a connection loss (`Connection.channel()` opens a fresh channel,
 * a consumer the broker cancelled is started again). It is for connections without recovery. A
 * shutdown under way ends the stream (it completes) when subscribing again meets it: a drain refusing
 * the consumer (`DrainingError`), or the connection closed by the client. A handler that always
 * takes longer than the timeout makes the same message time out again and again: the count of resumes
 * in a row (`maxResumes`) ends that, and so does raising the timeout (`x-consumer-timeout`) for such
 * work.
 *
 * @param options `maxResumes`, `delayMs`, `onResume`, `scheduler`.
 *
 * @example
 * ```ts
 * import { ackOnSuccess, resumeOnConsumerTimeout } from 'rxamqp/operators';
 *
 * connection$.pipe(
 *   switchMap((conn) =>
 *     conn.channel().pipe(
 *       switchMap((ch) => ch.consume('jobs', { prefetch: 10 })),
 *       ackOnSuccess((d) => runJob(d.json()), { concurrency: 10 }),
 *       resumeOnConsumerTimeout({ onResume: (e) => log.warn({ e }, 'consumer timed out; resuming') }),
 *     ),
 *   ),
 * ).subscribe();
 * ```
 */
export function resumeOnConsumerTimeout<T>(
  options: ResumeOnConsumerTimeoutOptions = {},
): MonoTypeOperatorFunction<T> {
  const maxResumes = options.maxResumes ?? 10;
  const delayMs = options.delayMs ?? 0;
  const { onResume, scheduler } = options;
  if (!(maxResumes >= 0) || (!Number.isInteger(maxResumes) && maxResumes !== Infinity)) {
    throw new ConfigurationError(
      `resumeOnConsumerTimeout: maxResumes must be an integer >= 0 or Infinity, got ${maxResumes}`,
    );
  }
  if (!(delayMs >= 0) || !Number.isFinite(delayMs)) {
    throw new ConfigurationError(
      `resumeOnConsumerTimeout: delayMs must be a finite number >= 0, got ${delayMs}`,
    );
  }
  return retry<T>({
    count: maxResumes,
    resetOnSuccess: true,
    delay: (error: unknown, resume: number) => {
      // Subscribing again during a shutdown (a drain, a client close): the stream ends as the drain's do.
      if (resume > 1 && endsByShutdown(error)) return EMPTY;
      if (!isConsumerTimeout(error)) throw error;
      onResume?.(error, resume);
      return scheduler === undefined ? timer(delayMs) : timer(delayMs, scheduler);
    },
  });
}

/** A drain refusing a consumer, or the client having closed the connection or channel. */
function endsByShutdown(error: unknown): boolean {
  return (
    error instanceof DrainingError ||
    ((error instanceof ConnectionClosedError || error instanceof ChannelClosedError) &&
      error.initiator === 'client')
  );
}
