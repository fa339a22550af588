/**
 * @internal The AMQP backend of `rxamqp/mq`, on rxamqp itself, mapped as general-mq maps it:
 *
 * - unicast: a durable queue named after the mq queue, reached through the default exchange;
 * - broadcast: a durable fanout exchange named after the mq queue, and one exclusive server-named
 *   queue bound to it per receiver;
 * - reliable: publisher confirms, persistent messages (delivery mode 2) and manual acks;
 *   best effort: no confirms and automatic acks (`noAck` consumers).
 *
 * One AMQP connection (`connect()` with recovery, shared), one channel per sender (a
 * `createPublisher`, which keeps what is sent while disconnected and republishes what was not
 * confirmed) and one per receiver (a consumer that starts again after every reconnect).
 *
 * @module
 */
import {
  BehaviorSubject,
  concatMap,
  defer,
  map,
  Observable,
  type ObservableInput,
  of,
  Subject,
  switchMap,
  takeUntil,
} from 'rxjs';
import type { Channel } from '../client/channel.js';
import type { ConnectionObservable, ConnectionState } from '../client/connect.js';
import type { Connection } from '../client/connection.js';
import { createPublisher, type Publisher } from '../client/publisher.js';
import type { PublishOutcome } from '../client/types.js';
import { ConfigurationError, MqError, PublisherError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated.js';
import { type MqBackend, type MqSendPath, type ResolvedQueue, sendObservable } from './backend.js';
import type { MqConnectOptions, MqMessage, MqStatus } from './types.js';

/** How the AMQP backend opens its connection (the Node entry's `connect`, bound by the mq entry). */
export type AmqpConnect = (
  url: string,
  options: Parameters<typeof import('../node.js').connect>[1],
) => ConnectionObservable;

/** @internal */
export function createAmqpBackend(url: string, options: MqConnectOptions, connect: AmqpConnect): MqBackend {
  return new AmqpBackend(url, options, connect);
}

class AmqpBackend implements MqBackend {
  readonly kind = 'amqp' as const;
  private readonly status = new BehaviorSubject<MqStatus>('connecting');
  private readonly errors = new Subject<Error>();
  private readonly connection$: ConnectionObservable;
  private readonly keep;
  /** One publisher (one channel) per sender queue, by its key. */
  private readonly publishers = new Map<string, Publisher>();
  private closing = false;

  /** Ends the receivers when the backend closes (each holds the shared connection open). */
  private readonly closing$ = new Subject<void>();

  /** The current status at once (`closed` too, after the end), then every change. */
  readonly status$: Observable<MqStatus> = defer(() =>
    this.status.value === 'closed' ? of<MqStatus>('closed') : this.status,
  );
  readonly errors$: Observable<Error> = this.errors.asObservable();

  constructor(url: string, options: MqConnectOptions, connect: AmqpConnect) {
    const recovery = options.recovery ?? true;
    this.connection$ = connect(url, {
      ...options.amqp,
      ...(options.name === undefined ? {} : { name: options.name }),
      recovery,
      shared: true,
    });
    this.connection$.state$.subscribe((state) => this.track(state));
    // Held for the backend's life: the connection (and its recovery) lives as long as this. Invalid
    // options fail at once, when subscribed: they are thrown to `connectMq`'s caller.
    let invalid: ConfigurationError | undefined;
    let made = false;
    this.keep = this.connection$.subscribe({
      error: (e: unknown) => {
        if (!made && e instanceof ConfigurationError) invalid = e;
      },
    });
    made = true;
    if (invalid !== undefined) throw invalid;
  }

  /** Maps rxamqp's connection states to general-mq's. */
  private track(state: ConnectionState): void {
    if (this.status.value === 'closed') return;
    if (state.cause !== undefined && (state.status === 'RECONNECTING' || state.status === 'CLOSED')) {
      this.errors.next(state.cause);
    }
    switch (state.status) {
      case 'INITIAL':
        return;
      case 'CONNECTING':
        this.next('connecting');
        return;
      case 'CONNECTED':
        this.next('connected');
        return;
      case 'RECONNECTING':
        this.next('disconnected');
        return;
      case 'CLOSING':
        this.next('closing');
        return;
      case 'CLOSED':
        this.next('closed');
        this.status.complete();
        this.errors.complete();
        return;
    }
  }

  private next(status: MqStatus): void {
    if (this.closing && status !== 'closing' && status !== 'closed') return;
    if (this.status.value !== status) this.status.next(status);
  }

  send(queue: ResolvedQueue, body: Uint8Array, contentType: string | undefined): Observable<void> {
    return sendObservable(this.sender(queue), body, contentType);
  }

  sender(queue: ResolvedQueue): MqSendPath {
    return new AmqpSendPath(this, queue);
  }

  /** @internal For a send path: true once `close()` began. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** The publisher of a sender queue: made on its first send, on a channel of its own. */
  publisher(queue: ResolvedQueue): Publisher {
    const key = `${queue.pattern}:${queue.reliable ? 'r' : 'b'}:${queue.name}`;
    let publisher = this.publishers.get(key);
    if (publisher === undefined) {
      // The publisher gets each connection once what it sends to is declared on it.
      const declared$ = this.connection$.pipe(
        switchMap((conn) => onCachedChannel(conn, (ch) => declareForSend(ch, queue)).pipe(map(() => conn))),
      );
      // Reliable: what the broker had not confirmed when a connection was lost is published again on
      // the next one (at least once); best effort: nothing waits for a connection.
      publisher = createPublisher(declared$, {
        confirm: queue.reliable,
        republish: queue.reliable,
        whileDisconnected: queue.reliable ? 'buffer' : 'fail',
      });
      this.publishers.set(key, publisher);
    }
    return publisher;
  }

  receive(queue: ResolvedQueue): Observable<MqMessage> {
    if (this.closing) return new Observable<MqMessage>((s) => s.error(closedError(queue)));
    const noAck = !queue.reliable;
    return this.connection$.pipe(
      takeUntil(this.closing$),
      switchMap((conn) => conn.channel()),
      switchMap((ch) =>
        declareForReceive(ch, queue).pipe(
          switchMap((name) => ch.consume(name, { noAck, ...(noAck ? {} : { prefetch: queue.prefetch }) })),
        ),
      ),
    );
  }

  close(): Observable<void> {
    return new Observable<void>((subscriber) => {
      const done = (): void => {
        subscriber.next();
        subscriber.complete();
      };
      if (this.status.value === 'closed') {
        done();
        return;
      }
      const ended = this.status.subscribe({ complete: done });
      if (!this.closing) {
        this.closing = true;
        this.status.next('closing');
        // The publishers first (a reliable one waits for the confirms of what it published), then the
        // receivers (their streams complete), then the connection.
        const endConnection = (): void => {
          this.closing$.next();
          this.keep.unsubscribe();
        };
        let left = this.publishers.size;
        if (left === 0) endConnection();
        const closed = (): void => {
          if (--left === 0) endConnection();
        };
        for (const publisher of this.publishers.values()) {
          publisher.close().subscribe({ complete: closed, error: closed });
        }
      }
      return () => ended.unsubscribe();
    });
  }
}

/**
 * The send path of one sender queue: its publisher, exchange, routing key and properties worked out
 * once; each send is a `publishWith` with the caller's callback as its context (nothing allocated per
 * message but the publish itself).
 */
class AmqpSendPath implements MqSendPath {
  private publisher: Publisher | undefined;
  private readonly exchange: string;
  private readonly routingKey: string;
  private readonly mandatory: boolean;
  private readonly properties: BasicProperties;

  constructor(
    private readonly backend: AmqpBackend,
    private readonly queue: ResolvedQueue,
  ) {
    const unicast = queue.pattern === 'unicast';
    this.exchange = unicast ? '' : queue.name;
    this.routingKey = unicast ? queue.name : '';
    this.mandatory = unicast && queue.reliable;
    this.properties = queue.persistent ? PERSISTENT : NO_PROPERTIES;
  }

  send(body: Uint8Array, contentType: string | undefined, done: (error: Error | undefined) => void): void {
    const queue = this.queue;
    if (this.backend.isClosing) {
      done(closedError(queue));
      return;
    }
    this.publisher ??= this.backend.publisher(queue);
    const properties =
      contentType === undefined
        ? this.properties
        : { contentType, ...(queue.persistent ? { deliveryMode: 2 as const } : {}) };
    this.publisher.publishWith(
      this.exchange,
      this.routingKey,
      body,
      properties,
      this.mandatory,
      done,
      this.finish,
    );
  }

  /** The outcome of one publish, to its caller's callback (the publish's context): one per path. */
  private readonly finish = (
    done: (error: Error | undefined) => void,
    outcome: PublishOutcome | undefined,
    error?: Error,
  ): void => {
    if (error !== undefined) done(sendError(this.queue, error));
    else if (outcome === undefined || outcome.status === 'acked' || outcome.status === 'sent')
      done(undefined);
    else done(outcomeError(this.queue, outcome));
  };
}

/** A nacked or returned publish as the mq layer reports it. */
function outcomeError(queue: ResolvedQueue, outcome: PublishOutcome): MqError {
  const why =
    outcome.status === 'returned'
      ? `the broker returned it (${outcome.returned.replyCode} ${outcome.returned.replyText})`
      : 'the broker nacked it';
  return new MqError('MQ_SEND_FAILED', `mq queue '${queue.name}': ${why}`);
}

const NO_PROPERTIES: BasicProperties = Object.freeze({});
const PERSISTENT: BasicProperties = Object.freeze({ deliveryMode: 2 });

/** Runs `work` on the connection's cached channel; nothing when the connection is lost meanwhile. */
function onCachedChannel<T>(conn: Connection, work: (ch: Channel) => ObservableInput<T>): Observable<T> {
  return conn.cachedChannel().pipe(concatMap(work));
}

/** What a sender needs on the broker: the durable queue (unicast) or fanout exchange (broadcast). */
function declareForSend(ch: Channel, queue: ResolvedQueue): Observable<unknown> {
  return queue.pattern === 'unicast'
    ? ch.queueDeclare(queue.name, { durable: true })
    : ch.exchangeDeclare(queue.name, 'fanout', { durable: true });
}

/** What a receiver needs; emits the name of the queue to consume. */
function declareForReceive(ch: Channel, queue: ResolvedQueue): Observable<string> {
  if (queue.pattern === 'unicast') {
    return ch.queueDeclare(queue.name, { durable: true }).pipe(map(() => queue.name));
  }
  return ch.exchangeDeclare(queue.name, 'fanout', { durable: true }).pipe(
    switchMap(() => ch.queueDeclare('', { exclusive: true, autoDelete: true })),
    switchMap((ok) => ch.queueBind(ok.queue, queue.name, '').pipe(map(() => ok.queue))),
  );
}

/** A queue's send or receive after its connection was closed (by `close()`, or by a closing publisher). */
function closedError(queue: ResolvedQueue, cause?: unknown): MqError {
  return new MqError(
    'MQ_CLOSED',
    `mq queue '${queue.name}': the connection was closed`,
    cause === undefined ? undefined : { cause },
  );
}

/** A publisher's failure as the mq layer reports it. */
function sendError(queue: ResolvedQueue, error: unknown): MqError {
  if (error instanceof MqError) return error;
  if (
    error instanceof PublisherError &&
    (error.code === 'PUBLISHER_CLOSED' || error.code === 'CONNECTION_ENDED')
  ) {
    return closedError(queue, error);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new MqError('MQ_SEND_FAILED', `mq queue '${queue.name}': not sent: ${reason}`, { cause: error });
}
