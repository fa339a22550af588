/** What the rxamqp/angular suites share: an environment injector like an application's, and polling. */
import {
  createEnvironmentInjector,
  type EnvironmentInjector,
  type EnvironmentProviders,
  ErrorHandler,
  Injector,
  type Provider,
} from '@angular/core';

/** Errors the injector's `ErrorHandler` received. */
export class RecordingErrorHandler extends ErrorHandler {
  readonly errors: unknown[] = [];
  override handleError(error: unknown): void {
    this.errors.push(error);
  }
}

/**
 * An environment injector holding `providers`, as an application's (root) injector would, over a
 * parent that provides what the platform does (`NgZone`, when given) and an `ErrorHandler` that records.
 */
export function environment(
  providers: (Provider | EnvironmentProviders)[],
  platform: Provider[] = [],
): { injector: EnvironmentInjector; errors: RecordingErrorHandler } {
  const errors = new RecordingErrorHandler();
  const parent = Injector.create({
    providers: [{ provide: ErrorHandler, useValue: errors }, ...(platform as never[])],
  }) as EnvironmentInjector;
  return { injector: createEnvironmentInjector(providers, parent), errors };
}

/** Resolves once `check()` holds (polled every 10 ms); rejects after `ms` naming `what`. */
export function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > end) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}
