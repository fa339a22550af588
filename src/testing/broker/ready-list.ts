/**
 * The ready messages of a queue (or of one priority level of a priority queue), oldest first: an
 * array read from a moving head, so that taking the head is O(1) (no `shift()`, which moves every
 * element), compacted once the consumed part is at least half of it. Requeued messages go back to
 * their place by sequence number, in O(1) when they belong before everything left (the usual case:
 * they were taken from the head), else by one merge.
 *
 * @module
 * @internal
 */
import type { Entry } from './message.js';

/** @internal */
export class ReadyList {
  private items: Entry[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The oldest entry, or undefined. */
  peek(): Entry | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  push(entry: Entry): void {
    this.items.push(entry);
  }

  shift(): Entry | undefined {
    const items = this.items;
    if (this.head >= items.length) return undefined;
    const entry = items[this.head]!;
    items[this.head] = undefined as unknown as Entry;
    this.head++;
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /** Entries (sorted by `seq`) back to their place by sequence number. */
  putBack(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const items = this.items;
    const first = this.head < items.length ? items[this.head]!.seq : Number.POSITIVE_INFINITY;
    if (entries[entries.length - 1]!.seq < first && this.head >= entries.length) {
      for (let i = entries.length - 1; i >= 0; i--) items[--this.head] = entries[i]!;
      return;
    }
    const rest = items.slice(this.head);
    const merged: Entry[] = [];
    let i = 0;
    let j = 0;
    while (i < entries.length || j < rest.length) {
      if (j >= rest.length || (i < entries.length && entries[i]!.seq < rest[j]!.seq))
        merged.push(entries[i++]!);
      else merged.push(rest[j++]!);
    }
    this.items = merged;
    this.head = 0;
  }

  /** Appends the entries, oldest first, to `out`. */
  copyTo(out: Entry[]): void {
    for (let i = this.head; i < this.items.length; i++) out.push(this.items[i]!);
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
