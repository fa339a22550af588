/**
 * The example's entry: a standalone, zoneless Angular application (Angular 21's default) on
 * `rxamqp/angular`. See ../README.md for how to run it.
 */
import { bootstrapApplication } from '@angular/platform-browser';
import { App } from './app/app';
import { appConfig } from './app/app.config';

bootstrapApplication(App, appConfig).catch((error: unknown) => console.error(error));
