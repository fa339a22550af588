/**
 * Ordering of publisher confirms: the channel's view of its publishes in confirm mode, so that users see
 * one outcome per publish, in publish order, whatever order the broker confirms them in.
 *
 * After `confirm.select` the broker numbers the channel's publishes 1, 2, 3, ... and answers each with
 * `basic.ack` or `basic.nack` carrying that number as its delivery tag, or with one `multiple` ack or
 * nack for every publish still unconfirmed up to the tag. RabbitMQ confirms a message once every queue
 * it was routed to has taken it, so the confirms may come out of order. The smoother keeps the state of
 * each publish from the lowest one not yet settled (the base) to the last one published, in a ring of
 * bytes, and settles the ready prefix of that window in order: a publish confirmed early is held back
 * until every publish before it is settled.
 *
 * This is the mirror of the consumer side's `AckTracker` (ack-tracker.ts): memory is proportional to the window of
 * publishes not yet settled (the ring grows by doubling, and shrinks again when the window is small),
 * and every publish and confirm costs amortized O(1): a `multiple` confirm walks only the part of the
 * window it covers, which is then settled, and settling walks only the ready prefix.
 *
 * @module
 * @internal
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { ConfirmTagError } from '../errors.js';

/** How a publish ended: confirmed by the broker (`ack`), refused by it (`nack`), or lost with the channel (`fail`). */
export type ConfirmStatus = 'ack' | 'nack' | 'fail';

/** Published, not yet confirmed. */
const PENDING = 0;
/** Confirmed with basic.ack. */
const ACK = 1;
/** Confirmed with basic.nack. */
const NACK = 2;
/** Failed with the channel. */
const FAIL = 3;

const STATUS: readonly ConfirmStatus[] = ['fail', 'ack', 'nack', 'fail'];

/** The smallest ring (a power of two); it never shrinks below this. */
const INITIAL_CAPACITY = 64;

/**
 * Turns the broker's confirms, in any order and possibly `multiple`, into one `settled` call per
 * publish in sequence order.
 *
 * `settled` may call back into the smoother (publish from inside it, or even confirm or fail): the
 * state is updated before each call, and a nested settling adds to the one in progress instead of
 * overtaking it, so the order holds. If `settled` throws, the error propagates from the method that
 * settled; the publish it was called for counts as settled, and the ones after it are settled by the
 * next call that settles anything.
 *
 * @example
 * ```ts
 * const smoother = new ConfirmSmoother((seq, status) => console.log(seq, status));
 * smoother.publish(); // 1
 * smoother.publish(); // 2
 * smoother.publish(); // 3
 * smoother.ack(2, false); // nothing yet: 1 is unconfirmed
 * smoother.nack(1, false); // logs "1 nack", "2 ack"
 * smoother.fail(); // logs "3 fail"
 * ```
 */
export class ConfirmSmoother {
  /** Per sequence number from `base`: PENDING, ACK, NACK or FAIL; the slot of `base` is `head`. */
  private ring = new Uint8Array(INITIAL_CAPACITY);
  private mask = INITIAL_CAPACITY - 1;
  private head = 0;
  /** The lowest sequence number not yet settled (last + 1 when none is outstanding). */
  private base = 1;
  private last = 0;
  /** The last sequence number settled by {@link fail}, if any: a confirm up to it is stale. */
  private failedThrough = 0;
  /** Whether a settling loop is running (a nested call leaves the work to it). */
  private draining = false;

  /** @param settled Hears every publish exactly once, in sequence order, with how it ended. */
  constructor(private readonly settled: (seq: number, status: ConfirmStatus) => void) {}

  /** Publishes not yet settled (emitted). */
  get outstanding(): number {
    return this.last - this.base + 1;
  }

  /** The last sequence number handed out (0 before the first). */
  get lastPublished(): number {
    return this.last;
  }

  /**
   * How many publishes the internal ring can hold before it grows: for tests of bounded memory.
   *
   * @internal
   */
  get ringCapacity(): number {
    return this.ring.length;
  }

  /** The lowest sequence number not yet settled (`lastPublished + 1` when none is outstanding). */
  get firstOutstanding(): number {
    return this.base;
  }

  /** True when `seq` was published and the broker has not answered it yet. */
  isUnconfirmed(seq: number): boolean {
    return (
      seq >= this.base && seq <= this.last && this.ring[(this.head + seq - this.base) & this.mask] === PENDING
    );
  }

  /** Registers the next publish and returns its sequence number (1, 2, ...). */
  publish(): number {
    const seq = this.last + 1;
    const offset = seq - this.base;
    if (offset > this.mask) this.resize(this.ring.length * 2);
    this.ring[(this.head + offset) & this.mask] = PENDING;
    this.last = seq;
    return seq;
  }

  /**
   * A basic.ack from the broker. Throws {@link ConfirmTagError}, and changes nothing, for a tag below 1
   * or above the last published, or a single ack of a publish already confirmed. A `multiple` ack that
   * covers nothing still outstanding does nothing.
   */
  ack(deliveryTag: number, multiple: boolean): void {
    this.confirm('basic.ack', ACK, deliveryTag, multiple);
  }

  /** A basic.nack from the broker; the same rules as {@link ack}. */
  nack(deliveryTag: number, multiple: boolean): void {
    this.confirm('basic.nack', NACK, deliveryTag, multiple);
  }

  /**
   * The channel is gone: every publish not yet confirmed settles as `fail`, and those confirmed but
   * held back for order settle with their own status, all in sequence order. Later {@link publish}
   * calls go on numbering; `fail` may be called again.
   */
  fail(): void {
    const ring = this.ring;
    const mask = this.mask;
    for (let seq = this.base, slot = this.head; seq <= this.last; seq++, slot = (slot + 1) & mask) {
      if (ring[slot] === PENDING) ring[slot] = FAIL;
    }
    this.failedThrough = this.last;
    this.drain();
  }

  private confirm(method: string, status: number, tag: number, multiple: boolean): void {
    if (!Number.isSafeInteger(tag) || tag < 1 || tag > this.last) {
      throw this.tagError(method, tag, multiple, `which was never published (last: ${this.last})`);
    }
    const ring = this.ring;
    const mask = this.mask;
    if (multiple) {
      // Every unconfirmed publish up to the tag; all of them are then ready and settled by drain().
      for (let seq = this.base, slot = this.head; seq <= tag; seq++, slot = (slot + 1) & mask) {
        if (ring[slot] === PENDING) ring[slot] = status;
      }
    } else {
      const slot = (this.head + tag - this.base) & mask;
      if (tag < this.base || ring[slot] !== PENDING) {
        const stale = tag <= this.failedThrough;
        throw this.tagError(
          method,
          tag,
          false,
          `which was already ${stale ? 'confirmed or failed' : 'confirmed'}`,
        );
      }
      ring[slot] = status;
    }
    this.drain();
  }

  private tagError(method: string, tag: number, multiple: boolean, what: string): ConfirmTagError {
    return new ConfirmTagError(
      `${method}${multiple ? ' (multiple)' : ''} for delivery tag ${tag}, ${what}`,
      tag,
      multiple,
    );
  }

  /** Settles the ready prefix of the window, in order. */
  private drain(): void {
    if (this.draining) return; // the loop below is running further up the stack and will see it
    this.draining = true;
    try {
      while (this.base <= this.last) {
        const state = this.ring[this.head]!;
        if (state === PENDING) break;
        const seq = this.base;
        // Move on before calling out, so that a nested call sees this publish as settled.
        this.head = (this.head + 1) & this.mask;
        this.base = seq + 1;
        this.settled(seq, STATUS[state]!);
      }
    } finally {
      this.draining = false;
    }
    let capacity = this.ring.length;
    while (capacity > INITIAL_CAPACITY && this.outstanding <= capacity >>> 2) capacity >>>= 1;
    if (capacity < this.ring.length) this.resize(capacity);
  }

  /** Moves the window to a ring of `capacity` slots (a power of two, at least the window). */
  private resize(capacity: number): void {
    const ring = new Uint8Array(capacity);
    const used = this.last - this.base + 1;
    for (let i = 0; i < used; i++) ring[i] = this.ring[(this.head + i) & this.mask]!;
    this.ring = ring;
    this.mask = capacity - 1;
    this.head = 0;
  }
}

/** One thing that happened on a channel in confirm mode, in the order it happened. */
export type ConfirmEvent =
  | { readonly kind: 'publish' }
  | { readonly kind: 'ack' | 'nack'; readonly deliveryTag: number; readonly multiple: boolean }
  | { readonly kind: 'fail' };

/** How the publish with sequence number `seq` ended. */
export interface ConfirmOutcome {
  readonly seq: number;
  readonly status: ConfirmStatus;
}

/**
 * Turns a channel's publishes and the broker's raw confirms, in the order they happen, into one outcome
 * per publish in publish order (a {@link ConfirmSmoother} as an operator). Publishes are numbered from
 * 1 in the order of the `publish` events. A `fail` event (the channel is gone) fails every publish not
 * yet confirmed.
 *
 * Errors with the {@link ConfirmTagError} for a confirm the broker should never send; passes errors of
 * the source through and completes when the source completes (publishes still unconfirmed then are
 * not settled: send a `fail` first if they should be).
 *
 * @example
 * ```ts
 * events$.pipe(smoothConfirms()).subscribe(({ seq, status }) => {
 *   if (status !== 'ack') console.warn(`publish ${seq} was not confirmed: ${status}`);
 * });
 * ```
 */
export function smoothConfirms(): OperatorFunction<ConfirmEvent, ConfirmOutcome> {
  return (source) =>
    new Observable<ConfirmOutcome>((subscriber) => {
      const smoother = new ConfirmSmoother((seq, status) => subscriber.next({ seq, status }));
      return source.subscribe({
        next: (event) => {
          if (subscriber.closed) return; // errored on an earlier event of a synchronous source
          try {
            switch (event.kind) {
              case 'publish':
                smoother.publish();
                break;
              case 'ack':
                smoother.ack(event.deliveryTag, event.multiple);
                break;
              case 'nack':
                smoother.nack(event.deliveryTag, event.multiple);
                break;
              case 'fail':
                smoother.fail();
                break;
            }
          } catch (error: unknown) {
            subscriber.error(error);
          }
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
    });
}
