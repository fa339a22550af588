/**
 * The facade of `rxamqp/mq`: {@link MqConnection} picks its backend by the URL's scheme and makes
 * {@link MqQueue}s, whose options it validates and resolves for the backend.
 *
 * @module
 */
import { Observable, type Observer, type OperatorFunction, type Subscriber, type Subscription } from 'rxjs';
import { redactUrl } from '../config/url.js';
import { ConfigurationError, MqError } from '../errors.js';
import { utf8Encode } from '../protocol/bytes.js';
import { type MqBackend, type MqSendPath, type ResolvedQueue, sendObservable } from './backend.js';
import type {
  MqBackendKind,
  MqConnectOptions,
  MqMessage,
  MqPayload,
  MqQueueOptions,
  MqSendOptions,
  MqStatus,
} from './types.js';

/** A queue name: segments of `a-z`, `0-9`, `_` and `-`, joined by dots. */
const QUEUE_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** How a backend is made for a URL (bound by the mq entry). */
export interface BackendFactories {
  amqp(url: string, options: MqConnectOptions): MqBackend;
  mqtt(url: string, options: MqConnectOptions): MqBackend;
}

/** The backend a URL's scheme selects, or undefined. */
export function backendOf(url: string): MqBackendKind | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'amqp' || scheme === 'amqps') return 'amqp';
  if (scheme === 'mqtt' || scheme === 'mqtts' || scheme === 'ws' || scheme === 'wss') return 'mqtt';
  return undefined;
}

/**
 * One broker connection of `rxamqp/mq`, over AMQP 0-9-1 or MQTT as its URL says: made by
 * {@link connectMq}, it connects at once and reconnects by rxamqp's retry policies until `close()`.
 *
 * @example
 * ```ts
 * const mq = connectMq(process.env.MQ_URL ?? 'amqp://localhost');
 * const jobs = mq.queue({ name: 'jobs', role: 'receiver' });
 * jobs.messages$.pipe(ackOnSuccess((m) => handle(m.json()))).subscribe();
 * ```
 */
export class MqConnection {
  private closed = false;

  /** @internal Made by `connectMq`. */
  constructor(
    private readonly backendImpl: MqBackend,
    /** The URL, without its password. */
    readonly url: string,
  ) {}

  /** Which protocol this connection speaks: `'amqp'` or `'mqtt'`, from the URL's scheme. */
  get backend(): MqBackendKind {
    return this.backendImpl.kind;
  }

  /**
   * The connection's status: the current one at once, then every change (`connecting`, `connected`,
   * `disconnected`, `closing`, `closed`); completes after `closed`.
   *
   * @example
   * ```ts
   * mq.status$.pipe(filter((s) => s === 'disconnected')).subscribe(() => log.warn('mq connection lost'));
   * ```
   */
  get status$(): Observable<MqStatus> {
    return this.backendImpl.status$;
  }

  /**
   * Connection errors as they happen (a failed attempt, a loss: rxamqp's `ConnectionClosedError`s on
   * AMQP, `MqError`s coded `MQ_CONNECTION` wrapping mqtt.js's errors on MQTT). Hot; completes with the
   * connection. The connection retries by itself: these are for logging.
   *
   * @example
   * ```ts
   * mq.errors$.subscribe((e) => log.warn({ err: e }, 'mq connection error'));
   * ```
   */
  get errors$(): Observable<Error> {
    return this.backendImpl.errors$;
  }

  /**
   * A queue of this connection: a sender or a receiver, unicast or broadcast, reliable or best
   * effort. Throws a `ConfigurationError` for an invalid name or option, and an `MqError` coded
   * `MQ_CLOSED` after `close()`.
   *
   * @example
   * ```ts
   * const events = mq.queue({ name: 'events.audit', role: 'receiver', pattern: 'broadcast', reliable: false });
   * ```
   */
  queue(options: MqQueueOptions): MqQueue {
    if (this.closed) throw new MqError('MQ_CLOSED', 'mq: queue() on a closed connection');
    return new MqQueue(this.backendImpl, resolveQueue(options));
  }

  /**
   * Closes the connection when subscribed: receivers complete, and sends not yet taken fail with an
   * `MqError`: `MQ_CLOSED` when nothing went out, `MQ_SEND_FAILED` (cause `MQ_CLOSED`) when a message
   * may have reached the broker unanswered (a reliable AMQP sender first waits for the confirms of
   * what it published). Emits once closed, then completes.
   *
   * @example
   * ```ts
   * await lastValueFrom(mq.close());
   * ```
   */
  close(): Observable<void> {
    return new Observable<void>((subscriber) => {
      this.closed = true;
      return this.backendImpl.close().subscribe(subscriber);
    });
  }

  /** What `JSON.stringify` shows: the backend and the URL without its password. */
  toJSON(): { backend: MqBackendKind; url: string } {
    return { backend: this.backend, url: this.url };
  }
}

/**
 * A queue of an {@link MqConnection}: a sender (`send`) or a receiver (`messages$`).
 *
 * @example
 * ```ts
 * const out = mq.queue({ name: 'jobs', role: 'sender' });
 * out.send(JSON.stringify({ id: 1 }), { contentType: 'application/json' }).subscribe();
 * ```
 */
export class MqQueue {
  private shared: Observable<MqMessage> | undefined;
  /** The backend's send path for this queue, when it has one (made with the first send). */
  private path: MqSendPath | undefined;

  /** @internal Made by `MqConnection.queue`. */
  constructor(
    private readonly backend: MqBackend,
    private readonly resolved: ResolvedQueue,
  ) {}

  /** The queue's name. */
  get name(): string {
    return this.resolved.name;
  }

  /** `'sender'` or `'receiver'`. */
  get role(): 'sender' | 'receiver' {
    return this.resolved.role;
  }

  /** `'unicast'` or `'broadcast'`. */
  get pattern(): 'unicast' | 'broadcast' {
    return this.resolved.pattern;
  }

  /** Reliable (confirmed sends, acknowledged messages) or best effort. */
  get reliable(): boolean {
    return this.resolved.reliable;
  }

  /**
   * Sends one message when subscribed. On a reliable queue it completes once the broker has taken
   * the message (an AMQP publisher confirm; MQTT's PUBACK) and errors with an `MqError` coded
   * `MQ_SEND_FAILED` when it did not; while the connection is down the message waits for the next one.
   * On a best-effort queue it completes once the message is handed to the connection. On a receiver
   * it errors with `MQ_NOT_A_SENDER`.
   *
   * @example
   * ```ts
   * await lastValueFrom(jobs.send('resize 42', { contentType: 'text/plain' }), { defaultValue: undefined });
   * ```
   */
  send(payload: MqPayload, options: MqSendOptions = {}): Observable<void> {
    if (this.resolved.role !== 'sender') return failed(notASender(this.resolved.name));
    const body = bodyOf(payload);
    const contentType = options.contentType;
    const backend = this.backend;
    if (backend.sender === undefined) return backend.send(this.resolved, body, contentType);
    this.path ??= backend.sender(this.resolved);
    return sendObservable(this.path, body, contentType);
  }

  /**
   * @internal Sends one message and calls `done` once (with the error when it was not taken): the
   * callback path of `send` and `sendEach`. The queue must be a sender.
   */
  sendWith(
    body: Uint8Array,
    contentType: string | undefined,
    done: (error: Error | undefined) => void,
  ): void {
    const backend = this.backend;
    if (backend.sender === undefined) {
      backend.send(this.resolved, body, contentType).subscribe({
        error: (e: unknown) => done(e instanceof Error ? e : new Error(String(e))),
        complete: () => done(undefined),
      });
      return;
    }
    this.path ??= backend.sender(this.resolved);
    this.path.send(body, contentType, done);
  }

  /**
   * The messages of a receiver: hot and shared, the first subscriber starts the consumer (or MQTT
   * subscription) and the last one to leave stops it. After a reconnect it starts again by itself.
   * On a reliable queue settle each message (`ack()`, or the operators of `rxamqp/operators`); on a
   * best-effort one they come settled. On a sender it errors with `MQ_NOT_A_RECEIVER`.
   *
   * @example
   * ```ts
   * jobs.messages$.pipe(ackOnSuccess((m) => resize(m.json()), { concurrency: 8 })).subscribe();
   * ```
   */
  get messages$(): Observable<MqMessage> {
    if (this.resolved.role !== 'receiver') {
      return failed(
        new MqError('MQ_NOT_A_RECEIVER', `mq queue '${this.resolved.name}' is a sender: it has no messages`),
      );
    }
    this.shared ??= new SharedMessages(this.backend.receive(this.resolved));
    return this.shared;
  }
}

/**
 * A hand-made `share()` of a receiver's messages, as `consume()` has one: the first subscriber
 * subscribes the backend's stream, the last one to leave unsubscribes it, and each message goes to
 * every subscriber in a plain loop over an array copied on change (this is the path of every message:
 * no Subject, no closure per message). An error or a completion reaches every subscriber and ends the
 * run: a later subscriber starts the stream again, as `share()` does.
 */
class SharedMessages extends Observable<MqMessage> {
  private group: Subscriber<MqMessage>[] = [];
  /** The current subscription of the source, while it has subscribers. */
  run: SharedRun | undefined;

  constructor(private readonly messages: Observable<MqMessage>) {
    super(subscribeSharedMessages);
  }

  add(subscriber: Subscriber<MqMessage>): () => void {
    this.group = this.group.length === 0 ? [subscriber] : [...this.group, subscriber];
    if (this.run === undefined) {
      const run = new SharedRun(this);
      this.run = run;
      // When the source ends while it is subscribed, the run is over and this subscription closed.
      run.subscription = this.messages.subscribe(run);
    }
    return () => this.remove(subscriber);
  }

  deliver(message: MqMessage): void {
    const subscribers = this.group;
    for (let i = 0; i < subscribers.length; i++) subscribers[i]!.next(message);
  }

  /** The run ended: who was subscribed, now none (a later subscriber starts a new run). */
  end(): Subscriber<MqMessage>[] {
    const subscribers = this.group;
    this.group = [];
    this.run = undefined;
    return subscribers;
  }

  private remove(subscriber: Subscriber<MqMessage>): void {
    if (!this.group.includes(subscriber)) return;
    this.group = this.group.filter((s) => s !== subscriber);
    if (this.group.length > 0) return;
    const run = this.run;
    this.run = undefined;
    run?.subscription?.unsubscribe();
  }
}

function subscribeSharedMessages(this: Observable<MqMessage>, subscriber: Subscriber<MqMessage>): () => void {
  return (this as SharedMessages).add(subscriber);
}

/** One subscription of a {@link SharedMessages}' source: what it emits counts only while it is current. */
class SharedRun implements Observer<MqMessage> {
  subscription: Subscription | undefined;

  constructor(private readonly owner: SharedMessages) {}

  next(message: MqMessage): void {
    if (this.owner.run === this) this.owner.deliver(message);
  }

  error(error: unknown): void {
    if (this.owner.run !== this) return;
    for (const s of this.owner.end()) s.error(error);
  }

  complete(): void {
    if (this.owner.run !== this) return;
    for (const s of this.owner.end()) s.complete();
  }
}

/**
 * Sends each payload of the source through a sender queue, at most `concurrency` awaiting the broker
 * at once, and emits each payload once it was taken (in the order they were taken). Errors with the
 * first failed send.
 *
 * @example
 * ```ts
 * from(lines).pipe(sendEach(jobs, { concurrency: 100 })).subscribe({ complete: () => console.log('all sent') });
 * ```
 */
export function sendEach<
  T extends MqPayload | { readonly payload: MqPayload; readonly contentType?: string },
>(queue: MqQueue, options: { readonly concurrency?: number } = {}): OperatorFunction<T, T> {
  const concurrency = options.concurrency ?? 100;
  if (!(concurrency >= 1) || (!Number.isInteger(concurrency) && concurrency !== Infinity)) {
    throw new ConfigurationError(`sendEach: concurrency must be a positive integer, got ${concurrency}`);
  }
  return (source) =>
    new Observable<T>((subscriber) => {
      if (queue.role !== 'sender') {
        subscriber.error(notASender(queue.name));
        return undefined;
      }
      // A hand-made window (mergeMap's buffer costs a shift per item and an Observable per send): the
      // items beyond `concurrency` wait in an array read from a moving head.
      let waiting: T[] = [];
      let head = 0;
      let inFlight = 0;
      let sourceDone = false;
      let over = false;
      let pumping = false;
      let again = false;
      const start = (item: T): void => {
        inFlight++;
        const bare = typeof item === 'string' || item instanceof Uint8Array;
        queue.sendWith(bodyOf(bare ? item : item.payload), bare ? undefined : item.contentType, (error) => {
          inFlight--;
          if (over) return;
          if (error !== undefined) {
            over = true;
            subscriber.error(error);
            return;
          }
          subscriber.next(item);
          pump();
        });
      };
      const pump = (): void => {
        // Sends that complete at once (best effort) call back into here: the outer loop goes on.
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        do {
          again = false;
          while (!over && inFlight < concurrency && head < waiting.length) {
            const item = waiting[head]!;
            waiting[head++] = undefined as never;
            start(item);
          }
        } while (again && !over);
        pumping = false;
        if (head === waiting.length && head > 0) {
          waiting = [];
          head = 0;
        } else if (head > 1024 && head * 2 > waiting.length) {
          waiting = waiting.slice(head);
          head = 0;
        }
        if (!over && sourceDone && inFlight === 0 && head === waiting.length) {
          over = true;
          subscriber.complete();
        }
      };
      const subscription = source.subscribe({
        next: (item) => {
          if (over) return;
          if (inFlight < concurrency && head === waiting.length && !pumping) start(item);
          else waiting.push(item);
        },
        error: (error: unknown) => {
          if (over) return;
          over = true;
          subscriber.error(error);
        },
        complete: () => {
          sourceDone = true;
          pump();
        },
      });
      return () => {
        over = true;
        subscription.unsubscribe();
      };
    });
}

/**
 * Opens an mq connection to `url`: `amqp://` or `amqps://` (rxamqp), `mqtt://`, `mqtts://`, `ws://` or
 * `wss://` (mqtt.js, an optional peer dependency: `npm install mqtt`). Throws a `ConfigurationError`
 * for another scheme (the password never shown).
 *
 * @internal Bound to the backends by the mq entry.
 */
export function connectWith(
  factories: BackendFactories,
  url: string,
  options: MqConnectOptions = {},
): MqConnection {
  if (typeof url !== 'string') throw new ConfigurationError('connectMq: the URL must be a string');
  const kind = backendOf(url);
  const shown = redactUrl(url);
  if (kind === undefined) {
    throw new ConfigurationError(
      `connectMq: '${shown}' is not an amqp://, amqps://, mqtt://, mqtts://, ws:// or wss:// URL`,
    );
  }
  checkConnectOptions(options);
  const backend = kind === 'amqp' ? factories.amqp(url, options) : factories.mqtt(url, options);
  return new MqConnection(backend, shown);
}

function checkConnectOptions(options: MqConnectOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError('connectMq: options must be an object');
  }
  const recovery: unknown = options.recovery;
  if (
    recovery !== undefined &&
    typeof recovery !== 'boolean' &&
    (typeof recovery !== 'object' || recovery === null)
  ) {
    throw new ConfigurationError('connectMq: recovery must be true, false or an object of retry policies');
  }
  if (options.name !== undefined && typeof options.name !== 'string') {
    throw new ConfigurationError('connectMq: name must be a string');
  }
  const mqtt: unknown = options.mqtt;
  if (mqtt === undefined) return;
  if (typeof mqtt !== 'object' || mqtt === null)
    throw new ConfigurationError('connectMq: mqtt must be an object');
  const m = mqtt as Record<string, unknown>;
  const whole = (key: string, min: number, max: number): void => {
    const v = m[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
      throw new ConfigurationError(`connectMq: mqtt.${key} must be an integer from ${min} to ${max}`);
    }
  };
  whole('keepalive', 0, 65535);
  whole('connectTimeout', 1, 2_147_483_647);
  whole('sessionExpiry', 0, 4_294_967_295);
  checkTlsOptions(m.tls);
  for (const key of ['clientId', 'username', 'password']) {
    const v = m[key];
    // The value is never shown: a password must not appear in an error.
    if (v !== undefined && (typeof v !== 'string' || (key === 'clientId' && v === ''))) {
      throw new ConfigurationError(
        `connectMq: mqtt.${key} must be a${key === 'clientId' ? ' non-empty' : ''} string`,
      );
    }
  }
}

/** Checks `mqtt.tls` (its values are never shown: a key or passphrase must not appear in an error). */
function checkTlsOptions(tls: unknown): void {
  if (tls === undefined) return;
  if (typeof tls !== 'object' || tls === null)
    throw new ConfigurationError('connectMq: mqtt.tls must be an object');
  const t = tls as Record<string, unknown>;
  const pem = (v: unknown): boolean => typeof v === 'string' || v instanceof Uint8Array;
  const ca = t.ca;
  if (ca !== undefined && !pem(ca) && !(Array.isArray(ca) && ca.every(pem))) {
    throw new ConfigurationError('connectMq: mqtt.tls.ca must be PEM text or bytes, or an array of them');
  }
  for (const key of ['cert', 'key']) {
    if (t[key] !== undefined && !pem(t[key])) {
      throw new ConfigurationError(`connectMq: mqtt.tls.${key} must be PEM text or bytes`);
    }
  }
  for (const key of ['passphrase', 'servername']) {
    if (t[key] !== undefined && typeof t[key] !== 'string') {
      throw new ConfigurationError(`connectMq: mqtt.tls.${key} must be a string`);
    }
  }
  if (t.rejectUnauthorized !== undefined && typeof t.rejectUnauthorized !== 'boolean') {
    throw new ConfigurationError('connectMq: mqtt.tls.rejectUnauthorized must be true or false');
  }
}

/** Validates a queue's options and fills in the defaults. */
export function resolveQueue(options: MqQueueOptions): ResolvedQueue {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError('mq queue: options must be an object with a name and a role');
  }
  const { name, role } = options;
  if (typeof name !== 'string' || !QUEUE_NAME.test(name)) {
    throw new ConfigurationError(
      `mq queue: invalid name ${JSON.stringify(String(name)).slice(0, 80)}: use segments of a-z, 0-9, '_' and '-' joined by dots (e.g. 'jobs.resize')`,
    );
  }
  if (role !== 'sender' && role !== 'receiver') {
    throw new ConfigurationError(
      `mq queue '${name}': role must be 'sender' or 'receiver', got ${String(role)}`,
    );
  }
  const pattern = options.pattern ?? 'unicast';
  if (pattern !== 'unicast' && pattern !== 'broadcast') {
    throw new ConfigurationError(
      `mq queue '${name}': pattern must be 'unicast' or 'broadcast', got ${String(pattern)}`,
    );
  }
  const reliable = options.reliable ?? true;
  if (typeof reliable !== 'boolean') {
    throw new ConfigurationError(`mq queue '${name}': reliable must be true or false`);
  }
  const prefetch = options.amqp?.prefetch ?? 100;
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65535) {
    throw new ConfigurationError(
      `mq queue '${name}': amqp.prefetch must be an integer from 1 to 65535, got ${String(prefetch)}`,
    );
  }
  const persistent = options.amqp?.persistent ?? reliable;
  if (typeof persistent !== 'boolean') {
    throw new ConfigurationError(`mq queue '${name}': amqp.persistent must be true or false`);
  }
  const qos = options.mqtt?.qos ?? (reliable ? 1 : 0);
  if (qos !== 0 && qos !== 1) {
    throw new ConfigurationError(`mq queue '${name}': mqtt.qos must be 0 or 1, got ${String(qos)}`);
  }
  const group = options.mqtt?.group ?? 'rxamqp';
  if (typeof group !== 'string' || group === '' || /[/+#]/.test(group)) {
    throw new ConfigurationError(
      `mq queue '${name}': mqtt.group must be a non-empty string without '/', '+' or '#'`,
    );
  }
  return { name, role, pattern, reliable, prefetch, persistent, qos, group };
}

/** A payload's bytes: a string is sent as UTF-8. */
function bodyOf(payload: MqPayload): Uint8Array {
  return typeof payload === 'string' ? utf8Encode(payload) : payload;
}

function notASender(name: string): MqError {
  return new MqError('MQ_NOT_A_SENDER', `mq queue '${name}' is a receiver: it cannot send`);
}

function failed<T>(error: Error): Observable<T> {
  return new Observable<T>((subscriber) => subscriber.error(error));
}
