/**
 * A hot event stream whose Subject is made when it is first asked for, so that the event streams of
 * a channel nobody watches (its confirms, returns, unclaimed deliveries) cost one small object each.
 *
 * @module
 */
import { type Observable, Subject } from 'rxjs';

/** @internal Events to whoever subscribed to `asObservable()`, as a `Subject` would hand them. */
export class LazySubject<T> {
  private subject: Subject<T> | undefined;
  private observable: Observable<T> | undefined;
  private done = false;

  /** True while someone subscribes. */
  get observed(): boolean {
    return this.subject?.observed === true;
  }

  next(value: T): void {
    this.subject?.next(value);
  }

  /** Completes the stream: now for current subscribers, at once for later ones. */
  complete(): void {
    this.done = true;
    this.subject?.complete();
  }

  asObservable(): Observable<T> {
    if (this.observable === undefined) {
      const subject = new Subject<T>();
      if (this.done) subject.complete();
      this.subject = subject;
      this.observable = subject.asObservable();
    }
    return this.observable;
  }
}
