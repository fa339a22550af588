/**
 * The application's providers: rxamqp's connection, configured by a factory that runs in an
 * injection context (the relay URL comes from the settings; the credentials from the auth service,
 * asked again before each reconnect).
 */
import {
  type ApplicationConfig,
  inject,
  provideBrowserGlobalErrorListeners,
  provideZonelessChangeDetection,
} from '@angular/core';
import { provideRxAmqp } from 'rxamqp/angular';
import { Auth } from './auth';
import { SETTINGS } from './settings';

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    provideZonelessChangeDetection(),
    provideRxAmqp(() => ({
      url: inject(SETTINGS).relay,
      vhost: inject(SETTINGS).vhost,
      name: 'rxamqp-angular-example',
      heartbeat: 10,
      credentials: () => inject(Auth).credentials(),
      // Retry quickly while the relay or the broker is away: a page should come back soon.
      recovery: {
        initial: { backoff: { initialDelay: 200, maxDelay: 2000 }, maxAttempts: 30 },
        reconnect: { backoff: { initialDelay: 100, maxDelay: 2000 } },
      },
    })),
  ],
};
