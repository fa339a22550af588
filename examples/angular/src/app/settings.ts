/**
 * The example's settings, from the page's query string so that one build serves any relay and any
 * queue: `?relay=ws://127.0.0.1:15670/&queue=my.inbox&publishTo=my.outbox` (and `vhost`,
 * `username`, `password`: a demonstration; a real application gets its credentials from its auth).
 */
import { DOCUMENT, InjectionToken, inject } from '@angular/core';

export interface Settings {
  /** The relay's WebSocket URL (rxamqp-relay), which opens TCP to RabbitMQ. */
  readonly relay: string;
  /** The queue whose messages the page shows (declared durable by the page). */
  readonly queue: string;
  /** The routing key the form publishes with, on the default exchange: a queue's name. */
  readonly publishTo: string;
  /** The broker's virtual host. */
  readonly vhost: string;
  readonly username: string;
  readonly password: string;
}

export const SETTINGS = new InjectionToken<Settings>('example settings', {
  providedIn: 'root',
  factory: () => {
    const query = new URLSearchParams(inject(DOCUMENT).location.search);
    return {
      relay: query.get('relay') ?? 'ws://127.0.0.1:15670/',
      queue: query.get('queue') ?? 'rxamqp.angular.inbox',
      publishTo: query.get('publishTo') ?? 'rxamqp.angular.outbox',
      vhost: query.get('vhost') ?? '/',
      username: query.get('username') ?? 'guest',
      password: query.get('password') ?? 'guest',
    };
  },
});
