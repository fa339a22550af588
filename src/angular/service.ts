/**
 * `RxAmqp`, the injectable service of `rxamqp/angular`: one recovering connection to the broker
 * (through a WebSocket relay) for the whole application, held from startup (or first use) until its
 * injector is destroyed, and the Observables and signals an Angular application builds on it. The
 * socket and the protocol run outside Angular's zone; what the application receives comes back in.
 *
 * @module
 */
import { type Signal, signal } from '@angular/core';
import {
  BehaviorSubject,
  catchError,
  defer,
  EMPTY,
  from,
  Observable,
  type ObservableInput,
  ReplaySubject,
  type Subscription,
  share,
  switchMap,
  take,
  takeUntil,
  takeWhile,
  throwError,
  throwIfEmpty,
} from 'rxjs';
import type {
  BasicProperties,
  Channel,
  Connection,
  ConnectionObservable,
  ConnectionState,
  ConsumeOptions,
  Delivery,
  ExchangeRef,
  Publisher,
  PublishOptions,
  PublishOutcome,
  QueueRef,
  QueueSpec,
  RequestOptions,
  Topology,
} from '../index.js';
import { applyTopology, ConfigurationError, connect, createPublisher, PublisherError } from '../index.js';
import type { SplitConfig } from './config.js';
import { insideNgZone, outsideNgZone, type ZoneRunner } from './zone.js';

/**
 * Options of {@link RxAmqp.consume}: rxamqp's consume options (`prefetch`, `noAck`, `exclusive`,
 * `arguments`...) and `autoAck`.
 *
 * @example
 * ```ts
 * const options: RxAmqpConsumeOptions = { prefetch: 20, autoAck: true };
 * ```
 */
export interface RxAmqpConsumeOptions extends ConsumeOptions {
  /**
   * Acknowledge each delivery once it has been handed to the subscribers (after their `next`
   * returned, whatever it did): at-most-once processing like `noAck`, but the broker still sends at
   * most `prefetch` unacknowledged messages, so a backlog cannot flood the page. Default false:
   * settle each delivery yourself (`delivery.ack()`, or the operators of `rxamqp/operators`).
   */
  readonly autoAck?: boolean;
}

/**
 * Options of {@link RxAmqp.watch}: those of `consume`, with `autoAck` on by default.
 *
 * @example
 * ```ts
 * const options: RxAmqpWatchOptions = { prefetch: 100, queueArguments: { 'x-max-length': 1000 } };
 * ```
 */
export interface RxAmqpWatchOptions extends Omit<RxAmqpConsumeOptions, 'exclusive'> {
  /** Arguments of the temporary queue (`x-max-length`, `x-message-ttl`, ...). */
  readonly queueArguments?: QueueSpec['arguments'];
}

/** What the configuration gives once resolved: the connection Observable and its publisher. */
interface Setup {
  readonly connection$: ConnectionObservable;
  readonly publisher: Publisher;
}

const INITIAL: ConnectionState = Object.freeze({ status: 'INITIAL' });

/**
 * The application's connection to RabbitMQ, provided by `provideRxAmqp`: inject it anywhere.
 *
 * - `state$` and the `state` signal tell where the connection stands (`CONNECTING`, `CONNECTED`,
 *   `RECONNECTING`...), for a status badge;
 * - `consume` (a queue) and `watch` (an exchange, through a temporary queue) give hot delivery streams
 *   that come back after every reconnect; `messagesSignal` turns one into a signal of the last messages;
 * - `publish` sends at once and returns an Observable of the broker's confirm; messages published while
 *   disconnected are held and sent after the reconnect;
 * - `request` is RPC over RabbitMQ's direct reply-to; `withChannel` and `withConnection` run your own
 *   rxamqp pipelines with the zones handled.
 *
 * Every Observable it returns subscribes outside Angular's zone (sockets, heartbeats and timers never
 * trigger change detection) and notifies inside it. When its injector is destroyed, the consumers are
 * cancelled, their streams complete and the connection closes.
 *
 * @example
 * ```ts
 * @Component({
 *   selector: 'app-orders',
 *   template: `<p>{{ amqp.state().status }}</p> @for (o of orders(); track $index) { <li>{{ o.id }}</li> }`,
 * })
 * export class OrdersComponent {
 *   readonly amqp = inject(RxAmqp);
 *   readonly orders = messagesSignal(this.amqp.watch('shop', 'order.*').pipe(map((d) => d.json<Order>())));
 *
 *   place(order: Order) {
 *     this.amqp.publishJson('shop', 'order.placed', order).subscribe({ error: (e) => this.failed.set(e.message) });
 *   }
 * }
 * ```
 */
export class RxAmqp {
  /**
   * The connection's state: the current one at once, then every change. Notifies inside Angular's
   * zone; it completes when the service is destroyed and the connection is closed.
   *
   * @example
   * ```ts
   * inject(RxAmqp).state$.pipe(filter((s) => s.status === 'RECONNECTING')).subscribe((s) => toast(s.cause?.message));
   * ```
   */
  readonly state$: Observable<ConnectionState>;

  /**
   * The connection's state as a signal, for templates (zoneless applications included).
   *
   * @example
   * ```ts
   * // template: <span [class.ok]="amqp.state().status === 'CONNECTED'">{{ amqp.state().status }}</span>
   * ```
   */
  readonly state: Signal<ConnectionState>;

  /**
   * The open connection: emits it, and a fresh one after every reconnect (rxamqp's recovering
   * `connect()` Observable, shared). For pipelines of your own prefer {@link withConnection}, which
   * also keeps what they do outside Angular's zone.
   *
   * @example
   * ```ts
   * inject(RxAmqp).connection$.subscribe((conn) => console.log('connected to', conn.host));
   * ```
   */
  readonly connection$: Observable<Connection>;

  /**
   * The connection as the service's streams start from it: subscribing holds the connection (first
   * use); the public streams add the zone crossings and their end with the service.
   */
  private readonly raw$: Observable<Connection>;
  private readonly setup = new ReplaySubject<Setup>(1);
  private readonly states = new BehaviorSubject<ConnectionState>(INITIAL);
  private readonly stateValue = signal<ConnectionState>(INITIAL);
  /** Emits (and replays) once destroyed: every stream of the service ends with it. */
  private readonly ended = new ReplaySubject<void>(1);
  private hold: Subscription | undefined;
  private destroyed = false;
  private publisher: Publisher | undefined;

  /**
   * @internal Created by `provideRxAmqp`; without a configuration (server-side rendering) it never
   * connects.
   */
  constructor(
    config: SplitConfig | PromiseLike<SplitConfig> | undefined,
    private readonly zone: ZoneRunner,
    private readonly reportError: (error: unknown) => void,
  ) {
    this.state = this.stateValue.asReadonly();
    this.state$ = this.states.pipe(insideNgZone(zone));
    this.raw$ = defer(() => {
      this.start(false);
      return this.setup.pipe(
        take(1),
        switchMap((s) => s.connection$),
      );
    });
    this.connection$ = this.raw$.pipe(takeUntil(this.ended), outsideNgZone(zone), insideNgZone(zone));
    if (config === undefined) return;
    if (isPromiseLike(config)) {
      Promise.resolve(config).then(
        (resolved) => this.configure(resolved, false),
        (error: unknown) => this.fail(error),
      );
    } else {
      this.configure(config, true);
    }
  }

  /**
   * Consumes a queue: a hot, shared stream of its deliveries (one consumer however many subscribe),
   * started by the first subscriber and cancelled (`basic.cancel`) when the last one leaves. After a
   * reconnect it consumes again by itself. Give a `QueueSpec` to have the queue declared first (on
   * every connection; a server-named `{ name: '' }` one too). Settle each delivery (`ack()`, or
   * `rxamqp/operators`' `ackOnSuccess`) unless `autoAck` or `noAck`. Deliveries arrive inside Angular's
   * zone; the stream completes when the service is destroyed, and errors when the broker cancels the
   * consumer (its queue deleted) or refuses it.
   *
   * @example
   * ```ts
   * readonly jobs = messagesSignal(inject(RxAmqp).consume('ui.notifications', { autoAck: true, prefetch: 50 }));
   * ```
   * @example
   * ```ts
   * amqp.consume({ name: 'ui.tasks', durable: true }, { prefetch: 10 })
   *   .pipe(ackOnSuccess((d) => this.tasks.add(d.json<Task>())))
   *   .subscribe();
   * ```
   */
  consume(queue: QueueRef, options: RxAmqpConsumeOptions = {}): Observable<Delivery> {
    const { autoAck = false, ...consumeOptions } = checkConsumeOptions(options);
    if (typeof queue !== 'string' && (typeof queue !== 'object' || queue === null)) {
      throw new ConfigurationError(`consume needs a queue name or a QueueSpec, got ${typeof queue}`);
    }
    const topology = typeof queue === 'string' ? undefined : { queues: [queue] };
    return this.deliveries(
      this.raw$.pipe(switchMap((conn) => consumeOn(conn, queue, topology, consumeOptions))),
      autoAck,
    );
  }

  /**
   * Watches an exchange: declares a temporary queue (server-named, exclusive: the broker deletes it
   * when the connection goes), binds it with each routing key (a topic exchange's `order.*`, say) and
   * consumes it, acknowledging each delivery once handed over (`autoAck: false` to settle yourself).
   * After a reconnect it does it all again on the new connection: what was published in between was
   * not queued for it. A hot, shared stream, like {@link consume}. Give an `ExchangeSpec` to have the
   * exchange declared too.
   *
   * @example
   * ```ts
   * readonly prices = messagesSignal(inject(RxAmqp).watch('prices', 'eur.*').pipe(map((d) => d.json<Price>())), { keep: 20 });
   * ```
   */
  watch(
    exchange: ExchangeRef,
    routingKeys: string | readonly string[],
    options: RxAmqpWatchOptions = {},
  ): Observable<Delivery> {
    const { autoAck = true, queueArguments, ...consumeOptions } = checkConsumeOptions(options);
    const keys = typeof routingKeys === 'string' ? [routingKeys] : [...routingKeys];
    if (keys.length === 0 || keys.some((k) => typeof k !== 'string')) {
      throw new ConfigurationError('watch needs a routing key, or an array of at least one');
    }
    const temporary: QueueSpec = {
      name: '',
      exclusive: true,
      autoDelete: true,
      ...(queueArguments === undefined ? {} : { arguments: queueArguments }),
    };
    const topology: Topology = {
      exchanges: typeof exchange === 'string' ? [] : [exchange],
      queues: [temporary],
      bindings: keys.map((routingKey) => ({ exchange, queue: temporary, routingKey })),
    };
    return this.deliveries(
      this.raw$.pipe(switchMap((conn) => consumeOn(conn, temporary, topology, consumeOptions))),
      autoAck,
    );
  }

  /**
   * Publishes a message, at once (you need not subscribe), through the service's publisher: in
   * confirm mode, held while disconnected and sent after the reconnect (see the `publisher` option).
   * The returned Observable replays the outcome inside Angular's zone: `{ status: 'acked' }` once the
   * broker has the message (`'returned'` for an unroutable `mandatory` one, `'nacked'`...), then
   * completes; or it errors with a `PublisherError` (buffer full, held too long, service destroyed).
   *
   * @example
   * ```ts
   * send(text: string) {
   *   this.amqp.publish('chat', 'room.42', text, { contentType: 'text/plain' }).subscribe({
   *     next: (outcome) => this.sent.set(outcome.status),
   *     error: (error) => this.sent.set(`failed: ${error.message}`),
   *   });
   * }
   * ```
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Observable<PublishOutcome> {
    const outcome = new ReplaySubject<PublishOutcome>();
    this.zone.runOutsideAngular(() =>
      this.setup
        .pipe(
          take(1),
          switchMap((s) => s.publisher.publish(exchange, routingKey, body, properties, options)),
          // Destroyed before the publisher existed (an async configuration still pending): fail as a
          // publish held by a destroyed service does, never complete without an outcome.
          throwIfEmpty(
            () =>
              new PublisherError(
                'PUBLISHER_CLOSED',
                'the RxAmqp service was destroyed before the message was sent',
              ),
          ),
        )
        .subscribe(outcome),
    );
    return outcome.pipe(insideNgZone(this.zone));
  }

  /**
   * {@link publish} of a value as JSON, with `contentType: 'application/json'` (other properties may be
   * added).
   *
   * @example
   * ```ts
   * this.amqp.publishJson('shop', 'order.placed', { id: 42, sku: 'A-1' }, { deliveryMode: 2 }).subscribe();
   * ```
   */
  publishJson(
    exchange: string,
    routingKey: string,
    value: unknown,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Observable<PublishOutcome> {
    const body = JSON.stringify(value);
    if (body === undefined) throw new ConfigurationError(`publishJson cannot encode ${typeof value} as JSON`);
    return this.publish(
      exchange,
      routingKey,
      body,
      { contentType: 'application/json', ...properties },
      options,
    );
  }

  /**
   * Sends a request and emits the reply (RPC over RabbitMQ's direct reply-to, as rxamqp's
   * `channel.request`), on the current connection (or the next one while reconnecting). Cold:
   * subscribing sends it.
   *
   * @example
   * ```ts
   * this.amqp.request('', 'prices.rpc', JSON.stringify({ sku }), { contentType: 'application/json' }, { timeoutMs: 5000 })
   *   .subscribe((reply) => this.price.set(reply.json<Price>()));
   * ```
   */
  request(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties?: BasicProperties,
    options?: RequestOptions,
  ): Observable<Delivery> {
    return this.withChannel((ch) => ch.request(exchange, routingKey, body, properties, options));
  }

  /**
   * Runs one piece of work on the connection's cached channel (declarations, a purge, a `get`), on
   * the current connection or the next one: cold, it emits what the work emits, inside the zone.
   *
   * @example
   * ```ts
   * this.amqp.withChannel((ch) => ch.queueDeclare('ui.tasks', { durable: true })).subscribe((ok) => this.count.set(ok.messageCount));
   * ```
   */
  withChannel<T>(work: (channel: Channel, connection: Connection) => ObservableInput<T>): Observable<T> {
    return this.raw$.pipe(
      take(1),
      switchMap((conn) => conn.cachedChannel().pipe(switchMap((ch) => from(work(ch, conn))))),
      takeUntil(this.ended),
      outsideNgZone(this.zone),
      insideNgZone(this.zone),
    );
  }

  /**
   * Runs a pipeline of your own on every connection (again after each reconnect, as `switchMap` over
   * `connection$`): the pipeline is subscribed outside Angular's zone, what it emits comes back in.
   * It completes when the service is destroyed.
   *
   * @example
   * ```ts
   * this.amqp.withConnection((conn) =>
   *   conn.channel().pipe(switchMap((ch) => ch.consume('ui.events', { prefetch: 20 })), ackOnSuccess((d) => this.apply(d.json()))),
   * ).subscribe();
   * ```
   */
  withConnection<T>(project: (connection: Connection) => ObservableInput<T>): Observable<T> {
    return this.raw$.pipe(
      switchMap((conn) => from(project(conn))),
      takeUntil(this.ended),
      outsideNgZone(this.zone),
      insideNgZone(this.zone),
    );
  }

  /**
   * What `JSON.stringify` shows (a logger, say): the state and host, never a password.
   *
   * @example
   * ```ts
   * console.log(JSON.stringify(inject(RxAmqp))); // {"status":"CONNECTED","host":"localhost:5672"}
   * ```
   */
  toJSON(): { status: string; host?: string } {
    const s = this.states.value;
    return { status: s.status, ...(s.host === undefined ? {} : { host: s.host }) };
  }

  /**
   * Ends the service (its injector's `DestroyRef` calls it): consumers are cancelled and their streams
   * complete, held publishes fail, and the connection closes.
   *
   * @internal
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.zone.runOutsideAngular(() => {
      this.ended.next();
      this.ended.complete();
      this.publisher?.close().subscribe({ error: () => {} });
      this.hold?.unsubscribe();
      this.hold = undefined;
      this.setup.complete();
      // Nothing more will report a state when nothing was ever opened.
      if (this.states.value.status === 'INITIAL' || this.states.value.status === 'CLOSED') {
        this.states.complete();
      }
    });
  }

  /**
   * Holds the connection open (outside the zone) from now until the service is destroyed. An error
   * that comes while subscribing (connect()'s check of its options) is thrown when `rethrow`, so that
   * the application's bootstrap fails with it; later ones (recovery gave up, a refused login) go to
   * Angular's `ErrorHandler`, and `state` says why.
   */
  private start(rethrow: boolean): void {
    if (this.hold !== undefined || this.destroyed) return;
    let subscribing = true;
    let failure: { error: unknown } | undefined;
    let hold: Subscription | undefined;
    hold = this.zone.runOutsideAngular(() =>
      this.setup
        .pipe(
          take(1),
          switchMap((s) => s.connection$),
        )
        .subscribe({
          error: (error: unknown) => {
            if (this.hold === hold) this.hold = undefined;
            if (subscribing) failure = { error };
            else this.reportError(error);
          },
        }),
    );
    subscribing = false;
    if (failure === undefined) {
      this.hold = hold;
      return;
    }
    if (rethrow && failure.error instanceof ConfigurationError) throw failure.error;
    this.reportError(failure.error);
  }

  private configure(config: SplitConfig, synchronous: boolean): void {
    if (this.destroyed) return;
    let setup: Setup;
    try {
      const connection$ = connect(config.url, config.connect);
      // Subscribed on the first publish, which runs outside the zone.
      const publisher = createPublisher(this.raw$, config.publisher);
      setup = { connection$, publisher };
    } catch (error) {
      if (synchronous) throw error;
      this.fail(error);
      return;
    }
    this.publisher = setup.publisher;
    this.zone.runOutsideAngular(() =>
      setup.connection$.state$
        .pipe(takeWhile((s) => !(this.destroyed && s.status === 'CLOSED'), true))
        .subscribe({
          next: (s) => this.setState(s),
          complete: () => this.states.complete(),
        }),
    );
    this.setup.next(setup);
    if (config.connectOn === 'startup') this.start(synchronous);
  }

  private fail(error: unknown): void {
    if (this.destroyed) return;
    const cause = error instanceof Error ? error : new Error(String(error));
    this.setState({ status: 'CLOSED', cause });
    this.setup.error(error);
    this.reportError(error);
  }

  private setState(state: ConnectionState): void {
    this.states.next(state);
    this.zone.run(() => this.stateValue.set(state));
  }

  /**
   * The delivery stream handed to the application: subscribed outside the zone, each delivery emitted
   * inside it (then acknowledged, with `autoAck`, back outside), shared by every subscriber.
   */
  private deliveries(source: Observable<Delivery>, autoAck: boolean): Observable<Delivery> {
    const zone = this.zone;
    return new Observable<Delivery>((subscriber) => {
      const subscription = zone.runOutsideAngular(() =>
        source.pipe(takeUntil(this.ended)).subscribe({
          next: (delivery) => {
            zone.run(() => subscriber.next(delivery));
            if (autoAck) delivery.ack();
          },
          error: (error: unknown) => zone.run(() => subscriber.error(error)),
          complete: () => zone.run(() => subscriber.complete()),
        }),
      );
      return () => zone.runOutsideAngular(() => subscription.unsubscribe());
    }).pipe(share());
  }
}

/**
 * One connection's consumer: the topology declared first (when given), then a channel of its own and
 * `basic.consume` on the queue's actual name (a server-named queue's from the declaration). A
 * declaration cut short by the loss of the connection errors (`applyTopology` reports a topology it
 * could not finish), but then it is the next connection's turn, not a failure of the stream: errors
 * on an open connection (the broker refusing the queue, say) still end it.
 */
function consumeOn(
  connection: Connection,
  queue: QueueRef,
  topology: Topology | undefined,
  options: ConsumeOptions,
): Observable<Delivery> {
  const consume = (name: string) => connection.channel().pipe(switchMap((ch) => ch.consume(name, options)));
  const work =
    topology === undefined
      ? consume(typeof queue === 'string' ? queue : queue.name)
      : applyTopology(connection, topology).pipe(switchMap((applied) => consume(applied.queueName(queue))));
  return work.pipe(catchError((error: unknown) => (connection.isOpen ? throwError(() => error) : EMPTY)));
}

function checkConsumeOptions<T extends RxAmqpConsumeOptions>(options: T): T {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`consume options must be an object, got ${typeof options}`);
  }
  if (options.autoAck !== undefined && typeof options.autoAck !== 'boolean') {
    throw new ConfigurationError(`autoAck must be a boolean, got ${typeof options.autoAck}`);
  }
  if (options.autoAck === true && options.noAck === true) {
    throw new ConfigurationError(
      'autoAck and noAck exclude each other: noAck has the broker consider each message acknowledged on sending, autoAck acknowledges it after handing it over',
    );
  }
  return options;
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
