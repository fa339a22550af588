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

export { until } from '../support/until.js';
