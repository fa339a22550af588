import fc from 'fast-check';
import { marbles } from 'rxjs-marbles/jest';
import {
  type ConfirmEvent,
  type ConfirmOutcome,
  ConfirmSmoother,
  type ConfirmStatus,
  smoothConfirms,
} from '../../src/core/confirm-smoother.js';
import { ConfirmTagError } from '../../src/errors.js';

// Input events of smoothConfirms().
const P: ConfirmEvent = { kind: 'publish' };
const F: ConfirmEvent = { kind: 'fail' };
const ack = (deliveryTag: number, multiple = false): ConfirmEvent => ({ kind: 'ack', deliveryTag, multiple });
const nack = (deliveryTag: number, multiple = false): ConfirmEvent => ({
  kind: 'nack',
  deliveryTag,
  multiple,
});

// Output outcomes.
const acked = (seq: number): ConfirmOutcome => ({ seq, status: 'ack' });
const nacked = (seq: number): ConfirmOutcome => ({ seq, status: 'nack' });
const failed = (seq: number): ConfirmOutcome => ({ seq, status: 'fail' });

/** A smoother whose settlements are recorded as `[seq, status]`. */
function recorder() {
  const settled: [number, ConfirmStatus][] = [];
  const smoother = new ConfirmSmoother((seq, status) => settled.push([seq, status]));
  /** Returns the settlements recorded since the last call. */
  const take = (): [number, ConfirmStatus][] => settled.splice(0, settled.length);
  const publish = (count: number): void => {
    for (let i = 0; i < count; i++) smoother.publish();
  };
  return { smoother, take, publish };
}

/** The ConfirmTagError `fn` throws (fails the test if it throws nothing or something else). */
function thrown(fn: () => void): ConfirmTagError {
  try {
    fn();
  } catch (error: unknown) {
    if (error instanceof ConfirmTagError) return error;
    throw error;
  }
  throw new Error('expected a ConfirmTagError, nothing was thrown');
}

describe('smoothConfirms (marbles)', () => {
  it(
    'emits single acks that arrive in order as they arrive',
    marbles((m) => {
      const source = m.cold('pp-a-pb-c-|', { p: P, a: ack(1), b: ack(2), c: ack(3) });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('---A--B-C-|', {
        A: acked(1),
        B: acked(2),
        C: acked(3),
      });
    }),
  );

  it(
    'holds out-of-order single acks back until the gap before them is confirmed',
    marbles((m) => {
      const source = m.cold('pppp-c-b-a-----d-|', { p: P, a: ack(1), b: ack(2), c: ack(3), d: ack(4) });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('---------(ABC)-D-|', {
        A: acked(1),
        B: acked(2),
        C: acked(3),
        D: acked(4),
      });
    }),
  );

  it(
    'settles with a multiple ack everything up to its tag, across the gaps left by earlier singles',
    marbles((m) => {
      // 3 and 6 are acked singly first. The multiple ack of 4 covers 1, 2 and 4, which releases 1 to 4;
      // the multiple nack of 6 covers only 5, which releases 5 and 6 (still acked).
      const source = m.cold('pppppp-c-e-x------y---|', {
        p: P,
        c: ack(3),
        e: ack(6),
        x: ack(4, true),
        y: nack(6, true),
      });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('-----------(ABCD)-(EF)|', {
        A: acked(1),
        B: acked(2),
        C: acked(3),
        D: acked(4),
        E: nacked(5),
        F: acked(6),
      });
    }),
  );

  it(
    'settles nacks and multiple nacks as nack',
    marbles((m) => {
      const source = m.cold('pppp-b-x-----d-|', { p: P, b: nack(2), x: nack(3, true), d: nack(4) });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('-------(ABC)-D-|', {
        A: nacked(1),
        B: nacked(2),
        C: nacked(3),
        D: nacked(4),
      });
    }),
  );

  it(
    'keeps each publish’s own status when acks and nacks interleave',
    marbles((m) => {
      // 2 acked, 1 nacked: both go. 4 nacked singly, then a multiple ack of 5 covers 3 and 5 only.
      // Then a multiple nack of 7 covers 6 but not 7, which was acked singly before.
      const source = m.cold('ppppp-b-a----d-x----pp-g-y---|', {
        p: P,
        a: nack(1),
        b: ack(2),
        d: nack(4),
        x: ack(5, true),
        g: ack(7),
        y: nack(7, true),
      });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('--------(AB)---(CDE)-----(FG)|', {
        A: nacked(1),
        B: acked(2),
        C: acked(3),
        D: nacked(4),
        E: acked(5),
        F: nacked(6),
        G: acked(7),
      });
    }),
  );

  it(
    'on fail, fails the publishes not yet confirmed and releases the held ones with their status',
    marbles((m) => {
      // 1 acked, 3 acked and held, 4 nacked and held, 2 and 5 unconfirmed. After the fail the
      // numbering goes on: 6 is acked.
      const source = m.cold('ppppp-a-c-d-f-----p-g|', {
        p: P,
        f: F,
        a: ack(1),
        c: ack(3),
        d: nack(4),
        g: ack(6),
      });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('------A-----(BCDE)--F|', {
        A: acked(1),
        B: failed(2),
        C: acked(3),
        D: nacked(4),
        E: failed(5),
        F: acked(6),
      });
    }),
  );

  it(
    'errors with a ConfirmTagError for a bad tag and stops listening to the source',
    marbles((m) => {
      const source = m.cold('pp-c-a-|', { p: P, a: ack(1), c: ack(3) });
      const error = new ConfirmTagError(
        'basic.ack for delivery tag 3, which was never published (last: 2)',
        3,
        false,
      );
      m.expect(source.pipe(smoothConfirms())).toBeObservable('---#', {}, error);
      m.expect(source).toHaveSubscriptions('^--!');
    }),
  );

  it(
    'errors for a second single confirm of a publish, even one held back',
    marbles((m) => {
      const source = m.cold('ppp-b-x-|', { p: P, b: ack(2), x: nack(2) });
      const error = new ConfirmTagError(
        'basic.nack for delivery tag 2, which was already confirmed',
        2,
        false,
      );
      m.expect(source.pipe(smoothConfirms())).toBeObservable('------#', {}, error);
    }),
  );

  it(
    'completes when the source completes, leaving unconfirmed publishes unsettled',
    marbles((m) => {
      const source = m.cold('-p-p-a-|', { p: P, a: ack(1) });
      m.expect(source.pipe(smoothConfirms())).toBeObservable('-----A-|', { A: acked(1) });
    }),
  );

  it(
    'passes an error of the source through',
    marbles((m) => {
      const source = m.cold('-p-a-#', { p: P, a: ack(1) }, new Error('boom'));
      m.expect(source.pipe(smoothConfirms())).toBeObservable('---A-#', { A: acked(1) }, new Error('boom'));
    }),
  );
});

describe('ConfirmSmoother: numbering and counters', () => {
  it('numbers publishes from 1 and counts what is outstanding', () => {
    const { smoother, take } = recorder();
    expect(smoother.lastPublished).toBe(0);
    expect(smoother.outstanding).toBe(0);
    expect([smoother.publish(), smoother.publish(), smoother.publish()]).toEqual([1, 2, 3]);
    expect(smoother.lastPublished).toBe(3);
    expect(smoother.outstanding).toBe(3);
    smoother.ack(1, false);
    expect(take()).toEqual([[1, 'ack']]);
    expect(smoother.outstanding).toBe(2);
    // 3 is confirmed but held back behind 2: it is still outstanding (not yet settled).
    smoother.ack(3, false);
    expect(take()).toEqual([]);
    expect(smoother.outstanding).toBe(2);
    smoother.nack(2, false);
    expect(take()).toEqual([
      [2, 'nack'],
      [3, 'ack'],
    ]);
    expect(smoother.outstanding).toBe(0);
    expect(smoother.lastPublished).toBe(3);
  });
});

describe('ConfirmSmoother: confirms', () => {
  it('settles in-order single acks at once', () => {
    const { smoother, take, publish } = recorder();
    publish(3);
    for (const tag of [1, 2, 3]) {
      smoother.ack(tag, false);
      expect(take()).toEqual([[tag, 'ack']]);
    }
  });

  it('holds out-of-order confirms back and releases them in order', () => {
    const { smoother, take, publish } = recorder();
    publish(5);
    smoother.ack(5, false);
    smoother.nack(3, false);
    smoother.ack(2, false);
    expect(take()).toEqual([]);
    smoother.ack(1, false);
    expect(take()).toEqual([
      [1, 'ack'],
      [2, 'ack'],
      [3, 'nack'],
    ]);
    smoother.ack(4, false);
    expect(take()).toEqual([
      [4, 'ack'],
      [5, 'ack'],
    ]);
  });

  it('gives a multiple confirm’s status only to the publishes it covers that were unconfirmed', () => {
    const { smoother, take, publish } = recorder();
    publish(6);
    smoother.ack(2, false);
    smoother.ack(4, false);
    smoother.nack(5, true);
    expect(take()).toEqual([
      [1, 'nack'],
      [2, 'ack'],
      [3, 'nack'],
      [4, 'ack'],
      [5, 'nack'],
    ]);
    expect(smoother.outstanding).toBe(1);
    smoother.ack(6, true);
    expect(take()).toEqual([[6, 'ack']]);
  });

  it('accepts a multiple confirm whose tag was already confirmed singly, covering the ones below', () => {
    const { smoother, take, publish } = recorder();
    publish(3);
    smoother.nack(3, false);
    smoother.ack(3, true);
    expect(take()).toEqual([
      [1, 'ack'],
      [2, 'ack'],
      [3, 'nack'],
    ]);
  });

  it('does nothing for a multiple confirm that covers nothing still outstanding', () => {
    const { smoother, take, publish } = recorder();
    publish(4);
    smoother.ack(2, true);
    expect(take()).toEqual([
      [1, 'ack'],
      [2, 'ack'],
    ]);
    smoother.nack(2, true);
    smoother.ack(1, true);
    expect(take()).toEqual([]);
    expect(smoother.outstanding).toBe(2);
    smoother.ack(4, true);
    expect(take()).toEqual([
      [3, 'ack'],
      [4, 'ack'],
    ]);
  });
});

describe('ConfirmSmoother: confirms the broker should never send', () => {
  it('throws for a tag never published, with what was wrong', () => {
    const { smoother, publish } = recorder();
    publish(5);
    const error = thrown(() => smoother.ack(7, false));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfirmTagError');
    expect(error.message).toBe('basic.ack for delivery tag 7, which was never published (last: 5)');
    expect(error.deliveryTag).toBe(7);
    expect(error.multiple).toBe(false);

    const multiple = thrown(() => smoother.nack(6, true));
    expect(multiple.message).toBe(
      'basic.nack (multiple) for delivery tag 6, which was never published (last: 5)',
    );
    expect(multiple.deliveryTag).toBe(6);
    expect(multiple.multiple).toBe(true);
  });

  it('throws for a tag below 1 or not an integer', () => {
    const { smoother, publish } = recorder();
    expect(thrown(() => smoother.ack(1, false)).message).toBe(
      'basic.ack for delivery tag 1, which was never published (last: 0)',
    );
    publish(2);
    expect(thrown(() => smoother.ack(0, false)).message).toBe(
      'basic.ack for delivery tag 0, which was never published (last: 2)',
    );
    expect(thrown(() => smoother.ack(0, true)).message).toBe(
      'basic.ack (multiple) for delivery tag 0, which was never published (last: 2)',
    );
    expect(thrown(() => smoother.nack(-1, false)).deliveryTag).toBe(-1);
    expect(thrown(() => smoother.ack(1.5, false)).deliveryTag).toBe(1.5);
    expect(thrown(() => smoother.ack(Number.NaN, true)).deliveryTag).toBeNaN();
  });

  it('throws for a single confirm of a publish already confirmed, held back or settled', () => {
    const { smoother, take, publish } = recorder();
    publish(3);
    smoother.ack(1, false);
    smoother.nack(3, false);
    take();
    expect(thrown(() => smoother.ack(1, false)).message).toBe(
      'basic.ack for delivery tag 1, which was already confirmed',
    );
    expect(thrown(() => smoother.ack(3, false)).message).toBe(
      'basic.ack for delivery tag 3, which was already confirmed',
    );
    expect(thrown(() => smoother.nack(3, false)).message).toBe(
      'basic.nack for delivery tag 3, which was already confirmed',
    );
  });

  it('throws for a single confirm of a publish settled long ago, whose storage a later publish reuses', () => {
    const { smoother, take, publish } = recorder();
    publish(10);
    smoother.ack(10, true);
    // 60 more in the window: they wrap around the storage of 1 to 10 without needing more of it.
    publish(60);
    take();
    for (const tag of [1, 6, 10]) {
      expect(thrown(() => smoother.ack(tag, false)).message).toBe(
        `basic.ack for delivery tag ${tag}, which was already confirmed`,
      );
    }
    expect(smoother.outstanding).toBe(60);
    smoother.nack(70, true);
    expect(take().every(([, status]) => status === 'nack')).toBe(true);
  });

  it('says a publish may have failed when the tag is one the channel failed', () => {
    const { smoother, take, publish } = recorder();
    publish(2);
    smoother.fail();
    take();
    expect(thrown(() => smoother.ack(2, false)).message).toBe(
      'basic.ack for delivery tag 2, which was already confirmed or failed',
    );
  });

  it('changes nothing when it throws', () => {
    const { smoother, take, publish } = recorder();
    publish(4);
    smoother.nack(3, false);
    // A multiple ack with a tag past the last must not mark 1, 2 and 4 on its way to the check.
    thrown(() => smoother.ack(9, true));
    thrown(() => smoother.ack(3, false));
    thrown(() => smoother.ack(0, true));
    expect(take()).toEqual([]);
    expect(smoother.outstanding).toBe(4);
    expect(smoother.lastPublished).toBe(4);
    smoother.nack(2, false);
    smoother.ack(4, false);
    expect(take()).toEqual([]);
    smoother.ack(1, false);
    expect(take()).toEqual([
      [1, 'ack'],
      [2, 'nack'],
      [3, 'nack'],
      [4, 'ack'],
    ]);
    expect(smoother.publish()).toBe(5);
  });
});

describe('ConfirmSmoother: fail', () => {
  it('fails the unconfirmed publishes and releases the held ones with their own status, in order', () => {
    const { smoother, take, publish } = recorder();
    publish(6);
    smoother.ack(1, false);
    smoother.ack(3, false);
    smoother.nack(4, false);
    expect(take()).toEqual([[1, 'ack']]);
    smoother.fail();
    expect(take()).toEqual([
      [2, 'fail'],
      [3, 'ack'],
      [4, 'nack'],
      [5, 'fail'],
      [6, 'fail'],
    ]);
    expect(smoother.outstanding).toBe(0);
    expect(smoother.lastPublished).toBe(6);
  });

  it('goes on numbering after a fail, and may fail again', () => {
    const { smoother, take } = recorder();
    smoother.fail();
    expect(take()).toEqual([]);
    expect(smoother.publish()).toBe(1);
    smoother.fail();
    expect(take()).toEqual([[1, 'fail']]);
    expect(smoother.publish()).toBe(2);
    expect(smoother.publish()).toBe(3);
    expect(smoother.outstanding).toBe(2);
    smoother.ack(3, false);
    smoother.fail();
    smoother.fail();
    expect(take()).toEqual([
      [2, 'fail'],
      [3, 'ack'],
    ]);
    expect(smoother.publish()).toBe(4);
    smoother.ack(4, true);
    expect(take()).toEqual([[4, 'ack']]);
  });
});

describe('ConfirmSmoother: re-entrancy', () => {
  it('numbers and settles a publish made from inside the callback', () => {
    const settled: [number, ConfirmStatus][] = [];
    const published: number[] = [];
    const smoother = new ConfirmSmoother((seq, status) => {
      settled.push([seq, status]);
      if (seq <= 2) published.push(smoother.publish());
    });
    smoother.publish();
    smoother.publish();
    smoother.ack(2, true);
    expect(settled).toEqual([
      [1, 'ack'],
      [2, 'ack'],
    ]);
    expect(published).toEqual([3, 4]);
    expect(smoother.lastPublished).toBe(4);
    expect(smoother.outstanding).toBe(2);
    smoother.ack(4, false);
    smoother.ack(3, false);
    expect(settled.slice(2)).toEqual([
      [3, 'ack'],
      [4, 'ack'],
    ]);
  });

  it('keeps the order when the callback publishes enough to grow the storage mid-settling', () => {
    const settled: number[] = [];
    const smoother = new ConfirmSmoother((seq) => {
      settled.push(seq);
      if (seq === 1) for (let i = 0; i < 1000; i++) smoother.publish();
    });
    for (let i = 0; i < 10; i++) smoother.publish();
    smoother.ack(10, true);
    expect(settled).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(smoother.outstanding).toBe(1000);
    smoother.ack(1010, true);
    expect(settled.length).toBe(1010);
    expect(settled.every((seq, i) => seq === i + 1)).toBe(true);
  });

  it('does not let a confirm or fail from inside the callback overtake the settling in progress', () => {
    const settled: [number, ConfirmStatus][] = [];
    const smoother = new ConfirmSmoother((seq, status) => {
      settled.push([seq, status]);
      if (seq === 1) smoother.nack(4, false); // 2 and 3 are ready and not yet settled
      if (seq === 2) smoother.fail();
    });
    for (let i = 0; i < 5; i++) smoother.publish();
    smoother.ack(3, false);
    smoother.ack(2, false);
    smoother.ack(1, false);
    expect(settled).toEqual([
      [1, 'ack'],
      [2, 'ack'],
      [3, 'ack'],
      [4, 'nack'],
      [5, 'fail'],
    ]);
  });

  it('never calls the callback while it is already running, however the callback re-enters', () => {
    let depth = 0;
    let deepest = 0;
    const settled: number[] = [];
    const smoother = new ConfirmSmoother((seq) => {
      depth++;
      deepest = Math.max(deepest, depth);
      settled.push(seq);
      // Each settlement confirms the next publish from inside the callback.
      if (seq < smoother.lastPublished) smoother.ack(seq + 1, false);
      depth--;
    });
    for (let i = 0; i < 100_000; i++) smoother.publish();
    smoother.ack(1, false);
    expect(deepest).toBe(1);
    expect(settled.length).toBe(100_000);
    expect(settled.every((seq, i) => seq === i + 1)).toBe(true);
  });

  it('when the callback throws, the error propagates and the next call settles the rest', () => {
    const settled: number[] = [];
    const smoother = new ConfirmSmoother((seq) => {
      settled.push(seq);
      if (seq === 2) throw new Error('user callback');
    });
    for (let i = 0; i < 4; i++) smoother.publish();
    expect(() => smoother.ack(3, true)).toThrow('user callback');
    expect(settled).toEqual([1, 2]);
    smoother.ack(4, false);
    expect(settled).toEqual([1, 2, 3, 4]);
    expect(smoother.outstanding).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties: a model broker confirms every publish exactly once, in a random order and mix.

/** One random choice of the broker or the publisher. */
interface Step {
  readonly op: number;
  readonly nack: boolean;
  readonly multiple: boolean;
  readonly pick: number;
  readonly reach: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  op: fc.nat(),
  nack: fc.boolean(),
  multiple: fc.boolean(),
  pick: fc.nat(),
  reach: fc.nat(),
});

/**
 * Runs a smoother against a model: `n` publishes, interleaved as `steps` say with confirms of random
 * unconfirmed publishes (single, or multiple up to a random published tag at or above one), and `fail`
 * where `failAt` says. When the steps run out, the rest are published and confirmed singly, last
 * first. After each step the smoother must have settled exactly the ready prefix.
 */
function runModel(n: number, steps: readonly Step[], failAt: ReadonlySet<number> = new Set()) {
  const settled: [number, ConfirmStatus][] = [];
  const smoother = new ConfirmSmoother((seq, status) => settled.push([seq, status]));
  /** The status the model gave each publish; undefined while unconfirmed. */
  const expected: (ConfirmStatus | undefined)[] = [undefined];
  /** Published, not yet confirmed by the broker nor failed. */
  let unconfirmed: number[] = [];
  let published = 0;
  let ready = 0;

  const check = (): void => {
    while (ready < published && expected[ready + 1] !== undefined) ready++;
    if (settled.length !== ready) throw new Error(`settled ${settled.length}, ready prefix ${ready}`);
  };
  const publish = (): void => {
    published++;
    const seq = smoother.publish();
    if (seq !== published) throw new Error(`publish() returned ${seq}, expected ${published}`);
    expected.push(undefined);
    unconfirmed.push(published);
  };
  const confirm = (step: Step): void => {
    const status: ConfirmStatus = step.nack ? 'nack' : 'ack';
    const index = step.pick % unconfirmed.length;
    const tag = unconfirmed[index]!;
    if (step.multiple) {
      const top = tag + (step.reach % (published - tag + 1));
      unconfirmed = unconfirmed.filter((seq) => {
        if (seq > top) return true;
        expected[seq] = status;
        return false;
      });
      smoother[status](top, true);
    } else {
      unconfirmed.splice(index, 1);
      expected[tag] = status;
      smoother[status](tag, false);
    }
  };
  const fail = (): void => {
    for (const seq of unconfirmed) expected[seq] = 'fail';
    unconfirmed = [];
    smoother.fail();
  };

  steps.forEach((step, i) => {
    if (failAt.has(i)) fail();
    else if (published < n && (unconfirmed.length === 0 || step.op % 3 === 0)) publish();
    else if (unconfirmed.length > 0) confirm(step);
    check();
  });
  while (published < n) publish();
  while (unconfirmed.length > 0) {
    const seq = unconfirmed.pop()!;
    expected[seq] = 'ack';
    smoother.ack(seq, false);
    check();
  }
  return { settled, expected: expected.slice(1), smoother };
}

describe('ConfirmSmoother: properties', () => {
  it('settles every publish once, in order, with the status the broker gave it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.array(stepArb, { maxLength: 500 }), (n, steps) => {
        const { settled, expected, smoother } = runModel(n, steps);
        expect(settled.map(([seq]) => seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        expect(settled.map(([, status]) => status)).toEqual(expected);
        expect(smoother.outstanding).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('with fails at random points, still settles every publish once, in order, keeping broker statuses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.array(stepArb, { minLength: 1, maxLength: 500 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
        (n, steps, fails) => {
          const failAt = new Set(fails.map((f) => f % steps.length));
          const { settled, expected, smoother } = runModel(n, steps, failAt);
          expect(settled.map(([seq]) => seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
          expect(settled.map(([, status]) => status)).toEqual(expected);
          expect(smoother.outstanding).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('ConfirmSmoother: scale', () => {
  it('takes a million publishes confirmed by multiple acks out of step with them', () => {
    let next = 1;
    let wrong = 0;
    const smoother = new ConfirmSmoother((seq, status) => {
      if (seq !== next || status !== 'ack') wrong++;
      next = seq + 1;
    });
    const total = 1_000_000;
    for (let i = 1; i <= total; i++) {
      smoother.publish();
      // Every 997 publishes, the broker confirms up to 300 behind the last one.
      if (i % 997 === 0) smoother.ack(i - 300, true);
    }
    smoother.ack(total, true);
    expect(wrong).toBe(0);
    expect(next).toBe(total + 1);
    expect(smoother.outstanding).toBe(0);
    expect(smoother.lastPublished).toBe(total);
    // The window never exceeded 997 + 300 publishes.
    expect(smoother.ringCapacity).toBeLessThanOrEqual(2048);
  });

  it('keeps its storage bounded by the window, not by how many publishes went through', () => {
    const { smoother, take } = recorder();
    // A window of 8 out-of-order confirms at a time, 500,000 times over.
    const order = [3, 1, 8, 2, 7, 5, 6, 4];
    const capacities = new Set<number>();
    let wrongRounds = 0;
    for (let round = 0; round < 62_500; round++) {
      const base = round * 8;
      for (let i = 1; i <= 8; i++) smoother.publish();
      for (const k of order) smoother.ack(base + k, false);
      capacities.add(smoother.ringCapacity);
      if (take().length !== 8) wrongRounds++;
    }
    expect(wrongRounds).toBe(0);
    expect(smoother.outstanding).toBe(0);
    expect([...capacities]).toEqual([smoother.ringCapacity]);
    const small = smoother.ringCapacity;

    // A burst widens the window; once it is settled, the storage shrinks back.
    for (let i = 0; i < 100_000; i++) smoother.publish();
    expect(smoother.ringCapacity).toBeGreaterThanOrEqual(100_000);
    smoother.ack(smoother.lastPublished, true);
    expect(take().length).toBe(100_000);
    expect(smoother.ringCapacity).toBe(small);
  });
});
