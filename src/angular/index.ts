/**
 * `rxamqp/angular`: RabbitMQ in Angular applications. `provideRxAmqp` opens one recovering connection
 * (through a WebSocket relay, `rxamqp-relay`: browsers have no TCP) for the application, and the
 * injectable `RxAmqp` service consumes, watches, publishes and makes requests with Observables and
 * signals. The socket and its heartbeats run outside Angular's zone; what the application receives
 * comes back inside it; zoneless applications read signals. The connection closes, and its consumers
 * are cancelled, when the injector that provided it is destroyed. Angular (`@angular/core`) is an
 * optional peer dependency: importing `rxamqp` never loads it.
 *
 * @example
 * ```ts
 * import { messagesSignal, provideRxAmqp, RxAmqp } from 'rxamqp/angular';
 *
 * bootstrapApplication(App, { providers: [provideRxAmqp({ url: 'ws://localhost:15670/' })] });
 *
 * @Component({ selector: 'app-root', template: `{{ amqp.state().status }} @for (m of inbox(); track $index) { <p>{{ m }}</p> }` })
 * class App {
 *   readonly amqp = inject(RxAmqp);
 *   readonly inbox = messagesSignal(this.amqp.consume('inbox', { autoAck: true }).pipe(map((d) => d.text())));
 * }
 * ```
 *
 * @module
 */
export type { RxAmqpConfig, RxAmqpConfigFactory } from './config.js';
export { provideRxAmqp } from './provide.js';
export { RxAmqp, type RxAmqpConsumeOptions, type RxAmqpWatchOptions } from './service.js';
export { type MessagesSignalOptions, messagesSignal } from './signals.js';
export { insideNgZone, outsideNgZone, type ZoneRunner } from './zone.js';
