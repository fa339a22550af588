import { type MonoTypeOperatorFunction, retry, type SchedulerLike, timer } from 'rxjs';
import { ConfigurationError, isConsumerTimeout } from '../src/index.js';

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
 * A recovering connection (`recovery: true`) comes back from connection losses by itself; this is
 * the same for a consumer timeout, which ends only a channel or a consumer. A handler that always
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
      if (!isConsumerTimeout(error)) throw error;
      onResume?.(error, resume);
      return scheduler === undefined ? timer(delayMs) : timer(delayMs, scheduler);
    },
  });
}
