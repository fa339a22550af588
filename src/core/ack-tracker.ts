/**
 * Coalescing of acknowledgements: the channel's view of which delivery tags are outstanding, so that
 * the acks a consumer makes one by one within a turn go out as one `basic.ack` with `multiple: true`
 * whenever that acks exactly the same messages.
 *
 * A `multiple` ack of tag T settles every outstanding delivery up to T, so it may stand for a set of
 * acks only when no delivery up to T is still unsettled. The tracker knows this because the broker's
 * tags on a channel increase with every delivery: it keeps the state of each tag from the lowest one
 * not yet settled (the base) to the highest delivered, in a ring of bytes. Single nacks and rejects,
 * and acks of tags it does not know, go out at once: single settlements commute with each other, so
 * holding back the acks does not change what the broker does. A `multiple` settlement from the user
 * first sends the held acks, since it would otherwise cover them.
 *
 * Memory is bounded: when one delivery stays unsettled while many later ones are settled, the window
 * would grow without end, so past {@link MAX_WINDOW} tags the unsettled ones move to a set of
 * stragglers and acks are sent one by one until they are settled.
 *
 * @module
 * @internal
 */

/** How a delivery is settled. */
export type SettleKind = 'ack' | 'nack' | 'reject';

/** Sends one settlement frame. */
export type SettleOut = (kind: SettleKind, deliveryTag: number, multiple: boolean, requeue: boolean) => void;

/** A tag that needs nothing (settled and sent, received with noAck, or never delivered). */
const DONE = 0;
/** Delivered, needs a settlement, none made yet. */
const UNSETTLED = 1;
/** Acked by the user, the ack not yet sent. */
const PENDING = 2;

const INITIAL_WINDOW = 1024;
const NO_RING = new Uint8Array(0);
/** The most tags the window spans before the unsettled ones become stragglers. */
export const MAX_WINDOW = 1 << 16;

/** @internal */
export class AckTracker {
  /**
   * Per tag from `base`: DONE, UNSETTLED or PENDING; the slot of `base` is `head`. Allocated with the
   * first delivery: a channel that never consumes keeps none.
   */
  private ring: Uint8Array = NO_RING;
  private mask = INITIAL_WINDOW - 1;
  private head = 0;
  /** The lowest tag that may still need a settlement. */
  private base = 1;
  /** The highest tag delivered (base - 1 when the window is empty). */
  private top = 0;
  /** Tags acked by the user and not yet sent, in the order acked. */
  private readonly held: number[] = [];
  /** Unsettled tags below `base` (after the window overflowed). */
  private readonly stragglers = new Set<number>();

  constructor(private readonly out: SettleOut) {}

  /** How many acks are held for the next {@link flush}. */
  get pending(): number {
    return this.held.length;
  }

  /**
   * True when a delivery from `fromTag` on is still unsettled (neither acked nor nacked nor rejected):
   * for rare events (a consumer cancelled by the broker), not the hot path.
   */
  hasUnsettled(fromTag = 0): boolean {
    return this.unsettledFrom(fromTag) > 0;
  }

  /** A delivery arrived with this tag; `needsAck` is false for noAck consumers and gets. */
  delivered(tag: number, needsAck: boolean): void {
    if (tag <= this.top || !Number.isSafeInteger(tag)) return; // not the broker's sequence: keep out
    if (this.ring === NO_RING) this.ring = new Uint8Array(INITIAL_WINDOW);
    if (this.base > this.top) {
      // Empty window: start it at this tag (or past it when there is nothing to settle).
      this.head = 0;
      this.base = needsAck ? tag : tag + 1;
      this.top = tag;
      if (needsAck) this.ring[0] = UNSETTLED;
      return;
    }
    const offset = tag - this.base;
    if (offset > this.mask) {
      if (this.ring.length < MAX_WINDOW && offset < MAX_WINDOW) this.grow(offset + 1);
      else {
        this.overflow();
        this.delivered(tag, needsAck);
        return;
      }
    }
    this.top = tag;
    this.ring[(this.head + offset) & this.mask] = needsAck ? UNSETTLED : DONE;
  }

  /**
   * Settles `tag`. A single ack of an unsettled delivery is held for {@link flush}; everything else is
   * sent now, and unknown or already settled tags are passed to the broker as they are (it answers
   * them as it would without this tracker).
   */
  settle(kind: SettleKind, tag: number, multiple: boolean, requeue: boolean): void {
    if (multiple) {
      this.flush();
      this.out(kind, tag, true, requeue);
      this.settledUpTo(tag === 0 ? this.top : tag);
      return;
    }
    const offset = tag - this.base;
    if (tag <= this.top && offset >= 0) {
      const slot = (this.head + offset) & this.mask;
      const state = this.ring[slot];
      if (state === UNSETTLED) {
        if (kind === 'ack') {
          this.ring[slot] = PENDING;
          this.held.push(tag);
          return;
        }
        this.ring[slot] = DONE;
      } else if (state === PENDING) {
        // Settled again while its ack is held: the held ack goes first, as it was made first.
        this.flush();
      }
    } else if (offset < 0) {
      this.stragglers.delete(tag);
    }
    this.out(kind, tag, false, requeue);
  }

  /**
   * Sends the held acks: one `multiple` ack for the run of settled tags from the base, then one ack
   * each for the held tags beyond the first unsettled one.
   */
  flush(): void {
    const held = this.held;
    if (held.length === 0) return;
    let last = -1;
    let covered = 0;
    if (this.stragglers.size === 0) {
      const ring = this.ring;
      const mask = this.mask;
      let head = this.head;
      let base = this.base;
      const top = this.top;
      while (base <= top) {
        const state = ring[head]!;
        if (state === UNSETTLED) break;
        if (state === PENDING) {
          last = base;
          covered++;
        }
        ring[head] = DONE;
        head = (head + 1) & mask;
        base++;
      }
      this.head = head;
      this.base = base;
    }
    if (last >= 0) this.out('ack', last, covered > 1, false);
    if (covered < held.length) {
      for (let i = 0; i < held.length; i++) {
        const tag = held[i]!;
        const offset = tag - this.base;
        if (offset < 0) continue;
        const slot = (this.head + offset) & this.mask;
        if (this.ring[slot] !== PENDING) continue;
        this.ring[slot] = DONE;
        this.out('ack', tag, false, false);
      }
    }
    held.length = 0;
  }

  /**
   * How many deliveries still need a settlement from the user (acks held for the next flush count as
   * settled): for a drain, which asks now and then, not for the hot path.
   */
  get unsettled(): number {
    return this.unsettledFrom(0);
  }

  /** How many deliveries from `fromTag` on are unsettled: a scan of the window. */
  private unsettledFrom(fromTag: number): number {
    let n = 0;
    for (const tag of this.stragglers) if (tag >= fromTag) n++;
    const ring = this.ring;
    for (let tag = Math.max(this.base, fromTag); tag <= this.top; tag++) {
      if (ring[(this.head + tag - this.base) & this.mask] === UNSETTLED) n++;
    }
    return n;
  }

  /** Forgets every outstanding delivery (their tags are no longer valid: basic.recover-ok). */
  forgetAll(): void {
    this.held.length = 0;
    this.stragglers.clear();
    this.ring.fill(DONE);
    this.head = 0;
    this.base = this.top + 1;
  }

  /**
   * Forgets the unsettled deliveries from `fromTag` on: the broker took them back (RabbitMQ 4.3's
   * consumer timeout) and ignores their settlements, so nobody waits for them. A later settlement of
   * one is passed to the broker as it is.
   */
  forgetFrom(fromTag: number): void {
    for (const tag of this.stragglers) if (tag >= fromTag) this.stragglers.delete(tag);
    const ring = this.ring;
    for (let tag = Math.max(this.base, fromTag); tag <= this.top; tag++) {
      const slot = (this.head + tag - this.base) & this.mask;
      if (ring[slot] === UNSETTLED) ring[slot] = DONE;
    }
  }

  /** Every delivery up to `tag` was settled by a `multiple` settlement already sent. */
  private settledUpTo(tag: number): void {
    for (const straggler of this.stragglers) if (straggler <= tag) this.stragglers.delete(straggler);
    const end = Math.min(tag, this.top);
    while (this.base <= end) {
      this.ring[this.head] = DONE;
      this.head = (this.head + 1) & this.mask;
      this.base++;
    }
  }

  private grow(span: number): void {
    let size = this.ring.length * 2;
    while (size < span) size *= 2;
    const ring = new Uint8Array(size);
    const used = this.top - this.base + 1;
    for (let i = 0; i < used; i++) ring[i] = this.ring[(this.head + i) & this.mask]!;
    this.ring = ring;
    this.mask = size - 1;
    this.head = 0;
  }

  /** The window is full: send what is held, keep the unsettled tags as stragglers, empty the window. */
  private overflow(): void {
    this.flush();
    for (let tag = this.base; tag <= this.top; tag++) {
      const slot = (this.head + tag - this.base) & this.mask;
      if (this.ring[slot] === UNSETTLED) this.stragglers.add(tag);
      this.ring[slot] = DONE;
    }
    this.head = 0;
    this.base = this.top + 1;
  }
}
