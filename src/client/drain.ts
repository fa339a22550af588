/**
 * Graceful drain of a connection: stop taking deliveries, let the handlers of the deliveries already
 * handed out settle them, flush the held acks, wait for the publishes still waiting to be written
 * and for their confirms, then close. The phases, their progress events and the timeout that bounds
 * them; `Connection.drain` and `Publisher.drain` are the entry points.
 *
 * @module
 */
import { Observable, type Subscriber } from 'rxjs';
import type { ConnectionCore } from '../core/connection-core.js';
import { ConfigurationError } from '../errors.js';
import { MAX_TIMER_MS } from '../util/runtime.js';

/**
 * Options of `Connection.drain`.
 *
 * @example
 * ```ts
 * conn.drain({ timeout: 20_000, prefetched: 'return' }).subscribe((p) => log.info(p, 'draining'));
 * ```
 */
export interface DrainOptions {
  /**
   * The longest the drain waits, in milliseconds, for deliveries to be settled and publishes to be
   * confirmed; then it closes the connection anyway (the broker requeues what is still unsettled,
   * and publishes still awaiting confirms fail with the channel's `ChannelClosedError`). The close
   * handshake itself is bounded by `closeTimeout`. Default 25000: inside the 30 s Kubernetes gives a
   * pod between SIGTERM and SIGKILL by default.
   */
  readonly timeout?: number;
  /**
   * What becomes of the deliveries received whose handlers have not started yet (waiting in an
   * `ackOnSuccess` for a free slot, say): `'finish'` (default) processes them before closing;
   * `'return'` gives them back to the queue (nack with requeue) as their turn comes, without running
   * their handlers. Handlers already running finish and settle in both cases. `'return'` works with
   * the operators that ask `returnForDrain()` before starting a handler (`ackOnSuccess`); a plain
   * `subscribe` handles each delivery as it arrives, so nothing of it waits.
   */
  readonly prefetched?: 'finish' | 'return';
  /**
   * When new publishes start to fail with a `DrainingError`: `'while-settling'` (default) accepts
   * them until every delivery handed out is settled, so that handlers finishing may still publish
   * (a reply, an event), and refuses them from then on; `'refuse'` refuses them from the start.
   * Publishes accepted before are never dropped: the drain waits for them and for their confirms.
   */
  readonly publishes?: 'while-settling' | 'refuse';
}

/**
 * Where a drain stands:
 *
 * - `settling`: the consumers are cancelled (their streams completed); waiting for every delivery
 *   handed out to be settled (acked, nacked, rejected);
 * - `publishing`: everything is settled and the held acks are sent; new publishes are refused;
 *   waiting for the publishes still queued to be written and for their confirms;
 * - `closing`: the connection.close handshake;
 * - `closed`: the connection is closed.
 */
export type DrainPhase = 'settling' | 'publishing' | 'closing' | 'closed';

/**
 * One event of `Connection.drain`: a phase begins (the counts are those of that moment).
 *
 * @example
 * ```ts
 * const last = await lastValueFrom(conn.drain());
 * if (last.timedOut) log.warn(`${last.unsettled} deliveries went back to the queue unsettled`);
 * ```
 */
export interface DrainProgress {
  readonly phase: DrainPhase;
  /** The consumers the drain cancelled. */
  readonly consumers: number;
  /** Deliveries handed out and not yet settled. */
  readonly unsettled: number;
  /** Publishes waiting to be written or awaiting their confirms. */
  readonly unconfirmed: number;
  /** Milliseconds since the drain began. */
  readonly elapsed: number;
  /** True once the timeout has passed (the drain then closes without waiting further). */
  readonly timedOut: boolean;
}

/**
 * Options of `Publisher.drain`.
 *
 * @example
 * ```ts
 * await lastValueFrom(publisher.drain({ timeout: 10_000 }));
 * ```
 */
export interface PublisherDrainOptions {
  /**
   * The longest the drain waits, in milliseconds, for the held messages to go out and every publish to
   * be answered; then what is held fails with a `DrainingError` and the publisher closes. Default 25000.
   */
  readonly timeout?: number;
}

/**
 * What `Publisher.drain` reports once the publisher has closed.
 *
 * @example
 * ```ts
 * const report = await lastValueFrom(publisher.drain());
 * if (report.dropped > 0) log.warn(`${report.dropped} messages were not published`);
 * ```
 */
export interface PublisherDrainReport {
  /** True when the timeout passed before every message was answered. */
  readonly timedOut: boolean;
  /** Messages that failed because of the timeout (held ones never sent; publishes still unanswered). */
  readonly dropped: number;
  /** Milliseconds the drain took. */
  readonly elapsed: number;
}

/** @internal What a drain needs of each channel of the connection. */
export interface DrainableChannel {
  /** Cancels the channel's consumers (their streams complete); returns how many. */
  drainConsumers(): number;
  /** Deliveries handed out and not yet settled. */
  readonly unsettled: number;
  /** Publishes queued on the channel or awaiting confirms. */
  readonly unconfirmed: number;
  /** Sends the held acks now. */
  flushHeldAcks(): void;
}

/** How often a drain looks again at what it waits for. */
const POLL_MS = 10;
const DEFAULT_TIMEOUT = 25_000;

/** @internal Checks a drain timeout. */
export function drainTimeout(timeout: number | undefined): number {
  const value = timeout ?? DEFAULT_TIMEOUT;
  if (!Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new ConfigurationError(
      `drain timeout must be an integer from 0 to ${MAX_TIMER_MS} ms, got ${String(timeout)}`,
    );
  }
  return value;
}

/** @internal Checks the options of `Connection.drain` (eagerly, when it is called). */
export function checkDrainOptions(options: DrainOptions): void {
  drainTimeout(options.timeout);
  const prefetched = options.prefetched ?? 'finish';
  if (prefetched !== 'finish' && prefetched !== 'return') {
    throw new ConfigurationError(`prefetched must be 'finish' or 'return', got ${String(prefetched)}`);
  }
  const publishes = options.publishes ?? 'while-settling';
  if (publishes !== 'while-settling' && publishes !== 'refuse') {
    throw new ConfigurationError(`publishes must be 'while-settling' or 'refuse', got ${String(publishes)}`);
  }
}

/**
 * @internal The drain of one connection: started once, by the first subscriber; later subscribers
 * see every event from the start.
 */
export class ConnectionDrain {
  private readonly events: DrainProgress[] = [];
  private readonly subscribers = new Set<Subscriber<DrainProgress>>();
  private end: { error: Error | undefined } | undefined;
  private phase: DrainPhase = 'settling';
  private consumers = 0;
  private timedOut = false;
  private started = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private poller: ReturnType<typeof setTimeout> | undefined;
  private readonly timeout: number;
  private readonly returnPrefetched: boolean;
  private readonly refuseAtOnce: boolean;

  constructor(
    private readonly core: ConnectionCore,
    private readonly channels: () => Iterable<DrainableChannel>,
    options: DrainOptions,
  ) {
    checkDrainOptions(options);
    this.timeout = drainTimeout(options.timeout);
    this.returnPrefetched = options.prefetched === 'return';
    this.refuseAtOnce = options.publishes === 'refuse';
  }

  /** The Observable of this drain's events. */
  observable(): Observable<DrainProgress> {
    return new Observable<DrainProgress>((subscriber) => {
      for (const event of this.events) subscriber.next(event);
      if (this.end !== undefined) {
        if (this.end.error === undefined) subscriber.complete();
        else subscriber.error(this.end.error);
        return;
      }
      this.subscribers.add(subscriber);
      if (this.started === 0) this.start();
      return () => this.subscribers.delete(subscriber);
    });
  }

  private start(): void {
    this.started = Date.now();
    const core = this.core;
    if (!core.isOpen) {
      // Closed, or closing already: report its end.
      core.close(() => this.finish(core.error));
      return;
    }
    core.draining = true;
    if (this.returnPrefetched) core.returningPrefetched = true;
    if (this.refuseAtOnce) core.publishesRefused = true;
    for (const channel of this.channels()) this.consumers += channel.drainConsumers();
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.close();
    }, this.timeout);
    this.emit();
    this.poll();
  }

  private readonly pollTask = (): void => {
    this.poller = undefined;
    this.poll();
  };

  private poll(): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    if (this.core.isClosed) {
      // The connection ended under the drain (not by its close): what was unsettled is requeued by
      // the broker, but acks and publishes may have been lost with it.
      this.finish(this.core.error);
      return;
    }
    if (this.phase === 'settling' && this.unsettled() === 0) {
      this.core.publishesRefused = true;
      for (const channel of this.channels()) channel.flushHeldAcks();
      this.phase = 'publishing';
      this.emit();
    }
    if (this.phase === 'publishing' && this.unconfirmed() === 0) {
      this.close();
      return;
    }
    this.poller = setTimeout(this.pollTask, POLL_MS);
  }

  private close(): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    clearTimeout(this.poller);
    clearTimeout(this.timer);
    this.phase = 'closing';
    this.core.publishesRefused = true;
    this.emit();
    this.core.close(() => {
      // The broker closing it in the meantime is a loss like any other.
      this.finish(this.core.error);
    });
  }

  private finish(error: Error | undefined): void {
    if (this.end !== undefined) return;
    clearTimeout(this.poller);
    clearTimeout(this.timer);
    if (error === undefined) {
      this.phase = 'closed';
      this.emit();
    }
    this.end = { error };
    const subscribers = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subscribers) {
      if (error === undefined) s.complete();
      else s.error(error);
    }
  }

  private unsettled(): number {
    let n = 0;
    for (const channel of this.channels()) n += channel.unsettled;
    return n;
  }

  private unconfirmed(): number {
    let n = this.core.publishesWaiting;
    for (const channel of this.channels()) n += channel.unconfirmed;
    return n;
  }

  private emit(): void {
    // Closed, the counts are those the close left behind (the broker requeued those deliveries; those
    // publishes failed).
    const last = this.phase === 'closed' ? this.events[this.events.length - 1] : undefined;
    const event: DrainProgress = {
      phase: this.phase,
      consumers: this.consumers,
      unsettled: last?.unsettled ?? this.unsettled(),
      unconfirmed: last?.unconfirmed ?? this.unconfirmed(),
      elapsed: this.started === 0 ? 0 : Date.now() - this.started,
      timedOut: this.timedOut,
    };
    this.events.push(event);
    for (const s of [...this.subscribers]) s.next(event);
  }
}
