/**
 * Counting messages as a bench round settles them, for the scenarios that send and receive in one
 * process (`mq`, `relay`): `until(n)` resolves once `n` more have been counted, and fails rather than
 * hangs when a message is lost.
 *
 * @module
 */

/** Longest a round may take before it fails rather than hangs (a lost message). */
const ROUND_GUARD_MS = 120_000;

/** Counts settled messages; `until(n)` resolves once `n` more than now were counted. */
export class Counter {
  count = 0;
  private waiter: { target: number; resolve(): void; reject(e: Error): void } | undefined;

  /** Who waits for the count to reach `resumeAt` (the MQTT sender's gate). */
  private resume: (() => void) | undefined;
  private resumeAt = 0;

  add(): void {
    this.count++;
    const w = this.waiter;
    if (w !== undefined && this.count >= w.target) {
      this.waiter = undefined;
      w.resolve();
    }
    if (this.resume !== undefined && this.count >= this.resumeAt) {
      const resume = this.resume;
      this.resume = undefined;
      resume();
    }
  }

  /** Calls `f` once the count reaches `at` (now if it has). */
  when(at: number, f: () => void): void {
    if (this.count >= at) {
      f();
      return;
    }
    this.resumeAt = at;
    this.resume = f;
  }

  until(n: number, what: string): Promise<void> {
    const start = this.count;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${what}: ${this.count - start} of ${n} received after ${ROUND_GUARD_MS / 1000} s`));
      }, ROUND_GUARD_MS);
      this.waiter = {
        target: start + n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject,
      };
      if (this.count >= start + n) this.add();
    });
  }
}
