import fc from 'fast-check';
import { AckTracker, MAX_WINDOW, type SettleKind } from '../../src/core/ack-tracker.js';

/** One settlement frame as the tracker sends it: kind, delivery tag, multiple, requeue. */
type Frame = readonly [kind: SettleKind, tag: number, multiple: boolean, requeue: boolean];

const ack = (tag: number, multiple = false): Frame => ['ack', tag, multiple, false];
const nack = (tag: number, multiple: boolean, requeue: boolean): Frame => ['nack', tag, multiple, requeue];
const reject = (tag: number, requeue: boolean): Frame => ['reject', tag, false, requeue];

/** What the broker finally did with a delivery. */
type Outcome = 'ack' | 'nack-requeue' | 'nack-drop' | 'reject-requeue' | 'reject-drop' | 'recovered';

/**
 * The broker's side of one channel, with RabbitMQ's semantics: the unacked tags (deliveries made in
 * ack mode), settled singly or up to a tag (`multiple`, tag 0: all of them); a tag that is not unacked
 * is a channel error (406 PRECONDITION_FAILED, "unknown delivery tag"), after which the channel is
 * closed and ignores further frames. basic.recover requeues every unacked delivery.
 */
class ModelBroker {
  readonly unacked = new Set<number>();
  readonly outcomes = new Map<number, Outcome>();
  error: string | undefined;
  frames = 0;

  deliver(tag: number, needsAck: boolean): void {
    if (needsAck) this.unacked.add(tag);
  }

  settle(kind: SettleKind, tag: number, multiple: boolean, requeue: boolean): void {
    this.frames++;
    if (this.error !== undefined) return;
    const outcome: Outcome = kind === 'ack' ? 'ack' : `${kind}-${requeue ? 'requeue' : 'drop'}`;
    if (multiple) {
      if (tag !== 0 && !this.unacked.has(tag)) {
        this.error = `406 unknown delivery tag ${tag} (multiple ${kind})`;
        return;
      }
      for (const t of this.unacked) {
        if (tag !== 0 && t > tag) continue;
        this.unacked.delete(t);
        this.outcomes.set(t, outcome);
      }
      return;
    }
    if (!this.unacked.has(tag)) {
      this.error = `406 unknown delivery tag ${tag} (${kind})`;
      return;
    }
    this.unacked.delete(tag);
    this.outcomes.set(tag, outcome);
  }

  recover(): void {
    for (const t of this.unacked) this.outcomes.set(t, 'recovered');
    this.unacked.clear();
  }
}

/** A tracker whose frames are recorded (and optionally fed to a model broker). */
function recorder(broker?: ModelBroker) {
  const frames: Frame[] = [];
  const tracker = new AckTracker((kind, tag, multiple, requeue) => {
    frames.push([kind, tag, multiple, requeue]);
    broker?.settle(kind, tag, multiple, requeue);
  });
  /** Returns the frames recorded since the last call. */
  const take = (): Frame[] => frames.splice(0, frames.length);
  const deliver = (from: number, to: number, needsAck = true): void => {
    for (let tag = from; tag <= to; tag++) {
      broker?.deliver(tag, needsAck);
      tracker.delivered(tag, needsAck);
    }
  };
  return { tracker, frames, take, deliver };
}

/** The first difference between two outcome maps, or undefined when they are the same. */
function outcomeDifference(actual: Map<number, Outcome>, expected: Map<number, Outcome>): string | undefined {
  for (const [tag, outcome] of expected) {
    if (actual.get(tag) !== outcome) return `tag ${tag}: ${String(actual.get(tag))}, expected ${outcome}`;
  }
  for (const [tag, outcome] of actual) {
    if (!expected.has(tag)) return `tag ${tag}: ${outcome}, expected no settlement`;
  }
  return undefined;
}

describe('AckTracker: coalescing', () => {
  it('sends ten acks in order as one multiple ack at flush', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 10);
    for (let tag = 1; tag <= 10; tag++) tracker.settle('ack', tag, false, false);
    expect(take()).toEqual([]);
    expect(tracker.pending).toBe(10);
    tracker.flush();
    expect(take()).toEqual([ack(10, true)]);
    expect(tracker.pending).toBe(0);
    tracker.flush();
    expect(take()).toEqual([]);
  });

  it('sends a single held ack as a single ack', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 3);
    tracker.settle('ack', 1, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(1)]);
    // Tag 2 is unsettled below 3: the ack of 3 goes alone.
    tracker.settle('ack', 3, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(3)]);
  });

  it('holds acks out of order and still covers them with one multiple ack', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 5);
    for (const tag of [5, 2, 4, 1, 3]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(5, true)]);
  });

  it('never covers an unsettled delivery: a gap gives a multiple ack below it and singles above', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 8);
    for (const tag of [1, 2, 4, 5, 6, 7, 8]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(2, true), ack(4), ack(5), ack(6), ack(7), ack(8)]);
    expect([...broker.unacked]).toEqual([3]);

    tracker.settle('ack', 3, false, false);
    expect(take()).toEqual([]);
    tracker.flush();
    expect(take()).toEqual([ack(3)]);
    tracker.flush();
    expect(take()).toEqual([]);

    // The window moved past the gap: later acks coalesce again.
    deliver(9, 12);
    for (let tag = 9; tag <= 12; tag++) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(12, true)]);
    expect(broker.error).toBeUndefined();
    expect(broker.unacked.size).toBe(0);
  });

  it('covers a late ack of the gap together with later acks when that is exact', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 6);
    for (const tag of [1, 2, 4, 5]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(2, true), ack(4), ack(5)]);
    tracker.settle('ack', 3, false, false);
    tracker.settle('ack', 6, false, false);
    tracker.flush();
    // 3 and 6 are the only unacked tags up to 6.
    expect(take()).toEqual([ack(6, true)]);
    expect(broker.error).toBeUndefined();
    expect(broker.unacked.size).toBe(0);
  });

  it('sends nacks and rejects at once, and does not cover them with a multiple ack', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 6);
    tracker.settle('ack', 1, false, false);
    tracker.settle('nack', 2, false, true);
    expect(take()).toEqual([nack(2, false, true)]);
    tracker.settle('ack', 3, false, false);
    tracker.settle('reject', 4, false, false);
    expect(take()).toEqual([reject(4, false)]);
    tracker.settle('ack', 6, false, false);
    expect(tracker.pending).toBe(3);
    tracker.flush();
    // 5 is unsettled: the multiple ack stops at 3 (2 and 4 are settled already), 6 goes alone.
    expect(take()).toEqual([ack(3, true), ack(6)]);
    expect(broker.error).toBeUndefined();
    expect([...broker.unacked]).toEqual([5]);
    expect(Object.fromEntries(broker.outcomes)).toEqual({
      1: 'ack',
      2: 'nack-requeue',
      3: 'ack',
      4: 'reject-drop',
      6: 'ack',
    });
    tracker.settle('reject', 5, false, true);
    expect(take()).toEqual([reject(5, true)]);
    expect(broker.outcomes.get(5)).toBe('reject-requeue');
  });

  it('leaves an unsettled delivery between two acks to the nack that follows', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 3);
    tracker.settle('ack', 1, false, false);
    tracker.settle('ack', 3, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(1), ack(3)]);
    tracker.settle('nack', 2, false, false);
    expect(take()).toEqual([nack(2, false, false)]);
    expect(broker.error).toBeUndefined();
    expect(broker.outcomes.get(2)).toBe('nack-drop');
  });
});

describe('AckTracker: multiple settlements from the user', () => {
  it('sends the held acks first, then the multiple ack as it is', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 8);
    tracker.settle('ack', 1, false, false);
    tracker.settle('ack', 2, false, false);
    tracker.settle('ack', 4, false, true);
    expect(take()).toEqual([]);
    tracker.settle('ack', 5, true, false);
    expect(take()).toEqual([ack(2, true), ack(4), ack(5, true)]);
    expect(tracker.pending).toBe(0);
    tracker.settle('nack', 7, true, true);
    expect(take()).toEqual([nack(7, true, true)]);
    tracker.settle('ack', 8, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(8)]);
    expect(broker.error).toBeUndefined();
    expect(Object.fromEntries(broker.outcomes)).toEqual({
      1: 'ack',
      2: 'ack',
      3: 'ack',
      4: 'ack',
      5: 'ack',
      6: 'nack-requeue',
      7: 'nack-requeue',
      8: 'ack',
    });
  });

  it('sends held acks above a multiple nack before it, so that the nack does not take them', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 5);
    tracker.settle('ack', 4, false, false);
    tracker.settle('nack', 3, true, false);
    expect(take()).toEqual([ack(4), nack(3, true, false)]);
    tracker.settle('ack', 5, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(5)]);
    expect(broker.error).toBeUndefined();
    expect(Object.fromEntries(broker.outcomes)).toEqual({
      1: 'nack-drop',
      2: 'nack-drop',
      3: 'nack-drop',
      4: 'ack',
      5: 'ack',
    });
  });

  it('treats tag 0 with multiple as every outstanding delivery', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 5);
    tracker.settle('ack', 1, false, false);
    tracker.settle('ack', 2, false, false);
    tracker.settle('nack', 0, true, true);
    expect(take()).toEqual([ack(2, true), nack(0, true, true)]);
    expect(broker.unacked.size).toBe(0);
    // The tags up to 5 are settled: an ack of one goes to the broker as it is.
    tracker.settle('ack', 4, false, false);
    expect(take()).toEqual([ack(4)]);
    expect(broker.error).toBe('406 unknown delivery tag 4 (ack)');

    const second = recorder(new ModelBroker());
    second.deliver(1, 3);
    second.tracker.settle('ack', 0, true, false);
    expect(second.take()).toEqual([ack(0, true)]);
    second.deliver(4, 6);
    for (const tag of [4, 5, 6]) second.tracker.settle('ack', tag, false, false);
    second.tracker.flush();
    expect(second.take()).toEqual([ack(6, true)]);
  });

  it('passes a multiple ack with nothing held straight through', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 3);
    tracker.settle('reject', 3, true, false);
    expect(take()).toEqual([['reject', 3, true, false]]);
    tracker.flush();
    expect(take()).toEqual([]);
  });
});

describe('AckTracker: noAck deliveries', () => {
  it('skips over noAck deliveries interleaved with acked ones', () => {
    const broker = new ModelBroker();
    const { tracker, take } = recorder(broker);
    const needsAck = [true, false, true, false, false, true, true];
    needsAck.forEach((n, i) => {
      broker.deliver(i + 1, n);
      tracker.delivered(i + 1, n);
    });
    for (const tag of [1, 3, 6, 7]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(7, true)]);
    expect(broker.error).toBeUndefined();
    expect(broker.unacked.size).toBe(0);
  });

  it('skips over leading noAck deliveries', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 3, false);
    deliver(4, 6);
    for (const tag of [4, 5, 6]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(6, true)]);
  });

  it('passes an ack of a noAck delivery to the broker at once', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 1);
    deliver(2, 2, false);
    tracker.settle('ack', 2, false, false);
    expect(take()).toEqual([ack(2)]);
    expect(tracker.pending).toBe(0);
    expect(broker.error).toBe('406 unknown delivery tag 2 (ack)');
  });
});

describe('AckTracker: tags it cannot vouch for go out as they are', () => {
  it('passes acks of tags never delivered at once', () => {
    const { tracker, take, deliver } = recorder();
    tracker.settle('ack', 1, false, false);
    expect(take()).toEqual([ack(1)]);
    deliver(1, 3);
    tracker.settle('ack', 7, false, false);
    tracker.settle('nack', 4, false, true);
    tracker.settle('reject', 0, false, false);
    expect(take()).toEqual([ack(7), nack(4, false, true), reject(0, false)]);
    expect(tracker.pending).toBe(0);
    tracker.flush();
    expect(take()).toEqual([]);
  });

  it('passes second settlements of a delivery already sent at once', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 3);
    tracker.settle('reject', 2, false, false);
    tracker.settle('reject', 2, false, false);
    expect(take()).toEqual([reject(2, false), reject(2, false)]);
    expect(broker.error).toBe('406 unknown delivery tag 2 (reject)');

    const second = recorder();
    second.deliver(1, 3);
    second.tracker.settle('ack', 1, false, false);
    second.tracker.flush();
    expect(second.take()).toEqual([ack(1)]);
    second.tracker.settle('ack', 1, false, false);
    expect(second.take()).toEqual([ack(1)]);
    expect(second.tracker.pending).toBe(0);
  });

  it('ignores deliveries that are not in the broker’s increasing sequence', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 3);
    tracker.delivered(2, true);
    tracker.delivered(Number.NaN, true);
    for (const tag of [1, 2, 3]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(3, true)]);
  });

  // A second settlement of a delivery whose ack is still held must not overtake the held ack: the
  // broker then answers it exactly as it would without the tracker.
  it('a second ack of a held ack still gets the channel error it gets without the tracker', () => {
    const broker = new ModelBroker();
    const { tracker, frames, deliver } = recorder(broker);
    deliver(1, 2);
    tracker.settle('ack', 1, false, false);
    tracker.settle('ack', 1, false, false); // a user error: the broker closes the channel
    tracker.settle('ack', 2, false, false);
    tracker.flush();
    // Without the tracker: ack(1), ack(1) -> 406 unknown delivery tag 1.
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(broker.error).toBe('406 unknown delivery tag 1 (ack)');
  });

  it('a nack after an ack of the same delivery does not overtake the held ack', () => {
    const broker = new ModelBroker();
    const { tracker, deliver } = recorder(broker);
    deliver(1, 2);
    tracker.settle('ack', 1, false, false);
    tracker.settle('nack', 1, false, true);
    tracker.settle('ack', 2, false, false);
    tracker.flush();
    // Without the tracker message 1 is acked and the nack is an error.
    expect(broker.outcomes.get(1)).toBe('ack');
    expect(broker.error).toBe('406 unknown delivery tag 1 (nack)');
  });
});

describe('AckTracker: forgetAll (basic.recover-ok)', () => {
  it('drops the held acks and makes the old tags unknown', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 5);
    tracker.settle('ack', 1, false, false);
    tracker.settle('ack', 2, false, false);
    expect(tracker.pending).toBe(2);
    tracker.forgetAll();
    expect(tracker.pending).toBe(0);
    tracker.flush();
    expect(take()).toEqual([]);
    // An old tag is unknown now: its ack goes out at once (the broker answers it).
    tracker.settle('ack', 3, false, false);
    expect(take()).toEqual([ack(3)]);
    expect(tracker.pending).toBe(0);
    // Old tags delivered again are ignored: they are not the broker's sequence.
    tracker.delivered(4, true);
    tracker.settle('ack', 4, false, false);
    expect(take()).toEqual([ack(4)]);
  });

  it('coalesces the redeliveries, which get new tags', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 5);
    tracker.settle('ack', 2, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(2)]);
    broker.recover();
    tracker.forgetAll();
    deliver(6, 9);
    for (const tag of [6, 7, 8, 9]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(9, true)]);
    expect(broker.error).toBeUndefined();
    expect(Object.fromEntries(broker.outcomes)).toEqual({
      1: 'recovered',
      2: 'ack',
      3: 'recovered',
      4: 'recovered',
      5: 'recovered',
      6: 'ack',
      7: 'ack',
      8: 'ack',
      9: 'ack',
    });
  });

  it('forgets stragglers too', () => {
    const { tracker, take, deliver } = recorder();
    deliver(1, 1);
    deliver(2, MAX_WINDOW + 2, false); // tag 1 becomes a straggler
    tracker.forgetAll();
    deliver(MAX_WINDOW + 3, MAX_WINDOW + 5);
    for (let tag = MAX_WINDOW + 3; tag <= MAX_WINDOW + 5; tag++) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(MAX_WINDOW + 5, true)]);
  });
});

describe('AckTracker: overflow of the window', () => {
  /** The size of the tracker's ring of tag states (private: read to check that memory is bounded). */
  const ringSize = (tracker: AckTracker): number => (tracker as unknown as { ring: Uint8Array }).ring.length;

  it('keeps memory bounded and never covers a straggler with a multiple ack', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 1); // stays unsettled
    const last = MAX_WINDOW + 11;
    for (let tag = 2; tag <= last; tag++) {
      deliver(tag, tag);
      tracker.settle('ack', tag, false, false);
      if (tag % 100 === 0) tracker.flush();
    }
    tracker.flush();
    expect(ringSize(tracker)).toBeLessThanOrEqual(MAX_WINDOW);
    const frames = take();
    // Every ack went alone: the unsettled tag 1 lies below every one of them.
    expect(frames.length).toBe(last - 1);
    expect(frames.filter(([, , multiple]) => multiple)).toEqual([]);
    expect(frames.every(([kind, tag], i) => kind === 'ack' && tag === i + 2)).toBe(true);
    expect(broker.error).toBeUndefined();
    expect([...broker.unacked]).toEqual([1]);

    // The straggler's ack goes out at once; after it, acks coalesce again.
    tracker.settle('ack', 1, false, false);
    expect(take()).toEqual([ack(1)]);
    expect(broker.unacked.size).toBe(0);
    deliver(last + 1, last + 5);
    for (let tag = last + 1; tag <= last + 5; tag++) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(last + 5, true)]);
    expect(broker.error).toBeUndefined();
    expect(broker.unacked.size).toBe(0);
  });

  it('sends the held acks when the window overflows, and the straggler can be nacked later', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 10);
    for (const tag of [1, 2, 3, 4, 6, 7, 8, 9, 10]) tracker.settle('ack', tag, false, false);
    expect(take()).toEqual([]);
    deliver(11, MAX_WINDOW + 20, false);
    // The overflow flushed what was held.
    expect(take()).toEqual([ack(4, true), ack(6), ack(7), ack(8), ack(9), ack(10)]);
    expect(tracker.pending).toBe(0);
    expect(ringSize(tracker)).toBeLessThanOrEqual(MAX_WINDOW);

    const next = MAX_WINDOW + 21;
    deliver(next, next + 2);
    for (const tag of [next, next + 1, next + 2]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(next), ack(next + 1), ack(next + 2)]);
    tracker.settle('nack', 5, false, false);
    expect(take()).toEqual([nack(5, false, false)]);
    expect(broker.error).toBeUndefined();
    expect(broker.outcomes.get(5)).toBe('nack-drop');
    expect(broker.unacked.size).toBe(0);
  });

  it('lets a multiple settlement from the user settle the stragglers', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    deliver(1, 2);
    deliver(3, MAX_WINDOW + 3, false);
    const next = MAX_WINDOW + 4;
    deliver(next, next + 3);
    tracker.settle('ack', next, false, false);
    tracker.settle('reject', next + 1, true, true);
    expect(take()).toEqual([ack(next), ['reject', next + 1, true, true]]);
    for (const tag of [next + 2, next + 3]) tracker.settle('ack', tag, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(next + 3, true)]);
    expect(broker.error).toBeUndefined();
    expect(broker.outcomes.get(1)).toBe('reject-requeue');
    expect(broker.outcomes.get(2)).toBe('reject-requeue');
    expect(broker.unacked.size).toBe(0);
  });

  it('survives many overflows with several stragglers', () => {
    const broker = new ModelBroker();
    const { tracker, take, deliver } = recorder(broker);
    const unsettled: number[] = [];
    let tag = 0;
    for (let round = 0; round < 4; round++) {
      tag++;
      deliver(tag, tag); // stays unsettled
      unsettled.push(tag);
      const end = tag + MAX_WINDOW + 7;
      while (tag < end) {
        tag++;
        const needsAck = tag % 3 !== 0;
        deliver(tag, tag, needsAck);
        if (needsAck) tracker.settle('ack', tag, false, false);
        if (tag % 1000 === 0) tracker.flush();
      }
      expect(ringSize(tracker)).toBeLessThanOrEqual(MAX_WINDOW);
    }
    tracker.flush();
    expect(take().filter(([, , multiple]) => multiple)).toEqual([]);
    expect([...broker.unacked]).toEqual(unsettled);
    for (const u of unsettled) tracker.settle('ack', u, false, false);
    expect(take()).toEqual(unsettled.map((u) => ack(u)));
    deliver(tag + 1, tag + 3);
    for (const t of [tag + 1, tag + 2, tag + 3]) tracker.settle('ack', t, false, false);
    tracker.flush();
    expect(take()).toEqual([ack(tag + 3, true)]);
    expect(broker.error).toBeUndefined();
    expect(broker.unacked.size).toBe(0);
  });
});

describe('AckTracker: pending', () => {
  it('counts only the held acks', () => {
    const { tracker, deliver } = recorder();
    expect(tracker.pending).toBe(0);
    deliver(1, 6);
    tracker.settle('ack', 1, false, false);
    tracker.settle('ack', 3, false, false);
    expect(tracker.pending).toBe(2);
    tracker.settle('nack', 2, false, true);
    tracker.settle('reject', 4, false, false);
    tracker.settle('ack', 99, false, false);
    tracker.settle('ack', 4, false, false);
    expect(tracker.pending).toBe(2);
    tracker.flush();
    expect(tracker.pending).toBe(0);
    tracker.settle('ack', 5, false, false);
    expect(tracker.pending).toBe(1);
    tracker.settle('ack', 6, true, false);
    expect(tracker.pending).toBe(0);
  });
});

describe('AckTracker: model-based comparison with a client that sends every settlement at once', () => {
  /** How to pick the tag of a settlement, given the state at that point of the program. */
  type Target = 'unacked' | 'any' | 'unknown';
  type Op =
    | { readonly op: 'deliver'; readonly needsAck: boolean }
    | {
        readonly op: 'settle';
        readonly kind: SettleKind;
        readonly multiple: boolean;
        readonly requeue: boolean;
        readonly target: Target;
        readonly pick: number;
      }
    | { readonly op: 'flush' }
    | { readonly op: 'recover' }
    /** Many noAck deliveries: past the window, so the unsettled deliveries become stragglers. */
    | { readonly op: 'noAckBurst'; readonly extra: number }
    /** Many deliveries, each acked at once (flushed every `every` acks by the tracker). */
    | { readonly op: 'ackBurst'; readonly extra: number; readonly every: number };

  /** The program with its tags resolved (from the state of the direct run). */
  type Step =
    | { readonly op: 'deliver'; readonly tag: number; readonly needsAck: boolean }
    | {
        readonly op: 'settle';
        readonly kind: SettleKind;
        readonly tag: number;
        readonly multiple: boolean;
        readonly requeue: boolean;
      }
    | { readonly op: 'flush' }
    | { readonly op: 'recover' }
    | { readonly op: 'noAckBurst'; readonly from: number; readonly to: number }
    | { readonly op: 'ackBurst'; readonly from: number; readonly to: number; readonly every: number };

  const arbDeliver = fc.record({
    op: fc.constant('deliver' as const),
    needsAck: fc.integer({ min: 0, max: 9 }).map((n) => n !== 0),
  });
  const arbSettle = fc.record({
    op: fc.constant('settle' as const),
    kind: fc.constantFrom<SettleKind>('ack', 'ack', 'ack', 'ack', 'nack', 'reject'),
    multiple: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    requeue: fc.boolean(),
    target: fc
      .integer({ min: 0, max: 99 })
      .map((n): Target => (n < 97 ? 'unacked' : n < 99 ? 'any' : 'unknown')),
    pick: fc.nat(),
  });
  const arbNoAckBurst = fc.record({
    op: fc.constant('noAckBurst' as const),
    extra: fc.integer({ min: 0, max: 40 }),
  });
  const arbAckBurst = fc.record({
    op: fc.constant('ackBurst' as const),
    extra: fc.integer({ min: 0, max: 40 }),
    every: fc.integer({ min: 1, max: 200 }),
  });
  /** The everyday operations (the bursts are slow under Jest: they get a property of their own). */
  const smallOps = [
    { weight: 300, arbitrary: arbDeliver },
    { weight: 400, arbitrary: arbSettle },
    { weight: 100, arbitrary: fc.constant({ op: 'flush' as const }) },
    { weight: 8, arbitrary: fc.constant({ op: 'recover' as const }) },
  ];
  const arbOp: fc.Arbitrary<Op> = fc.oneof(...smallOps);

  /** Runs the program as a client that sends every settlement at once; resolves its tags on the way. */
  function runDirect(ops: readonly Op[]): { broker: ModelBroker; steps: Step[] } {
    const broker = new ModelBroker();
    const steps: Step[] = [];
    let top = 0;
    for (const op of ops) {
      switch (op.op) {
        case 'deliver': {
          top++;
          broker.deliver(top, op.needsAck);
          steps.push({ op: 'deliver', tag: top, needsAck: op.needsAck });
          break;
        }
        case 'settle': {
          const unacked = [...broker.unacked]; // in delivery order, so sorted
          let tag: number;
          if (op.multiple) {
            // Only valid multiple tags: an unacked one, or 0 (everything).
            tag = unacked.length === 0 || op.pick % 8 === 0 ? 0 : unacked[op.pick % unacked.length]!;
          } else if (op.target === 'unacked') {
            if (unacked.length === 0) break; // nothing to settle: no step
            // Consumers mostly settle in order: half the time the oldest unacked delivery.
            tag = op.pick % 2 === 0 ? unacked[0]! : unacked[(op.pick >> 1) % unacked.length]!;
          } else if (op.target !== 'unknown' && top > 0) {
            tag = 1 + (op.pick % top); // maybe settled already, noAck, or an old tag
          } else {
            tag = op.pick % 4 === 0 ? 0 : top + 1 + (op.pick % 3);
          }
          broker.settle(op.kind, tag, op.multiple, op.requeue);
          steps.push({ op: 'settle', kind: op.kind, tag, multiple: op.multiple, requeue: op.requeue });
          break;
        }
        case 'flush':
          steps.push(op);
          break;
        case 'recover':
          broker.recover();
          steps.push(op);
          break;
        case 'noAckBurst': {
          const from = top + 1;
          top += MAX_WINDOW + op.extra;
          steps.push({ op: 'noAckBurst', from, to: top });
          break;
        }
        case 'ackBurst': {
          const from = top + 1;
          top += MAX_WINDOW + op.extra;
          for (let tag = from; tag <= top; tag++) {
            broker.deliver(tag, true);
            broker.settle('ack', tag, false, false);
          }
          steps.push({ op: 'ackBurst', from, to: top, every: op.every });
          break;
        }
      }
    }
    return { broker, steps };
  }

  /** Runs the resolved program through the tracker, the broker seeing the frames as they are sent. */
  function runTracker(steps: readonly Step[]): { broker: ModelBroker; tracker: AckTracker } {
    const broker = new ModelBroker();
    const tracker = new AckTracker((kind, tag, multiple, requeue) =>
      broker.settle(kind, tag, multiple, requeue),
    );
    for (const step of steps) {
      switch (step.op) {
        case 'deliver':
          broker.deliver(step.tag, step.needsAck);
          tracker.delivered(step.tag, step.needsAck);
          break;
        case 'settle':
          tracker.settle(step.kind, step.tag, step.multiple, step.requeue);
          break;
        case 'flush':
          tracker.flush();
          break;
        case 'recover':
          // The channel writes basic.recover after the held acks (as any method), and forgets the
          // outstanding tags when basic.recover-ok comes back.
          tracker.flush();
          broker.recover();
          tracker.forgetAll();
          break;
        case 'noAckBurst':
          // (noAck deliveries leave nothing for the broker to track)
          for (let tag = step.from; tag <= step.to; tag++) tracker.delivered(tag, false);
          break;
        case 'ackBurst':
          for (let tag = step.from; tag <= step.to; tag++) {
            broker.deliver(tag, true);
            tracker.delivered(tag, true);
            tracker.settle('ack', tag, false, false);
            if ((tag - step.from + 1) % step.every === 0) tracker.flush();
          }
          break;
      }
    }
    tracker.flush();
    return { broker, tracker };
  }

  /** Runs the program both ways and compares what the broker did; returns what was compared. */
  function check(ops: readonly Op[]): { compared: boolean; coalesced: boolean } {
    const direct = runDirect(ops);
    const tracked = runTracker(direct.steps);
    expect(tracked.tracker.pending).toBe(0);
    expect(tracked.broker.frames).toBeLessThanOrEqual(direct.broker.frames);
    if (direct.broker.error !== undefined) return { compared: false, coalesced: false };
    expect(tracked.broker.error).toBeUndefined();
    expect(outcomeDifference(tracked.broker.outcomes, direct.broker.outcomes)).toBeUndefined();
    expect([...tracked.broker.unacked]).toEqual([...direct.broker.unacked]);
    return { compared: true, coalesced: tracked.broker.frames < direct.broker.frames };
  }

  it('settles every delivery as the direct client does, with no more frames', () => {
    let compared = 0;
    let coalesced = 0;
    fc.assert(
      fc.property(fc.array(arbOp, { maxLength: 80, size: 'max' }), (ops) => {
        const result = check(ops);
        if (result.compared) compared++;
        if (result.coalesced) coalesced++;
      }),
      { numRuns: 300 },
    );
    // The comparison is not vacuous: most programs are free of errors, and the tracker saves frames.
    expect(compared).toBeGreaterThan(100);
    expect(coalesced).toBeGreaterThan(50);
  });

  it('does the same when the window overflows in the middle of the program (stragglers)', () => {
    let compared = 0;
    const arbProgram = fc
      .tuple(
        fc.array(arbOp, { minLength: 5, maxLength: 30, size: 'max' }),
        fc.oneof({ weight: 3, arbitrary: arbNoAckBurst }, { weight: 1, arbitrary: arbAckBurst }),
        fc.array(arbOp, { minLength: 5, maxLength: 40, size: 'max' }),
      )
      .map(([before, burst, after]) => [...before, burst, ...after]);
    fc.assert(
      fc.property(arbProgram, (ops) => {
        if (check(ops).compared) compared++;
      }),
      // A failure shrinks slowly (each run delivers MAX_WINDOW tags): report it after 20 s at most.
      { numRuns: 30, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true },
    );
    expect(compared).toBeGreaterThan(5);
  });
});

describe('AckTracker: scale', () => {
  it('acks 100,000 deliveries one by one, flushed every 37 acks, in about 100000/37 multiple acks', () => {
    const { tracker, frames } = recorder();
    const total = 100_000;
    const prefetch = 500;
    let delivered = 0;
    for (let tag = 1; tag <= total; tag++) {
      while (delivered < Math.min(total, tag + prefetch - 1)) tracker.delivered(++delivered, true);
      tracker.settle('ack', tag, false, false);
      if (tag % 37 === 0) tracker.flush();
    }
    tracker.flush();
    expect(frames.length).toBe(Math.ceil(total / 37));
    expect(frames.every(([kind, , multiple, requeue]) => kind === 'ack' && multiple && !requeue)).toBe(true);
    const expected = Array.from({ length: Math.floor(total / 37) }, (_, i) => (i + 1) * 37);
    expected.push(total);
    expect(frames.map(([, tag]) => tag)).toEqual(expected);
  });
});

describe('AckTracker.unsettled (what a drain waits for)', () => {
  it('counts the deliveries awaiting a settlement; held acks and noAck deliveries do not count', () => {
    const sent: Frame[] = [];
    const tracker = new AckTracker((...frame) => sent.push(frame));
    for (let tag = 1; tag <= 5; tag++) tracker.delivered(tag, tag !== 5);
    expect(tracker.unsettled).toBe(4);
    tracker.settle('ack', 2, false, false); // held
    expect(tracker.unsettled).toBe(3);
    tracker.settle('nack', 3, false, true);
    expect(tracker.unsettled).toBe(2);
    tracker.flush();
    tracker.settle('ack', 4, true, false);
    expect(tracker.unsettled).toBe(0);
  });

  it('counts the stragglers left by an overflowing window', () => {
    const tracker = new AckTracker(() => {});
    tracker.delivered(1, true);
    for (let tag = 2; tag <= MAX_WINDOW + 10; tag++) {
      tracker.delivered(tag, true);
      tracker.settle('ack', tag, false, false);
    }
    expect(tracker.unsettled).toBe(1);
    tracker.settle('ack', 1, false, false);
    expect(tracker.unsettled).toBe(0);
  });
});
