/**
 * A record of events with their virtual time, readable at once (`values`, `entries`) and as a hot
 * Observable for `expectObservable` (`events$`).
 *
 * @module
 * @internal
 */
import { Observable, Subject } from 'rxjs';
import type { Clock } from './context.js';

/** @internal An event and the frame it happened in. */
export interface Timed<T> {
  readonly time: number;
  readonly value: T;
}

/** @internal */
export class Timeline<T> {
  private readonly subject = new Subject<T>();
  private readonly log: Timed<T>[] = [];
  private end: { error: unknown } | 'complete' | undefined;

  constructor(private readonly clock: Clock) {}

  get values(): T[] {
    return this.log.map((entry) => entry.value);
  }

  get entries(): readonly Timed<T>[] {
    return this.log;
  }

  get ended(): boolean {
    return this.end !== undefined;
  }

  push(value: T): void {
    if (this.end !== undefined) return;
    this.log.push({ time: this.clock.now(), value });
    this.subject.next(value);
  }

  complete(): void {
    if (this.end !== undefined) return;
    this.end = 'complete';
    this.subject.complete();
  }

  error(error: unknown): void {
    if (this.end !== undefined) return;
    this.end = { error };
    this.subject.error(error);
  }

  /**
   * Hot: each subscriber gets the events of the frame it subscribed in that came before it (so that
   * `expectObservable`, which subscribes at frame 0 once the test flushes, sees what the test did
   * while setting up), then every later one.
   */
  readonly events$: Observable<T> = new Observable<T>((subscriber) => {
    const now = this.clock.now();
    let first = this.log.length;
    while (first > 0 && this.log[first - 1]!.time === now) first--;
    for (let i = first; i < this.log.length; i++) subscriber.next(this.log[i]!.value);
    if (this.end === 'complete') subscriber.complete();
    else if (this.end !== undefined) subscriber.error(this.end.error);
    else return this.subject.subscribe(subscriber);
    return undefined;
  });
}
